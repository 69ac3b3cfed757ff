"""`tunesmith export` on the tiny Llama: each format loaded back by the tool that will use it and measured
against the trained model (export.json), the GGUF file in llama.cpp and transformers with the run's chat
template and an Ollama Modelfile beside it, a sabotaged GGUF writer caught before anything is handed
over, and outputs that never overwrite what tunesmith did not write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from tunesmith.cli import main
from tunesmith.errors import UserError
from tunesmith.export.exporter import export_run


def test_hf_export_is_verified_and_carries_a_model_card(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "merged"
    main(["export", str(tiny_runs["yes"]), "--format", "hf", "--out", str(out)])
    report = json.loads((out / "export.json").read_text())
    agreement = report["agreement"]["transformers"]
    assert report["tool"] == "tunesmith" and report["format"] == "hf" and report["lossless"] is True
    assert agreement["greedy_match_rate"] == 1.0 and agreement["argmax_agreement"] == 1.0
    assert agreement["max_logprob_diff"] < 1e-3 and agreement["tokenizer_match"] == 1.0
    assert agreement["chat_template_match"] is True
    card = (out / "README.md").read_text()
    assert "## Evaluation (before → after)" in card and "eval_loss" in card and "lora" in card
    from tunesmith.serve.target import load_served

    served = load_served(str(out))  # an exported folder is a TARGET like any model folder
    from tunesmith.data.records import Message
    from tunesmith.inference.engine import Job, run_batch
    from tunesmith.inference.sampling import Sampling

    job = run_batch(served.model, served.tokenizer,
                    [Job(served.chat_ids([Message("user", "Say something.")]), Sampling(max_new_tokens=6))],
                    served.stop_ids)[0]
    assert job.text.startswith("Yes")


def test_adapter_export_loads_with_plain_peft_and_as_a_target(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "adapter"
    result = export_run(tiny_runs["yes"], out, "adapter")
    config = json.loads((out / "adapter_config.json").read_text())
    base = AutoModelForCausalLM.from_pretrained(config["base_model_name_or_path"])
    tuned = PeftModel.from_pretrained(base, out)
    from tunesmith.serve.target import load_served

    served = load_served(str(out))
    ids = torch.tensor([[1, 20, 300, 4000, 5]])
    with torch.no_grad():
        torch.testing.assert_close(tuned(ids).logits, served.model(ids).logits)
    assert result.report["agreement"]["peft"]["argmax_agreement"] == 1.0
    assert served.name == "adapter"


def test_gguf_export_runs_in_llama_cpp_with_template_and_modelfile(
    tiny_runs: dict[str, Path], tmp_path: Path, capsys: Any
) -> None:
    import llama_cpp

    out = tmp_path / "ollama" / "yes.gguf"
    main(["export", str(tiny_runs["yes"]), "--format", "gguf", "--quant", "f16", "--out", str(out)])
    assert "verified" in capsys.readouterr().out
    report = json.loads((out.parent / "export.json").read_text())
    for tool in ("llama.cpp", "transformers-gguf"):
        agreement = report["agreement"][tool]
        assert agreement["argmax_agreement"] >= 0.95, (tool, agreement)
        assert agreement["mean_logprob_diff"] < 0.05 and agreement["tokenizer_match"] == 1.0
    assert report["agreement"]["llama.cpp"]["chat_template_match"] is True
    modelfile = (out.parent / "Modelfile").read_text()
    assert "FROM ./yes.gguf" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    assert '{{ else if eq .Role "user" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n' in modelfile
    assert report["modelfile_template_verified"] is True
    llm = llama_cpp.Llama(str(out), n_ctx=256, verbose=False)
    try:
        answer = llm.create_chat_completion([{"role": "user", "content": "Say something."}], max_tokens=8,
                                            temperature=0.0)
        assert answer["choices"][0]["message"]["content"].startswith("Yes")
        assert llm.metadata["tokenizer.ggml.pre"] == "gpt-2"
    finally:
        llm.close()
    # q8_0 is lossy: reported, not judged
    lossy = export_run(tiny_runs["yes"], tmp_path / "q8" / "yes-q8.gguf", "gguf", "q8_0")
    assert lossy.report["lossless"] is False and lossy.report["tolerance"] is None
    assert lossy.report["size_bytes"] < report["size_bytes"]
    assert lossy.report["agreement"]["llama.cpp"]["max_logprob_diff"] > 0


def test_a_broken_gguf_writer_is_caught_and_leaves_nothing(
    tiny_runs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The classic conversion bug (q/k not permuted for GGML's rotary layout) gives a file that loads
    and talks gibberish; verification must refuse it."""
    from tunesmith.export import gguf_file

    monkeypatch.setattr(gguf_file, "_permute", lambda weight, n_head: weight)
    out = tmp_path / "broken.gguf"
    with pytest.raises(UserError, match="does not reproduce the trained model .*llama.cpp.*nothing was written"):
        export_run(tiny_runs["yes"], out, "gguf", "f16")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_unsupported_architecture_is_one_line(tmp_path: Path, tiny_gpt2: Path, capsys: Any) -> None:
    from tests.conftest import train_tiny_run

    run = train_tiny_run(tmp_path, tiny_gpt2, "gpt2run", "Yes.", steps=2)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(run), "--format", "gguf", "--out", str(tmp_path / "g.gguf")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: export --format gguf: architecture 'gpt2' is not supported by tunesmith's GGUF writer "
        "(supported: llama, mistral); --format hf and --format adapter work for every model"
    )
    assert not (tmp_path / "g.gguf").exists()


