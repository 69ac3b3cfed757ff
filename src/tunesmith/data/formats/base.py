"""What every record format provides, and the shared field access with located errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from tunesmith.data.records import Conversation, Message, Record
from tunesmith.errors import UserError


class RecordFormat(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields a row must have (before column mapping)."""
        ...

    def to_record(self, row: dict[str, Any], where: str, columns: dict[str, str]) -> Record: ...


@dataclass(frozen=True)
class FieldReader:
    """Reads a format's fields from a row through the user's column mapping."""

    row: dict[str, Any]
    where: str
    columns: dict[str, str]
    format_name: str

    def text(self, name: str, required: bool = True) -> str:
        column = self.columns.get(name, name)
        value = self.row.get(column)
        if value is None:
            if required:
                mapped = f" (mapped from data.columns.{name})" if column != name else ""
                raise UserError(
                    f"{self.where}: record has no field {column!r}{mapped}, which format "
                    f"{self.format_name} needs; map it with data.columns"
                )
            return ""
        if not isinstance(value, str):
            value = str(value)
        return value

    def items(self, name: str) -> list[Any]:
        column = self.columns.get(name, name)
        value = self.row.get(column)
        if not isinstance(value, list) or not value:
            problem = "missing" if value is None else "not a non-empty list"
            raise UserError(f"{self.where}: field {column!r} is {problem} (format {self.format_name})")
        return value


def build_conversation(messages: list[Message], where: str) -> Conversation:
    if not any(m.role == "assistant" for m in messages):
        raise UserError(f"{where}: conversation has no assistant turn, so there is nothing to train on")
    return Conversation(messages=messages, source=where)
