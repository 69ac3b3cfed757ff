"""Personal data: emails, phone numbers, credit-card numbers (Luhn-checked), IBANs (mod-97 checked),
IP addresses and national-id-like numbers (US SSN shape). `mask` replaces each with a typed placeholder.

Regular expressions written here: the maintained PII libraries (Presidio) pull in spaCy models that
cannot be downloaded at run time; these patterns cover the listed kinds with checksums where they exist.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from tunesmith.data.quality.items import Item
from tunesmith.data.quality.report import Report


def luhn(digits: str) -> bool:
    numbers = [int(d) for d in digits][::-1]
    total = sum(numbers[0::2]) + sum(sum(divmod(2 * d, 10)) for d in numbers[1::2])
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def ip_ok(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# kind → (pattern, validator); order matters: cards before phones (both are digit runs)
PATTERNS: dict[str, tuple[re.Pattern[str], Callable[[str], bool]]] = {
    "email": (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), lambda s: True),
    "iban": (re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), iban_ok),
    "credit_card": (re.compile(r"\b(?:\d[ -]?){13,19}\b"), lambda s: luhn(re.sub(r"\D", "", s))),
    "ssn": (re.compile(r"\b\d{3}-\d{2}-\d{4}\b"), lambda s: True),
    "ip_address": (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"), ip_ok),
    "phone": (re.compile(r"(?<![\w-])\+?\d[\d ()-]{7,}\d\b"), lambda s: 9 <= len(re.sub(r"\D", "", s)) <= 15),
}


def find_pii(text: str) -> list[tuple[str, int, int]]:
    """(kind, start, end) of every hit, overlapping hits resolved in PATTERNS order."""
    taken: list[tuple[int, int]] = []
    hits = []
    for kind, (pattern, valid) in PATTERNS.items():
        for match in pattern.finditer(text):
            span = match.span()
            if any(s < span[1] and span[0] < e for s, e in taken) or not valid(match.group()):
                continue
            taken.append(span)
            hits.append((kind, *span))
    return sorted(hits, key=lambda h: h[1])


def mask(text: str) -> str:
    for kind, start, end in sorted(find_pii(text), key=lambda h: -h[1]):
        text = text[:start] + f"[{kind.upper()}]" + text[end:]
    return text


class PiiCheck:
    def __init__(self) -> None:
        self.found: list[dict[str, Any]] = []  # only the hits are kept

    def add(self, item: Item) -> None:
        for name, text in item.texts.items():
            self.found += [
                {"record": item.index, "field": name, "kind": kind} for kind, _, _ in find_pii(text)
            ]

    def finish(self, report: Report) -> None:
        found = self.found
        report.sections["pii"] = found
        if found:
            kinds = Counter(str(hit["kind"]) for hit in found)
            report.charts["personal data"] = {k: float(v) for k, v in kinds.items()}
            summary = ", ".join(f"{v} {k}" for k, v in kinds.items())
            report.add(
                "pii",
                "warning",
                f"personal data in {len({h['record'] for h in found})} records ({summary}); --fix masks it",
                [h["record"] for h in found],
            )
