"""Train/eval leakage: eval records that are exact or near duplicates of training records, and n-gram
contamination (an eval record sharing a 13-gram with training data)."""

from __future__ import annotations

from tunesmith.data.quality.duplicates import LSH_WEIGHTS, NUM_PERM, minhash
from tunesmith.data.quality.items import Item
from tunesmith.data.quality.report import Report
from tunesmith.data.quality.text import fingerprint, shingles


def check_leakage(
    train: list[Item], held: list[Item], report: Report, threshold: float = 0.8, ngram: int = 13
) -> None:
    from datasketch import MinHashLSH

    exact: dict[str, int] = {}
    for item in train:
        if item.texts:
            exact.setdefault(fingerprint(item.joined()), item.index)  # the first copy
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM, weights=LSH_WEIGHTS)
    grams: dict[str, int] = {}
    for item in train:
        if item.texts:
            lsh.insert(str(item.index), minhash(item.joined(), 5))
            for gram in shingles(item.joined(), ngram):
                grams.setdefault(gram, item.index)
    leaks = []
    for item in held:
        if not item.texts:
            continue
        text = item.joined()
        if fingerprint(text) in exact:
            leaks.append(
                {"eval_record": item.index, "train_record": exact[fingerprint(text)], "kind": "exact"}
            )
            continue
        near = lsh.query(minhash(text, 5))
        if near:
            leaks.append(
                {"eval_record": item.index, "train_record": min(int(n) for n in near), "kind": "near"}
            )
            continue
        shared = next(
            (grams[g] for g in shingles(text, ngram) if len(g.split()) == ngram and g in grams), None
        )
        if shared is not None:
            leaks.append({"eval_record": item.index, "train_record": shared, "kind": f"{ngram}-gram"})
    report.sections["leakage"] = leaks
    if leaks:
        share = len(leaks) / max(len(held), 1)
        # only verbatim copies make the eval meaningless; near / n-gram overlap is often shared boilerplate
        exact_share = sum(leak["kind"] == "exact" for leak in leaks) / max(len(held), 1)
        report.add(
            "leakage",
            "error" if exact_share > 0.5 else "warning",
            f"{len(leaks)} of {len(held)} eval records overlap training data ({share:.0%})",
            [leak["eval_record"] for leak in leaks],
        )
