"""Self-contained HTML charts: inline SVG drawn here, no scripts, no CDN, so a report opens offline and
in any browser years later. Written by hand because the plotting libraries that emit standalone HTML
(plotly, bokeh, altair) inline megabytes of JavaScript per page or fetch it from a CDN, and line and
bar charts of a few series need neither."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence

PALETTE = ("#2e86c1", "#e67e22", "#27ae60", "#8e44ad", "#c0392b", "#16a085", "#7f8c8d", "#d4ac0d")
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}"
    "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}"
    "table{border-collapse:collapse;margin:0.5em 0}pre{background:#f6f6f6;padding:1em;overflow:auto}"
    ".charts{display:flex;flex-wrap:wrap;gap:1em}.chart{border:1px solid #eee;padding:0.5em}"
    ".warn{background:#fdf2e9;border-left:4px solid #d68910;padding:0.5em 1em}"
    ".bad{background:#fdedec;border-left:4px solid #c0392b;padding:0.5em 1em}"
    ".ok{background:#eafaf1;border-left:4px solid #27ae60;padding:0.5em 1em}"
    ".side{display:grid;grid-template-columns:1fr 1fr 1fr;gap:0.5em}.side div{background:#f8f9f9;padding:0.5em;"
    "white-space:pre-wrap}"
)

Point = tuple[float, float]


def page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def bar_chart(title: str, values: dict[str, float]) -> str:
    if not values:
        return ""
    width, bar_height = 520, 22
    top = max(values.values()) or 1.0
    rows = []
    for n, (label, value) in enumerate(values.items()):
        y = n * (bar_height + 6)
        length = 300 * value / top
        shown = f"{value:.2f}" if value < 1 else f"{value:,.0f}"
        rows.append(
            f'<text x="0" y="{y + 16}" font-size="13">{html.escape(str(label))}</text>'
            f'<rect class="bar" x="180" y="{y}" width="{length:.1f}" height="{bar_height}" fill="{PALETTE[0]}">'
            f"<title>{html.escape(str(label))}: {shown}</title></rect>"
            f'<text x="{185 + length:.1f}" y="{y + 16}" font-size="12">{shown}</text>'
        )
    height = len(values) * (bar_height + 6)
    return (
        f'<div class="chart"><h3>{html.escape(title)}</h3>'
        f'<svg width="{width}" height="{height}" role="img">{"".join(rows)}</svg></div>'
    )


def ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About COUNT round tick values covering [low, high]."""
    if high <= low:
        return [low]
    raw = (high - low) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 2.5, 5, 10) if m * step >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step) + 1)]


def label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) < 0.01:
        return f"{value:.1e}"
    return f"{value:.3g}"


