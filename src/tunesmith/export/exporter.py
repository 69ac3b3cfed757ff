"""`tunesmith export RUN --format hf|gguf|adapter [--quant f16|bf16|q8_0] --out PATH`.

- hf: a merged transformers folder (methods that add computation: the base plus the method's files in
  `OUT/method/`); adapter: the peft adapter folder plus the base it belongs to (vLLM `--enable-lora`,
  peft); gguf: one GGUF file (llama.cpp, Ollama) with an Ollama `Modelfile` beside it.
- Every export is built in a hidden temporary folder next to OUT, loaded back by the tool that will use
  it and measured against the trained model (`export.verify`); only then does it move into place, with
  `export.json` (the agreement) and a model card `README.md`. A lossless export that disagrees beyond
  the tolerance fails and leaves nothing behind; a lossy one (q8_0) reports its drift.
- Reads only the run folder. Never writes over what tunesmith did not create: an existing OUT needs
  --overwrite and must be an earlier tunesmith export (or empty); OUT may not overlap the run.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from tunesmith.data.templates import run_renderer
from tunesmith.errors import UserError
from tunesmith.export import verify
from tunesmith.export.card import CARD_MARK, model_card
from tunesmith.export.modelfile import MODELFILE_MARK
from tunesmith.files import atomic_write_json, atomic_write_text
from tunesmith.runs.tuned import RunModel, load_base, read_run

FORMATS = ("hf", "adapter", "gguf")
METHOD_SUBFOLDER = "method"
EXPORT_JSON = "export.json"
MODELFILE = "Modelfile"
# lossless exports must agree this well with the trained model (measured margins in the README)
TOLERANCE = {
    "exact": {"argmax_agreement": 1.0, "max_logprob_diff": 1e-3, "mean_logprob_diff": 1e-4},
    "half": {"argmax_agreement": 0.95, "max_logprob_diff": 0.5, "mean_logprob_diff": 0.05},
}


@dataclass
class ExportResult:
    path: Path
    merged: bool
    note: str  # one line for the user
    report: dict[str, Any] = field(default_factory=dict)  # what export.json holds


@dataclass
class Loaded:
    run: RunModel
    trained: Any  # base + method, as training left it
    tokenizer: Any
    renderer: Any
    probes: list[verify.Probe]
    base_folder: Path


def export_run(
    run_dir: str | Path, out: str | Path, fmt: str = "hf", quant: str | None = None, overwrite: bool = False,
    merge: bool = True,
) -> ExportResult:
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt}: unknown; use one of {', '.join(FORMATS)}")
    run = read_run(run_dir)
    out = Path(out)
    _check_quant(fmt, quant)
    _check_out(run, out, fmt, overwrite)
    loaded = _load(run, fmt)
    staging = Path(tempfile.mkdtemp(prefix=".tunesmith-export-", dir=_parent(out)))
    try:
        if fmt == "gguf":
            result = _export_gguf(loaded, out, staging, quant or "f16")
        elif fmt == "adapter":
            result = _export_adapter(loaded, out, staging)
        else:
            result = _export_hf(loaded, out, staging, merge)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return result


def _parent(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    return out.parent


def _check_quant(fmt: str, quant: str | None) -> None:
    from tunesmith.export.gguf_file import QUANTS

    if quant is not None and fmt != "gguf":
        raise UserError(f"--quant applies to --format gguf only (got --format {fmt})")
    if quant is not None and quant not in QUANTS:
        raise UserError(f"--quant {quant}: unknown; use one of {', '.join(QUANTS)}")


def _check_out(run: RunModel, out: Path, fmt: str, overwrite: bool) -> None:
    resolved, run_path = out.resolve(), run.path.resolve()
    if resolved == run_path or run_path in resolved.parents or resolved in run_path.parents:
        raise UserError(f"--out {out} overlaps the run folder {run.path}; export somewhere else")
    if fmt == "gguf":
        _check_gguf_out(out, overwrite)
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise UserError(f"--out {out} already exists and is not empty; choose another folder or pass --overwrite")
        if not (out.is_dir() and _ours(out / EXPORT_JSON)):
            raise UserError(f"--overwrite: {out} is not a tunesmith export; it is left alone")


def _check_gguf_out(out: Path, overwrite: bool) -> None:
    """FILE.gguf, Modelfile and export.json may replace only one earlier tunesmith export of FILE.gguf."""
    if out.suffix != ".gguf":
        raise UserError(f"--format gguf writes one file: --out must end in .gguf (got {out})")
    beside = [out, out.parent / MODELFILE, out.parent / EXPORT_JSON]
    taken = [p for p in beside if p.exists()]
    if not taken:
        return
    if not overwrite:
        raise UserError(f"--out: {taken[0]} already exists; choose another path or pass --overwrite")
    record = out.parent / EXPORT_JSON
    if not _ours(record) or json.loads(record.read_text()).get("artifact") != out.name:
        raise UserError(
            f"--overwrite: {taken[0]} was not written by tunesmith export of {out.name}; it is left alone "
            "(one GGUF export per folder)"
        )
    modelfile = out.parent / MODELFILE
    if modelfile.exists() and not modelfile.read_text(errors="replace").startswith(MODELFILE_MARK):
        raise UserError(f"--overwrite: {modelfile} was not written by tunesmith export; it is left alone")


def _ours(export_json: Path) -> bool:
    try:
        return json.loads(export_json.read_text()).get("tool") == "tunesmith"
    except (OSError, ValueError, AttributeError):
        return False


def _load(run: RunModel, fmt: str) -> Loaded:
    if fmt != "hf" and run.config.sequence_head:
        raise UserError(f"--format {fmt}: run {run.path.name} has a scoring head ({run.config.task.name}); use --format hf")
    source, base, tokenizer = load_base(run)
    if fmt == "gguf":
        from tunesmith.export.gguf_file import check_architecture

        check_architecture(base.config)
        if not run.method.mergeable:
            raise UserError(
                f"--format gguf: method {run.method.name} adds computation a GGUF file cannot hold; use --format hf"
            )
    if fmt == "adapter" and not (run.final / "adapter_config.json").is_file():
        raise UserError(
            f"--format adapter: method {run.method.name} does not save a peft adapter; use --format hf"
        )
    trained = run.method.load_trained(base, run.final).eval()
    renderer = run_renderer(run.config, tokenizer)
    if renderer is not None and renderer.template is not None:
        tokenizer.chat_template = renderer.template  # the template the run trained with travels with it
    probes = [] if renderer is None else verify.build_probes(
        trained, tokenizer, renderer, probe_texts(run), run.config.data.system_prompt
    )
    return Loaded(run, trained, tokenizer, renderer, probes, source.folder)


def probe_texts(run: RunModel, extra: int = 4) -> list[str]:
    """The fixed probes plus the first prompts of the run's eval data (when it is still readable)."""
    from tunesmith.feedback.collect import read_prompt_texts

    texts = list(verify.PROBES)
    eval_file = run.config.data.eval
    if isinstance(eval_file, str) and Path(eval_file).is_file():
        with contextlib.suppress(UserError):  # an eval file that changed format: the fixed probes still run
            texts += read_prompt_texts(Path(eval_file))[:extra]
    return texts


