"""WHAT the model learns: each task supplies its data preparation, model head, objective and metric,
chosen by `task.name`."""

from __future__ import annotations

from tunesmith.registry import Registry
from tunesmith.tasks.base import Task
from tunesmith.tasks.classification import ClassificationTask
from tunesmith.tasks.generation import GenerationTask
from tunesmith.tasks.instruction import CausalLmTask, InstructionTask
from tunesmith.tasks.preference import DpoTask
from tunesmith.tasks.reward import RewardTask
from tunesmith.tasks.rl import GrpoTask, PpoTask

TASKS: Registry[Task] = Registry("task", "task.name", plugin_group="tunesmith.tasks", default="instruction")
for _task in (
    InstructionTask(),
    CausalLmTask(),
    ClassificationTask(),
    GenerationTask(),
    DpoTask(),
    RewardTask(),
    GrpoTask(),
    PpoTask(),
):
    TASKS.register(_task.name)(_task)

__all__ = ["TASKS", "Task"]
