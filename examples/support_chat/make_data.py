"""Generates the customer-support example: two-turn chats (OpenAI messages format) with a shop's
support bot that follows its policies (returns within 30 days, order numbers first, no promises it
cannot keep). Run once; the output files are committed."""

from __future__ import annotations

import json
import random
from pathlib import Path

SYSTEM = "You are the support assistant of Northwind Outfitters, an outdoor-gear shop."
PRODUCTS = ["tent", "rain jacket", "pair of boots", "backpack", "sleeping bag", "stove"]
FLOWS = [
    (
        "I want to return my {p}.",
        "Happy to help with the return of your {p}. Could you share your order number (it starts with NW)?",
        "It's NW{num}.",
        "Thanks! Order NW{num} is within our 30-day return window. I've emailed you a free return label; "
        "the refund reaches your card within 5 working days after the {p} arrives.",
    ),
    (
        "Where is my {p}? It hasn't arrived.",
        "Sorry for the wait. Could you give me your order number (it starts with NW)?",
        "NW{num}",
        "Order NW{num} left our warehouse on {day} and the carrier shows it out for delivery. "
        "If it has not arrived by tomorrow evening, reply here and I'll open a trace.",
    ),
    (
        "My {p} is broken, can I get a new one?",
        "I'm sorry to hear that. What is your order number (it starts with NW), and what is wrong with the {p}?",
        "NW{num}, the {part} snapped.",
        "Thanks. A snapped {part} is covered by our 2-year warranty, so I've started a free replacement of the {p} "
        "for order NW{num}. You'll get a confirmation email within the hour.",
    ),
    (
        "Can you give me a discount on a {p}?",
        "I can't change prices in chat, but I can check for offers. Are you a member of our Trail Club?",
        "No, I'm not.",
        "Joining the Trail Club is free and gives 10% off your first order, including the {p}. "
        "You can sign up on our website in a minute.",
    ),
]
PARTS = ["zip", "buckle", "pole", "strap", "clip"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def rows(n: int, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        user1, bot1, user2, bot2 = FLOWS[i % len(FLOWS)]
        v = {
            "p": rng.choice(PRODUCTS),
            "num": rng.randint(10000, 99999),
            "day": rng.choice(DAYS),
            "part": rng.choice(PARTS),
        }
        out.append(
            {
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": user1.format(**v)},
                    {"role": "assistant", "content": bot1.format(**v)},
                    {"role": "user", "content": user2.format(**v)},
                    {"role": "assistant", "content": bot2.format(**v)},
                ]
            }
        )
    rng.shuffle(out)
    return out


def main() -> None:
    here = Path(__file__).parent
    for name, n, seed in (("train.jsonl", 120, 0), ("eval.jsonl", 20, 1)):
        (here / name).write_text("".join(json.dumps(r) + "\n" for r in rows(n, seed)))


if __name__ == "__main__":
    main()
