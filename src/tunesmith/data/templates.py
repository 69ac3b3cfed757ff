"""Chat templates and the loss mask.

A conversation is rendered once with the chat template and tokenized once with character offsets;
assistant turns are located by rendering growing prefixes of the conversation (the template's own
output, so any template works), and a token is trained when it starts inside an assistant span. Each
trained span ends with the end-of-turn token, so a tuned model learns to stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tunesmith.data.records import IGNORE, Conversation, Message, TextDocument, TokenizedSample
from tunesmith.errors import UserError
from tunesmith.sections import DataConfig

if TYPE_CHECKING:
    from tunesmith.config import RunConfig

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
ALPACA = (
    "{% for message in messages %}{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '### Instruction:\n' + message['content'] + '\n\n' }}"
    "{% else %}{{ '### Response:\n' + message['content'] + '<|im_end|>' + '\n\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Response:\n' }}{% endif %}"
)
NAMED_TEMPLATES = {"chatml": CHATML, "alpaca": ALPACA}


@dataclass
class ChatRenderer:
    """Renders chats with one template and knows the token that ends an assistant turn."""

    tokenizer: Any
    template: str | None  # None: the tokenizer's own template
    end_of_turn: str  # text of the token that closes an assistant turn
    end_of_turn_id: int

    def render(self, messages: list[Message], add_generation_prompt: bool = False) -> str:
        chat = [{"role": m.role, "content": m.content} for m in messages]
        return str(
            self.tokenizer.apply_chat_template(
                chat,
                chat_template=self.template,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
            )
        )


def run_renderer(cfg: RunConfig, tokenizer: Any) -> ChatRenderer | None:
    """The chat renderer a run's model reads and writes through; none for a scoring head (plain texts)."""
    return None if cfg.sequence_head else build_renderer(tokenizer, cfg.data.chat_template)


def build_renderer(tokenizer: Any, name: str = "auto") -> ChatRenderer:
    """The tokenizer's template ('auto', falling back to chatml) or a named one."""
    if name == "auto" and getattr(tokenizer, "chat_template", None):
        template: str | None = None
    else:
        key = "chatml" if name == "auto" else name
        if key not in NAMED_TEMPLATES:
            raise UserError(
                f"data.chat_template: unknown template {name!r}; known: auto, {', '.join(NAMED_TEMPLATES)}"
            )
        template = NAMED_TEMPLATES[key]
    end_of_turn, end_id = _end_of_turn(tokenizer, template)
    if template is not None:
        template = template.replace("<|im_end|>", end_of_turn)
    return ChatRenderer(tokenizer, template, end_of_turn, end_id)


def _end_of_turn(tokenizer: Any, template: str | None) -> tuple[str, int]:
    """`<|im_end|>` when it is one token of the vocab and the template uses it, else the EOS token."""
    vocab = tokenizer.get_vocab()
    source = template if template is not None else (tokenizer.chat_template or "")
    if "<|im_end|>" in source and "<|im_end|>" in vocab:
        return "<|im_end|>", vocab["<|im_end|>"]
    if tokenizer.eos_token is None:
        raise UserError("the tokenizer has no EOS token, so a tuned model could not learn to stop")
    return tokenizer.eos_token, tokenizer.eos_token_id


def tokenize_conversation(
    conv: Conversation, renderer: ChatRenderer, train_on_prompt: bool
) -> TokenizedSample:
    messages = conv.messages
    text = renderer.render(messages)
    spans = [] if not train_on_prompt else [(0, len(text))]
    for index, message in enumerate(messages):
        if message.role != "assistant" or train_on_prompt:
            continue
        prefix = renderer.render(messages[:index], add_generation_prompt=True)
        upto = renderer.render(messages[: index + 1])
        start = len(prefix)
        if not text.startswith(upto) or not upto.startswith(prefix):
            raise UserError(
                f"{conv.source}: the chat template does not render this conversation turn by turn, so the "
                "loss mask cannot be placed; set data.chat_template: chatml"
            )
        end = upto.rfind(renderer.end_of_turn, start)
        spans.append((start, end + len(renderer.end_of_turn) if end >= 0 else len(upto.rstrip())))
    encoded = renderer.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids: list[int] = list(encoded["input_ids"])
    labels = [IGNORE] * len(input_ids)
    last_in_span: list[int] = []
    for span_start, span_end in spans:
        inside = [i for i, (s, _) in enumerate(encoded["offset_mapping"]) if span_start <= s < span_end]
        for i in inside:
            labels[i] = input_ids[i]
        if inside:
            last_in_span.append(inside[-1])
    # a template that does not close assistant turns with the end-of-turn token gets it inserted
    for i in sorted(last_in_span, reverse=True):
        if input_ids[i] != renderer.end_of_turn_id and not train_on_prompt:
            input_ids.insert(i + 1, renderer.end_of_turn_id)
            labels.insert(i + 1, renderer.end_of_turn_id)
    return TokenizedSample(input_ids, labels, conv.source)


def tokenize_text(doc: TextDocument, tokenizer: Any, max_length: int) -> list[TokenizedSample]:
    """A document → chunks of at most max_length tokens, all trained, EOS after the last one."""
    ids = list(tokenizer(doc.text, add_special_tokens=False)["input_ids"])
    if tokenizer.bos_token_id is not None and getattr(tokenizer, "add_bos_token", False):
        ids = [tokenizer.bos_token_id, *ids]
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    chunks = [ids[i : i + max_length] for i in range(0, len(ids), max_length)]
    return [
        TokenizedSample(chunk, list(chunk), f"{doc.source} chunk {n}" if len(chunks) > 1 else doc.source)
        for n, chunk in enumerate(chunks)
        if len(chunk) > 1
    ]


@dataclass
class TokenizeReport:
    samples: list[TokenizedSample]
    truncated: int = 0
    dropped_too_long: int = 0
    dropped_untrained: int = 0
    tokens_lost: int = 0


def with_system_prompt(record: Conversation, system_prompt: str | None) -> Conversation:
    """`data.system_prompt` before a chat that has no system message of its own: in training and in every
    answer generated for evaluation alike."""
    if not system_prompt or record.messages[0].role == "system":
        return record
    return Conversation([Message("system", system_prompt), *record.messages], record.source)


def tokenize_records(
    records: list[Any], tokenizer: Any, renderer: ChatRenderer, data: DataConfig
) -> TokenizeReport:
    """Tokenize every record and apply the truncation policy (`data.truncation`)."""
    report = TokenizeReport(samples=[])
    for record in records:
        if isinstance(record, TextDocument):
            report.samples.extend(tokenize_text(record, tokenizer, data.max_length))
            continue
        record = with_system_prompt(record, data.system_prompt)
        sample = tokenize_conversation(record, renderer, data.train_on_prompt)
        if len(sample) > data.max_length:
            if data.truncation == "error":
                raise UserError(
                    f"{sample.source}: sample has {len(sample)} tokens, more than data.max_length="
                    f"{data.max_length}; raise it or set data.truncation: truncate|drop"
                )
            if data.truncation == "drop":
                report.dropped_too_long += 1
                continue
            report.truncated += 1
            report.tokens_lost += len(sample) - data.max_length
            sample = TokenizedSample(
                sample.input_ids[: data.max_length], sample.labels[: data.max_length], sample.source, True
            )
        if sample.num_trained == 0:
            report.dropped_untrained += 1
            continue
        report.samples.append(sample)
    return report
