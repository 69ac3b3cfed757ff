"""Generates the sentiment example: short product reviews of an outdoor-gear shop labelled positive,
negative or neutral. Run once; the output files are committed."""

from __future__ import annotations

import json
import random
from pathlib import Path

PRODUCTS = [
    "tent",
    "rain jacket",
    "hiking boots",
    "backpack",
    "sleeping bag",
    "camping stove",
    "head torch",
    "trekking poles",
    "water filter",
    "fleece",
]
POSITIVE = [
    "The {p} is excellent, light and it kept me dry all weekend.",
    "Absolutely love this {p}. Great quality for the price.",
    "Best {p} I have owned, would happily buy it again.",
    "Arrived quickly and the {p} works perfectly. Very happy.",
    "Superb {p}: comfortable, sturdy and well made.",
    "Really impressed by the {p}, it exceeded my expectations.",
    "Fantastic {p}, my whole family is delighted with it.",
]
NEGATIVE = [
    "The {p} broke after two days. Very disappointed.",
    "Terrible {p}, the zip failed on the first trip and support ignored me.",
    "Do not buy this {p}. Cheap material and it leaks.",
    "Awful experience: the {p} arrived damaged and the refund took weeks.",
    "The {p} is uncomfortable and fell apart quickly. Waste of money.",
    "Poor quality {p}, returned it the same week.",
    "Worst {p} I have bought, the stitching ripped immediately.",
]
NEUTRAL = [
    "The {p} arrived on Tuesday in a brown box.",
    "I ordered the {p} in green; it is the standard size.",
    "The {p} comes with a storage bag and instructions.",
    "Bought the {p} for a trip next month, have not used it yet.",
    "The {p} weighs about what the website says.",
    "Delivery of the {p} took four days as stated.",
    "The {p} is the same model as last year's version.",
]


# held-out reviews name other products, so no eval record repeats a training record verbatim
EVAL_PRODUCTS = ["kayak", "compass", "map case", "gaiters", "thermos", "tarp", "camp chair"]


def rows(n: int, seed: int, products: list[str] = PRODUCTS) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label, templates = [("positive", POSITIVE), ("negative", NEGATIVE), ("neutral", NEUTRAL)][i % 3]
        out.append({"review": rng.choice(templates).format(p=rng.choice(products)), "sentiment": label})
    rng.shuffle(out)
    return out


def main() -> None:
    here = Path(__file__).parent
    for name, rows_ in (("train.jsonl", rows(150, 0)), ("eval.jsonl", rows(45, 1, EVAL_PRODUCTS))):
        (here / name).write_text("".join(json.dumps(r) + "\n" for r in rows_))


if __name__ == "__main__":
    main()
