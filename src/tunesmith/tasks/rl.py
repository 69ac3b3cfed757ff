"""Reinforcement learning from rewards: GRPO (`task: grpo`) and PPO (`task: ppo`).

Both read prompts (any record with a prompt: chats, pairs, or {"prompt": ...}), sample completions
from the policy in a rollout step that replaces plain collation, score them with the reward source
(callables and/or a reward model), and then take an ordinary optimizer step in the one loop. The KL
reference is the model with its method switched off (LoRA etc.), so no second model is held.

Held-out metrics: the mean reward of greedy completions of the eval prompts (`mean_reward`), and
`kl`, the mean per-token log-ratio log π − log ref on those completions (a sample estimate of
KL(π ‖ ref)).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from tunesmith.config import RunConfig, SourceConfig
from tunesmith.data.packing import Batch, collate
from tunesmith.data.prepare import DEFAULT_EVAL_SPLIT, PreparedData
from tunesmith.data.records import TokenizedSample, prompt_of
from tunesmith.data.sources import load_source, normalise_sources
from tunesmith.data.templates import IGNORE, ChatRenderer
from tunesmith.engine.rollout import sample_completions
from tunesmith.errors import UserError
from tunesmith.methods import base_only
from tunesmith.objectives.grpo import group_advantages, grpo_loss
from tunesmith.objectives.logprobs import TrainedTokenLM
from tunesmith.rewards import RewardSource, load_reward_source
from tunesmith.tasks.instruction import InstructionTask, needs_renderer


class GrpoTask(InstructionTask):
    name = "grpo"
    has_eval_loss = False  # the objective needs fresh samples; held-out quality is the mean reward

    def __init__(self) -> None:
        self.rewards: RewardSource | None = None
        self.method: Any = None

    def prepare(
        self, cfg: RunConfig, tokenizer: Any, renderer: ChatRenderer | None, labels: list[str] | None = None
    ) -> PreparedData:
        self.rewards = load_reward_source(cfg.task)  # fails on a bad function before anything trains
        prompts = read_prompts(cfg.data.train, cfg, needs_renderer(renderer))
        held: list[TokenizedSample] = []
        if not cfg.eval.none:
            if cfg.data.eval is not None:
                held = read_prompts(cfg.data.eval, cfg, needs_renderer(renderer))
            else:
                prompts, held = split_held_out(
                    prompts, cfg.data.eval_split or DEFAULT_EVAL_SPLIT, cfg.train.seed
                )
        lengths = [len(s) for s in prompts]
        stats = {"prompts": len(prompts), "mean_prompt_tokens": sum(lengths) / max(len(lengths), 1)}
        return PreparedData(train=prompts, eval=held, eval_records=[], formats=["prompts"], stats=stats)

    def rows(self, samples: list[TokenizedSample], cfg: RunConfig) -> list[list[TokenizedSample]]:
        return [[s] for s in samples]

    def make_collate(
        self, model: nn.Module, tokenizer: Any, renderer: ChatRenderer | None, cfg: RunConfig
    ) -> Callable[..., Batch]:
        """The rollout step: sample a group per prompt, score, normalise within groups, collate."""
        stop_ids = stop_tokens(tokenizer, renderer)
        rewards = self.rewards or load_reward_source(cfg.task)

        def rollout(rows: list[list[TokenizedSample]], pad_id: int, packed: bool) -> Batch:
            prompts = [row[0] for row in rows]
            group = cfg.task.group_size
            completions = sample_completions(
                model,
                [p.input_ids for p in prompts],
                group,
                cfg.task.max_new_tokens,
                cfg.task.temperature,
                stop_ids,
                pad_id,
            )
            texts = [tokenizer.decode(c, skip_special_tokens=True) for c in completions]
            scores = torch.tensor(rewards([p.text for p in prompts for _ in range(group)], texts))
            samples = [
                TokenizedSample(p.input_ids + c, [IGNORE] * len(p.input_ids) + c, p.source)
                for p, c in zip([p for p in prompts for _ in range(group)], completions, strict=True)
            ]
            batch = collate([[s] for s in samples], pad_id, packed=False)
            batch.extras["advantages"] = group_advantages(scores, group)
            batch.stats = {
                "mean_reward": float(scores.mean()),
                "reward_std": float(scores.view(-1, group).std(dim=1).mean()),
                "completion_tokens": sum(len(c) for c in completions) / len(completions),
            }
            return batch

        return rollout

    def objective(self, model: nn.Module, cfg: RunConfig, data: PreparedData) -> nn.Module:
        return GrpoObjective(model, cfg, self)

    def before_training(
        self, model: nn.Module, method: Any, cfg: RunConfig, data: PreparedData, run_dir: Any
    ) -> None:
        self.method = method  # the KL reference: this method switched off

    def metrics(
        self,
        model: nn.Module,
        tokenizer: Any,
        renderer: ChatRenderer | None,
        cfg: RunConfig,
        data: PreparedData,
    ) -> dict[str, Any]:
        if not data.eval:
            return {}
        rewards = self.rewards or load_reward_source(cfg.task)
        stop_ids = stop_tokens(tokenizer, renderer)
        completions = sample_completions(
            model,
            [s.input_ids for s in data.eval],
            1,
            cfg.task.max_new_tokens,
            1.0,
            stop_ids,
            tokenizer.pad_token_id,
            greedy=True,
        )
        texts = [tokenizer.decode(c, skip_special_tokens=True) for c in completions]
        scores = rewards([s.text for s in data.eval], texts)
        samples = [
            TokenizedSample(p.input_ids + c, [IGNORE] * len(p.input_ids) + c, p.source)
            for p, c in zip(data.eval, completions, strict=True)
        ]
        return {
            "mean_reward": sum(scores) / len(scores),
            "kl": mean_log_ratio(model, self.method, samples, tokenizer.pad_token_id),
            "sample_completions": texts[:3],
        }


class GrpoObjective(nn.Module):
    """Batch of sampled completions with their group advantages → GRPO loss summed over completion tokens."""

    def __init__(self, model: nn.Module, cfg: RunConfig, task: GrpoTask) -> None:
        super().__init__()
        self.lm = TrainedTokenLM(model)
        self.cfg = cfg
        self.task = task  # holds the method, whose switch gives the KL reference

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, T)
        labels: torch.Tensor,  # (B, T), completion tokens trained
        attention_mask: torch.Tensor | None = None,
        advantages: torch.Tensor | None = None,  # (B,)
        **_: torch.Tensor,
    ) -> torch.Tensor:
        assert advantages is not None, "the rollout step attaches advantages"
        logps, rows = token_logps(self.lm, input_ids, labels, attention_mask)  # (N,)
        ref = None
        if self.cfg.task.beta > 0:
            with torch.no_grad(), base_only(self.lm.model, self.task.method):
                ref, _ref_rows = token_logps(self.lm, input_ids, labels, attention_mask)
        per_token = logps.unsqueeze(-1)  # (N, 1): every trained token is its own row here
        return grpo_loss(
            per_token,
            per_token.detach(),
            None if ref is None else ref.unsqueeze(-1),
            advantages[rows],
            torch.ones_like(per_token),
            self.cfg.task.clip_range,
            self.cfg.task.beta,
        )


def token_logps(
    lm: TrainedTokenLM, input_ids: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-prob of every trained token (N,), its row (N,))."""
    logits, targets, rows = lm.trained_logits(input_ids, labels, None, mask)
    return torch.log_softmax(logits.float(), -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1), rows


