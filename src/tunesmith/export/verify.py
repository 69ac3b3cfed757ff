"""Proof that an export is the trained model: the artifact, loaded by the tool that will run it, answers
fixed probe prompts as the trained model does.

For every probe the trained model (as training left it: base + method, unmerged) gives a greedy
continuation and the log-probability of each of its tokens. The artifact is then scored on the same
token ids (so tokenizers cannot hide a weight problem): teacher-forced log-probabilities of the reference
tokens (max and mean absolute difference), the share of reference tokens that are also the artifact's
own argmax, its free-running greedy continuation (exact match rate) and whether it stops at the
end-of-turn token where the trained model stops. Separately, the artifact's own tokenizer and chat
template are checked against the run's: the same text must give the same ids and the same prompt.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from tunesmith.data.records import Message
from tunesmith.data.templates import ChatRenderer
from tunesmith.inference.engine import Job, run_batch
from tunesmith.inference.sampling import Sampling

PROBES = [
    "In two sentences, why would a bank flag a card payment as possible fraud?",
    "List three colours of the rainbow.",
    "What is 17 + 25?",
    "Write one sentence about the sea.",
]
PROBE_TOKENS = 40


@dataclass
class Probe:
    text: str
    prompt: str  # the chat-rendered prompt
    prompt_ids: list[int]
    tokens: list[int]  # the trained model's greedy continuation (stop token included)
    logprobs: list[float]  # teacher-forced log p of each of those tokens under the trained model
    argmax: list[int]  # the trained model's teacher-forced argmax at each of those positions
    stopped: bool  # ended at the end-of-turn / EOS token


@dataclass
class Agreement:
    tool: str
    greedy_match_rate: float  # probes whose free-running greedy continuation equals the trained one
    argmax_agreement: float  # positions where the artifact's argmax is the trained model's (teacher-forced)
    max_logprob_diff: float
    mean_logprob_diff: float
    stopped_at_end_of_turn: float | None  # of the probes where the trained model stops: share that do
    tokenizer_match: float | None = None  # probe prompts tokenized to the same ids
    chat_template_match: bool | None = None  # the artifact's own template renders the same prompt
    compared: str = "token log-probabilities"  # scoring heads: their raw scores (logits) instead

    def as_json(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class Runner(Protocol):
    tool: str

    def score(self, prompt: list[int], continuation: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(log p of each continuation token, the argmax token at each of those positions)."""
        ...

    def greedy(self, prompt: list[int], max_new: int) -> tuple[list[int], bool]:
        """Free-running greedy continuation and whether it ended at an end-of-turn token."""
        ...


