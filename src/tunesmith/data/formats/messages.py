"""OpenAI-style chats: {"messages": [{"role": system|user|assistant, "content": ...}, ...]}."""

from __future__ import annotations

from typing import Any

from tunesmith.data.formats.base import FieldReader, build_conversation
from tunesmith.data.records import ROLES, Message, Record
from tunesmith.errors import UserError


class MessagesFormat:
    name = "messages"
    fields = ("messages",)

    def to_record(self, row: dict[str, Any], where: str, columns: dict[str, str]) -> Record:
        read = FieldReader(row, where, columns, self.name)
        messages = []
        for index, turn in enumerate(read.items("messages")):
            if not isinstance(turn, dict) or "role" not in turn or "content" not in turn:
                raise UserError(f"{where}: messages[{index}] needs 'role' and 'content'")
            role = str(turn["role"])
            if role not in ROLES:
                raise UserError(
                    f"{where}: messages[{index}].role is {role!r}; expected one of {', '.join(ROLES)}"
                )
            messages.append(Message(role, "" if turn["content"] is None else str(turn["content"])))
        return build_conversation(messages, where)
