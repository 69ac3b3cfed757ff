"""Direct preference optimisation and its family (`task: {name: dpo, loss: ...}`).

Pairs (prompt, chosen, rejected) are tokenized through the chat template, each answer trained as an
assistant turn (end-of-turn included) and batched as (chosen, rejected) rows that stay together.
`loss: kto` reads unpaired thumbs-up / thumbs-down records instead.

Reference log-probabilities are computed once, before the first step, from the model with the
method switched off (adapters disabled: the base model; full / freeze: the untouched start), and
cached in the run folder (`reference_logps.json`), so no second model is ever held in memory and a
resumed run reuses them. SimPO and ORPO need no reference.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from tunesmith.data.packing import Batch, collate, collate_pairs
from tunesmith.data.prepare import PreparedData, load_records, token_stats, train_and_held
from tunesmith.data.records import PreferencePair, TokenizedSample, UnpairedFeedback
from tunesmith.data.templates import ChatRenderer, TokenizeReport, tokenize_records
from tunesmith.errors import UserError
from tunesmith.methods import base_only
from tunesmith.objectives.kto import kto_loss, kto_reference_point
from tunesmith.objectives.logprobs import TrainedTokenLM, sequence_logps
from tunesmith.objectives.plugins import preference_losses
from tunesmith.objectives.preference import orpo_loss, preference_logits, simpo_loss
from tunesmith.sections import SourceConfig, TaskSection
from tunesmith.tasks.instruction import InstructionTask, needs_renderer

if TYPE_CHECKING:
    from tunesmith.config import RunConfig

REFERENCE_FILE = "reference_logps.json"
REFERENCE_FREE = {"simpo", "orpo"}


class DpoConfig(TaskSection):
    name: Literal["dpo"] = "dpo"
    loss: str = Field(
        "sigmoid",
        description="dpo: sigmoid (DPO), ipo, cdpo (label-smoothed), hinge (SLiC), robust (rDPO), simpo and "
        "orpo (no reference), kto (unpaired), or a plugin's loss (entry points tunesmith.objectives)",
    )
    beta: float = Field(0.1, gt=0, description="dpo: inverse temperature β (IPO's τ, ORPO's λ)")
    label_smoothing: float = Field(
        0.1, ge=0, lt=0.5, description="dpo with loss cdpo or robust: share of flipped labels ε"
    )
    simpo_gamma: float = Field(0.5, ge=0, description="dpo with loss simpo: target reward margin γ")
    desirable_weight: float = Field(1.0, gt=0, description="dpo with loss kto: weight of thumbs-up examples")
    undesirable_weight: float = Field(
        1.0, gt=0, description="dpo with loss kto: weight of thumbs-down examples"
    )

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, value: str) -> str:
        known = [*preference_losses(), *sorted(REFERENCE_FREE), "kto"]
        if value not in known:
            raise ValueError(f"unknown loss {value!r}; known: {', '.join(known)}")
        return value

    @property
    def paired(self) -> bool:
        return self.loss != "kto"

    @property
    def packing_allowed(self) -> bool:
        return False  # answers are scored one per row


class DpoTask(InstructionTask):
    name = "dpo"
    config: type[TaskSection] = DpoConfig
    estimable = False  # its step needs reference log-probs / rollouts
    probes_memorization = False

    def prepare(
        self, cfg: RunConfig, tokenizer: Any, renderer: ChatRenderer | None, labels: list[str] | None = None
    ) -> PreparedData:
        kind = UnpairedFeedback if cfg.task.loss == "kto" else PreferencePair
        train, held = train_and_held(cfg, lambda spec, is_train: read_feedback(spec, cfg, kind, is_train))
        report = tokenize_feedback(train, tokenizer, needs_renderer(renderer), cfg)
        return PreparedData(
            train=report.samples,
            eval=tokenize_feedback(held, tokenizer, needs_renderer(renderer), cfg).samples,
            eval_records=[],
            formats=[kind.__name__],
            stats=token_stats(report, cfg.data.max_length),
        )

    def rows(self, samples: list[TokenizedSample], cfg: RunConfig) -> list[list[TokenizedSample]]:
        if cfg.paired:  # samples alternate chosen, rejected
            return [[samples[i], samples[i + 1]] for i in range(0, len(samples), 2)]
        return [[s] for s in samples]

    def collate(self, rows: list[list[TokenizedSample]], pad_id: int, packed: bool) -> Batch:
        return collate_pairs(rows, pad_id) if len(rows[0]) == 2 else collate(rows, pad_id, packed=False)

    def objective(self, model: nn.Module, cfg: RunConfig, data: PreparedData) -> nn.Module:
        return PreferenceObjective(model, cfg.task)

    def before_training(
        self, model: nn.Module, method: Any, cfg: RunConfig, data: PreparedData, run_dir: Path
    ) -> None:
        if cfg.task.loss in REFERENCE_FREE:
            return
        cache = run_dir / REFERENCE_FILE
        samples = data.train + data.eval
        if cache.is_file():
            values = json.loads(cache.read_text())
        else:
            values = _reference_logps(model, lambda: base_only(model, method), samples)
            from tunesmith.engine.distributed import is_main
            from tunesmith.files import atomic_write_json

            if is_main():  # every rank computed the same values; rank 0 keeps them in the run folder
                atomic_write_json(cache, values)
        _attach_reference(samples, values)

    def before_eval(
        self, model: nn.Module, reference: Callable[[], AbstractContextManager[Any]], cfg: RunConfig, data: PreparedData
    ) -> None:
        """Outside training the eval answers have no reference log-probs yet; without them the margins
        (pref_accuracy, reward_margin, the loss) would compare the policy with 0, not with its base."""
        if cfg.task.loss not in REFERENCE_FREE and data.eval:
            _attach_reference(data.eval, _reference_logps(model, reference, data.eval))

    def metrics(
        self,
        model: nn.Module,
        tokenizer: Any,
        renderer: ChatRenderer | None,
        cfg: RunConfig,
        data: PreparedData,
    ) -> dict[str, Any]:
        if not cfg.paired or not data.eval:
            return {}
        lm = TrainedTokenLM(model)
        logps, counts = sequence_logps(lm, data.eval, 8, with_counts=True)
        policy = torch.tensor(logps).view(-1, 2)  # (P, 2): chosen, rejected
        lengths = torch.tensor(counts).view(-1, 2)
        reference = torch.tensor([s.values.get("ref_logp", 0.0) for s in data.eval]).view(-1, 2)
        rewards = implicit_rewards(cfg.task, policy, reference, lengths)  # (P, 2)
        margin = rewards[:, 0] - rewards[:, 1]
        return {
            "pref_accuracy": float((margin > 0).float().mean()),
            "choice_accuracy": choice_accuracy(policy, lengths),
            "reward_margin": float(margin.mean()),
            "chosen_logps": float(policy[:, 0].mean()),
            "rejected_logps": float(policy[:, 1].mean()),
        }


def _reference_logps(
    model: nn.Module, reference: Callable[[], AbstractContextManager[Any]], samples: list[TokenizedSample]
) -> list[float]:
    with reference():
        return sequence_logps(TrainedTokenLM(model), samples, 8)  # type: ignore[no-any-return]


def _attach_reference(samples: list[TokenizedSample], values: list[float]) -> None:
    for sample, value in zip(samples, values, strict=True):
        sample.values["ref_logp"] = value


def choice_accuracy(policy: torch.Tensor, lengths: torch.Tensor) -> float:
    """The model's own choice, a baseline that means something before training (where the margin-based
    pref_accuracy is 0 by construction: policy = reference): the share of pairs whose chosen answer has
    the higher mean log-probability per token; ties count half. POLICY, LENGTHS: (P, 2) chosen, rejected."""
    per_token = policy / lengths.clamp(min=1)
    diff = per_token[:, 0] - per_token[:, 1]
    return float(((diff > 0).float() + 0.5 * (diff == 0).float()).mean())


def implicit_rewards(
    task: DpoConfig, policy: torch.Tensor, reference: torch.Tensor, lengths: torch.Tensor
) -> torch.Tensor:
    """β · log-ratio to the reference (DPO family); β · mean log-prob for the reference-free losses."""
    if task.loss in REFERENCE_FREE:
        return task.beta * policy / lengths.clamp(min=1)
    return task.beta * (policy - reference)


class PreferenceObjective(nn.Module):
    """forward(batch of 2B answers: chosen then rejected, or B unpaired answers) → loss sum over pairs."""

    def __init__(self, model: nn.Module, task: DpoConfig) -> None:
        super().__init__()
        self.lm = TrainedTokenLM(model)
        self.task = task

    def forward(
        self,
        input_ids: torch.Tensor,  # (2B, T) or (B, T) for kto
        labels: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        ref_logp: torch.Tensor | None = None,  # (2B,) or (B,)
        desirable: torch.Tensor | None = None,  # (B,) kto only
        position_ids: torch.Tensor | None = None,
        **_: torch.Tensor,
    ) -> torch.Tensor:
        task = self.task
        logps, counts = self.lm.answer_logps(input_ids, labels, attention_mask)  # (2B,)
        if task.loss == "kto":
            assert ref_logp is not None and desirable is not None
            kl = kto_reference_point(logps, ref_logp)
            return kto_loss(
                logps,
                ref_logp,
                desirable > 0.5,
                kl,
                task.beta,
                task.desirable_weight,
                task.undesirable_weight,
            ).sum()
        chosen, rejected = logps.chunk(2)
        if task.loss in REFERENCE_FREE:
            n_chosen, n_rejected = counts.chunk(2)
            avg_chosen, avg_rejected = chosen / n_chosen.clamp(min=1), rejected / n_rejected.clamp(min=1)
            if task.loss == "simpo":
                return simpo_loss(avg_chosen, avg_rejected, task.beta, task.simpo_gamma).sum()
            return orpo_loss(avg_chosen, avg_rejected, -avg_chosen, task.beta).sum()
        assert ref_logp is not None, "reference log-probs are attached before training"
        ref_chosen, ref_rejected = ref_logp.chunk(2)
        logits = preference_logits(chosen, rejected, ref_chosen, ref_rejected)
        return preference_losses()[task.loss](logits, task.beta, task.label_smoothing).sum()


def read_feedback(
    spec: str | list[str | SourceConfig], cfg: RunConfig, kind: type, is_train: bool = False
) -> list[Any]:
    fmt = "kto" if kind is UnpairedFeedback else "preference"

    def as_feedback(source: SourceConfig) -> SourceConfig:
        return source.model_copy(update={"format": fmt} if source.format == "auto" else {})

    records = load_records(spec, cfg, is_train, as_feedback)
    wrong = next((r for r in records if not isinstance(r, kind)), None)
    if wrong is not None:
        expected = "prompt/completion/label" if kind is UnpairedFeedback else "prompt/chosen/rejected"
        raise UserError(f"{wrong.source}: task {cfg.task.name} needs {expected} records")
    return records


def tokenize_feedback(
    records: list[Any], tokenizer: Any, renderer: ChatRenderer, cfg: RunConfig
) -> TokenizeReport:
    """Pairs → chosen, rejected samples in alternation (a pair is dropped whole); unpaired → one each."""
    report = TokenizeReport(samples=[])
    for record in records:
        if isinstance(record, PreferencePair):
            pair = tokenize_records(
                [record.conversation(record.chosen), record.conversation(record.rejected)],
                tokenizer,
                renderer,
                cfg.data,
            )
            if len(pair.samples) == 2:
                report.samples.extend(pair.samples)
            report.truncated += pair.truncated
            report.tokens_lost += pair.tokens_lost
        else:
            single = tokenize_records([record.conversation()], tokenizer, renderer, cfg.data)
            for sample in single.samples:
                sample.values["desirable"] = float(record.desirable)
            report.samples.extend(single.samples)
    if records and not report.samples:  # none at all: eval.none's empty eval side
        raise UserError("no preference sample is left after tokenization; check the data and data.max_length")
    return report