def test_exports_never_overwrite_what_tunesmith_did_not_write(tiny_runs: dict[str, Path], tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="already exists and is not empty"):
        export_run(tiny_runs["yes"], mine, "hf")
    with pytest.raises(UserError, match="is not a tunesmith export; it is left alone"):
        export_run(tiny_runs["yes"], mine, "hf", overwrite=True)
    assert (mine / "notes.txt").read_text() == "keep me"
    (tmp_path / "Modelfile").write_text("FROM llama3\n")
    with pytest.raises(UserError, match="Modelfile already exists"):
        export_run(tiny_runs["yes"], tmp_path / "x.gguf", "gguf")
    with pytest.raises(UserError, match="was not written by tunesmith export"):
        export_run(tiny_runs["yes"], tmp_path / "x.gguf", "gguf", overwrite=True)
    assert (tmp_path / "Modelfile").read_text() == "FROM llama3\n"
    with pytest.raises(UserError, match="overlaps the run folder"):
        export_run(tiny_runs["yes"], tiny_runs["yes"] / "final", "hf", overwrite=True)
    with pytest.raises(UserError, match="must end in .gguf"):
        export_run(tiny_runs["yes"], tmp_path / "model.bin", "gguf")
    with pytest.raises(UserError, match="--quant applies to --format gguf only"):
        export_run(tiny_runs["yes"], tmp_path / "h", "hf", "q8_0")
    earlier = tmp_path / "earlier"
    export_run(tiny_runs["yes"], earlier, "hf")
    again = export_run(tiny_runs["no"], earlier, "hf", overwrite=True)  # our own export: replaced
    assert json.loads((again.path / "export.json").read_text())["run"].endswith("no")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_a_classification_head_export_is_verified_on_its_scores(
    make_config: Any, tmp_path: Path
) -> None:
    from tests.tasks.test_classification import classification_config
    from tunesmith import train

    run = train(classification_config(make_config, tmp_path), quiet=True)
    result = export_run(run.run_dir, tmp_path / "cls-export", "hf")
    agreement = result.report["agreement"]["transformers"]
    assert agreement["argmax_agreement"] == 1.0 and agreement["max_logprob_diff"] < 1e-4
    with pytest.raises(UserError, match="has a scoring head"):
        export_run(run.run_dir, tmp_path / "cls.gguf", "gguf")
