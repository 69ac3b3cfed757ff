"""Which rows go into which optimizer step: a pure function of (seed, epoch, step).

Rows are grouped per optimizer step first (batch_size × grad_accum × processes rows), then split
into micro-batches, so `batch_size: 4` and `batch_size: 2, grad_accum: 2` see the same rows in the
same step, and a resumed run sees exactly the rows the uninterrupted run would have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from tunesmith.data.records import TokenizedSample
from tunesmith.errors import UserError

MEGABATCH_STEPS = 50  # length grouping sorts within windows of this many steps, keeping randomness


@dataclass
class BatchPlan:
    rows: list[list[TokenizedSample]]
    batch_size: int
    grad_accum: int
    seed: int
    group_by_length: bool
    num_processes: int = 1
    _cached_epoch: tuple[int, list[list[int]]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @property
    def rows_per_step(self) -> int:
        return self.batch_size * self.grad_accum * self.num_processes

    @cached_property
    def steps_per_epoch(self) -> int:
        return len(self._plan_epoch(0))  # the same count in every epoch

    @property
    def dropped_per_epoch(self) -> int:
        """Rows of each epoch left out: a short last step, which several processes cannot share evenly (as
        torch's DistributedSampler with drop_last)."""
        return max(0, len(self.rows) - self.steps_per_epoch * self.rows_per_step)

    def epoch_steps(self, epoch: int) -> list[list[int]]:
        """Row indices of every step of one epoch (kept for the current epoch: asked once per step)."""
        if self._cached_epoch is None or self._cached_epoch[0] != epoch:
            self._cached_epoch = (epoch, self._plan_epoch(epoch))
        return self._cached_epoch[1]

    def _plan_epoch(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.rows)).tolist()
        per_step = self.rows_per_step
        if self.group_by_length:
            window = per_step * MEGABATCH_STEPS
            lengths = [sum(len(s) for s in row) for row in self.rows]
            order = [
                i
                for start in range(0, len(order), window)
                for i in sorted(order[start : start + window], key=lambda i: -lengths[i])
            ]
        steps = [order[i : i + per_step] for i in range(0, len(order), per_step)]
        if self.num_processes > 1 and len(steps) > 1 and len(steps[-1]) < per_step:
            steps.pop()  # every process must run the same number of micro-batches, or DDP waits forever
        if self.num_processes > 1 and steps and -(-len(steps[0]) // self.batch_size) < self.num_processes:
            raise UserError(
                f"the training data gives {len(self.rows)} rows: fewer micro-batches of {self.batch_size} than the "
                f"{self.num_processes} processes; lower --nproc or train.batch_size, or add data"
            )
        if self.group_by_length:
            steps = [steps[i] for i in rng.permutation(len(steps)).tolist()]
        return steps

    def micro_batches(
        self, step_rows: list[int], process_index: int = 0
    ) -> list[list[list[TokenizedSample]]]:
        """This process's micro-batches of one step (each a list of rows)."""
        chunks = [step_rows[i : i + self.batch_size] for i in range(0, len(step_rows), self.batch_size)]
        mine = chunks[process_index :: self.num_processes]
        return [[self.rows[i] for i in chunk] for chunk in mine]

    def step_at(self, global_step: int) -> list[int]:
        epoch, index = divmod(global_step, self.steps_per_epoch)
        return self.epoch_steps(epoch)[index]