def _judge(agreements: list[verify.Agreement], level: str | None) -> list[str]:
    """What breaks the tolerance (empty: passed). level None: lossy, only tokenizer/template must hold."""
    problems = []
    for a in agreements:
        if a.tokenizer_match is not None and a.tokenizer_match < 1.0:
            problems.append(f"{a.tool}: tokenizer gives other ids on {1 - a.tokenizer_match:.0%} of the probes")
        if a.chat_template_match is False:
            problems.append(f"{a.tool}: the stored chat template renders another prompt")
        if level is None:
            continue
        if a.stopped_at_end_of_turn is not None and a.stopped_at_end_of_turn < 1.0:
            problems.append(f"{a.tool}: stops at the end-of-turn token on only {a.stopped_at_end_of_turn:.0%} of the "
                            "probes where the trained model stops")
        limits = TOLERANCE[level]
        if a.argmax_agreement < limits["argmax_agreement"]:
            problems.append(f"{a.tool}: argmax agreement {a.argmax_agreement:.3f} < {limits['argmax_agreement']}")
        for key in ("max_logprob_diff", "mean_logprob_diff"):
            if getattr(a, key) > limits[key]:
                problems.append(f"{a.tool}: {key} {getattr(a, key):.4g} > {limits[key]}")
    return problems


