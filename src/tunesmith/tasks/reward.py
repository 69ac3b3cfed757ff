"""Reward models (`task: reward`): a scalar head on any causal LM or encoder, trained on preference
pairs with the Bradley–Terry loss (and the pair's `margin`, when the data gives one).

The model reads prompt and answer as a text pair (encoders mark the two segments; decoders see them
concatenated) and scores the whole; the score of the chosen answer should exceed the rejected one's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

from tunesmith.data.packing import Batch, collate_pairs
from tunesmith.data.prepare import PreparedData, train_and_held
from tunesmith.data.records import PreferencePair, TokenizedSample
from tunesmith.data.templates import IGNORE, ChatRenderer, TokenizeReport
from tunesmith.models.load import ModelSource
from tunesmith.modes import eval_mode
from tunesmith.objectives.reward import bradley_terry_loss
from tunesmith.sections import TaskSection
from tunesmith.tasks.base import TaskDefaults
from tunesmith.tasks.classification import ClassificationTask
from tunesmith.tasks.preference import read_feedback

if TYPE_CHECKING:
    from tunesmith.config import RunConfig

REWARD_LABELS = ["reward"]  # one output: the score


class RewardConfig(TaskSection):
    """A reward model from (chosen, rejected) pairs: nothing to set beyond `data:`."""

    name: Literal["reward"] = "reward"

    @property
    def sequence_head(self) -> bool:
        return True

    @property
    def paired(self) -> bool:
        return True


class RewardTask(TaskDefaults):
    name = "reward"
    config: type[TaskSection] = RewardConfig

    def prepare(
        self, cfg: RunConfig, tokenizer: Any, renderer: ChatRenderer | None, labels: list[str] | None = None
    ) -> PreparedData:
        train, held = train_and_held(cfg, lambda spec, is_train: read_feedback(spec, cfg, PreferencePair, is_train))
        report = tokenize_pairs(train, tokenizer, cfg)
        lengths = [len(s) for s in report.samples]
        return PreparedData(
            train=report.samples,
            eval=tokenize_pairs(held, tokenizer, cfg).samples,
            eval_records=[],
            formats=["preference"],
            stats={
                "pairs": len(train),
                "mean_tokens": sum(lengths) / max(len(lengths), 1),
                "truncated": report.truncated,
            },
        )

    def load_model(
        self, source: ModelSource, cfg: RunConfig, labels: list[str], tokenizer: Any = None, **extra: Any
    ) -> nn.Module:
        return ClassificationTask().load_model(source, cfg, REWARD_LABELS, tokenizer, **extra)

    def rows(self, samples: list[TokenizedSample], cfg: RunConfig) -> list[list[TokenizedSample]]:
        return [[samples[i], samples[i + 1]] for i in range(0, len(samples), 2)]

    def collate(self, rows: list[list[TokenizedSample]], pad_id: int, packed: bool) -> Batch:
        return collate_pairs(rows, pad_id)

    def objective(self, model: nn.Module, cfg: RunConfig, data: PreparedData) -> nn.Module:
        return RewardObjective(model)

    @torch.no_grad()
    def metrics(
        self,
        model: nn.Module,
        tokenizer: Any,
        renderer: ChatRenderer | None,
        cfg: RunConfig,
        data: PreparedData,
    ) -> dict[str, Any]:
        scores = score_samples(model, data.eval, tokenizer.pad_token_id).view(-1, 2)  # (P, 2)
        margin = scores[:, 0] - scores[:, 1]
        return {
            "pair_accuracy": float((margin > 0).float().mean()),
            "reward_margin": float(margin.mean()),
            "chosen_reward": float(scores[:, 0].mean()),
            "rejected_reward": float(scores[:, 1].mean()),
        }


class RewardObjective(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,  # (2B, T): chosen rows, then rejected rows
        attention_mask: torch.Tensor | None = None,
        margin: torch.Tensor | None = None,  # (2B,), the pair's margin on both halves
        **_: torch.Tensor,
    ) -> torch.Tensor:
        scores = (
            self.model(input_ids=input_ids, attention_mask=attention_mask).logits.squeeze(-1).float()
        )  # (2B,)
        chosen, rejected = scores.chunk(2)
        return bradley_terry_loss(chosen, rejected, None if margin is None else margin.chunk(2)[0]).sum()


def score_samples(
    model: nn.Module, samples: list[TokenizedSample], pad_id: int, batch_size: int = 16
) -> torch.Tensor:
    """The reward of every sample, (N,)."""
    from tunesmith.data.packing import collate

    device = next(model.parameters()).device
    out = []
    with eval_mode(model):
        for start in range(0, len(samples), batch_size):
            batch = collate([[s] for s in samples[start : start + batch_size]], pad_id, packed=False)
            mask = batch.attention_mask.to(device) if batch.attention_mask is not None else None
            logits = model(input_ids=batch.input_ids.to(device), attention_mask=mask).logits
            out.append(logits.squeeze(-1).float().cpu())
    return torch.cat(out) if out else torch.zeros(0)


def prompt_text(pair: PreferencePair) -> str:
    return "\n".join(m.content for m in pair.prompt)


def tokenize_pairs(pairs: list[PreferencePair], tokenizer: Any, cfg: RunConfig) -> TokenizeReport:
    """Each pair → (prompt, chosen) and (prompt, rejected) samples, truncated to data.max_length."""
    report = TokenizeReport(samples=[])
    for pair in pairs:
        for answer in (pair.chosen, pair.rejected):
            full = tokenizer(prompt_text(pair), answer)["input_ids"]
            if len(full) > cfg.data.max_length:
                report.truncated += 1
                full = tokenizer(prompt_text(pair), answer, truncation=True, max_length=cfg.data.max_length)[
                    "input_ids"
                ]
            sample = TokenizedSample(list(full), [IGNORE] * len(full), pair.source)
            if pair.margin is not None:
                sample.values["margin"] = pair.margin
            report.samples.append(sample)
    return report
