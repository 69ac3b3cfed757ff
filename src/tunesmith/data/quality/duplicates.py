"""Exact duplicates (same text after normalisation) and near-duplicates: MinHash over word 5-gram
shingles with locality-sensitive hashing (`datasketch`), Jaccard ≥ threshold, grouped by union-find."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from tunesmith.data.quality.items import Item
from tunesmith.data.quality.report import Report
from tunesmith.data.quality.text import fingerprint, shingles

NUM_PERM = 128
# LSH tuned for recall (a missed duplicate costs more than a candidate pair, which is then verified)
LSH_WEIGHTS = (0.2, 0.8)
_PERMUTATIONS: Any = None


def minhash(text: str, n: int):  # type: ignore[no-untyped-def]
    from datasketch import MinHash

    global _PERMUTATIONS
    if _PERMUTATIONS is None:  # generating the permutations is most of a MinHash's cost: share them
        template = MinHash(num_perm=NUM_PERM)
        _PERMUTATIONS = (template.permutations, template.scheme)
    signature = MinHash(num_perm=NUM_PERM, permutations=_PERMUTATIONS[0], scheme=_PERMUTATIONS[1])
    signature.update_batch([s.encode() for s in shingles(text, n)])  # vectorised over the shingles
    return signature


def exact_groups(items: list[Item]) -> list[list[int]]:
    seen: dict[str, list[int]] = defaultdict(list)
    for item in items:
        if item.texts:
            seen[fingerprint(item.joined())].append(item.index)
    return [group for group in seen.values() if len(group) > 1]


def near_groups(items: list[Item], threshold: float, n: int, exclude: set[int]) -> list[list[int]]:
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM, weights=LSH_WEIGHTS)
    signatures: dict[int, Any] = {}
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for item in items:
        if not item.texts or item.index in exclude:
            continue
        signature = minhash(item.joined(), n)
        for other in lsh.query(signature):
            if (
                signature.jaccard(signatures[int(other)]) >= threshold
            ):  # estimated Jaccard: drop LSH false hits
                parent[find(item.index)] = find(int(other))
        lsh.insert(str(item.index), signature)
        signatures[item.index] = signature
    groups: dict[int, list[int]] = defaultdict(list)
    for member in parent:
        groups[find(member)].append(member)
    for root in list(groups):
        groups[root].append(root)
    return [sorted(set(g)) for g in groups.values() if len(set(g)) > 1]


def check_duplicates(items: list[Item], report: Report, threshold: float = 0.8, n: int = 5) -> None:
    exact = exact_groups(items)
    # the later copies of an exact group are not compared again as near-duplicates
    repeated = {i for group in exact for i in group[1:]}
    near = near_groups(items, threshold, n, repeated)
    report.sections["exact_duplicates"] = exact
    report.sections["near_duplicates"] = near
    if exact:
        report.add(
            "duplicates",
            "warning",
            f"{sum(len(g) - 1 for g in exact)} exact duplicates in {len(exact)} groups",
            repeated,
        )
    if near:
        report.add(
            "duplicates",
            "warning",
            f"{len(near)} groups of near-duplicates (Jaccard ≥ {threshold})",
            [i for g in near for i in g[1:]],
        )