@torch.no_grad()
def mean_log_ratio(model: nn.Module, method: Any, samples: list[TokenizedSample], pad_id: int) -> float:
    """Mean over completion tokens of log π − log ref: a sample estimate of KL(π ‖ ref)."""
    if method is None or not samples:
        return 0.0
    lm = TrainedTokenLM(model)
    batch = collate([[s] for s in samples], pad_id, packed=False)
    device = next(model.parameters()).device
    mask = batch.attention_mask.to(device) if batch.attention_mask is not None else None
    ids, labels = batch.input_ids.to(device), batch.labels.to(device)
    policy, _ = token_logps(lm, ids, labels, mask)
    with base_only(model, method):
        ref, _ = token_logps(lm, ids, labels, mask)
    return float((policy - ref).mean()) if policy.numel() else 0.0


def split_held_out(
    samples: list[TokenizedSample], share: float, seed: int
) -> tuple[list[TokenizedSample], list[TokenizedSample]]:
    """A seeded held-out share (at least one) of the prompts."""
    order = list(range(len(samples)))
    random.Random(seed).shuffle(order)
    held = set(order[: max(1, round(share * len(samples)))])
    return [s for i, s in enumerate(samples) if i not in held], [
        s for i, s in enumerate(samples) if i in held
    ]


def stop_tokens(tokenizer: Any, renderer: ChatRenderer | None) -> list[int]:
    ids = {tokenizer.eos_token_id, renderer.end_of_turn_id if renderer is not None else None}
    return sorted(i for i in ids if i is not None)


def read_prompts(
    spec: str | list[str | SourceConfig], cfg: RunConfig, renderer: ChatRenderer
) -> list[TokenizedSample]:
    """Every record's prompt, rendered with the generation prompt and tokenized."""
    samples = []
    for source in normalise_sources(spec, cfg.data):
        for record in load_source(source).records:
            messages = prompt_of(record)
            if messages is None:
                raise UserError(f"{record.source}: task {cfg.task.name} needs records with a prompt")
            text = renderer.render(messages, add_generation_prompt=True)
            ids = list(renderer.tokenizer(text, add_special_tokens=False)["input_ids"])[
                -cfg.data.max_length :
            ]
            samples.append(
                TokenizedSample(ids, [IGNORE] * len(ids), record.source, text=messages[-1].content)
            )
    if not samples:
        raise UserError("no prompt found in the data")
    return samples
