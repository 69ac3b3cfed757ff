"""Summarisation, extraction, rewriting: trained like instructions, judged by what the model writes.

After (and before) training, the model answers every eval prompt greedily (batched) and the answers
are scored against the references: ROUGE-1/2/L, exact match, JSON validity, and, for structured answers
(`task.score_fields`), the share whose named fields are right (`task_score`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from torch import nn

from tunesmith.data.prepare import PreparedData, prepare_data
from tunesmith.data.records import Conversation
from tunesmith.data.templates import ChatRenderer
from tunesmith.errors import UserError
from tunesmith.evaluate.metrics import field_scores, generation_metrics
from tunesmith.evaluate.samples import generate_batch
from tunesmith.sections import TaskSection
from tunesmith.tasks.instruction import InstructionTask, needs_renderer

if TYPE_CHECKING:
    from tunesmith.config import RunConfig


class GenerationConfig(TaskSection):
    """Input → output generation (summaries, rewrites, structured answers)."""

    name: Literal["generation"] = "generation"
    score_fields: list[str] = Field(
        default_factory=list,
        description="fields of a structured answer ('Flag: ...', 'Next step: ...') that must equal the "
        "reference's; task_score is the share of eval answers with all of them right",
    )


class GenerationTask(InstructionTask):
    name = "generation"
    config: type[TaskSection] = GenerationConfig

    def prepare(
        self, cfg: RunConfig, tokenizer: Any, renderer: ChatRenderer | None, labels: list[str] | None = None
    ) -> PreparedData:
        data = prepare_data(cfg, tokenizer, needs_renderer(renderer))
        check_targets(data.train_records + data.eval_records)
        return data

    def metrics(
        self,
        model: nn.Module,
        tokenizer: Any,
        renderer: ChatRenderer | None,
        cfg: RunConfig,
        data: PreparedData,
    ) -> dict[str, Any]:
        records = data.eval_records[: cfg.eval.generation_limit]
        predictions = predict(model, needs_renderer(renderer), cfg, records)
        references = [r.last_answer() for r in records]
        scores = generation_metrics(predictions, references)
        if cfg.task.score_fields:
            scores.update(field_scores(predictions, references, cfg.task.score_fields))
        scores["predictions"] = predictions
        return scores


def predict(
    model: nn.Module, renderer: ChatRenderer, cfg: RunConfig, records: list[Conversation]
) -> list[str]:
    prompts = [r.prompt_messages() for r in records]
    size = cfg.eval.batch_size or cfg.train.batch_size
    return generate_batch(model, renderer, prompts, cfg.eval.max_new_tokens, cfg.eval.stop, size)


def check_targets(records: list[Conversation]) -> None:
    """A reference answer must exist to train on and to score against."""
    for record in records:
        if not record.last_answer().strip():
            raise UserError(f"{record.source}: the target (the answer to generate) is empty")
