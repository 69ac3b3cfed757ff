"""Alpaca: {instruction, input?, output, system?} → one user turn and one assistant turn."""

from __future__ import annotations

from typing import Any

from tunesmith.data.formats.base import FieldReader, build_conversation
from tunesmith.data.records import Message, Record


class AlpacaFormat:
    name = "alpaca"
    fields = ("instruction", "output")

    def to_record(self, row: dict[str, Any], where: str, columns: dict[str, str]) -> Record:
        read = FieldReader(row, where, columns, self.name)
        instruction, extra = read.text("instruction"), read.text("input", required=False)
        prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        messages = [Message("user", prompt), Message("assistant", read.text("output"))]
        system = read.text("system", required=False)
        if system.strip():
            messages.insert(0, Message("system", system))
        return build_conversation(messages, where)
