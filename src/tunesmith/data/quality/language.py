"""Language mix with `lingua` (offline): the share of each language and the records outside the
dominant (or configured) one."""

from __future__ import annotations

from collections import Counter

from tunesmith.data.quality.items import Item
from tunesmith.data.quality.report import Report


def detect_languages(texts: list[str]) -> list[str]:
    from lingua import LanguageDetectorBuilder

    detector = LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()
    found = detector.detect_languages_in_parallel_of(texts)
    return [lang.iso_code_639_1.name.lower() if lang is not None else "unknown" for lang in found]


def check_languages(items: list[Item], report: Report, expected: str | None = None) -> None:
    texts = [i.joined()[:500] for i in items]
    languages = detect_languages(texts)
    counts = Counter(languages)
    shares = {lang: count / len(languages) for lang, count in counts.most_common()}
    report.sections["languages"] = shares
    report.charts["languages"] = shares
    main = expected or counts.most_common(1)[0][0]
    other = [i.index for i, lang in zip(items, languages, strict=True) if lang not in (main, "unknown")]
    if other:
        report.add(
            "language",
            "warning",
            f"{len(other)} records ({len(other) / len(items):.0%}) are not in {main}",
            other,
        )