def _finish(
    loaded: Loaded, fmt: str, quant: str | None, agreements: list[verify.Agreement], level: str | None,
    artifact: Path, card_dir: Path, extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    problems = _judge(agreements, level)
    if problems:
        raise UserError(
            f"export --format {fmt}{f' --quant {quant}' if quant else ''} does not reproduce the trained model "
            f"({'; '.join(problems)}); nothing was written"
        )
    from tunesmith.data.sources import source_paths
    from tunesmith.runs.registry import fingerprint_paths

    cfg = loaded.run.config
    paths = [p for p in source_paths(cfg.data.train, cfg.data) if p.exists()]
    report = {
        "tool": "tunesmith",
        "format": fmt,
        "quant": quant,
        "artifact": artifact.name,
        "run": str(loaded.run.path.resolve()),
        "base_model": cfg.model.path,
        "base_model_folder": str(loaded.base_folder),
        "method": cfg.method.name,
        "chat_template_name": cfg.data.chat_template,
        "system_prompt": cfg.data.system_prompt,
        "lossless": level is not None,
        "tolerance": TOLERANCE[level] if level else None,
        "probes": [p.text for p in loaded.probes],
        "agreement": {a.tool: a.as_json() for a in agreements},
        **(extra or {}),
    }
    atomic_write_json(card_dir / EXPORT_JSON, report)
    card = model_card(loaded.run, fmt, artifact.name, report["agreement"], fingerprint_paths(paths) if paths else "n/a")
    atomic_write_text(card_dir / "README.md", card)
    return report


def _export_hf(loaded: Loaded, out: Path, staging: Path, merge: bool) -> ExportResult:
    from transformers import AutoTokenizer

    run, method = loaded.run, loaded.run.method
    folder = staging / "model"
    merged = merge and method.mergeable
    if merged:
        method.merge(loaded.trained).save_pretrained(folder)
        note = f"merged model ({method.name} folded into the weights): {out}"
    else:
        _, base, _ = load_base(run)
        base.save_pretrained(folder)
        shutil.copytree(run.final, folder / METHOD_SUBFOLDER)
        why = f"method {method.name} cannot be merged into the weights (it adds computation to the model); " if merge else ""
        note = f"{why}exported the base model to {out} and the {method.name} files to {out / METHOD_SUBFOLDER}"
    loaded.tokenizer.save_pretrained(folder)
    agreements = []
    if not loaded.probes:  # a scoring head: its scores on the probe texts
        tokenizer = AutoTokenizer.from_pretrained(folder)
        agreements.append(verify.head_agreement(loaded.trained, _reload_head(run, folder, merged), tokenizer,
                                                probe_texts(run)))
    else:
        reloaded = _reload_hf(run, folder, merged)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        agreement = verify.measure(loaded.probes, verify.TransformersRunner(reloaded, tokenizer, _stop_ids(loaded)))
        agreement.tokenizer_match = verify.tokenizer_agreement(
            loaded.probes, lambda text: list(tokenizer(text, add_special_tokens=False)["input_ids"])
        )
        agreement.chat_template_match = verify.template_agreement(
            loaded.probes, run.config.data.system_prompt,
            lambda messages: tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True),
        )
        agreements.append(agreement)
    report = _finish(loaded, "hf", None, agreements, "exact", folder, folder, {"merged": merged})
    _move_folder(folder, out)
    return ExportResult(out, merged, note + _agreement_note(agreements), report)


def _reload_head(run: RunModel, folder: Path, merged: bool) -> Any:
    from tunesmith.models.load import ModelSource
    from tunesmith.tasks import TASKS

    config = run.config.model_copy(update={"model": run.config.model.model_copy(update={"path": str(folder)})})
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = TASKS.get(config.task.name).load_model(ModelSource(folder, str(folder)), config, run.labels, tokenizer)
    if not merged:
        model = run.method.load_trained(model, folder / METHOD_SUBFOLDER)
    return model.eval()


def _reload_hf(run: RunModel, folder: Path, merged: bool) -> Any:
    from transformers import AutoModelForCausalLM

    model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    if not merged:
        model = run.method.load_trained(model, folder / METHOD_SUBFOLDER)
    return model.eval()


