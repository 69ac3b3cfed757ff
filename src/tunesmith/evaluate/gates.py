"""Quality gates: thresholds a finished run must meet (`eval.gates`), so that a regression — a task
metric no better than the base, general perplexity up by more than allowed — marks the run
`failed-gate` in its summary and the registry instead of passing silently."""

from __future__ import annotations

from typing import Any

from tunesmith.sections import GateRule

LOWER_IS_BETTER = ("loss", "perplexity", "kl")


def lower_is_better(metric: str) -> bool:
    return any(word in metric for word in LOWER_IS_BETTER)


def metric_values(summary: dict[str, Any], metric: str) -> tuple[Any, Any]:
    """(before, after) of a metric: the forgetting watch's general_perplexity, or any eval metric."""
    if metric == "general_perplexity":
        forgetting = summary.get("forgetting") or {}
        return forgetting.get("general_perplexity_before"), forgetting.get("general_perplexity_after")
    before, after = summary.get("eval_before") or {}, summary.get("eval_after") or {}
    return before.get(metric), after.get(metric)


def check_gate(metric: str, rule: GateRule, before: Any, after: Any) -> tuple[bool, str]:
    """(passed, why) for one metric."""
    if not isinstance(after, (int, float)):
        return False, f"{metric} was not measured in this run"
    needs_before = rule.max_increase is not None or rule.max_decrease is not None or rule.beat_base
    if needs_before and not isinstance(before, (int, float)):
        return False, f"{metric} has no value before training to compare with"
    failures = []
    if rule.min is not None and after < rule.min:
        failures.append(f"{after:.4g} is below min {rule.min}")
    if rule.max is not None and after > rule.max:
        failures.append(f"{after:.4g} is above max {rule.max}")
    if rule.max_increase is not None and after > before * (1 + rule.max_increase) + 1e-12:
        failures.append(
            f"rose {after / before - 1:.1%} ({before:.4g} → {after:.4g}), more than {rule.max_increase:.1%}"
        )
    if rule.max_decrease is not None and after < before * (1 - rule.max_decrease) - 1e-12:
        failures.append(
            f"fell {1 - after / before:.1%} ({before:.4g} → {after:.4g}), more than {rule.max_decrease:.1%}"
        )
    if rule.beat_base and not (after < before if lower_is_better(metric) else after > before):
        failures.append(f"{after:.4g} does not beat the base model's {before:.4g}")
    if failures:
        return False, f"{metric}: " + "; ".join(failures)
    return True, f"{metric}: {after:.4g} passes"


def check_gates(gates: dict[str, GateRule], summary: dict[str, Any]) -> list[dict[str, Any]]:
    results = []
    for metric, rule in gates.items():
        before, after = metric_values(summary, metric)
        passed, message = check_gate(metric, rule, before, after)
        results.append(
            {
                "metric": metric,
                "rule": rule.model_dump(exclude_unset=True),
                "before": before,
                "after": after,
                "passed": passed,
                "message": message,
            }
        )
    return results
