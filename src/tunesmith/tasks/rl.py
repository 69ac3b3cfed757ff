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

from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from tunesmith.data.packing import Batch, collate
from tunesmith.data.prepare import PreparedData, load_records, train_and_held
from tunesmith.data.records import TokenizedSample, prompt_of
from tunesmith.data.templates import IGNORE, ChatRenderer
from tunesmith.engine.rollout import sample_completions
from tunesmith.errors import UserError
from tunesmith.methods import base_only
from tunesmith.models.anatomy import hidden_size_of
from tunesmith.modes import eval_mode
from tunesmith.objectives.grpo import grpo_loss
from tunesmith.objectives.logprobs import TrainedTokenLM, gather_logprobs
from tunesmith.objectives.plugins import advantage_estimators
from tunesmith.objectives.ppo import (
    AdaptiveKLController,
    compute_gae,
    kl_penalised_rewards,
    ppo_policy_loss,
    ppo_value_loss,
    whiten,
)
from tunesmith.rewards import RewardSource, RewardSourceConfig, load_reward_source
from tunesmith.sections import SourceConfig, TaskSection
from tunesmith.tasks.instruction import InstructionTask, needs_renderer

if TYPE_CHECKING:
    from tunesmith.config import RunConfig


class RlConfig(RewardSourceConfig):
    """What PPO and GRPO share: the reward source and the rollouts."""

    max_new_tokens: int = Field(32, ge=1, description="ppo/grpo: tokens sampled per completion at most")
    temperature: float = Field(1.0, gt=0, description="ppo/grpo: sampling temperature of rollouts")
    clip_range: float = Field(0.2, gt=0, description="ppo/grpo: ratio clipping ε")

    @property
    def packs_by_default(self) -> bool:
        return False  # rollouts are one completion per row

    def check(self) -> None:
        if not self.reward_functions and not self.reward_model:
            raise ValueError(
                f"task {self.name} needs a reward source: task.reward_functions and/or task.reward_model"
            )


class GrpoConfig(RlConfig):
    name: Literal["grpo"] = "grpo"
    group_size: int = Field(4, ge=2, description="grpo: completions sampled per prompt")
    beta: float = Field(0.1, gt=0, description="grpo: weight of the KL penalty against the base model")
    advantage: str = Field(
        "grpo",
        description="grpo: advantage estimator: grpo (group-normalised), dr_grpo, rloo (leave-one-out), "
        "reinforce_pp, or a plugin's (entry points tunesmith.objectives)",
    )

    iterations: int = Field(
        1, ge=1, description="grpo: optimizer steps on each rollout batch (μ in the paper, TRL's num_iterations); "
        "above 1 the old log-probs stay fixed and task.clip_range bounds the ratio"
    )

    @field_validator("advantage")
    @classmethod
    def _known_advantage(cls, value: str) -> str:
        known = advantage_estimators()
        if value not in known:
            raise ValueError(f"unknown advantage estimator {value!r}; known: {', '.join(known)}")
        return value

    @property
    def base_reference_weight(self) -> float:
        return self.beta


class PpoConfig(RlConfig):
    name: Literal["ppo"] = "ppo"
    kl_coef: float = Field(0.05, ge=0, description="ppo: initial per-token KL penalty β")
    kl_target: float | None = Field(
        None, gt=0, description="ppo: adapt β toward this KL (Ziegler et al.); fixed when unset"
    )
    kl_horizon: int = Field(10000, ge=1, description="ppo: horizon of the adaptive KL controller")
    vf_coef: float = Field(0.1, ge=0, description="ppo: weight of the value loss")
    gamma: float = Field(1.0, gt=0, le=1, description="ppo: discount")
    lam: float = Field(0.95, ge=0, le=1, description="ppo: GAE λ")
    clip_range_value: float = Field(0.2, gt=0, description="ppo: value clipping")
    ppo_epochs: int = Field(
        1, ge=1, description="ppo: optimizer steps on each rollout batch (old log-probs fixed)"
    )

    @property
    def base_reference_weight(self) -> float:
        return self.kl_coef


