"""Prompt/completion pairs: {"prompt": ..., "completion": ...} → a user turn and an assistant turn."""

from __future__ import annotations

from typing import Any

from tunesmith.data.formats.base import FieldReader, build_conversation
from tunesmith.data.records import Message, Record


class PromptCompletionFormat:
    name = "prompt_completion"
    fields = ("prompt", "completion")

    def to_record(self, row: dict[str, Any], where: str, columns: dict[str, str]) -> Record:
        read = FieldReader(row, where, columns, self.name)
        messages = [Message("user", read.text("prompt")), Message("assistant", read.text("completion"))]
        return build_conversation(messages, where)
