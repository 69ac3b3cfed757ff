"""Exact duplicates (same text after normalisation) and near-duplicates: MinHash over character 5-gram
shingles of the normalised text (word shingles miss one edited word in short records: see text.py),
banded LSH, candidates verified by estimated Jaccard ≥ threshold, grouped by union-find.

Streaming: per record it keeps a 64-bit fingerprint and a uint32 signature (~0.6 KB), never the text."""

from __future__ import annotations

from collections import defaultdict

from tunesmith.data.quality.items import Item
from tunesmith.data.quality.minhash import SignatureStore, similar_pairs
from tunesmith.data.quality.report import Report


class DuplicateCheck:
    def __init__(self, threshold: float = 0.8, shingle_chars: int = 5) -> None:
        self.threshold, self.shingle_chars = threshold, shingle_chars
        self.first: dict[int, int] = {}  # fingerprint → first record with it
        self.exact: dict[int, list[int]] = {}  # fingerprint → every record with it, once repeated
        self.signatures = SignatureStore()
        self.indices: list[int] = []  # record index of each signature row

    def add(self, item: Item) -> None:
        if not item.texts:
            return
        key = item.fingerprint()
        first = self.first.setdefault(key, item.index)
        if first != item.index:
            # the later copies of an exact group are not compared again as near-duplicates
            self.exact.setdefault(key, [first]).append(item.index)
            return
        self.signatures.add(item.signature(self.shingle_chars))
        self.indices.append(item.index)

    def finish(self, report: Report) -> None:
        exact = list(self.exact.values())
        near = self.near_groups()
        report.sections["exact_duplicates"] = exact
        report.sections["near_duplicates"] = near
        if exact:
            report.add(
                "duplicates",
                "warning",
                f"{sum(len(g) - 1 for g in exact)} exact duplicates in {len(exact)} groups",
                [i for g in exact for i in g[1:]],
            )
        if near:
            report.add(
                "duplicates",
                "warning",
                f"{len(near)} groups of near-duplicates (Jaccard ≥ {self.threshold})",
                [i for g in near for i in g[1:]],
            )

    def near_groups(self) -> list[list[int]]:
        if not self.indices:
            return []
        parent: dict[int, int] = {}

        def find(x: int) -> int:
            while parent.get(x, x) != x:
                parent[x] = x = parent.get(parent[x], parent[x])  # path halving
            return x

        for a, b in similar_pairs(self.signatures, self.threshold):
            root_a, root_b = find(a), find(b)
            if root_a != root_b:
                parent[max(root_a, root_b)] = min(root_a, root_b)
        groups: dict[int, list[int]] = defaultdict(list)
        for row in {*parent, *parent.values()}:
            groups[find(row)].append(self.indices[row])
        return sorted(sorted(g) for g in groups.values() if len(g) > 1)
