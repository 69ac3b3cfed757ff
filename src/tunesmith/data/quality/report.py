"""The check report: named sections (the JSON contract), findings with a severity, and chart data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]


@dataclass
class Finding:
    check: str
    severity: Severity
    message: str
    records: list[int] = field(default_factory=list)


@dataclass
class Report:
    records: int
    sections: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    charts: dict[str, dict[str, float]] = field(default_factory=dict)  # title → {label: value}

    def add(self, check: str, severity: str, message: str, records: Iterable[Any] | None = None) -> None:
        assert severity in ("error", "warning", "info"), severity
        self.findings.append(Finding(check, severity, message, sorted(int(r) for r in records or [])))  # type: ignore[arg-type]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            **self.sections,
            "findings": [
                {"check": f.check, "severity": f.severity, "message": f.message, "records": f.records[:100]}
                for f in self.findings
            ],
            "charts": self.charts,
        }
