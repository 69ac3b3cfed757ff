"""Packing and collation.

Packed rows hold several samples back to back; position ids restart at 0 for every sample and no
attention mask is passed, so transformers builds a block-diagonal causal mask from the position ids
(`masking_utils.find_packed_sequence_indices`) — attention never crosses a sample boundary, and the
varlen kernel is used where flash-attention is installed. The first token of every sample is never a
target (it would be predicted from the previous sample), so a packed batch has exactly the per-token
loss of the same samples unpacked.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

import torch

from tunesmith.data.records import IGNORE, TokenizedSample


def pack_bins(lengths: list[int], max_length: int) -> list[list[int]]:
    """Best-fit decreasing: sample indices grouped into bins of at most max_length tokens."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # sorted (remaining capacity, bin id)
    for index in order:
        size = lengths[index]
        slot = bisect.bisect_left(free, (size, -1))
        if slot < len(free):
            remaining, bin_id = free.pop(slot)
            bins[bin_id].append(index)
        else:
            remaining, bin_id = max_length, len(bins)
            bins.append([index])
        if remaining - size > 1:  # a 1-token gap can hold nothing trainable
            bisect.insort(free, (remaining - size, bin_id))
    return bins


def build_rows(samples: list[TokenizedSample], max_length: int, packing: bool) -> list[list[TokenizedSample]]:
    """Training rows: packed bins, or one sample per row."""
    if not packing:
        return [[s] for s in samples]
    bins = pack_bins([len(s) for s in samples], max_length)
    return [[samples[i] for i in sorted(b)] for b in bins]


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T)
    labels: torch.Tensor  # (B, T), IGNORE where not trained
    position_ids: torch.Tensor | None  # (B, T), packed rows only
    attention_mask: torch.Tensor | None  # (B, T), padded rows only
    num_trained: int  # targets in the batch (labels[:, 1:] != IGNORE, or one per row for classification)
    num_real: int  # non-padding tokens
    num_total: int  # B × T, padding included
    class_labels: torch.Tensor | None = None  # (B,), classification with a sequence head
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # per-row tensors by name, (B,) or (B, T)
    stats: dict[str, float] = field(
        default_factory=dict
    )  # what making the batch measured (rollout rewards, ...)

    def model_inputs(self) -> dict[str, torch.Tensor]:
        inputs = {"input_ids": self.input_ids, "labels": self.labels}
        if self.position_ids is not None:
            inputs["position_ids"] = self.position_ids
        if self.attention_mask is not None:
            inputs["attention_mask"] = self.attention_mask
        if self.class_labels is not None:
            inputs["class_labels"] = self.class_labels
        return {**inputs, **self.extras}


def collate(rows: list[list[TokenizedSample]], pad_id: int, packed: bool) -> Batch:
    """Rows → one right-padded batch; packed rows get restarting position ids, others a padding mask."""
    width = max(sum(len(s) for s in row) for row in rows)
    ids, labels, positions, mask = [], [], [], []
    num_real = 0
    for row in rows:
        row_ids: list[int] = []
        row_labels: list[int] = []
        row_pos: list[int] = []
        for sample in row:
            row_ids += sample.input_ids
            row_labels += [IGNORE, *sample.labels[1:]]
            row_pos += list(range(len(sample)))
        real = len(row_ids)
        num_real += real
        pad = width - real
        ids.append(row_ids + [pad_id] * pad)
        labels.append(row_labels + [IGNORE] * pad)
        positions.append(row_pos + list(range(pad)))  # padding is a segment of its own
        mask.append([1] * real + [0] * pad)
    label_tensor = torch.tensor(labels)
    extras = row_values(rows)
    classes = [s.class_id for row in rows for s in row]
    if classes[0] is not None:  # one text per row, one target per row
        return Batch(
            input_ids=torch.tensor(ids),
            labels=label_tensor,
            position_ids=None,
            attention_mask=torch.tensor(mask),
            num_trained=len(rows),
            num_real=num_real,
            num_total=len(rows) * width,
            class_labels=torch.tensor(classes),
            extras=extras,
        )
    return Batch(
        input_ids=torch.tensor(ids),
        labels=label_tensor,
        position_ids=torch.tensor(positions) if packed else None,
        attention_mask=None if packed else torch.tensor(mask),
        num_trained=int((label_tensor[:, 1:] != IGNORE).sum()),
        num_real=num_real,
        num_total=len(rows) * width,
        extras=extras,
    )


def row_values(rows: list[list[TokenizedSample]]) -> dict[str, torch.Tensor]:
    """Per-sample scalars present on every sample of one-sample rows → (B,) tensors by name."""
    if any(len(row) != 1 for row in rows):
        return {}
    keys = set.intersection(*(set(row[0].values) for row in rows)) if rows else set()
    return {k: torch.tensor([row[0].values[k] for row in rows], dtype=torch.float32) for k in sorted(keys)}


def collate_pairs(rows: list[list[TokenizedSample]], pad_id: int) -> Batch:
    """(chosen, rejected) rows → one padded batch of 2B sequences: all chosen first, then all rejected;
    `num_trained` counts pairs, the unit the preference losses are summed over."""
    singles = [[row[0]] for row in rows] + [[row[1]] for row in rows]
    batch = collate(singles, pad_id, packed=False)
    batch.num_trained = len(rows)
    return batch
