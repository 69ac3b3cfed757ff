"""Record formats, one file each, chosen by `data.format` (or detected from the first row)."""

from __future__ import annotations

from typing import Any

from tunesmith.data.formats.alpaca import AlpacaFormat
from tunesmith.data.formats.base import RecordFormat
from tunesmith.data.formats.classification import ClassificationFormat
from tunesmith.data.formats.messages import MessagesFormat
from tunesmith.data.formats.preference import PreferenceFormat, PromptOnlyFormat, UnpairedFormat
from tunesmith.data.formats.prompt_completion import PromptCompletionFormat
from tunesmith.data.formats.sharegpt import ShareGptFormat
from tunesmith.data.formats.text import TextFormat
from tunesmith.errors import UserError
from tunesmith.registry import Registry

FORMATS: Registry[RecordFormat] = Registry("record format", "data.format", plugin_group="tunesmith.formats")
# detection order: the most specific formats first
_ALL: tuple[RecordFormat, ...] = (
    PreferenceFormat(),
    UnpairedFormat(),
    MessagesFormat(),
    ShareGptFormat(),
    AlpacaFormat(),
    PromptCompletionFormat(),
    TextFormat(),
    ClassificationFormat(),
    PromptOnlyFormat(),
)
for _format in _ALL:
    FORMATS.register(_format.name)(_format)
DETECTION_ORDER = (
    "preference",
    "kto",
    "messages",
    "sharegpt",
    "alpaca",
    "prompt_completion",
    "prompt",
    "text",
)


def detect_format(row: dict[str, Any], where: str, columns: dict[str, str]) -> RecordFormat:
    """The first format whose required fields the row has (through the column mapping)."""
    for name in DETECTION_ORDER:
        fmt = FORMATS.get(name)
        if all(columns.get(f, f) in row for f in fmt.fields):
            return fmt
    expected = "; ".join(f"{n}: {', '.join(FORMATS.get(n).fields)}" for n in DETECTION_ORDER)
    raise UserError(
        f"{where}: cannot tell the record format from fields {sorted(row)}; expected one of ({expected}), "
        "or set data.format and data.columns"
    )


__all__ = ["DETECTION_ORDER", "FORMATS", "RecordFormat", "detect_format"]
