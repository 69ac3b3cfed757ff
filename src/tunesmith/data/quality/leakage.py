"""Train/eval leakage: eval records that are exact or near duplicates of training records, and n-gram
contamination (an eval record sharing a 13-gram with training data).

The eval side (the small one) is indexed in memory; training records stream past it, so the check
costs memory in the size of the eval set only. Training records arrive in file order, so the first
match of each kind is the lowest training record index."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np

from tunesmith.data.quality.items import Item
from tunesmith.data.quality.minhash import band_keys, similarity
from tunesmith.data.quality.report import Report
from tunesmith.data.quality.text import shingles

KINDS = ("exact", "near", "n-gram")  # precedence when an eval record leaks several ways


class LeakageCheck:
    def __init__(
        self,
        held: list[Item],
        eval_path: Path,
        threshold: float = 0.8,
        shingle_chars: int = 5,
        ngram: int = 13,
    ) -> None:
        self.held = [i for i in held if i.texts]
        self.total_held, self.eval_path = len(held), eval_path
        self.threshold, self.shingle_chars, self.ngram = threshold, shingle_chars, ngram
        self.by_fingerprint: dict[int, list[int]] = defaultdict(list)
        self.by_gram: dict[str, list[int]] = defaultdict(list)
        for item in self.held:
            self.by_fingerprint[item.fingerprint()].append(item.index)
            for gram in full_grams(item.joined(), ngram):
                self.by_gram[gram].append(item.index)
        self.held_signatures = (
            np.stack([i.signature(shingle_chars) for i in self.held]) if self.held else None
        )
        self.by_band: list[dict[int, list[int]]] = []  # band → key → rows of held_signatures
        if self.held_signatures is not None:
            keys = band_keys(self.held_signatures, threshold)
            self.by_band = [defaultdict(list) for _ in range(keys.shape[1])]
            for row, row_keys in enumerate(keys.tolist()):
                for band, key in enumerate(row_keys):
                    self.by_band[band][key].append(row)
        self.found: dict[str, dict[int, int]] = {kind: {} for kind in KINDS}  # kind → eval → train
        self.train_order = hashlib.blake2b(digest_size=16)  # of the train fingerprints, in order
        self.train_count = 0

    def add(self, item: Item) -> None:
        self.train_count += 1
        if not item.texts:
            return
        self.train_order.update(item.fingerprint().to_bytes(8, "big"))
        for held in self.by_fingerprint.get(item.fingerprint(), []):
            self.found["exact"].setdefault(held, item.index)
        if self.held_signatures is not None:
            for held in self.near(item.signature(self.shingle_chars)):
                self.found["near"].setdefault(held, item.index)
        if self.by_gram:
            for gram in full_grams(item.joined(), self.ngram):
                for held in self.by_gram.get(gram, []):
                    self.found["n-gram"].setdefault(held, item.index)

    def near(self, values: np.ndarray) -> list[int]:
        assert self.held_signatures is not None
        keys = band_keys(values[None, :], self.threshold)[0].tolist()
        rows = {row for band, key in enumerate(keys) for row in self.by_band[band].get(key, [])}
        if not rows:
            return []
        candidates = sorted(rows)
        close = similarity(self.held_signatures[candidates], values) >= self.threshold
        return [self.held[row].index for row, ok in zip(candidates, close, strict=True) if ok]

    def finish(self, report: Report) -> None:
        if self.identical():
            message = f"the eval file {self.eval_path} holds exactly the training records; held-out data must differ"
            report.add("leakage", "error", message)
        leaks = []
        for item in self.held:
            kind = next((k for k in KINDS if item.index in self.found[k]), None)
            if kind is not None:
                label = f"{self.ngram}-gram" if kind == "n-gram" else kind
                leaks.append(
                    {"eval_record": item.index, "train_record": self.found[kind][item.index], "kind": label}
                )
        report.sections["leakage"] = leaks
        if leaks:
            share = len(leaks) / max(self.total_held, 1)
            # only verbatim copies make the eval meaningless; near / n-gram overlap is often shared boilerplate
            exact_share = len(self.found["exact"]) / max(self.total_held, 1)
            report.add(
                "leakage",
                "error" if exact_share > 0.5 else "warning",
                f"{len(leaks)} of {self.total_held} eval records overlap training data ({share:.0%})",
                [leak["eval_record"] for leak in leaks],
            )

    def identical(self) -> bool:
        held_order = hashlib.blake2b(digest_size=16)
        for item in self.held:
            held_order.update(item.fingerprint().to_bytes(8, "big"))
        return self.train_count == self.total_held and held_order.digest() == self.train_order.digest()


def full_grams(text: str, n: int) -> set[str]:
    """The word n-grams of a text; a text shorter than n words has none (its whole text is no n-gram)."""
    return {gram for gram in shingles(text, n) if gram.count(" ") == n - 1}
