"""`summary.json`: the run's headline record, typed. Every finished run's summary is validated against
`RunSummary` before it is written, so its fields (documented here and in docs/config.md) have the types
readers (the registry, the report, the model card, `tunesmith runs`, other tools) rely on.

Besides the fields below, a summary holds each scalar task metric flat, as `eval_<metric>_before` /
`eval_<metric>_after` (e.g. `eval_accuracy_after`), and the metrics a task declares in
`Task.summary_metrics` also as `<metric>_before` / `<metric>_after` (RL: `mean_reward`, `kl`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RunSummary(BaseModel):
    model_config = ConfigDict(extra="allow")  # the flat task metrics (see the module docstring)

    status: str = Field(description="finished, or failed-gate when a quality gate failed")
    run_dir: str = Field(description="the run folder")
    final_dir: str = Field(description="the trained result (adapter or model, with tokenizer)")
    method: str = Field(description="method.name")
    model: str = Field(description="model.path")
    eval_loss_before: float | None = Field(description="eval loss of the untrained model (None without one)")
    eval_loss_after: float | None = Field(description="eval loss of final/ (the best step's with early stopping)")
    trainable_params: int = Field(description="parameters the method trains")
    total_params: int = Field(description="parameters of the model with the method applied")
    real_tokens: int | None = Field(None, description="non-padding tokens trained on (prompt tokens included)")
    real_tokens_per_s: float = Field(description="non-padding tokens per second of training")
    padded_tokens_per_s: float = Field(description="tokens per second, padding included")
    padding_fraction: float = Field(description="share of padding in the training batches")
    peak_memory_mb: float = Field(description="peak resident memory (CPU) or allocated memory (CUDA)")
    steps: int = Field(description="optimizer steps done")
    train_s: float = Field(description="seconds spent in training steps")
    data: dict[str, Any] = Field(description="token statistics of the training samples")
    samples: list[dict[str, Any]] = Field(description="sample answers before / after training, with the reference")
    trainable_state_mb: float = Field(description="memory of the trainable weights, gradients and AdamW moments")
    best_step: int | None = Field(None, description="early stopping: the step whose weights are in final/")
    best_eval_loss: float | None = Field(None, description="early stopping: its eval loss")
    stopped_early: bool = Field(False, description="training stopped before the planned steps")
    stop_reason: str | None = Field(None, description="why training stopped")
    overfitting: dict[str, Any] | None = Field(None, description="the overfitting watch's verdict and history")
    eval_before: dict[str, Any] | None = Field(None, description="task metrics of the untrained model")
    eval_after: dict[str, Any] | None = Field(None, description="task metrics of final/")
    memorization: dict[str, Any] | None = Field(None, description="the memorization probe (training vs held-out)")
    forgetting: dict[str, Any] | None = Field(None, description="general-text perplexity before / after")
    gates: list[dict[str, Any]] = Field(default_factory=list, description="each quality gate and whether it passed")
    wall_s: float = Field(description="seconds from start to summary, loading and evaluation included")
    registry_id: int | None = Field(description="the run's row in the run registry (None when it is unusable)")
    data_check: list[str] = Field(default_factory=list, description="the fast data checks' findings")
    estimate: dict[str, Any] | None = Field(
        None, description="what `tunesmith estimate` predicted before training: peak_memory_mb, train_s, breakdown"
    )


def typed_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary checked against `RunSummary`, as the JSON-able dict that is written."""
    record: dict[str, Any] = RunSummary.model_validate(summary).model_dump(mode="json")
    return record
