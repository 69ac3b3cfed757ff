"""An Ollama `Modelfile` whose TEMPLATE and stop tokens reproduce the run's chat template.

Ollama templates are Go templates, the run's are Jinja, so the Jinja template is not translated: it is
rendered on marker conversations and cut into the pieces around each message (system, user, assistant
prefix and suffix, the generation prompt, and a default system prompt the template adds on its own).
Those pieces become a Go template that loops over `.Messages`. The result is then checked: the pieces,
put together as Ollama will, must rebuild the Jinja template's exact prompt for several conversations;
`template_verified` says whether they do.
"""

from __future__ import annotations

from dataclasses import dataclass

from tunesmith.data.records import Message
from tunesmith.data.templates import ChatRenderer

MODELFILE_MARK = "# Ollama Modelfile written by tunesmith"
MARK = {"system": "SYSTEMMARK7", "user": "USERMARK7", "assistant": "ASSISTANTMARK7", "user2": "SECONDMARK7"}


@dataclass
class TemplatePieces:
    prefix: dict[str, str]  # role → text before its content
    suffix: dict[str, str]  # role → text after its content
    generation: str  # text that opens the answer
    default_system: str | None  # system prompt the template adds when a chat has none

    def render(self, messages: list[Message]) -> str:
        """What Ollama builds from the Go template for these messages."""
        if self.default_system is not None and (not messages or messages[0].role != "system"):
            messages = [Message("system", self.default_system), *messages]
        text = "".join(self.prefix[m.role] + m.content + self.suffix[m.role] for m in messages)
        return text + self.generation


def _split(segment: str, end_of_turn: str) -> tuple[str, str]:
    """A segment between two contents → (suffix of the first, prefix of the second): the suffix runs
    through the end-of-turn token and the whitespace after it."""
    cut = segment.find(end_of_turn)
    cut = cut + len(end_of_turn) if cut >= 0 else 0
    while cut < len(segment) and segment[cut] in "\n ":
        cut += 1
    return segment[:cut], segment[cut:]


def template_pieces(renderer: ChatRenderer) -> TemplatePieces | None:
    """The pieces of the run's template, or None when it does not render marker chats in order."""
    chat = [
        Message("system", MARK["system"]),
        Message("user", MARK["user"]),
        Message("assistant", MARK["assistant"]),
        Message("user", MARK["user2"]),
    ]
    full = renderer.render(chat, add_generation_prompt=True)
    marks = [full.find(m.content) for m in chat]
    if -1 in marks or marks != sorted(marks):
        return None
    ends = [at + len(m.content) for at, m in zip(marks, chat, strict=True)]
    eot = renderer.end_of_turn
    system_suffix, user_prefix = _split(full[ends[0] : marks[1]], eot)
    user_suffix, assistant_prefix = _split(full[ends[1] : marks[2]], eot)
    assistant_suffix, _ = _split(full[ends[2] : marks[3]], eot)
    tail = full[ends[3] :]
    if not tail.startswith(user_suffix):
        return None
    pieces = TemplatePieces(
        {"system": full[: marks[0]], "user": user_prefix, "assistant": assistant_prefix},
        {"system": system_suffix, "user": user_suffix, "assistant": assistant_suffix},
        tail[len(user_suffix) :],
        None,
    )
    alone = renderer.render([Message("user", MARK["user"])], add_generation_prompt=True)
    if alone != pieces.render([Message("user", MARK["user"])]):
        start, end = pieces.prefix["system"], pieces.suffix["system"] + user_prefix + MARK["user"]
        if alone.startswith(start) and end in alone:
            pieces.default_system = alone[len(start) : alone.index(end)]
    return pieces


def template_verified(renderer: ChatRenderer, pieces: TemplatePieces) -> bool:
    chats = [
        [Message("user", "How do I reset my card PIN?")],
        [Message("system", "Answer briefly."), Message("user", "Hi there")],
        [
            Message("user", "2 + 2?"),
            Message("assistant", "4"),
            Message("user", "and 3 + 3?"),
        ],
    ]
    return all(renderer.render(c, add_generation_prompt=True) == pieces.render(c) for c in chats)


def _go_literal(text: str) -> str:
    return text.replace("{{", '{{ "{{" }}')


def go_template(pieces: TemplatePieces) -> str:
    parts = ["{{ range .Messages }}"]
    for index, role in enumerate(("system", "user", "assistant")):
        keyword = "if" if index == 0 else "else if"
        parts.append(
            f'{{{{ {keyword} eq .Role "{role}" }}}}{_go_literal(pieces.prefix[role])}{{{{ .Content }}}}'
            f"{_go_literal(pieces.suffix[role])}"
        )
    parts.append("{{ end }}{{ end }}" + _go_literal(pieces.generation))
    return "".join(parts)


def _quoted(text: str) -> str:
    return '"""' + text.replace('"""', '\\"\\"\\"') + '"""'


def write_modelfile_text(
    gguf_name: str, renderer: ChatRenderer, eos: str | None, system: str | None, run_name: str
) -> tuple[str, bool]:
    """(the Modelfile, whether its template reproduces the run's template exactly)."""
    pieces = template_pieces(renderer)
    lines = [f"{MODELFILE_MARK} for run {run_name}: ollama create NAME -f Modelfile",
             f"FROM ./{gguf_name}"]
    verified = False
    if pieces is not None:
        verified = template_verified(renderer, pieces)
        lines.append(f"TEMPLATE {_quoted(go_template(pieces))}")
        system = system if system is not None else pieces.default_system
    if system:
        lines.append(f"SYSTEM {_quoted(system)}")
    for stop in dict.fromkeys(s for s in (renderer.end_of_turn, eos) if s):
        lines.append(f'PARAMETER stop "{stop}"')
    return "\n".join(lines) + "\n", verified
