"""`tunesmith feedback`: show a prompt and two model answers in the terminal, record which one a person
prefers, and append it to a preference JSONL file that `task: dpo` and `task: reward` read directly.

Answers come from two models (runs or base models: A vs B) or, with one, from two samples of it. The
order on screen is random, so position does not bias the choice. "Both bad" becomes two thumbs-down
records in a sibling `*-unpaired.jsonl` (readable by `loss: kto`). Every record names the model that
wrote each answer. Each choice is appended and flushed at once: quitting loses nothing. The studio's
feedback page (`tunesmith ui`, `/feedback`) writes the same records through the same `append_choice`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

CHOICES = "1 = first is better, 2 = second is better, b = both bad, s = skip, q = quit"

Choice = Literal["first", "second", "both_bad", "skip"]  # a judgement of two answers, in the order shown
Outcome = Literal["pair", "both_bad", "skipped"]  # what was written for it
KEYS: dict[str, Choice] = {"1": "first", "2": "second", "b": "both_bad", "s": "skip"}  # terminal and page alike


@dataclass
class Answer:
    text: str
    model: str  # the run folder or model that wrote it


@dataclass
class FeedbackCounts:
    pairs: int = 0
    both_bad: int = 0
    skipped: int = 0

    def add(self, outcome: Outcome) -> None:
        if outcome == "pair":
            self.pairs += 1
        elif outcome == "both_bad":
            self.both_bad += 1
        else:
            self.skipped += 1


def unpaired_path(out: Path) -> Path:
    return out.with_name(f"{out.stem}-unpaired.jsonl")


def append_record(path: Path, record: dict[str, Any]) -> None:
    """One JSON line, flushed and synced: a crash or Ctrl-C never loses an answered prompt."""
    from tunesmith.files import append_jsonl

    append_jsonl(path, [record])


def says_nothing(first: Answer, second: Answer) -> bool:
    """Identical answers say nothing about preference, and a blank one cannot be trained on (the
    preference and KTO readers refuse empty answers): such a pair is recorded as a skip."""
    a, b = first.text.strip(), second.text.strip()
    return a == b or not a or not b


def append_choice(
    out: Path, prompt: str, first: Answer, second: Answer, choice: Choice, extra: dict[str, Any] | None = None
) -> Outcome:
    """Turn one judgement of (FIRST, SECOND) into records and append them: a preference pair to OUT
    ({prompt, chosen, rejected, chosen_model, rejected_model}, what `task: dpo` and `task: reward` read),
    two thumbs-down records to `unpaired_path(OUT)` for "both bad" (what `loss: kto` reads), nothing for a
    skip. EXTRA fields (the studio's `annotator`) are added to every record. Shared by the terminal
    (`collect`) and the studio's feedback page, so both write the same file format."""
    if choice == "skip" or says_nothing(first, second):
        return "skipped"
    extra = extra or {}
    if choice == "both_bad":
        for answer in (first, second):
            append_record(
                unpaired_path(out),
                {"prompt": prompt, "completion": answer.text, "label": False, "model": answer.model, **extra},
            )
        return "both_bad"
    chosen, rejected = (first, second) if choice == "first" else (second, first)
    record = {"prompt": prompt, "chosen": chosen.text, "rejected": rejected.text,
              "chosen_model": chosen.model, "rejected_model": rejected.model, **extra}
    append_record(out, record)
    return "pair"


def collect(
    prompts: list[str],
    answer_pairs: Callable[[str], tuple[Answer, Answer]],
    out: Path,
    ask: Callable[[str], str] = input,
    show: Callable[[str], None] = print,
    seed: int = 0,
) -> FeedbackCounts:
    rng = random.Random(seed)
    counts = FeedbackCounts()
    for number, prompt in enumerate(prompts, 1):
        first, second = answer_pairs(prompt)
        if rng.random() < 0.5:
            first, second = second, first
        show(
            f"\n[{number}/{len(prompts)}] prompt:\n{prompt}\n\n"
            f"--- answer 1 ---\n{first.text}\n\n--- answer 2 ---\n{second.text}\n"
        )
        key = ""
        while key not in KEYS and key != "q":
            key = ask(f"{CHOICES}: ").strip().lower()
        if key == "q":
            break
        counts.add(append_choice(out, prompt, first, second, KEYS[key]))
    return counts


def model_answerer(
    targets: list[str], max_new_tokens: int, temperature: float
) -> Callable[[str], tuple[Answer, Answer]]:
    """Answers from two targets (greedy), or two samples from one target."""
    import torch

    from tunesmith.data.records import Message
    from tunesmith.data.templates import build_renderer
    from tunesmith.engine.rollout import sample_completions
    from tunesmith.runs.evaluation import load_target, resolve_targets

    loaded = []
    for target in resolve_targets(targets, "instruction"):
        model, tokenizer = load_target(target)
        loaded.append(
            (target.name, model, tokenizer, build_renderer(tokenizer, target.config.data.chat_template))
        )

    def answers(
        name: str, model: Any, tokenizer: Any, renderer: Any, prompt: str, count: int
    ) -> list[Answer]:
        text = renderer.render([Message("user", prompt)], add_generation_prompt=True)
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        stops = sorted({tokenizer.eos_token_id, renderer.end_of_turn_id} - {None})
        outs = sample_completions(
            model, [ids], count, max_new_tokens, temperature, stops, tokenizer.pad_token_id, greedy=count == 1
        )
        return [Answer(tokenizer.decode(o, skip_special_tokens=True).strip(), name) for o in outs]

    def pair(prompt: str) -> tuple[Answer, Answer]:
        with torch.no_grad():
            if len(loaded) == 1:
                a, b = answers(*loaded[0], prompt, 2)
            else:
                a, b = answers(*loaded[0], prompt, 1)[0], answers(*loaded[1], prompt, 1)[0]
        return a, b

    return pair


def read_prompt_texts(path: Path) -> list[str]:
    """The last user turn of every record that has a prompt, in any format tunesmith reads."""
    from tunesmith.config import SourceConfig
    from tunesmith.data.records import prompt_of
    from tunesmith.data.sources import load_source
    from tunesmith.errors import UserError

    texts = []
    for record in load_source(SourceConfig(path=str(path))).records:
        messages = prompt_of(record)
        if messages is None:
            raise UserError(f"{record.source}: no prompt in this record")
        texts.append(messages[-1].content)
    return texts


def stream_print(stream: TextIO) -> Callable[[str], None]:
    return lambda text: print(text, file=stream, flush=True)
