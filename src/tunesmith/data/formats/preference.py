"""Preference data.

- pairs: {"prompt": ..., "chosen": ..., "rejected": ...} (+ optional "margin") → PreferencePair
- unpaired (KTO): {"prompt": ..., "completion": ..., "label": true|false} → UnpairedFeedback

A prompt is text or a `messages` list (ending before the answer); an answer is text or a messages list
whose last assistant turn is the answer (TRL's conversational form).
"""

from __future__ import annotations

from typing import Any

from tunesmith.data.records import ROLES, Message, PreferencePair, PromptOnly, Record, UnpairedFeedback
from tunesmith.errors import UserError

TRUE, FALSE = {"true", "1", "yes", "up", "good"}, {"false", "0", "no", "down", "bad"}


def read_prompt(value: Any, where: str, field: str) -> list[Message]:
    if isinstance(value, str):
        if not value.strip():
            raise UserError(f"{where}: field {field!r} is empty")
        return [Message("user", value)]
    if isinstance(value, list) and value:
        messages = []
        for index, turn in enumerate(value):
            if not isinstance(turn, dict) or turn.get("role") not in ROLES or "content" not in turn:
                raise UserError(
                    f"{where}: {field}[{index}] needs a 'role' ({', '.join(ROLES)}) and 'content'"
                )
            messages.append(Message(str(turn["role"]), str(turn["content"] or "")))
        if not any(m.content.strip() for m in messages):
            raise UserError(f"{where}: field {field!r} is empty")
        return messages
    raise UserError(f"{where}: field {field!r} is missing or empty; give text or a list of messages")


def read_answer(value: Any, where: str, field: str) -> str:
    if isinstance(value, list):  # [{"role": "assistant", "content": ...}]
        turns = [t for t in value if isinstance(t, dict) and t.get("role") == "assistant"]
        value = turns[-1].get("content") if turns else None
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where}: field {field!r} is missing or empty")
    return value


class PreferenceFormat:
    name = "preference"
    fields = ("prompt", "chosen", "rejected")

    def to_record(self, row: dict[str, Any], where: str, columns: dict[str, str]) -> Record:
        def get(name: str) -> Any:
            return row.get(columns.get(name, name))

        prompt = read_prompt(get("prompt"), where, columns.get("prompt", "prompt"))
        chosen = read_answer(get("chosen"), where, columns.get("chosen", "chosen"))
        rejected = read_answer(get("rejected"), where, columns.get("rejected", "rejected"))
        if chosen.strip() == rejected.strip():
            raise UserError(
                f"{where}: chosen and rejected are identical, so the pair says nothing; drop or fix it"
            )
        margin = get("margin")
        return PreferencePair(prompt, chosen, rejected, where, None if margin is None else float(margin))


class UnpairedFormat:
    name = "kto"
    fields = ("prompt", "completion", "label")

    def to_record(self, row: dict[str, Any], where: str, columns: dict[str, str]) -> Record:
        label_field = columns.get("label", "label")
        label = row.get(label_field)
        text = str(label).strip().lower()
        if label is None or text not in TRUE | FALSE:
            raise UserError(
                f"{where}: field {label_field!r} must be true (thumbs up) or false (thumbs down), got {label!r}"
            )
        prompt = read_prompt(row.get(columns.get("prompt", "prompt")), where, "prompt")
        completion = read_answer(row.get(columns.get("completion", "completion")), where, "completion")
        return UnpairedFeedback(prompt, completion, text in TRUE, where)


class PromptOnlyFormat:
    """{"prompt": ...} alone (text or messages): prompts for PPO / GRPO to answer."""

    name = "prompt"
    fields = ("prompt",)

    def to_record(self, row: dict[str, Any], where: str, columns: dict[str, str]) -> Record:
        field = columns.get("prompt", "prompt")
        return PromptOnly(read_prompt(row.get(field), where, field), where)
