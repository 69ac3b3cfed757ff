"""The preference and RL losses against TRL's own implementations where they can be called in
isolation (CPOTrainer.cpo_loss for DPO / cDPO / IPO / SimPO, ORPOTrainer.odds_ratio_loss), and
against hand-worked examples of the papers' formulas where TRL's are buried in a trainer (KTO,
reward model, GAE, PPO clipping, GRPO advantages)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from tunesmith.objectives.grpo import group_advantages, grpo_loss, k3_kl
from tunesmith.objectives.kto import kto_loss
from tunesmith.objectives.ppo import (
    compute_gae,
    kl_penalised_rewards,
    ppo_policy_loss,
    ppo_value_loss,
    whiten,
)
from tunesmith.objectives.preference import (
    dpo_sigmoid_loss,
    ipo_loss,
    orpo_odds_ratio,
    preference_logits,
    simpo_loss,
)
from tunesmith.objectives.reward import bradley_terry_loss

torch.manual_seed(0)
PC, PR, RC, RR = (-torch.rand(6) * 40 for _ in range(4))  # summed log-probs of 6 pairs
AVG_C, AVG_R = -torch.rand(6) * 2, -torch.rand(6) * 2  # length-averaged log-probs


def cpo_stub(
    loss_type: str, beta: float, label_smoothing: float = 0.0, simpo_gamma: float = 0.5
) -> SimpleNamespace:
    return SimpleNamespace(
        alpha=0.0,
        loss_type=loss_type,
        beta=beta,
        label_smoothing=label_smoothing,
        simpo_gamma=simpo_gamma,
        accelerator=SimpleNamespace(device=torch.device("cpu")),
    )


def trl_cpo(stub: SimpleNamespace, chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    from trl.experimental.cpo import CPOTrainer

    return CPOTrainer.cpo_loss(stub, chosen, rejected)[0]  # type: ignore[arg-type]


@pytest.mark.parametrize(("beta", "smoothing"), [(0.1, 0.0), (0.5, 0.0), (0.1, 0.2)])
def test_dpo_and_cdpo_match_trl(beta: float, smoothing: float) -> None:
    ours = dpo_sigmoid_loss(preference_logits(PC, PR, RC, RR), beta, smoothing)
    theirs = trl_cpo(cpo_stub("sigmoid", beta, smoothing), PC - RC, PR - RR)  # DPO = CPO on log-ratios
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_ipo_matches_trl() -> None:
    ours = ipo_loss(preference_logits(PC, PR, RC, RR), beta=0.1)
    theirs = trl_cpo(cpo_stub("ipo", 0.1), PC - RC, PR - RR)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-6)


def test_simpo_matches_trl() -> None:
    ours = simpo_loss(AVG_C, AVG_R, beta=2.0, gamma=0.5)
    theirs = trl_cpo(cpo_stub("simpo", 2.0, simpo_gamma=0.5), AVG_C, AVG_R)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_orpo_odds_ratio_matches_trl() -> None:
    from trl.experimental.orpo import ORPOTrainer

    stub = SimpleNamespace(beta=0.1, accelerator=SimpleNamespace(device=torch.device("cpu")))
    theirs = ORPOTrainer.odds_ratio_loss(stub, AVG_C, AVG_R)[0]  # type: ignore[arg-type]  # β · log σ(log OR)
    torch.testing.assert_close(0.1 * orpo_odds_ratio(AVG_C, AVG_R), theirs, atol=1e-5, rtol=0)


def test_kto_worked_example() -> None:
    """Eq. 7: λ_D(1 − σ(β(r − z0))) and λ_U(1 − σ(β(z0 − r)))."""
    policy, ref = torch.tensor([-10.0, -12.0]), torch.tensor([-11.0, -10.0])  # r = +1, −2
    losses = kto_loss(policy, ref, torch.tensor([True, False]), torch.tensor(0.5), 0.1, 1.0, 1.5)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert losses.tolist() == pytest.approx(
        [1 - sig(0.1 * (1 - 0.5)), 1.5 * (1 - sig(0.1 * (0.5 + 2)))], abs=1e-6
    )


def test_reward_loss_worked_example() -> None:
    losses = bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([0.5, 0.0]))
    assert losses.tolist() == pytest.approx([math.log1p(math.exp(-0.5)), math.log1p(math.exp(1.0))], abs=1e-6)


def test_gae_worked_example() -> None:
    """T = 3, γ = 0.9, λ = 0.8, one padded position at the end."""
    rewards = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    values = torch.tensor([[0.5, 0.4, 0.3, 9.9]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    advantages, returns = compute_gae(rewards, values, mask, gamma=0.9, lam=0.8)
    d2 = 1.0 - 0.3  # last token: no next value
    d1 = 0.0 + 0.9 * 0.3 - 0.4
    d0 = 0.0 + 0.9 * 0.4 - 0.5
    a2, a1 = d2, d1 + 0.72 * d2
    a0 = d0 + 0.72 * a1
    assert advantages[0].tolist() == pytest.approx([a0, a1, a2, 0.0], abs=1e-6)
    assert returns[0].tolist() == pytest.approx([a0 + 0.5, a1 + 0.4, a2 + 0.3, 0.0], abs=1e-6)


def test_ppo_clipping_worked_example() -> None:
    old = torch.zeros(1, 3)
    new = torch.log(torch.tensor([[1.5, 0.5, 1.1]]))  # ratios 1.5, 0.5, 1.1
    adv = torch.tensor([[1.0, -1.0, 2.0]])
    mask = torch.ones(1, 3)
    loss, clip_fraction = ppo_policy_loss(new, old, adv, mask, clip_range=0.2)
    # max(−Aρ, −A·clip(ρ)): −1.2 (clipped), +0.8 (clipped), −2.2 (inside)
    assert float(loss) == pytest.approx(-1.2 + 0.8 - 2.2, abs=1e-6)
    assert float(clip_fraction) == pytest.approx(2 / 3)
    value = ppo_value_loss(
        torch.tensor([[2.0]]), torch.tensor([[1.0]]), torch.tensor([[0.0]]), torch.ones(1, 1), 0.5
    )
    assert float(value) == pytest.approx(0.5 * 4.0)  # max((2−0)², (1.5−0)²)


def test_kl_penalty_puts_the_score_on_the_last_token() -> None:
    rewards = kl_penalised_rewards(
        torch.tensor([3.0]),
        torch.tensor([[-1.0, -2.0, -1.0]]),
        torch.tensor([[-1.5, -2.0, -3.0]]),
        torch.tensor([[1.0, 1.0, 0.0]]),
        kl_coef=0.1,
    )
    assert rewards[0].tolist() == pytest.approx([-0.05, 3.0, 0.0])
    assert float(
        whiten(torch.tensor([[1.0, 3.0, 100.0]]), torch.tensor([[1.0, 1.0, 0.0]]))[0, 0]
    ) == pytest.approx(-1.0, abs=1e-4)


def test_grpo_group_advantages_and_loss() -> None:
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 5.0, 5.0])  # 3 groups of 2
    adv = group_advantages(rewards, group_size=2)
    std = math.sqrt(0.5)  # unbiased std of (1, 0)
    assert adv.tolist() == pytest.approx(
        [0.5 / (std + 1e-4), -0.5 / (std + 1e-4), -0.5 / (std + 1e-4), 0.5 / (std + 1e-4), 0.0, 0.0], abs=1e-5
    )
    logp = torch.log(torch.tensor([[0.5, 0.25]]))
    same = grpo_loss(logp, logp, logp, torch.tensor([2.0]), torch.ones(1, 2), 0.2, beta=0.04)
    assert float(same) == pytest.approx(-4.0)  # ratio 1, KL 0: −A per token
    assert float(k3_kl(torch.tensor([-1.0]), torch.tensor([-2.0]))) == pytest.approx(math.exp(-1) + 1 - 1)


def test_adaptive_kl_controller() -> None:
    """Ziegler et al. (2019): β ← β (1 + clip(KL/target − 1, ±0.2) · n / horizon)."""
    from tunesmith.objectives.ppo import AdaptiveKLController

    controller = AdaptiveKLController(0.1, target=2.0, horizon=100)
    assert controller.update(2.2, n_steps=10) == pytest.approx(0.1 * (1 + 0.1 * 0.1))
    assert controller.update(100.0, n_steps=10) == pytest.approx(
        0.1 * 1.01 * (1 + 0.2 * 0.1)
    )  # error capped at 0.2
    assert controller.update(0.0, n_steps=10) < 0.1 * 1.01 * 1.02


@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_hinge_matches_trl(beta: float) -> None:
    from tunesmith.objectives.preference import LOG_RATIO_LOSSES

    ours = LOG_RATIO_LOSSES["hinge"](preference_logits(PC, PR, RC, RR), beta, 0.0)
    theirs = trl_cpo(cpo_stub("hinge", beta), PC - RC, PR - RR)  # TRL's hinge, called in isolation
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


def test_robust_dpo_matches_the_paper_and_trl_formula() -> None:
    """rDPO (Chowdhury et al., 2024, Eq. 9); TRL's version sits inside DPOTrainer's loss, so its formula
    is restated here: (−(1−ε)·logσ(βh) + ε·logσ(−βh)) / (1 − 2ε)."""
    from tunesmith.objectives.preference import LOG_RATIO_LOSSES

    h, beta, eps = preference_logits(PC, PR, RC, RR), 0.2, 0.1
    ours = LOG_RATIO_LOSSES["robust"](h, beta, eps)
    by_hand = torch.tensor([
        (-(1 - eps) * math.log(1 / (1 + math.exp(-beta * x))) + eps * math.log(1 / (1 + math.exp(beta * x))))
        / (1 - 2 * eps) for x in h.tolist()
    ])
    torch.testing.assert_close(ours, by_hand, atol=1e-5, rtol=0)
    # with no flipped labels it is DPO; its expectation over flips recovers the clean loss (the paper's point)
    torch.testing.assert_close(LOG_RATIO_LOSSES["robust"](h, beta, 0.0), dpo_sigmoid_loss(h, beta))
    clean = dpo_sigmoid_loss(h, beta)
    expected = (1 - eps) * LOG_RATIO_LOSSES["robust"](h, beta, eps) + eps * LOG_RATIO_LOSSES["robust"](-h, beta, eps)
    torch.testing.assert_close(expected, clean, atol=1e-5, rtol=0)


def test_advantage_estimators_match_their_papers() -> None:
    from tunesmith.objectives.advantages import ADVANTAGES

    rewards = torch.tensor([1.0, 0.0, 0.5, 2.0, 2.0, -1.0])  # two prompts, groups of 3
    groups = rewards.view(2, 3)
    rloo = torch.tensor([r - (g.sum() - r) / 2 for g in groups for r in g])  # each sample vs the mean of the others
    torch.testing.assert_close(ADVANTAGES["rloo"](rewards, 3), rloo)
    centred = torch.tensor([r - g.mean() for g in groups for r in g])
    torch.testing.assert_close(ADVANTAGES["dr_grpo"](rewards, 3), centred)
    torch.testing.assert_close(ADVANTAGES["rloo"](rewards, 3), centred * 3 / 2)  # RLOO = G/(G−1) · centred
    whitened = (centred - centred.mean()) / centred.std()
    torch.testing.assert_close(ADVANTAGES["reinforce_pp"](rewards, 3), whitened, atol=1e-6, rtol=0)
    torch.testing.assert_close(ADVANTAGES["grpo"](rewards, 3), group_advantages(rewards, 3))
