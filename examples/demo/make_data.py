"""Generates the bundled demo data set (a bank's fraud-flag explanations in its house style).

Run once; the output files are committed. Kept so the data set can be regenerated or grown.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

MERCHANTS = [
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
    "a crypto exchange",
    "a furniture outlet",
    "a ticket reseller",
    "a coffee chain",
    "a money transfer service",
]
COUNTRIES = [
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
    "Poland",
    "Turkey",
    "India",
]
REASONS = {
    "new_country": (
        "first card use in {country}",
        "your card has never been used in {country} before",
        "confirm the trip in the app, then the card works there for 30 days",
    ),
    "high_amount": (
        "amount far above your usual spend",
        "{amount} EUR is more than five times your typical payment",
        "approve the payment in the app if it was you",
    ),
    "rapid_repeat": (
        "several payments within minutes",
        "{count} payments to {merchant} arrived within ten minutes",
        "check each payment in the app and report any you do not recognise",
    ),
    "night_time": (
        "unusual time of day",
        "the payment was made at {hour}:00, when you normally never pay",
        "approve it in the app, or freeze the card if it was not you",
    ),
    "card_not_present": (
        "online use of a card reported as kept at home",
        "the card details were typed in online at {merchant}",
        "if you did not shop online, freeze the card and we will send a new one",
    ),
}
QUESTION_FORMS = [
    "Why was my payment of {amount} EUR at {merchant} in {country} flagged?",
    "My card payment to {merchant} ({amount} EUR, {country}) got blocked. What happened?",
    "Can you explain the fraud alert on my {amount} EUR purchase at {merchant} in {country}?",
    "I got a fraud warning for {merchant} in {country}, {amount} EUR. Why?",
]


def make_record(rng: random.Random) -> dict[str, str]:
    reason_key = rng.choice(sorted(REASONS))
    title, detail, action = REASONS[reason_key]
    values = {
        "merchant": rng.choice(MERCHANTS),
        "country": rng.choice(COUNTRIES),
        "amount": rng.choice([39, 85, 120, 249, 480, 760, 1200, 2350, 4999]),
        "count": rng.randint(3, 7),
        "hour": rng.randint(1, 4),
    }
    question = rng.choice(QUESTION_FORMS).format(**values)
    answer = (
        f"Flag: {title.format(**values)}. Why: {detail.format(**values)}. "
        f"Next step: {action.format(**values)}. Your money is safe while we check."
    )
    return {"instruction": question, "output": answer}


def main() -> None:
    rng = random.Random(7)
    records = [make_record(rng) for _ in range(220)]
    out = Path(__file__).parent
    for name, part in (("train.jsonl", records[:192]), ("eval.jsonl", records[192:])):
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in part))


if __name__ == "__main__":
    main()
