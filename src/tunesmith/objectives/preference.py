"""Direct preference optimisation and its family, as pure functions of sequence log-probabilities.

Inputs are summed (or, for SimPO / ORPO, length-averaged) log-probabilities of the chosen and
rejected completions, shape (B,). Each function returns per-pair losses (B,); the caller sums.

- DPO (Rafailov et al., 2023, Eq. 7):   −log σ(β · [(π_c − ref_c) − (π_r − ref_r)])
- cDPO (Mitchell, 2023): DPO with label smoothing ε:  −(1−ε) log σ(βh) − ε log σ(−βh)
- IPO (Azar et al., 2023, Eq. 17):       (h − 1/(2β))²  with h the same log-ratio difference
- SimPO (Meng et al., 2024, Eq. 6):      −log σ(β · (avg π_c − avg π_r) − γ), no reference
- ORPO (Hong et al., 2024, Eq. 6–7):     NLL(chosen) − β · log σ(log odds_c − log odds_r),
  odds = p / (1 − p) with p the length-averaged probability, no reference
- hinge (SLiC, Zhao et al., 2023, Eq. 2 on log-ratios): max(0, 1 − β·h)
- robust DPO (Chowdhury et al., 2024, Eq. 9): [−(1−ε) log σ(βh) + ε log σ(−βh)] / (1 − 2ε), unbiased
  under a share ε of flipped preference labels

`LOG_RATIO_LOSSES` is the table of the losses that take h alone: a new one is one function and one entry.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def preference_logits(
    policy_chosen_logps: torch.Tensor,  # (B,)
    policy_rejected_logps: torch.Tensor,  # (B,)
    ref_chosen_logps: torch.Tensor,  # (B,)
    ref_rejected_logps: torch.Tensor,  # (B,)
) -> torch.Tensor:
    """h = (log π_c − log ref_c) − (log π_r − log ref_r): the implicit reward margin / β."""
    return (policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps)


def dpo_sigmoid_loss(logits: torch.Tensor, beta: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """DPO (label_smoothing 0) and conservative DPO (label_smoothing ε > 0); logits = h, (B,)."""
    return (
        -F.logsigmoid(beta * logits) * (1 - label_smoothing) - F.logsigmoid(-beta * logits) * label_smoothing
    )


def ipo_loss(logits: torch.Tensor, beta: float) -> torch.Tensor:
    """IPO: regress h to 1/(2β) (β is the paper's τ); logits = h, (B,)."""
    return (logits - 1 / (2 * beta)) ** 2


def hinge_loss(logits: torch.Tensor, beta: float) -> torch.Tensor:
    """SLiC-HF's calibration hinge on the log-ratio margin; logits = h, (B,)."""
    return torch.relu(1 - beta * logits)


def robust_dpo_loss(logits: torch.Tensor, beta: float, label_smoothing: float) -> torch.Tensor:
    """rDPO: DPO de-biased for a known label-flip rate ε = label_smoothing (< 0.5); logits = h, (B,)."""
    clean = -(1 - label_smoothing) * F.logsigmoid(beta * logits)
    flipped = -label_smoothing * F.logsigmoid(-beta * logits)
    return (clean - flipped) / (1 - 2 * label_smoothing)


# loss name → per-pair loss of (h, β, ε); ε is used by the losses that model label noise
LOG_RATIO_LOSSES: dict[str, Callable[[torch.Tensor, float, float], torch.Tensor]] = {
    "sigmoid": lambda h, beta, eps: dpo_sigmoid_loss(h, beta),
    "cdpo": dpo_sigmoid_loss,
    "ipo": lambda h, beta, eps: ipo_loss(h, beta),
    "hinge": lambda h, beta, eps: hinge_loss(h, beta),
    "robust": robust_dpo_loss,
}


def simpo_loss(
    policy_chosen_avg_logps: torch.Tensor,  # (B,) mean log-prob per completion token
    policy_rejected_avg_logps: torch.Tensor,  # (B,)
    beta: float,
    gamma: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """SimPO: length-normalised reward margin against a target margin γ; no reference model."""
    logits = policy_chosen_avg_logps - policy_rejected_avg_logps - gamma / beta
    return dpo_sigmoid_loss(logits, beta, label_smoothing)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 − exp(x)) for x < 0, numerically stable (Mächler, 2012)."""
    return torch.where(x > -0.6931, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def orpo_odds_ratio(
    policy_chosen_avg_logps: torch.Tensor,  # (B,)
    policy_rejected_avg_logps: torch.Tensor,  # (B,)
) -> torch.Tensor:
    """log σ(log odds(chosen) − log odds(rejected)), (B,): ORPO's odds-ratio term before β."""
    chosen, rejected = policy_chosen_avg_logps.float(), policy_rejected_avg_logps.float()
    log_odds = (chosen - rejected) - (log1mexp(chosen) - log1mexp(rejected))
    return F.logsigmoid(log_odds)


def orpo_loss(
    policy_chosen_avg_logps: torch.Tensor,  # (B,)
    policy_rejected_avg_logps: torch.Tensor,  # (B,)
    chosen_nll: torch.Tensor,  # (B,) mean negative log-likelihood per chosen token (the SFT term)
    beta: float,
) -> torch.Tensor:
    return chosen_nll - beta * orpo_odds_ratio(policy_chosen_avg_logps, policy_rejected_avg_logps)
