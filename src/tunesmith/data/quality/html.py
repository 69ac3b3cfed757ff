"""A self-contained HTML report (inline SVG bar charts, no scripts or network) of a data check."""

from __future__ import annotations

import html
import json

from tunesmith.data.quality.report import Report

COLOURS = {"error": "#c0392b", "warning": "#d68910", "info": "#2e86c1"}


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
            f'<rect x="180" y="{y}" width="{length:.1f}" height="{bar_height}" fill="#2e86c1"/>'
            f'<text x="{185 + length:.1f}" y="{y + 16}" font-size="12">{shown}</text>'
        )
    height = len(values) * (bar_height + 6)
    return f'<h3>{html.escape(title)}</h3><svg width="{width}" height="{height}" role="img">{"".join(rows)}</svg>'


def render_html(report: Report, title: str) -> str:
    findings = (
        "".join(
            f'<tr><td style="color:{COLOURS[f.severity]}">{f.severity}</td><td>{html.escape(f.check)}</td>'
            f"<td>{html.escape(f.message)}</td><td>{html.escape(', '.join(map(str, f.records[:20])))}</td></tr>"
            for f in report.findings
        )
        or '<tr><td colspan="4">no findings</td></tr>'
    )
    charts = "".join(bar_chart(name, values) for name, values in report.charts.items())
    sections = html.escape(
        json.dumps({k: v for k, v in report.to_json().items() if k not in ("findings", "charts")}, indent=1)[
            :20000
        ]
    )
    counts = f"{report.records} records, {len(report.errors)} errors, {len(report.findings) - len(report.errors)} other findings"
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:1000px}"
        "td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}"
        "table{border-collapse:collapse}pre{background:#f6f6f6;padding:1em;overflow:auto}"
    )
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1><p>{counts}</p>"
        "<h2>Findings</h2><table><tr><th>severity</th><th>check</th><th>finding</th><th>records</th></tr>"
        f"{findings}</table><h2>Charts</h2>{charts}<h2>Details</h2><pre>{sections}</pre></body></html>"
    )
