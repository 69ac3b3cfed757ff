"""Plain text ({"text": ...} or .txt files) for continued pre-training on domain text."""

from __future__ import annotations

from typing import Any

from tunesmith.data.formats.base import FieldReader
from tunesmith.data.records import Record, TextDocument
from tunesmith.errors import UserError


class TextFormat:
    name = "text"
    fields = ("text",)

    def to_record(self, row: dict[str, Any], where: str, columns: dict[str, str]) -> Record:
        text = FieldReader(row, where, columns, self.name).text("text")
        if not text.strip():
            raise UserError(f"{where}: field {columns.get('text', 'text')!r} is empty")
        return TextDocument(text=text, source=where)