class GrpoTask(InstructionTask):
    name = "grpo"
    config: type[TaskSection] = GrpoConfig
    estimable = False  # its step needs reference log-probs / rollouts
    # each rank samples its own rollouts (and PPO adapts its KL coefficient to them): per-rank state a
    # checkpoint does not keep yet
    multi_process = False
    summary_metrics = ("mean_reward", "kl")
    probes_memorization = False
    has_eval_loss = False  # the objective needs fresh samples; held-out quality is the mean reward

    def __init__(self) -> None:
        self.rewards: RewardSource | None = None
        self.method: Any = None
        self.reuse: RolloutReuse | None = None

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of this run's RL state: the rollout being reused between steps
        (tensors: the checkpoint stores them as safetensors)."""
        return {"reuse": self.reuse.state_dict()} if self.reuse is not None else {}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        if self.reuse is not None and "reuse" in saved:
            self.reuse.load_state_dict(saved["reuse"])

    def prepare(
        self, cfg: RunConfig, tokenizer: Any, renderer: ChatRenderer | None, labels: list[str] | None = None
    ) -> PreparedData:
        self.rewards = load_reward_source(cfg.task)  # fails on a bad function before anything trains
        prompts, held = train_and_held(cfg, lambda spec, is_train: read_prompts(spec, cfg, needs_renderer(renderer), is_train))
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
            repeated = [p for p in prompts for _ in range(group)]
            samples = [answered(p, c) for p, c in zip(repeated, completions, strict=True)]
            batch = collate([[s] for s in samples], pad_id, packed=False)
            batch.extras["advantages"] = advantage_estimators()[cfg.task.advantage](scores, group)
            if cfg.task.iterations > 1:  # later steps on this batch clip their ratio to these
                batch.extras["old_logprobs"] = sampling_logps(model, batch)
            batch.stats = {
                "mean_reward": float(scores.mean()),
                "reward_std": float(scores.view(-1, group).std(dim=1).mean()),
                "completion_tokens": sum(len(c) for c in completions) / len(completions),
            }
            return batch

        self.reuse = RolloutReuse(rollout, cfg.task.iterations)
        return self.reuse

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
        samples = [answered(p, c) for p, c in zip(data.eval, completions, strict=True)]
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
        old_logprobs: torch.Tensor | None = None,  # (B, T-1) at sampling time, with task.iterations > 1
        **_: torch.Tensor,
    ) -> torch.Tensor:
        assert advantages is not None, "the rollout step attaches advantages"
        logps, rows = token_logps(self.lm, input_ids, labels, attention_mask)  # (N,)
        old = logps.detach() if old_logprobs is None else old_logprobs[labels[:, 1:] != IGNORE]  # (N,)
        ref = None
        if self.cfg.task.beta > 0:
            with torch.no_grad(), base_only(self.lm.model, self.task.method):
                ref, _ref_rows = token_logps(self.lm, input_ids, labels, attention_mask)
        per_token = logps.unsqueeze(-1)  # (N, 1): every trained token is its own row here
        return grpo_loss(
            per_token,
            old.unsqueeze(-1),
            None if ref is None else ref.unsqueeze(-1),
            advantages[rows],
            torch.ones_like(per_token),
            self.cfg.task.clip_range,
            self.cfg.task.beta,
        )


def answered(prompt: TokenizedSample, completion: list[int]) -> TokenizedSample:
    """Prompt + sampled completion as a training sample: only the completion is trained."""
    ids = prompt.input_ids + completion
    return TokenizedSample(ids, [IGNORE] * len(prompt.input_ids) + completion, prompt.source)


def token_logps(
    lm: TrainedTokenLM, input_ids: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log-prob of every trained token (N,), its row (N,))."""
    logits, targets, rows = lm.trained_logits(input_ids, labels, None, mask)
    return gather_logprobs(logits, targets), rows


