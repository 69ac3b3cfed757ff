"""`tunesmith chat TARGET`: a terminal chat that streams the answer as it is generated.

Lines are read from standard input, so a chat can be typed or scripted. A line ending in a backslash
continues on the next line (multi-line input); a line starting with `/` is a command. Ctrl-C while an
answer streams stops that answer (the worker checks a cancel flag after every token); Ctrl-C at the
prompt clears the line; /quit or end of input leaves.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from tunesmith.data.records import Message
from tunesmith.errors import UserError
from tunesmith.inference.engine import Job, run_batch
from tunesmith.inference.sampling import Sampling
from tunesmith.serve.target import LoadedTarget

HELP = """commands:
  /reset          start a new conversation
  /system TEXT    set the system prompt (and start over); /system alone shows it
  /base           answer with the base model (method switched off)
  /tuned          answer with the tuned model
  /compare        the last prompt answered by base and tuned, side by side
  /save FILE      append this conversation to FILE as a {"messages": [...]} record
  /help           this text
  /quit           leave (so does Ctrl-D)
end a line with \\ to continue on the next line; Ctrl-C stops an answer"""


@dataclass
class ChatSession:
    target: LoadedTarget
    sampling: Sampling
    system: str | None
    out: TextIO = sys.stdout
    history: list[Message] = field(default_factory=list)
    model_id: str = ""

    def __post_init__(self) -> None:
        self.model_id = self.model_id or self.target.name

    def say(self, text: str = "", end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()

    def messages(self) -> list[Message]:
        return ([Message("system", self.system)] if self.system else []) + self.history

    def answer(self, messages: list[Message], model_id: str, stream: bool = True) -> Job:
        """One answer, streamed to the screen; Ctrl-C cancels it and keeps what was said so far."""
        model = self.target.use(model_id)
        ids = self.target.chat_ids(messages)
        room = self.target.context_length - len(ids)
        if room < 1:
            raise UserError(f"the conversation has {len(ids)} tokens, the model's context is {self.target.context_length}")
        job = Job(ids, replace(self.sampling, max_new_tokens=min(self.sampling.max_new_tokens, room)))
        if stream:
            job.on_text = lambda text: self.say(text, end="")
        with _cancel_on_interrupt(job):
            run_batch(model, self.target.tokenizer, [job], self.target.stop_ids)
        if stream:
            self.say("" if job.finish_reason != "cancelled" else " [stopped]")
        return job


@contextmanager
def _cancel_on_interrupt(job: Job) -> Iterator[None]:
    """While an answer streams, Ctrl-C (SIGINT) cancels it instead of ending the program."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda *_: job.cancel.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def read_message(read_line: Callable[[str], str], say: Callable[[str], None]) -> str | None:
    """One user message (backslash-continued lines joined); None at end of input."""
    lines: list[str] = []
    prompt = "you> "
    while True:
        try:
            line = read_line(prompt)
        except EOFError:
            return None if not lines else "\n".join(lines)
        except KeyboardInterrupt:
            say("\n(cleared; /quit or Ctrl-D to leave)")
            lines, prompt = [], "you> "
            continue
        if line.endswith("\\"):
            lines.append(line[:-1])
            prompt = "...> "
            continue
        lines.append(line)
        return "\n".join(lines)


def run_chat(session: ChatSession, read_line: Callable[[str], str] = input) -> None:
    target = session.target
    switch = "/base and /compare available" if target.can_use_base and target.results else "no base switch"
    session.say(f"chatting with {session.model_id} ({switch}); /help for commands")
    while True:
        text = read_message(read_line, session.say)
        if text is None or text.strip() == "/quit":
            session.say("bye")
            return
        if not text.strip():
            continue
        if text.startswith("/"):
            _command(session, text.strip())
            continue
        session.history.append(Message("user", text))
        session.say(f"{session.model_id}> ", end="")
        try:
            job = session.answer(session.messages(), session.model_id)
        except UserError as exc:  # e.g. the chat outgrew the context: say so, keep the conversation
            session.history.pop()
            session.say(f"(error: {exc.message}; /save keeps what there is, /reset starts over)")
            continue
        session.history.append(Message("assistant", job.text.strip()))


def _command(session: ChatSession, line: str) -> None:
    name, _, arg = line.partition(" ")
    if name == "/help":
        session.say(HELP)
    elif name == "/reset":
        session.history.clear()
        session.say("(new conversation)")
    elif name == "/system":
        if arg.strip():
            session.system = arg.strip()
            session.history.clear()
            session.say("(system prompt set; new conversation)")
        else:
            session.say(f"(system prompt: {session.system or 'none'})")
    elif name in ("/base", "/tuned"):
        _switch(session, name)
    elif name == "/compare":
        _compare(session)
    elif name == "/save":
        _save(session, arg.strip())
    else:
        session.say(f"(unknown command {name}; /help lists them)")


def _switch(session: ChatSession, name: str) -> None:
    target = session.target
    if not (target.can_use_base and target.results):
        session.say("(this target has no separate base: a plain model, or a method that changed the base weights)")
        return
    session.model_id = target.base_name if name == "/base" else target.results[0]
    session.say(f"(now answering with {session.model_id})")


def _compare(session: ChatSession) -> None:
    target = session.target
    if not (target.can_use_base and target.results):
        session.say("(/compare needs a run with a switchable base)")
        return
    last_user = max((i for i, m in enumerate(session.history) if m.role == "user"), default=None)
    if last_user is None:
        session.say("(nothing to compare yet: send a message first)")
        return
    prompt = ([Message("system", session.system)] if session.system else []) + session.history[: last_user + 1]
    answers = [(mid, session.answer(prompt, mid, stream=False).text.strip())
               for mid in (target.base_name, target.results[0])]
    from rich.console import Console
    from rich.table import Table

    table = Table(*(mid for mid, _ in answers), show_lines=True, expand=True)
    table.add_row(*(text for _, text in answers))
    Console(file=session.out, width=_width()).print(table)


def _width() -> int:
    import shutil

    return max(60, shutil.get_terminal_size((100, 24)).columns)


def _save(session: ChatSession, path_text: str) -> None:
    if not path_text:
        session.say("(/save FILE: give a file name)")
        return
    if not any(m.role == "assistant" for m in session.history):
        session.say("(nothing to save yet)")
        return
    from tunesmith.feedback.collect import append_record

    path = Path(path_text).expanduser()
    append_record(path, {"messages": [{"role": m.role, "content": m.content} for m in session.messages()]})
    session.say(f"(appended {len(session.messages())} messages to {path})")


def load_lines(stream: TextIO) -> Callable[[str], str]:
    """input() on a terminal (line editing); plain reads from a pipe, echoing nothing."""
    if stream.isatty():
        import readline  # noqa: F401  (line editing and history for input())

        return input

    def read(prompt: str) -> str:
        sys.stdout.write(prompt)
        sys.stdout.flush()
        line = stream.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    return read

