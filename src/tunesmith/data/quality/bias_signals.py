"""Toxicity and bias signals before training: a lexicon-based flag rate, and how often terms for
demographic groups co-occur with negative words, per group, so a skew is visible before it is learned.

A small lexicon (below) rather than a classifier: it runs offline in microseconds per record and
makes the counts explainable; it is a screen, not a verdict.
"""

from __future__ import annotations

from tunesmith.data.quality.items import Item
from tunesmith.data.quality.report import Report
from tunesmith.data.quality.text import WORD

TOXIC = {
    "idiot",
    "stupid",
    "moron",
    "hate",
    "kill",
    "dumb",
    "trash",
    "disgusting",
    "shut",
    "loser",
    "worthless",
}
NEGATIVE = TOXIC | {
    "bad",
    "lazy",
    "dangerous",
    "criminal",
    "violent",
    "dirty",
    "weak",
    "incompetent",
    "angry",
    "poor",
    "terrible",
    "awful",
    "liar",
    "fraud",
}
GROUPS = {
    "gender: women": {"woman", "women", "female", "she", "her", "girl", "girls", "lady", "ladies"},
    "gender: men": {"man", "men", "male", "he", "him", "boy", "boys", "gentleman"},
    "religion": {
        "muslim",
        "muslims",
        "christian",
        "christians",
        "jewish",
        "jews",
        "hindu",
        "hindus",
        "buddhist",
    },
    "ethnicity": {"black", "white", "asian", "hispanic", "latino", "latina", "arab", "african", "european"},
    "age: young": {"young", "teen", "teenager", "teenagers", "youth", "kids"},
    "age: old": {"old", "elderly", "senior", "seniors", "pensioner", "pensioners", "aged"},
}


class BiasSignalCheck:
    def __init__(self) -> None:
        self.records = 0
        self.toxic: list[int] = []
        self.mentions = dict.fromkeys(GROUPS, 0)
        self.negative = dict.fromkeys(GROUPS, 0)

    def add(self, item: Item) -> None:
        self.records += 1
        words = set(WORD.findall(item.joined().lower()))
        if words & TOXIC:
            self.toxic.append(item.index)
        is_negative = bool(words & NEGATIVE)
        for group, terms in GROUPS.items():
            if words & terms:
                self.mentions[group] += 1
                self.negative[group] += is_negative

    def finish(self, report: Report) -> None:
        rates = {g: self.negative[g] / self.mentions[g] for g in GROUPS if self.mentions[g]}
        report.sections["toxicity_rate"] = len(self.toxic) / max(self.records, 1)
        report.sections["group_negative_rates"] = {
            g: {"mentions": self.mentions[g], "negative_rate": r} for g, r in rates.items()
        }
        if rates:
            report.charts["negative co-occurrence by group"] = rates
        if self.toxic:
            report.add(
                "bias",
                "warning",
                f"{len(self.toxic)} records contain words from the toxicity lexicon",
                self.toxic,
            )
        if len(rates) >= 2 and max(rates.values()) - min(rates.values()) > 0.2:
            worst = max(rates, key=lambda g: rates[g])
            report.add(
                "bias",
                "warning",
                f"negative words co-occur with {worst} in {rates[worst]:.0%} of its mentions "
                f"(lowest group {min(rates.values()):.0%})",
            )
