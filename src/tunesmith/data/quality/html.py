"""A self-contained HTML report (inline SVG bar charts, no scripts or network) of a data check."""

from __future__ import annotations

import html
import json

from tunesmith.charts import bar_chart, page
from tunesmith.data.quality.report import Report

COLOURS = {"error": "#c0392b", "warning": "#d68910", "info": "#2e86c1"}


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
    return page(
        title,
        f"<p>{counts}</p>"
        "<h2>Findings</h2><table><tr><th>severity</th><th>check</th><th>finding</th><th>records</th></tr>"
        f'{findings}</table><h2>Charts</h2><div class="charts">{charts}</div><h2>Details</h2><pre>{sections}</pre>',
    )