def _export_adapter(loaded: Loaded, out: Path, staging: Path) -> ExportResult:
    from peft import PeftModel
    from transformers import AutoTokenizer

    folder = staging / "adapter"
    shutil.copytree(loaded.run.final, folder)
    loaded.tokenizer.save_pretrained(folder)
    adapter_config = json.loads((folder / "adapter_config.json").read_text())
    adapter_config["base_model_name_or_path"] = str(loaded.base_folder)  # a folder vLLM / peft can load
    atomic_write_json(folder / "adapter_config.json", adapter_config)
    _, base, _ = load_base(loaded.run)
    reloaded = PeftModel.from_pretrained(base, folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    agreement = verify.measure(loaded.probes, verify.TransformersRunner(reloaded, tokenizer, _stop_ids(loaded), "peft"))
    agreement.tokenizer_match = verify.tokenizer_agreement(
        loaded.probes, lambda text: list(tokenizer(text, add_special_tokens=False)["input_ids"])
    )
    report = _finish(loaded, "adapter", None, [agreement], "exact", folder, folder)
    _move_folder(folder, out)
    note = f"peft adapter for base {loaded.run.config.model.path} ({loaded.base_folder}): {out}"
    return ExportResult(out, False, note + _agreement_note([agreement]), report)


def _export_gguf(loaded: Loaded, out: Path, staging: Path, quant: str) -> ExportResult:
    from tunesmith.export.gguf_file import LOSSLESS, write_gguf
    from tunesmith.export.modelfile import write_modelfile_text

    run = loaded.run
    merged = run.method.merge(loaded.trained).to(torch.float32)
    artifact = staging / out.name
    write_gguf(merged, loaded.tokenizer, loaded.renderer, artifact, quant, run.path.name)
    del merged
    agreements = [_llama_cpp_agreement(loaded, artifact), _transformers_gguf_agreement(loaded, artifact)]
    text, template_ok = write_modelfile_text(
        out.name, loaded.renderer, loaded.tokenizer.eos_token, run.config.data.system_prompt, run.path.name
    )
    atomic_write_text(staging / MODELFILE, text)
    level = "half" if quant in LOSSLESS else None
    if not template_ok:
        raise UserError(
            "export --format gguf: the run's chat template cannot be rebuilt as an Ollama TEMPLATE that renders "
            "the same prompts; nothing was written (use --format hf)"
        )
    report = _finish(loaded, "gguf", quant, agreements, level, artifact, staging,
                     {"modelfile_template_verified": template_ok, "size_bytes": artifact.stat().st_size})
    artifact.replace(out)  # export.json goes in last: its presence says the export is complete
    (staging / MODELFILE).replace(out.parent / MODELFILE)
    card = out.parent / "README.md"
    if not card.exists() or card.read_text(errors="replace").startswith(CARD_MARK):
        (staging / "README.md").replace(card)
    else:  # someone else's README: leave it, put the card beside the file
        (staging / "README.md").replace(out.with_suffix(".README.md"))
    (staging / EXPORT_JSON).replace(out.parent / EXPORT_JSON)
    drift = "" if level else " (lossy: drift measured, not judged)"
    return ExportResult(out, True, f"GGUF {quant}: {out} + {out.parent / MODELFILE}{drift}"
                        + _agreement_note(agreements), report)


def _llama_cpp_agreement(loaded: Loaded, artifact: Path) -> verify.Agreement:
    try:
        longest = max(len(p.prompt_ids) + len(p.tokens) for p in loaded.probes)
        runner = verify.LlamaCppRunner(artifact, n_ctx=max(512, longest + 16))
    except ImportError:
        raise UserError(
            "export --format gguf verifies the file in llama.cpp: pip install llama-cpp-python (builds from source)"
        ) from None
    try:
        agreement = verify.measure(loaded.probes, runner)
        agreement.tokenizer_match = verify.tokenizer_agreement(loaded.probes, runner.tokenize)
        tok = loaded.tokenizer
        agreement.chat_template_match = verify.template_agreement(
            loaded.probes, loaded.run.config.data.system_prompt,
            lambda messages: runner.chat_prompt(messages, tok.bos_token or "", tok.eos_token or ""),
        )
        return agreement
    finally:
        runner.close()


def _transformers_gguf_agreement(loaded: Loaded, artifact: Path) -> verify.Agreement:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(artifact.parent, gguf_file=artifact.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(artifact.parent, gguf_file=artifact.name)
    runner = verify.TransformersRunner(model, tokenizer, _stop_ids(loaded), "transformers-gguf")
    agreement = verify.measure(loaded.probes, runner)
    agreement.tokenizer_match = verify.tokenizer_agreement(
        loaded.probes, lambda text: list(tokenizer(text, add_special_tokens=False)["input_ids"])
    )
    return agreement


def _stop_ids(loaded: Loaded) -> list[int]:
    return sorted({loaded.renderer.end_of_turn_id, loaded.tokenizer.eos_token_id} - {None})


def _agreement_note(agreements: list[verify.Agreement]) -> str:
    parts = [
        f"{a.tool}: greedy match {a.greedy_match_rate:.0%}, argmax agreement {a.argmax_agreement:.1%}, "
        f"log-prob diff max {a.max_logprob_diff:.2g} mean {a.mean_logprob_diff:.2g}"
        for a in agreements
    ]
    return ("\nverified — " + "; ".join(parts)) if parts else ""


def _move_folder(folder: Path, out: Path) -> None:
    if out.exists():  # checked before: an earlier tunesmith export or an empty folder
        old = folder.with_name(f"{folder.name}.replaced")  # inside our own staging folder
        out.rename(old)
        folder.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        folder.rename(out)
