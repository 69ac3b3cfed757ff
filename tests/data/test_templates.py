from typing import Any

from tunesmith.config import DataConfig
from tunesmith.data.records import Conversation, Message, TextDocument
from tunesmith.data.templates import build_renderer, tokenize_conversation, tokenize_records

MULTI = Conversation(
    [
        Message("system", "Be brief."),
        Message("user", "2+2?"),
        Message("assistant", "4"),
        Message("user", "and 3+3?"),
        Message("assistant", "six"),
    ],
    "mem:1",
)


def trained_text(tokenizer: Any, ids: list[int], labels: list[int]) -> list[str]:
    """The trained spans, decoded, one string per contiguous run."""
    runs: list[list[int]] = []
    for i, label in enumerate(labels):
        if label == -100:
            continue
        if runs and i - 1 >= 0 and labels[i - 1] != -100:
            runs[-1].append(ids[i])
        else:
            runs.append([ids[i]])
    return [tokenizer.decode(r) for r in runs]


def test_only_assistant_turns_trained_each_ending_with_end_of_turn(tokenizer: Any) -> None:
    renderer = build_renderer(tokenizer)
    sample = tokenize_conversation(MULTI, renderer, train_on_prompt=False)
    assert renderer.end_of_turn == "<|im_end|>"
    assert trained_text(tokenizer, sample.input_ids, sample.labels) == ["4<|im_end|>", "six<|im_end|>"]
    assert tokenizer.decode(sample.input_ids) == renderer.render(MULTI.messages)
    assert sample.labels[:-1] == [
        (i if lab != -100 else -100) for i, lab in zip(sample.input_ids[:-1], sample.labels[:-1], strict=True)
    ]


def test_train_on_prompt_trains_everything(tokenizer: Any) -> None:
    sample = tokenize_conversation(MULTI, build_renderer(tokenizer), train_on_prompt=True)
    assert sample.labels == sample.input_ids


def test_base_model_fallback_uses_eos_when_no_chat_tokens(tokenizer: Any) -> None:
    class NoChatTokens:  # a GPT-2-like tokenizer: no template, no <|im_end|> in the vocab
        def __init__(self, inner: Any) -> None:
            self.inner, self.chat_template = inner, None
            self.eos_token, self.eos_token_id = "<|endoftext|>", inner.convert_tokens_to_ids("<|endoftext|>")

        def get_vocab(self) -> dict[str, int]:
            return {k: v for k, v in self.inner.get_vocab().items() if k != "<|im_end|>"}

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return self.inner(*args, **kwargs)

    renderer = build_renderer(NoChatTokens(tokenizer))
    assert renderer.template is not None and "<|im_end|>" not in renderer.template
    assert renderer.end_of_turn == "<|endoftext|>"
    sample = tokenize_conversation(MULTI, renderer, train_on_prompt=False)
    spans = trained_text(tokenizer, sample.input_ids, sample.labels)
    assert spans == ["4<|endoftext|>", "six<|endoftext|>"]


def test_named_alpaca_template_masks_and_stops(tokenizer: Any) -> None:
    renderer = build_renderer(tokenizer, "alpaca")
    sample = tokenize_conversation(MULTI, renderer, train_on_prompt=False)
    assert "### Response:\n" in tokenizer.decode(sample.input_ids)
    assert trained_text(tokenizer, sample.input_ids, sample.labels) == ["4<|im_end|>", "six<|im_end|>"]


def test_truncation_policies(tokenizer: Any) -> None:
    renderer = build_renderer(tokenizer)
    long = Conversation([Message("user", "word " * 200), Message("assistant", "ok")], "f.jsonl:7")
    records = [long, MULTI]
    kept = tokenize_records(
        records, tokenizer, renderer, DataConfig(train="x", max_length=64, truncation="drop")
    )
    assert len(kept.samples) == 1 and kept.dropped_too_long == 1
    # truncating the long one keeps only prompt tokens: nothing left to train, so it is dropped too
    cut = tokenize_records(records, tokenizer, renderer, DataConfig(train="x", max_length=64))
    assert cut.truncated == 1 and cut.dropped_untrained == 1 and cut.tokens_lost > 100
    import pytest

    from tunesmith.errors import UserError

    with pytest.raises(UserError, match=r"f\.jsonl:7: sample has \d+ tokens, more than data\.max_length=64"):
        tokenize_records(
            records, tokenizer, renderer, DataConfig(train="x", max_length=64, truncation="error")
        )


def test_text_documents_chunked_with_eos(tokenizer: Any) -> None:
    doc = TextDocument("alpha beta gamma " * 40, "docs/a.txt")
    report = tokenize_records(
        [doc], tokenizer, build_renderer(tokenizer), DataConfig(train="x", max_length=32)
    )
    assert all(len(s) <= 32 for s in report.samples) and len(report.samples) > 2
    assert report.samples[-1].input_ids[-1] == tokenizer.eos_token_id
    assert all(s.labels == s.input_ids for s in report.samples)


def test_system_prompt_added(tokenizer: Any) -> None:
    conv = Conversation([Message("user", "hi"), Message("assistant", "yo")], "x")
    report = tokenize_records(
        [conv],
        tokenizer,
        build_renderer(tokenizer),
        DataConfig(train="x", system_prompt="You are Acme's bot."),
    )
    assert "You are Acme's bot." in tokenizer.decode(report.samples[0].input_ids)


def test_system_prompt_reaches_eval_prompts(make_config: Any, tmp_path: Any, tokenizer: Any) -> None:
    """The answers scored in evaluation are generated with the same system prompt training saw."""
    from tunesmith.config import RunConfig
    from tunesmith.data.prepare import prepare_data

    cfg = RunConfig.model_validate(make_config(data={"system_prompt": "You are Acme's bot."}))
    data = prepare_data(cfg, tokenizer, build_renderer(tokenizer))
    for record in data.eval_records + data.train_records:
        assert record.prompt_messages()[0] == Message("system", "You are Acme's bot.")
    assert data.eval_examples()[0][0] == data.eval_records[0].prompt_messages()[-1].content
