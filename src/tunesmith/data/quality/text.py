"""Text normalisation and shingling shared by the duplicate and leakage checks."""

from __future__ import annotations

import hashlib
import re

WORD = re.compile(r"\w+", re.UNICODE)


def normalise(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def fingerprint(text: str) -> str:
    return hashlib.blake2b(normalise(text).encode(), digest_size=16).hexdigest()


def shingles(text: str, n: int) -> set[str]:
    words = WORD.findall(text.lower())
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}
