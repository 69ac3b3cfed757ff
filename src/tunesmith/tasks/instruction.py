"""Instruction tuning (chats, instruction pairs) and domain adaptation (`causal_lm`, plain text):
next-token loss on trained tokens; their metric is the eval loss / perplexity the loop measures."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from torch import nn

from tunesmith.data.prepare import PreparedData, prepare_data
from tunesmith.data.templates import ChatRenderer
from tunesmith.models.load import ModelSource, load_causal_lm
from tunesmith.objectives.logprobs import TrainedTokenLM
from tunesmith.sections import TaskSection
from tunesmith.tasks.base import TaskDefaults

if TYPE_CHECKING:
    from tunesmith.config import RunConfig


def needs_renderer(renderer: ChatRenderer | None) -> ChatRenderer:
    """Chat-based tasks always get a renderer (only a classification head runs without one)."""
    assert renderer is not None, "chat tasks are given a chat renderer"
    return renderer


class InstructionConfig(TaskSection):
    """Chats and instruction pairs: nothing to set beyond `data:`."""

    name: Literal["instruction"] = "instruction"


class CausalLmConfig(TaskSection):
    """Plain text (domain adaptation): nothing to set beyond `data:`."""

    name: Literal["causal_lm"] = "causal_lm"
    record_format: ClassVar[str | None] = "text"


class InstructionTask(TaskDefaults):
    name = "instruction"
    config: type[TaskSection] = InstructionConfig
    probes_memorization = True

    def prepare(
        self, cfg: RunConfig, tokenizer: Any, renderer: ChatRenderer | None, labels: list[str] | None = None
    ) -> PreparedData:
        return prepare_data(cfg, tokenizer, needs_renderer(renderer))

    def load_model(
        self, source: ModelSource, cfg: RunConfig, labels: list[str], tokenizer: Any = None, **extra: Any
    ) -> nn.Module:
        return load_causal_lm(source, cfg.model, **extra)  # type: ignore[no-any-return]

    def objective(self, model: nn.Module, cfg: RunConfig, data: PreparedData) -> nn.Module:
        return TrainedTokenLM(model, cfg.train.label_smoothing)

    def metrics(
        self,
        model: nn.Module,
        tokenizer: Any,
        renderer: ChatRenderer | None,
        cfg: RunConfig,
        data: PreparedData,
    ) -> dict[str, Any]:
        return {}


class CausalLmTask(InstructionTask):
    name = "causal_lm"
    config: type[TaskSection] = CausalLmConfig
