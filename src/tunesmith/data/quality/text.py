"""Text normalisation, shingling and fingerprints shared by the duplicate and leakage checks."""

from __future__ import annotations

import hashlib
import re

WORD = re.compile(r"\w+", re.UNICODE)


def normalise(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def fingerprint(text: str) -> int:
    """64 bits of BLAKE2b over the normalised text: a Python int, so a million of them cost ~100 MB less
    than hex strings; the chance of a false collision among 10^7 records is ~10^-5."""
    return int.from_bytes(hashlib.blake2b(normalise(text).encode(), digest_size=8).digest(), "big")


def shingles(text: str, n: int) -> set[str]:
    words = WORD.findall(text.lower())
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}