@torch.no_grad()
def sampling_logps(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The policy's log-prob of each completion token as sampled, dense (B, T-1), 0 elsewhere."""
    device = next(model.parameters()).device
    labels = batch.labels.to(device)
    mask = batch.attention_mask.to(device) if batch.attention_mask is not None else None
    with eval_mode(model):
        flat, _ = token_logps(TrainedTokenLM(model), batch.input_ids.to(device), labels, mask)
    trained = labels[:, 1:] != IGNORE
    dense = torch.zeros(trained.shape, device=device)
    dense[trained] = flat
    return dense.cpu()


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


def stop_tokens(tokenizer: Any, renderer: ChatRenderer | None) -> list[int]:
    ids = {tokenizer.eos_token_id, renderer.end_of_turn_id if renderer is not None else None}
    return sorted(i for i in ids if i is not None)


def read_prompts(
    spec: str | list[str | SourceConfig], cfg: RunConfig, renderer: ChatRenderer, is_train: bool = False
) -> list[TokenizedSample]:
    """Every record's prompt, rendered with the generation prompt and tokenized. A prompt longer than
    `data.max_length` follows `data.truncation`: truncate keeps its end (the question and the generation
    prompt the completion follows), drop skips it, error stops naming the record."""
    samples = []
    for record in load_records(spec, cfg, is_train):
        messages = prompt_of(record)
        if messages is None:
            raise UserError(f"{record.source}: task {cfg.task.name} needs records with a prompt")
        text = renderer.render(messages, add_generation_prompt=True)
        ids = list(renderer.tokenizer(text, add_special_tokens=False)["input_ids"])
        if len(ids) > cfg.data.max_length:
            if cfg.data.truncation == "error":
                raise UserError(
                    f"{record.source}: the prompt has {len(ids)} tokens, over data.max_length {cfg.data.max_length} "
                    "(data.truncation: error)"
                )
            if cfg.data.truncation == "drop":
                continue
            ids = ids[-cfg.data.max_length :]
        samples.append(TokenizedSample(ids, [IGNORE] * len(ids), record.source, text=messages[-1].content))
    if not samples:
        raise UserError("no prompt found in the data")
    return samples


class PpoTask(GrpoTask):
    """PPO with a value head on the policy's hidden states, a per-token KL penalty (fixed, or adapted
    toward `task.kl_target`), GAE and whitened advantages, clipped policy and value losses."""

    name = "ppo"
    config: type[TaskSection] = PpoConfig

    def __init__(self) -> None:
        super().__init__()
        self.kl_controller: AdaptiveKLController | None = None
        self.value_head: nn.Module | None = None
        self.cfg_task: PpoConfig | None = None

    def state_dict(self) -> dict[str, Any]:
        """GRPO's state and PPO's adaptive KL coefficient."""
        saved = super().state_dict()
        if self.kl_controller is not None:
            saved["kl_coef"] = self.kl_controller.value
        return saved

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        super().load_state_dict(saved)
        if self.kl_controller is not None and "kl_coef" in saved:
            self.kl_controller.value = float(saved["kl_coef"])

    def objective(self, model: nn.Module, cfg: RunConfig, data: PreparedData) -> nn.Module:
        lm = TrainedTokenLM(model)
        if not lm.direct:
            raise UserError(
                "task ppo needs the hidden states to feed the output layer directly, which "
                f"method {cfg.method.name} (or this model) does not allow; use lora"
            )
        hidden_size = hidden_size_of(model.config, "task ppo")  # type: ignore[union-attr]
        self.value_head = nn.Linear(hidden_size, 1).to(next(model.parameters()).device)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        self.kl_controller = AdaptiveKLController(
            cfg.task.kl_coef, cfg.task.kl_target or 1.0, cfg.task.kl_horizon
        )
        return PpoObjective(lm, self.value_head, cfg)

    def make_collate(
        self, model: nn.Module, tokenizer: Any, renderer: ChatRenderer | None, cfg: RunConfig
    ) -> Callable[..., Batch]:
        stop_ids = stop_tokens(tokenizer, renderer)
        rewards = self.rewards or load_reward_source(cfg.task)
        task = cfg.task

        def rollout(rows: list[list[TokenizedSample]], pad_id: int, packed: bool) -> Batch:
            prompts = [row[0] for row in rows]
            completions = sample_completions(
                model,
                [p.input_ids for p in prompts],
                1,
                task.max_new_tokens,
                task.temperature,
                stop_ids,
                pad_id,
            )
            texts = [tokenizer.decode(c, skip_special_tokens=True) for c in completions]
            scores = torch.tensor(rewards([p.text for p in prompts], texts))
            batch = collate(
                [[answered(p, c)] for p, c in zip(prompts, completions, strict=True)], pad_id, packed=False
            )
            return self._score_rollout(model, batch, scores, texts)

        self.reuse = RolloutReuse(rollout, task.ppo_epochs)
        return self.reuse

    @torch.no_grad()
    def _score_rollout(self, model: nn.Module, batch: Batch, scores: torch.Tensor, texts: list[str]) -> Batch:
        """Old log-probs, reference log-probs, values, KL-penalised rewards, GAE → per-token extras."""
        assert self.kl_controller is not None and self.value_head is not None and self.cfg_task is not None
        task_cfg = self.cfg_task
        lm = TrainedTokenLM(model)
        device = next(model.parameters()).device
        ids, labels = batch.input_ids.to(device), batch.labels.to(device)
        mask = batch.attention_mask.to(device) if batch.attention_mask is not None else None
        with eval_mode(model):
            hidden, targets, rows = lm.trained_hidden(ids, labels, mask)
            logits = lm.output_projection(hidden).float()
            logps = gather_logprobs(logits, targets)
            entropy = -(torch.softmax(logits, -1) * torch.log_softmax(logits, -1)).sum(-1)
            values = self.value_head(hidden.float()).squeeze(-1)
            with base_only(model, self.method):
                ref, _ = token_logps(lm, ids, labels, mask)
        trained = labels[:, 1:] != IGNORE  # (B, T-1)
        dense = {
            name: torch.zeros(trained.shape, device=device)
            for name in ("old_logprobs", "ref_logprobs", "old_values")
        }
        for name, flat in (("old_logprobs", logps), ("ref_logprobs", ref), ("old_values", values)):
            dense[name][trained] = flat
        token_mask = trained.float()
        kl_coef = self.kl_controller.value
        per_token = kl_penalised_rewards(
            scores.to(device), dense["old_logprobs"], dense["ref_logprobs"], token_mask, kl_coef
        )
        advantages, returns = compute_gae(
            per_token, dense["old_values"], token_mask, task_cfg.gamma, task_cfg.lam
        )
        advantages = whiten(advantages, token_mask) * token_mask
        kl = float(((dense["old_logprobs"] - dense["ref_logprobs"]) * token_mask).sum(-1).mean())
        if task_cfg.kl_target is not None:
            self.kl_controller.update(kl, len(texts))
        batch.extras = {
            "old_logprobs": dense["old_logprobs"].cpu(),
            "old_values": dense["old_values"].cpu(),
            "advantages": advantages.cpu(),
            "returns": returns.cpu(),
        }
        batch.stats = {
            "mean_reward": float(scores.mean()),
            "kl": kl,
            "kl_coef": kl_coef,
            "entropy": float(entropy.mean()),
            "completion_tokens": float(token_mask.sum(-1).mean()),
        }
        return batch

    def before_training(
        self, model: nn.Module, method: Any, cfg: RunConfig, data: PreparedData, run_dir: Any
    ) -> None:
        super().before_training(model, method, cfg, data, run_dir)
        self.cfg_task = cfg.task


class PpoObjective(nn.Module):
    """Rollout batch → clipped policy loss + vf_coef · clipped value loss, summed over completion tokens."""

    def __init__(self, lm: TrainedTokenLM, value_head: nn.Module, cfg: RunConfig) -> None:
        super().__init__()
        self.lm = lm
        self.value_head = value_head
        self.cfg = cfg
        self.step_stats: dict[str, float] = {}

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        old_logprobs: torch.Tensor | None = None,  # (B, T-1), zero off the completion
        old_values: torch.Tensor | None = None,
        advantages: torch.Tensor | None = None,
        returns: torch.Tensor | None = None,
        **_: torch.Tensor,
    ) -> torch.Tensor:
        assert (
            old_logprobs is not None
            and old_values is not None
            and advantages is not None
            and returns is not None
        )
        task = self.cfg.task
        hidden, targets, _rows = self.lm.trained_hidden(input_ids, labels, attention_mask)
        logits = self.lm.output_projection(hidden).float()
        logps = gather_logprobs(logits, targets)  # (N,)
        values = self.value_head(hidden.float()).squeeze(-1)  # (N,)
        trained = labels[:, 1:] != IGNORE
        column = torch.ones_like(logps).unsqueeze(-1)  # every token its own row: (N, 1)
        policy_loss, clip_fraction = ppo_policy_loss(
            logps.unsqueeze(-1),
            old_logprobs[trained].unsqueeze(-1),
            advantages[trained].unsqueeze(-1),
            column,
            task.clip_range,
        )
        value_loss = ppo_value_loss(
            values.unsqueeze(-1),
            old_values[trained].unsqueeze(-1),
            returns[trained].unsqueeze(-1),
            column,
            task.clip_range_value,
        )
        count = max(int(trained.sum()), 1)
        self.step_stats = {"clip_fraction": float(clip_fraction), "value_loss": float(value_loss.detach()) / count}
        return policy_loss + task.vf_coef * value_loss


