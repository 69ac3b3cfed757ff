"""The canonical records every input format converts to."""

from __future__ import annotations

from dataclasses import dataclass, field

IGNORE = -100  # the label of a token that is not trained (transformers' ignore_index)

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    role: str  # one of ROLES
    content: str


@dataclass
class Conversation:
    """A chat; by default only assistant turns are trained."""

    messages: list[Message]
    source: str  # "file:line" (or "file record N"), for error messages

    def prompt_messages(self) -> list[Message]:
        """Everything before the last assistant turn: what a model is asked at generation time."""
        last = max(i for i, m in enumerate(self.messages) if m.role == "assistant")
        return self.messages[:last]

    def last_answer(self) -> str:
        return next(m.content for m in reversed(self.messages) if m.role == "assistant")


@dataclass
class TextDocument:
    """Plain text for continued pre-training (domain adaptation): every token is trained."""

    text: str
    source: str


@dataclass
class LabeledText:
    """A text (or text pair) with its class, for classification."""

    text: str
    label: str | None  # None when the row has no label (reported together for all rows)
    source: str
    text_pair: str | None = None


@dataclass
class PreferencePair:
    """A prompt with a preferred and a dispreferred answer (DPO family, reward models)."""

    prompt: list[Message]  # the conversation up to the answer
    chosen: str
    rejected: str
    source: str
    margin: float | None = None  # optional strength of the preference (reward-model margin)

    def conversation(self, answer: str) -> Conversation:
        return Conversation([*self.prompt, Message("assistant", answer)], self.source)


@dataclass
class UnpairedFeedback:
    """A prompt, one answer and a thumbs up (desirable) or down (KTO)."""

    prompt: list[Message]
    completion: str
    desirable: bool
    source: str

    def conversation(self) -> Conversation:
        return Conversation([*self.prompt, Message("assistant", self.completion)], self.source)


@dataclass
class PromptOnly:
    """A prompt with no answer: what RL tasks (PPO, GRPO) sample completions for."""

    prompt: list[Message]
    source: str


Record = Conversation | TextDocument | LabeledText | PreferencePair | UnpairedFeedback | PromptOnly


def prompt_of(record: Record) -> list[Message] | None:
    """The prompt messages of any record that has one (None for plain text / labelled text)."""
    if isinstance(record, Conversation):
        return record.prompt_messages()
    if isinstance(record, PreferencePair | UnpairedFeedback | PromptOnly):
        return record.prompt
    return None


@dataclass
class TokenizedSample:
    """One training sample: token ids and labels aligned with them (-100 = not trained)."""

    input_ids: list[int]
    labels: list[int]
    source: str
    truncated: bool = False
    meta: dict[str, int] = field(default_factory=dict)
    class_id: int | None = None  # classification with a sequence head: the target class
    values: dict[str, float] = field(default_factory=dict)  # per-sample scalars: reference log-prob, margin
    text: str = ""  # the prompt as text, where a reward function needs it (ppo / grpo)

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def num_trained(self) -> int:
        # the first token is never predicted, so it never counts
        return sum(1 for label in self.labels[1:] if label != IGNORE)
