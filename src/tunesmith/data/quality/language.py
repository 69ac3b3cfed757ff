"""Language mix with `lingua` (offline): the share of each language and the records outside the
dominant (or configured) one. Texts are detected in batches as they stream past; per record only a
2-byte language code is kept, because the dominant language is known only at the end."""

from __future__ import annotations

from array import array
from collections import Counter
from typing import Any

from tunesmith.data.quality.items import Item
from tunesmith.data.quality.report import Report

BATCH = 4096


def build_detector() -> Any:
    from lingua import LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()


def detect_languages(texts: list[str], detector: Any = None) -> list[str]:
    found = (detector or build_detector()).detect_languages_in_parallel_of(texts)
    return [lang.iso_code_639_1.name.lower() if lang is not None else "unknown" for lang in found]


class LanguageCheck:
    def __init__(self, expected: str | None = None) -> None:
        self.expected = expected
        self.detector: Any = None
        self.names: list[str] = []  # code → language
        self.codes = array("H")  # one per record, in order
        self.indices = array("q")
        self.pending: list[tuple[int, str]] = []

    def add(self, item: Item) -> None:
        self.pending.append((item.index, item.joined()[:500]))
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        self.detector = self.detector or build_detector()
        for (index, _), language in zip(
            self.pending, detect_languages([t for _, t in self.pending], self.detector), strict=True
        ):
            if language not in self.names:
                self.names.append(language)
            self.codes.append(self.names.index(language))
            self.indices.append(index)
        self.pending = []

    def finish(self, report: Report) -> None:
        self.flush()
        counts = Counter(self.names[code] for code in self.codes)
        total = max(len(self.codes), 1)
        shares = {lang: count / total for lang, count in counts.most_common()}
        report.sections["languages"] = shares
        report.charts["languages"] = shares
        if not counts:
            return
        main = self.expected or counts.most_common(1)[0][0]
        keep = {code for code, name in enumerate(self.names) if name in (main, "unknown")}
        other = [index for index, code in zip(self.indices, self.codes, strict=True) if code not in keep]
        if other:
            report.add(
                "language",
                "warning",
                f"{len(other)} records ({len(other) / total:.0%}) are not in {main}",
                other,
            )
