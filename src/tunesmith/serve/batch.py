"""`tunesmith generate TARGET --data IN --out OUT`: answers for a file of prompts, resumable.

Each output line is the input record plus `response`, `finish_reason` and token counts (classification
runs: `predicted_label` and `probabilities`; an input that already has one of these fields is refused, so
nothing of it is lost). Work goes in chunks in input order, each chunk batched by prompt
length; a chunk's lines are appended and synced before the next starts. A rerun first checks that OUT
was written from this input (line by line), then skips what is answered: earlier lines are never
rewritten, and an OUT made from another file is refused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.data.readers import read_rows
from tunesmith.data.records import LabeledText, Message
from tunesmith.errors import UserError
from tunesmith.files import append_jsonl
from tunesmith.inference.engine import Job, batches_by_length, run_batch
from tunesmith.inference.sampling import Sampling
from tunesmith.serve.target import LoadedTarget

ADDED = (
    "response", "finish_reason", "prompt_tokens", "completion_tokens", "sample", "predicted_label", "probabilities",
)


@dataclass
class GenerateStats:
    records: int
    skipped: int  # already in OUT from an earlier run
    written: int
    completion_tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


def prompt_messages(row: dict[str, Any], where: str) -> list[Message]:
    """The prompt of a `messages` or `prompt` record (a trailing assistant turn is the reference, dropped),
    or of any other chat format tunesmith reads."""
    if "messages" in row:
        turns = row["messages"]
        if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
            raise UserError(f"{where}: field 'messages' must be a list of {{role, content}} objects")
        messages = []
        for number, turn in enumerate(turns):
            role, content = turn.get("role"), turn.get("content")
            if role not in ("system", "user", "assistant") or not isinstance(content, str):
                raise UserError(f"{where}: messages[{number}] needs a role (system/user/assistant) and text content")
            messages.append(Message(role, content))
        while messages and messages[-1].role == "assistant":
            messages.pop()
        if not messages or messages[-1].role != "user":
            raise UserError(f"{where}: field 'messages' has no user turn to answer")
        return messages
    prompt = row.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        return [Message("user", prompt)]
    return _prompt_of_other_format(row, where)


def _prompt_of_other_format(row: dict[str, Any], where: str) -> list[Message]:
    """alpaca, sharegpt and the other record formats tunesmith trains on: their prompt part."""
    from tunesmith.data.formats import detect_format
    from tunesmith.data.records import prompt_of

    try:
        record = detect_format(row, where, {}).to_record(row, where, {})
    except UserError:
        record = None
    messages = prompt_of(record) if record is not None else None
    if not messages:
        raise UserError(
            f"{where}: a record needs a 'prompt' (text) or 'messages' field (or the fields of another chat "
            "format: alpaca instruction/input, sharegpt conversations)"
        )
    return messages


def _input_part(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ADDED}


def answered_count(out: Path, rows: list[tuple[str, dict[str, Any]]], n: int) -> int:
    """Lines already in OUT, after checking each one answers the matching input record."""
    if not out.exists():
        return 0
    raw = out.read_bytes()
    complete = raw[: raw.rfind(b"\n") + 1]
    tail = raw[len(complete) :]
    if tail.strip() and _is_record(tail):  # a last record without its newline: a line like the others
        complete, tail = raw + b"\n", b""
    if not complete.strip() and tail.strip():
        raise UserError(f"--out {out} holds data that generate did not write; choose another --out")
    count = 0
    for lineno, line in enumerate(complete.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            written = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"--out {out}:{lineno} is not a JSON line; choose another --out") from None
        index = count // n
        if index >= len(rows) or not isinstance(written, dict) or _input_part(written) != _input_part(rows[index][1]):
            raise UserError(
                f"--out {out}:{lineno} does not answer {rows[min(index, len(rows) - 1)][0]}: it holds records of "
                "another input file (or other --n); choose another --out"
            )
        count += 1
    if tail:  # a line cut by a kill: ours (every full line matched), so it is dropped and answered again
        with out.open("r+b") as handle:
            handle.truncate(len(raw) - len(tail))
    elif not raw.endswith(b"\n") and raw:
        with out.open("ab") as handle:
            handle.write(b"\n")
    return count


def _is_record(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except ValueError:
        return False


def generate_file(
    target: LoadedTarget,
    data: Path,
    out: Path,
    sampling: Sampling,
    n: int = 1,
    batch_size: int = 8,
    progress: Any = None,
) -> GenerateStats:
    if out.resolve() == data.resolve():
        raise UserError(f"--out {out} is the input file; choose another path")
    if n > 1 and sampling.greedy:
        raise UserError(f"--n {n} samples of a greedy answer are all the same; set --temperature above 0")
    rows = read_rows(data)
    for where, row in rows:
        clash = next((k for k in ADDED if k in row), None)
        if clash is not None:
            raise UserError(f"{where}: the record already has a field {clash!r}, which generate writes; rename it")
    done = answered_count(out, rows, n)
    todo = [(i, s) for i in range(len(rows)) for s in range(n)][done:]
    started, tokens, written = time.perf_counter(), 0, 0
    if progress is not None:
        progress.start(len(todo))
    for chunk in _chunks(todo, batch_size * 4):
        if target.config.sequence_head or target.config.task.record_format == "classification":
            records = _classify(target, rows, chunk)
        else:
            records = _answer(target, rows, chunk, sampling, n, batch_size)
        tokens += sum(int(r.get("completion_tokens", 0)) for r in records)
        append_jsonl(out, records)
        written += len(records)
        if progress is not None:
            progress.advance(len(records), tokens)
    return GenerateStats(len(rows) * n, done, written, tokens, time.perf_counter() - started)


def _chunks(items: list[tuple[int, int]], size: int) -> Iterator[list[tuple[int, int]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _answer(
    target: LoadedTarget,
    rows: list[tuple[str, dict[str, Any]]],
    chunk: list[tuple[int, int]],
    sampling: Sampling,
    n: int,
    batch_size: int,
) -> list[dict[str, Any]]:
    jobs = []
    for index, sample in chunk:
        where, row = rows[index]
        ids = target.chat_ids(prompt_messages(row, where))
        room = target.context_length - len(ids)
        if room < 1:
            raise UserError(f"{where}: the prompt has {len(ids)} tokens, the model's context is {target.context_length}")
        seed = None if sampling.seed is None else sampling.seed + index * n + sample
        budget = min(sampling.max_new_tokens, room)
        jobs.append(Job(ids, Sampling(**{**sampling.__dict__, "seed": seed, "max_new_tokens": budget})))
    for batch in batches_by_length(jobs, batch_size):
        run_batch(target.model, target.tokenizer, batch, target.stop_ids)
    records = []
    for (index, sample), job in zip(chunk, jobs, strict=True):
        record = {**rows[index][1], "response": job.text.strip(), "finish_reason": job.finish_reason,
                  "prompt_tokens": len(job.prompt_ids), "completion_tokens": len(job.tokens)}
        if n > 1:
            record["sample"] = sample
        records.append(record)
    return records


def _classify(
    target: LoadedTarget, rows: list[tuple[str, dict[str, Any]]], chunk: list[tuple[int, int]]
) -> list[dict[str, Any]]:
    """A classification run: the label and the class probabilities of every record's text."""
    import torch

    from tunesmith.tasks.classification import class_scores

    field = target.config.data.text_field
    pair_field = target.config.data.text_pair_field
    texts = []
    for index, _ in chunk:
        where, row = rows[index]
        text = row.get(field, row.get("prompt"))
        if not isinstance(text, str):
            raise UserError(f"{where}: a classification record needs its text in field {field!r}")
        pair = row.get(pair_field) if pair_field else None
        texts.append(LabeledText(text, "", where, str(pair) if pair is not None else None))
    scores = class_scores(target.model, target.tokenizer, target.renderer, target.config, texts, target.labels)
    probs = torch.softmax(scores.float(), dim=-1).tolist()
    records = []
    for (index, _), p in zip(chunk, probs, strict=True):
        best = max(range(len(p)), key=p.__getitem__)
        records.append({**rows[index][1], "predicted_label": target.labels[best],
                        "probabilities": {name: round(v, 6) for name, v in zip(target.labels, p, strict=True)}})
    return records
