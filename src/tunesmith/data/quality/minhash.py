"""MinHash signatures (`datasketch`) and banded locality-sensitive hashing over a signature *matrix*.

The signatures come from datasketch. The banding is done here, by sorting band keys with numpy, instead
of with datasketch's `MinHashLSH`: that index keeps a Python dict entry per record and band (~7 KB per
record with the verification signatures), while a (records × bands) uint64 key matrix plus the uint32
signatures costs ~0.6 KB per record, so a check of a million records fits in a laptop's memory. The band
count and width are datasketch's own optimum for the threshold and weights (`MinHashLSH(...).b/.r`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

import numpy as np

NUM_PERM = 128
# tuned for recall: a missed duplicate costs more than a candidate pair, which is then verified
LSH_WEIGHTS = (0.2, 0.8)
LARGEST_FULL_BUCKET = 256  # bigger buckets are verified against their first member only (see candidates)


@cache
def _permutations() -> tuple[Any, Any]:
    from datasketch import MinHash

    template = MinHash(num_perm=NUM_PERM)  # generating permutations is most of a MinHash's cost: share them
    return template.permutations, template.scheme


def signature(shingles: Iterable[str]) -> np.ndarray:
    """(NUM_PERM,) uint32 MinHash values of the shingles."""
    from datasketch import MinHash

    permutations, scheme = _permutations()
    sketch = MinHash(num_perm=NUM_PERM, permutations=permutations, scheme=scheme)
    sketch.update_batch([s.encode() for s in shingles])  # vectorised over the shingles
    return sketch.hashvalues.astype(np.uint32)


@cache
def bands(threshold: float) -> tuple[int, int]:
    """(bands, rows per band) minimising datasketch's weighted false-positive/negative probability."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM, weights=LSH_WEIGHTS)
    return lsh.b, lsh.r


_MIX = np.random.default_rng(0).integers(1, 2**63, size=NUM_PERM, dtype=np.uint64) | np.uint64(1)


def band_keys(signatures: np.ndarray, threshold: float) -> np.ndarray:
    """(N, bands) uint64: one hash per band of each signature (N, NUM_PERM); equal rows share a key.
    Distinct bands may collide (a 64-bit mix), which verification of candidates then drops."""
    b, r = bands(threshold)
    wide = signatures[:, : b * r].astype(np.uint64) * _MIX[: b * r]  # wraps modulo 2^64 on purpose
    return wide.reshape(len(signatures), b, r).sum(axis=2, dtype=np.uint64)


def similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard: the share of equal MinHash values, broadcast over leading axes."""
    return (a == b).mean(axis=-1)  # type: ignore[no-any-return]


class SignatureStore:
    """Signatures appended in fixed blocks: no per-record Python object, and no whole-matrix copy later
    (bands are read a few columns at a time, candidates gathered by row)."""

    def __init__(self, block: int = 8192) -> None:
        self.block = block
        self.blocks: list[np.ndarray] = []
        self.filled = block

    def add(self, values: np.ndarray) -> None:
        if self.filled == self.block:
            self.blocks.append(np.empty((self.block, NUM_PERM), dtype=np.uint32))
            self.filled = 0
        self.blocks[-1][self.filled] = values
        self.filled += 1

    def __len__(self) -> int:
        return (len(self.blocks) - 1) * self.block + self.filled if self.blocks else 0

    def columns(self, start: int, stop: int) -> np.ndarray:
        parts = [b[:, start:stop] for b in self.blocks]
        if parts:
            parts[-1] = parts[-1][: self.filled]
        return np.concatenate(parts) if parts else np.empty((0, stop - start), dtype=np.uint32)

    def take(self, rows: np.ndarray) -> np.ndarray:
        return np.stack([self.blocks[r // self.block][r % self.block] for r in rows.tolist()])

    @classmethod
    def of(cls, matrix: np.ndarray) -> SignatureStore:
        store = cls()
        for values in matrix:
            store.add(values)
        return store


def similar_pairs(store: SignatureStore, threshold: float) -> Iterator[tuple[int, int]]:
    """Row pairs (i < j) whose signatures share a band and whose estimated Jaccard is ≥ threshold."""
    b, r = bands(threshold)
    for band in range(b):
        # (N,) uint64 band key, built from r columns at a time to keep the transient small
        keys = (
            store.columns(band * r, (band + 1) * r).astype(np.uint64) * _MIX[band * r : (band + 1) * r]
        ).sum(axis=1, dtype=np.uint64)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, len(order)])
        for start, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
            yield from _verified(store, np.sort(order[start : start + size]), threshold)


def _verified(store: SignatureStore, rows: np.ndarray, threshold: float) -> Iterator[tuple[int, int]]:
    block = store.take(rows)
    if len(rows) <= LARGEST_FULL_BUCKET:
        close = similarity(block[:, None, :], block[None, :, :]) >= threshold
        for i, j in zip(*np.nonzero(np.triu(close, k=1)), strict=True):
            yield int(rows[i]), int(rows[j])
        return
    # a huge bucket (thousands of near-identical records): a star around its first member keeps the
    # cost linear; members similar to each other but not to the first may stay in separate groups
    close = similarity(block[1:], block[0]) >= threshold
    for j in rows[1:][close]:
        yield int(rows[0]), int(j)