def build_probes(
    model: Any, tokenizer: Any, renderer: ChatRenderer, texts: list[str], system: str | None
) -> list[Probe]:
    prompts = []
    for text in texts:
        messages = ([Message("system", system)] if system else []) + [Message("user", text)]
        prompts.append(renderer.render(messages, add_generation_prompt=True))
    ids = [list(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    stop_ids = sorted({renderer.end_of_turn_id, tokenizer.eos_token_id} - {None})
    jobs = run_batch(model, tokenizer, [Job(i, Sampling(max_new_tokens=PROBE_TOKENS)) for i in ids], stop_ids)
    # scored by one forward pass, as the artifacts are: generate's cached path may differ by rounding
    reference = TransformersRunner(model, tokenizer, stop_ids, "trained")
    probes = []
    for text, prompt, job in zip(texts, prompts, jobs, strict=True):
        logps, argmax = reference.score(job.prompt_ids, job.tokens)
        stopped = job.finish_reason == "stop"
        probes.append(Probe(text, prompt, job.prompt_ids, job.tokens, logps.tolist(), argmax.tolist(), stopped))
    return probes


def measure(probes: list[Probe], runner: Runner) -> Agreement:
    diffs: list[float] = []
    agree = total = matched = 0
    stops, stop_cases = 0, 0
    for probe in probes:
        logps, argmax = runner.score(probe.prompt_ids, probe.tokens)
        diffs.extend(np.abs(logps - np.asarray(probe.logprobs)).tolist())
        agree += int((argmax == np.asarray(probe.argmax)).sum())
        total += len(probe.tokens)
        tokens, stopped = runner.greedy(probe.prompt_ids, len(probe.tokens))
        matched += tokens == probe.tokens
        if probe.stopped:
            stop_cases += 1
            stops += stopped and len(tokens) == len(probe.tokens)
    return Agreement(
        runner.tool,
        matched / len(probes),
        agree / max(total, 1),
        max(diffs, default=0.0),
        float(np.mean(diffs)) if diffs else 0.0,
        stops / stop_cases if stop_cases else None,
    )


class TransformersRunner:
    """A transformers model (a merged folder, base + adapter, or transformers' GGUF loader)."""

    def __init__(self, model: Any, tokenizer: Any, stop_ids: list[int], tool: str = "transformers") -> None:
        self.model, self.tokenizer, self.stop_ids, self.tool = model.eval(), tokenizer, stop_ids, tool

    @torch.no_grad()
    def score(self, prompt: list[int], continuation: list[int]) -> tuple[np.ndarray, np.ndarray]:
        device = next(self.model.parameters()).device
        ids = torch.tensor([prompt + continuation], device=device)
        logits = self.model(input_ids=ids).logits[0, len(prompt) - 1 : -1].float()  # (T, V)
        logps = torch.log_softmax(logits, dim=-1)
        picked = logps.gather(1, torch.tensor(continuation, device=device)[:, None])[:, 0]
        return picked.cpu().numpy(), logits.argmax(-1).cpu().numpy()

    def greedy(self, prompt: list[int], max_new: int) -> tuple[list[int], bool]:
        job = run_batch(self.model, self.tokenizer, [Job(prompt, Sampling(max_new_tokens=max_new))], self.stop_ids)[0]
        return job.tokens, job.finish_reason == "stop"


class LlamaCppRunner:
    """The GGUF file in llama.cpp (llama-cpp-python), the runtime Ollama and LM Studio use."""

    tool = "llama.cpp"

    def __init__(self, path: Path, n_ctx: int = 2048) -> None:
        import llama_cpp

        self.lib = llama_cpp
        self.llm = llama_cpp.Llama(str(path), n_ctx=n_ctx, logits_all=True, verbose=False, seed=0)

    def score(self, prompt: list[int], continuation: list[int]) -> tuple[np.ndarray, np.ndarray]:
        self.llm.reset()
        self.llm.eval(prompt + continuation)
        logits = np.asarray(self.llm.scores[len(prompt) - 1 : len(prompt) + len(continuation) - 1], dtype=np.float64)
        logps = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
        return logps[np.arange(len(continuation)), continuation], logits.argmax(-1)

    def greedy(self, prompt: list[int], max_new: int) -> tuple[list[int], bool]:
        tokens: list[int] = []
        vocab = self.llm._model.vocab
        self.llm.reset()  # a fresh cache, as a new llama.cpp session would start (no reuse of score())
        for token in self.llm.generate(prompt, top_k=1, top_p=1.0, min_p=0.0, temp=0.0, repeat_penalty=1.0):
            tokens.append(int(token))
            if self.lib.llama_vocab_is_eog(vocab, token):
                return tokens, True
            if len(tokens) >= max_new:
                break
        return tokens, False

    def tokenize(self, text: str) -> list[int]:
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def chat_prompt(self, messages: list[dict[str, str]], bos: str, eos: str) -> str | None:
        """The prompt llama.cpp's own chat handling builds from the template stored in the file."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        if template is None:
            return None
        formatter = Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)
        return str(formatter(messages=messages).prompt)  # type: ignore[arg-type]

    def close(self) -> None:
        self.llm.close()


def tokenizer_agreement(probes: list[Probe], tokenize: Any) -> float:
    return sum(tokenize(p.prompt) == p.prompt_ids for p in probes) / len(probes)


def template_agreement(probes: list[Probe], system: str | None, render: Any) -> bool:
    for probe in probes:
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": probe.text}]
        if render(messages) != probe.prompt:
            return False
    return True


@torch.no_grad()
def head_agreement(trained: Any, exported: Any, tokenizer: Any, texts: list[str]) -> Agreement:
    """A scoring head (classification, reward): the exported model's raw scores on the probe texts."""
    enc = tokenizer(texts, padding=True, return_tensors="pt")
    scores = [m.eval()(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.float()
              for m in (trained, exported)]  # (N, C) each
    diff = (scores[0] - scores[1]).abs()
    agree = float((scores[0].argmax(-1) == scores[1].argmax(-1)).float().mean())
    return Agreement("transformers", agree, agree, float(diff.max()), float(diff.mean()), None,
                     compared="head scores (logits) on the probe texts; greedy = argmax class")
