"""Generates the legal-clause summarisation example: contract clauses and one-sentence plain-English
summaries in a law firm's house style ("In short: ..."). Run once; the output files are committed."""

from __future__ import annotations

import json
import random
from pathlib import Path

PARTIES = [
    ("the Supplier", "the Customer"),
    ("the Licensor", "the Licensee"),
    ("the Landlord", "the Tenant"),
    ("the Contractor", "the Client"),
    ("the Employer", "the Employee"),
]
CLAUSES = [
    (
        "{a} may terminate this Agreement by giving {b} not less than {n} days' prior written notice, "
        "provided that all fees accrued up to the effective date of termination shall remain payable.",
        "In short: {a_short} can end the contract with {n} days' written notice, but fees already owed must still be paid.",
    ),
    (
        "{b} shall pay each undisputed invoice within {n} days of the invoice date; late payments shall bear "
        "interest at {r} per cent per annum above the base rate until paid in full.",
        "In short: {b_short} must pay invoices within {n} days, and late payments cost {r}% yearly interest above the base rate.",
    ),
    (
        "Neither party shall be liable for any failure or delay in performance caused by events beyond its "
        "reasonable control, including {event}, for so long as such event continues, up to {n} days.",
        "In short: nobody is liable for delays caused by events outside their control, such as {event}, for up to {n} days.",
    ),
    (
        "{b} shall keep confidential all information disclosed by {a} and shall not disclose it to any third "
        "party for a period of {n} years after termination, save as required by law.",
        "In short: {b_short} must keep {a_short}'s information secret for {n} years after the contract ends, "
        "unless the law requires otherwise.",
    ),
    (
        "The total aggregate liability of {a} under or in connection with this Agreement shall not exceed "
        "{r} times the fees paid by {b} in the {n} months preceding the claim.",
        "In short: {a_short} never owes more than {r} times the fees paid in the {n} months before a claim.",
    ),
    (
        "{b} shall not assign, transfer or subcontract any of its rights or obligations under this Agreement "
        "without the prior written consent of {a}, such consent not to be unreasonably withheld for more than {n} days.",
        "In short: {b_short} needs {a_short}'s written consent to pass the contract on, "
        "and consent cannot be unreasonably delayed beyond {n} days.",
    ),
]
EVENTS = ["floods", "strikes", "pandemics", "power failures", "war", "fire", "earthquakes"]


def rows(n: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        clause, summary = CLAUSES[i % len(CLAUSES)]
        a, b = rng.choice(PARTIES)
        values = {
            "a": a,
            "b": b,
            "a_short": a,
            "b_short": b,
            "n": rng.choice([7, 14, 30, 60, 90]),
            "r": rng.choice([2, 3, 4, 5]),
            "event": rng.choice(EVENTS),
        }
        text = clause.format(**values)
        out.append(
            {
                "prompt": f"Summarise this clause in one sentence:\n{text[0].upper() + text[1:]}",
                "completion": summary.format(**values).replace("In short: the", "In short: The"),
            }
        )
    rng.shuffle(out)
    return out


def main() -> None:
    here = Path(__file__).parent
    for name, n, seed in (("train.jsonl", 120, 0), ("eval.jsonl", 24, 1)):
        (here / name).write_text("".join(json.dumps(r) + "\n" for r in rows(n, seed)))


if __name__ == "__main__":
    main()
