"""ShareGPT: {"conversations": [{"from": human|gpt|system, "value": ...}, ...]}."""

from __future__ import annotations

from typing import Any

from tunesmith.data.formats.base import FieldReader, build_conversation
from tunesmith.data.records import Message, Record
from tunesmith.errors import UserError

SPEAKERS = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}


class ShareGptFormat:
    name = "sharegpt"
    fields = ("conversations",)

    def to_record(self, row: dict[str, Any], where: str, columns: dict[str, str]) -> Record:
        read = FieldReader(row, where, columns, self.name)
        messages = []
        for index, turn in enumerate(read.items("conversations")):
            if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
                raise UserError(f"{where}: conversations[{index}] needs 'from' and 'value'")
            speaker = str(turn["from"])
            if speaker not in SPEAKERS:
                raise UserError(
                    f"{where}: conversations[{index}].from is {speaker!r}; expected one of {', '.join(SPEAKERS)}"
                )
            messages.append(Message(SPEAKERS[speaker], str(turn["value"])))
        return build_conversation(messages, where)