class RolloutReuse:
    """PPO's epochs over a rollout batch, as consecutive optimizer steps: a fresh rollout every
    `epochs` steps (one per micro-batch), reused in between with its old log-probs and advantages
    fixed, so the clipped ratio does its work. The prompts planned for the reuse steps are skipped.
    The loop names each step before collating it (`start_step`), so a step with fewer micro-batches
    (an epoch's last) keeps the others aligned. The cache is part of a checkpoint: a run resumed
    between epochs reuses the rollout the uninterrupted run would have."""

    def __init__(self, rollout: Callable[..., Batch], epochs: int) -> None:
        self.rollout, self.epochs = rollout, epochs
        self.cache: dict[int, Batch] = {}
        self.step, self.micro = 0, 0

    def start_step(self, step: int) -> None:
        self.step, self.micro = step, 0
        if step % self.epochs == 0:
            self.cache = {}

    def __call__(self, rows: list[list[TokenizedSample]], pad_id: int, packed: bool) -> Batch:
        micro, self.micro = self.micro, self.micro + 1
        if micro not in self.cache:
            self.cache[micro] = self.rollout(rows, pad_id, packed)
        return self.cache[micro]

    def state_dict(self) -> dict[str, Any]:
        if (self.step + 1) % self.epochs == 0:  # the next step rolls out afresh: nothing cached is needed
            return {"cache": {}}
        return {"cache": {micro: {f.name: getattr(b, f.name) for f in fields(b)} for micro, b in self.cache.items()}}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.cache = {int(micro): Batch(**batch) for micro, batch in saved.get("cache", {}).items()}
