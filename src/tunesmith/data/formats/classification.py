"""Labelled texts: {"text": ..., "label": ...} (optionally a second text) → LabeledText.

The columns come from data.text_field / data.label_field / data.text_pair_field. A row without its
label is kept with label None, so that every such row is reported together, not just the first.
"""

from __future__ import annotations

from typing import Any

from tunesmith.data.formats.base import FieldReader
from tunesmith.data.records import LabeledText, Record
from tunesmith.errors import UserError


class ClassificationFormat:
    name = "classification"
    fields = ("text", "label")

    def to_record(self, row: dict[str, Any], where: str, columns: dict[str, str]) -> Record:
        read = FieldReader(row, where, columns, self.name)
        text = read.text("text")
        if not text.strip():
            raise UserError(f"{where}: field {columns.get('text', 'text')!r} is empty")
        raw_label = row.get(columns.get("label", "label"))
        label = None if raw_label is None or str(raw_label).strip() == "" else str(raw_label).strip()
        pair = read.text("text_pair") if "text_pair" in columns else None
        return LabeledText(text=text, label=label, source=where, text_pair=pair)
