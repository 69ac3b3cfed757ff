"""Generates the brand-tone example: plain customer messages rewritten in a shop's voice (warm, short,
first-person plural, ends with a wave). Run once; the output files are committed."""

from __future__ import annotations

import json
import random
from pathlib import Path

ITEMS = ["order", "parcel", "refund", "exchange", "gift card", "subscription", "invoice", "repair"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
PAIRS = [
    (
        "Your {item} has been shipped and will arrive on {day}.",
        "Good news! We've sent your {item} on its way, and it should be with you on {day}. Happy trails!",
    ),
    (
        "Your {item} is delayed because of high demand.",
        "We're so sorry, your {item} is running a little late because lots of explorers ordered at once. Happy trails!",
    ),
    (
        "We cannot process your {item} without a receipt.",
        "We'd love to help with your {item}, we just need your receipt first. Happy trails!",
    ),
    (
        "Your {item} was cancelled as requested.",
        "All done! We've cancelled your {item} just as you asked. Happy trails!",
    ),
    (
        "The {item} will be processed within {n} working days.",
        "We're on it! Your {item} will be sorted within {n} working days. Happy trails!",
    ),
    (
        "Contact support if the {item} is damaged.",
        "If your {item} arrives with a scratch or a dent, just tell us and we'll make it right. Happy trails!",
    ),
]


# held-out messages are about other things, so no eval record repeats a training record verbatim
EVAL_ITEMS = ["voucher", "backorder", "warranty claim", "bike rack", "rental booking"]


def rows(n: int, seed: int, items: list[str] = ITEMS) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        plain, branded = PAIRS[i % len(PAIRS)]
        values = {"item": rng.choice(items), "day": rng.choice(DAYS), "n": rng.choice([2, 3, 5, 10])}
        out.append(
            {
                "instruction": "Rewrite this message in the Northwind Outfitters voice.",
                "input": plain.format(**values),
                "output": branded.format(**values),
            }
        )
    rng.shuffle(out)
    return out


def main() -> None:
    here = Path(__file__).parent
    for name, rows_ in (("train.jsonl", rows(120, 0)), ("eval.jsonl", rows(24, 1, EVAL_ITEMS))):
        (here / name).write_text("".join(json.dumps(r) + "\n" for r in rows_))


if __name__ == "__main__":
    main()
