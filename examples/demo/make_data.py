"""Generates the demo data: a bank's assistant explaining why a card payment was flagged, from the facts
its fraud system passes along.

Every question carries five facts (amount against the customer's usual spend, country, device, hour
against the customer's usual hours, recent payments); exactly one is out of line, and the reference
names the flag that fact implies, why, and the bank's next step for that flag. The model must read the
facts to answer: the flag cannot be guessed from the wording.

Held out properly: the eval records use merchants, countries and devices that never occur in training,
customer messages and fact phrasings of their own, and facts in a different order; the last step drops
any eval record that tunesmith's data check would still find overlapping training data (decontamination),
so `tunesmith data check` passes the pair of files without a leakage warning.

Deterministic (seeded): `python examples/demo/make_data.py [OUT_DIR]` writes the same bytes every time
(tests/integration/test_demo_data.py checks them against the committed files).
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import Any

from tunesmith.data.quality.clean import decontaminate, deduplicate

TRAIN_SIZE, EVAL_PER_FLAG = 600, 10

# flag key -> (flag name, why template, next step)
FLAGS = {
    "amount": (
        "amount far above usual",
        "{merchant} charged {amount} EUR, usually {usual} EUR",
        "approve it in the app",
    ),
    "country": ("new country", "your card had never been used in {country}", "confirm your trip in the app"),
    "device": ("new device", "{merchant} was paid from a new {device}", "verify the device in the app"),
    "hour": (
        "unusual hour",
        "at {time}, outside your {start} to {end} hours, {merchant} was paid",
        "freeze the card if it was not you",
    ),
    "repeat": (
        "rapid repeat payments",
        "{merchant} got {count} payments in {minutes} minutes",
        "report unknown payments",
    ),
}

SPLITS: dict[str, dict[str, list[str]]] = {
    "train": {
        "merchant": [
            "an electronics store",
            "a fuel station",
            "an online marketplace",
            "a jewellery shop",
            "a hotel",
            "a supermarket",
            "a gaming site",
            "an airline",
            "a pharmacy",
            "a car rental desk",
            "a furniture outlet",
            "a ticket reseller",
        ],
        "country": [
            "Portugal",
            "Brazil",
            "Japan",
            "Nigeria",
            "Canada",
            "Romania",
            "Thailand",
            "Mexico",
            "Germany",
            "Vietnam",
            "Kenya",
            "Chile",
        ],
        "device": ["phone", "laptop", "tablet", "desktop computer", "smartwatch"],
        "message": [
            "Why was my payment at {merchant} flagged?",
            "My card got blocked at {merchant}. What happened?",
            "I got a fraud alert for {merchant}. Can you explain?",
            "Could you tell me why {merchant} declined my card?",
            "What is this warning about my purchase at {merchant}?",
        ],
    },
    "eval": {
        "merchant": [
            "a bookshop",
            "a crypto exchange",
            "a florist",
            "a bakery",
            "a sports retailer",
            "a parking operator",
            "a streaming platform",
            "a garden centre",
        ],
        "country": ["Poland", "Turkey", "India", "Morocco", "Peru", "Norway", "Egypt", "Ireland"],
        "device": ["games console", "smart TV", "smart speaker"],
        "message": [
            "Hi, {merchant} says my card was stopped, why is that?",
            "Please explain the block on my payment to {merchant}.",
            "{merchant} would not take my card today. Is something wrong?",
        ],
    },
}

# fact -> split -> (phrasings when normal, phrasings when out of line)
FACTS: dict[str, tuple[list[str], list[str]]] = {
    "amount": (
        [
            "amount {amount} EUR, close to the usual {usual} EUR",
            "{amount} EUR (typical for this customer: {usual} EUR)",
            "it cost {amount} EUR, in line with the usual {usual} EUR",
        ],
        [
            "amount {amount} EUR, {times} times the usual {usual} EUR",
            "{amount} EUR (far above the typical {usual} EUR)",
            "it cost {amount} EUR, way over the usual {usual} EUR",
        ],
    ),
    "country": (
        [
            "in {country}, where the card was used before",
            "country: {country} (seen before)",
            "{country}, a country this card has paid in many times",
        ],
        [
            "in {country}, where the card was never used before",
            "country: {country} (never seen before)",
            "{country}, a country this card has never paid in",
        ],
    ),
    "device": (
        [
            "from the customer's usual {device}",
            "device: {device} (known)",
            "on a {device} the customer has used before",
        ],
        [
            "from a {device} never seen on this account",
            "device: {device} (new)",
            "on a {device} the customer has never used",
        ],
    ),
    "hour": (
        [
            "at {time}, within the usual hours {start} to {end}",
            "time {time} (inside the usual {start} to {end})",
            "made at {time}, during the customer's usual {start} to {end}",
        ],
        [
            "at {time}, outside the usual hours {start} to {end}",
            "time {time} (outside the usual {start} to {end})",
            "made at {time}, long before the customer's usual {start} to {end}",
        ],
    ),
    "repeat": (
        ["no other payments in the last hour", "one earlier payment today", "recent payments: none"],
        [
            "{count} payments to the same merchant within {minutes} minutes",
            "recent payments: {count} in {minutes} minutes",
            "payment number {count} at this merchant in {minutes} minutes",
        ],
    ),
}


def make_values(rng: random.Random, split: dict[str, list[str]], flag: str) -> dict[str, Any]:
    usual = rng.choice([25, 40, 60, 80, 120, 150])
    ratio = rng.uniform(8, 30) if flag == "amount" else rng.uniform(0.4, 1.6)
    start, end = rng.randint(7, 9), rng.randint(20, 22)
    hour = rng.randint(1, 4) if flag == "hour" else rng.randint(start + 1, end - 1)
    return {
        "merchant": rng.choice(split["merchant"]),
        "country": rng.choice(split["country"]),
        "device": rng.choice(split["device"]),
        "usual": usual,
        "amount": max(5, round(usual * ratio)),
        "times": round(ratio),
        "time": f"{hour:02d}:{rng.randint(0, 59):02d}",
        "start": f"{start:02d}:00",
        "end": f"{end:02d}:00",
        "count": rng.randint(4, 9),
        "minutes": rng.randint(3, 15),
    }


def make_record(rng: random.Random, split_name: str, flag: str) -> dict[str, str]:
    split = SPLITS[split_name]
    values = make_values(rng, split, flag)
    facts = []
    for fact, phrasings in FACTS.items():
        normal, unusual = phrasings
        facts.append(rng.choice(unusual if fact == flag else normal).format(**values))
    rng.shuffle(facts)
    message = rng.choice(split["message"]).format(**values)
    question = f"Facts: {'; '.join(facts)}.\nCustomer: {message[0].upper()}{message[1:]}"
    name, why, step = FLAGS[flag]
    answer = f"Flag: {name}. Why: {why.format(**values)}. Next step: {step}."
    return {"instruction": question, "output": answer}


def make_split(rng: random.Random, split_name: str, size: int) -> list[dict[str, str]]:
    flags = [sorted(FLAGS)[i % len(FLAGS)] for i in range(size)]  # balanced: a share per flag
    rng.shuffle(flags)
    return [make_record(rng, split_name, flag) for flag in flags]


def main(out: Path = Path(__file__).parent) -> None:
    rng = random.Random(2026)
    train = deduplicate(make_split(rng, "train", TRAIN_SIZE))
    candidates = decontaminate(train, make_split(rng, "eval", 3 * EVAL_PER_FLAG * len(FLAGS)))
    held = []
    for name, _, _ in FLAGS.values():
        held += [r for r in candidates if r["output"].startswith(f"Flag: {name}.")][:EVAL_PER_FLAG]
    random.Random(0).shuffle(held)
    for name, rows in (("train.jsonl", train), ("eval.jsonl", held)):
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(train)} training and {len(held)} held-out records to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent)