def line_chart(
    title: str,
    series: Mapping[str, Sequence[Point]],
    x_label: str = "step",
    y_label: str = "",
    dashed: Sequence[str] = (),
) -> str:
    """One SVG with a polyline per series (markers where a series has few points), shared axes."""
    clean = {
        name: [(float(x), float(y)) for x, y in points if y is not None and math.isfinite(float(y))]
        for name, points in series.items()
    }
    clean = {name: points for name, points in clean.items() if points}
    if not clean:
        return ""
    width, height, left, right, top, bottom = 520, 260, 60, 20, 20, 40
    xs = [x for points in clean.values() for x, _ in points]
    ys = [y for points in clean.values() for _, y in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    pad = (max(ys) - min(ys)) * 0.05 or abs(max(ys)) * 0.05 or 1.0
    y0, y1 = min(ys) - pad, max(ys) + pad

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)

    parts = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>',
    ]
    for value in ticks(y0, y1):
        parts.append(
            f'<line x1="{left}" y1="{sy(value):.1f}" x2="{width - right}" y2="{sy(value):.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{sy(value) + 4:.1f}" font-size="11" text-anchor="end">{label(value)}</text>'
        )
    for value in ticks(x0, x1):
        parts.append(
            f'<text x="{sx(value):.1f}" y="{height - bottom + 15}" font-size="11" text-anchor="middle">'
            f"{label(value)}</text>"
        )
    parts.append(
        f'<text x="{(width + left) / 2}" y="{height - 5}" font-size="12" text-anchor="middle">{html.escape(x_label)}</text>'
        f'<text x="12" y="{top + (height - top - bottom) / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + (height - top - bottom) / 2})">{html.escape(y_label)}</text>'
    )
    legend = []
    for n, (name, points) in enumerate(clean.items()):
        colour = PALETTE[n % len(PALETTE)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        dash = ' stroke-dasharray="5,3"' if name in dashed else ""
        parts.append(
            f'<polyline class="series" data-series="{html.escape(name)}" data-points="{len(points)}" '
            f'points="{coords}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        )
        if len(points) <= 40:
            parts += [
                f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}">'
                f"<title>{html.escape(name)} @ {label(x)}: {label(y)}</title></circle>"
                for x, y in points
            ]
        legend.append(f'<span style="color:{colour}">━ {html.escape(name)}</span>')
    return (
        f'<div class="chart"><h3>{html.escape(title)}</h3>'
        f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">{"".join(parts)}</svg>'
        f"<div>{' &nbsp; '.join(legend)}</div></div>"
    )


def parallel_chart(title: str, axes: Sequence[str], rows: Sequence[tuple[str, Mapping[str, object]]]) -> str:
    """Parallel coordinates: one vertical axis per name, one polyline per row through its values (numbers
    scaled to each axis, log-scaled when they span more than 100×; other values spread evenly as
    categories). A row without a value on an axis skips it. Rows come best first: the first is drawn on top
    in the first colour."""
    if not rows or not axes:
        return ""
    width, height, top, bottom, left = max(520, 130 * len(axes)), 300, 30, 40, 60
    gap = (width - 2 * left) / max(1, len(axes) - 1)
    place: dict[str, Callable[[object], float | None]] = {a: _axis_scale([r[1].get(a) for r in rows]) for a in axes}
    parts = []
    for i, axis in enumerate(axes):
        x = left + i * gap
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - bottom}" stroke="#999"/>'
                     f'<text x="{x:.1f}" y="{height - bottom + 18}" font-size="11" text-anchor="middle">'
                     f"{html.escape(axis)}</text>")
    for n, (label, values) in reversed(list(enumerate(rows))):
        points = []
        for i, axis in enumerate(axes):
            share = place[axis](values.get(axis))
            if share is not None:
                points.append(f"{left + i * gap:.1f},{height - bottom - share * (height - top - bottom):.1f}")
        colour = PALETTE[0] if n == 0 else "#b0b7bf"
        parts.append(f'<polyline class="series" data-series="{html.escape(label)}" points="{" ".join(points)}" '
                     f'fill="none" stroke="{colour}" stroke-width="{3 if n == 0 else 1.5}">'
                     f"<title>{html.escape(label)}</title></polyline>")
    return (f'<div class="chart"><h3>{html.escape(title)}</h3><svg width="{width}" height="{height}" role="img">'
            f'{"".join(parts)}</svg></div>')


def _axis_scale(values: Sequence[object]) -> Callable[[object], float | None]:
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)
               and math.isfinite(float(v))]
    if numbers and len(numbers) == sum(v is not None for v in values):
        low, high = min(numbers), max(numbers)
        use_log = low > 0 and high / low > 100
        if use_log:
            low, high = math.log10(low), math.log10(high)
        span = (high - low) or 1.0

        def share(value: object) -> float | None:
            if not isinstance(value, int | float) or isinstance(value, bool):
                return None
            v = math.log10(float(value)) if use_log else float(value)
            return (v - low) / span if high > low else 0.5
        return share
    names = sorted({repr(v) for v in values if v is not None})
    return lambda value: None if value is None else (names.index(repr(value)) + 0.5) / len(names)
