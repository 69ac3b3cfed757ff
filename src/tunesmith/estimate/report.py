"""The estimate on the terminal: one table of parts, the verdict, and what would fit."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from tunesmith.estimate.estimator import Estimate


def print_estimate(found: Estimate) -> None:
    console = Console(highlight=False)
    title = f"estimate on {found.device}"
    if found.processes > 1:
        title += f", per process of {found.processes} ({found.strategy})"
    table = Table(title=title, show_header=False)
    table.add_row("parameters", f"{found.trainable_params:,} trainable of {found.total_params:,}")
    for part, mb in found.breakdown.items():
        table.add_row(f"  {part}", f"{mb:,.0f} MB")
    table.add_row("peak memory", f"{found.peak_memory_mb:,.0f} MB of {found.memory_mb:,.0f} MB")
    table.add_row("steps × tokens per step", f"{found.steps} × {found.tokens_per_step:,.0f}")
    table.add_row("FLOPs per token", f"{found.flops_per_token:.3g}")
    table.add_row("training time", f"{found.train_s:,.0f} s ({found.train_s / 60:.1f} min)")
    table.add_row("largest micro-batch that fits", str(found.max_micro_batch))
    console.print(table)
    console.print("fits" if found.fits else "[bold]does not fit[/bold]")
    for note in found.notes:
        console.print(f"note: {note}")
    for tip in found.suggestions:
        console.print(f"would fit: {tip['change']} ({' '.join(tip['overrides'])}): "
                      f"{tip['peak_memory_mb']:,.0f} MB, {tip['train_s']:,.0f} s")
    if not found.fits and not found.suggestions:
        console.print("nothing tried fits: a smaller model, or a device with more memory")
