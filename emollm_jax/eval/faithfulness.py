"""Rationale faithfulness: does a generated rationale name the record's true cause?

    python -m emollm_jax.eval.faithfulness PREDICTIONS.jsonl DATA_DIR [--split test] [--out F]

The mini EmoBench v2 names the cause of every label (a record's ``cause``: ``{rule, scale,
cues}``) and states it in its reference ``rationale``. Our rule: the cause's *terms* are the cue
values (strings; a true flag as its name, ``clown_nose`` -> "clown nose") that the reference
rationale itself uses as words, so only what the reference says counts ("fear", "arrow",
"left", "people", "sadness", "negative"). A generated rationale (the output without its
``Answer: ...`` line) names the cause when it holds every term as words (lower case, the
answer parser's normal form); records whose cause gives no term (a false flag, e.g. an upright
scene) are counted apart. Reported over the records with a rationale-bearing prediction, split
by whether the parsed answer was right: how many, the share that names the cause, and the mean
share of terms named.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from emollm_jax.eval.answers import normalize

_ANSWER_LINE = re.compile(r"answer\s*:[^\n]*", re.IGNORECASE)


def _words(text: str) -> str:
    return " " + " ".join(normalize(text)) + " "


def cause_terms(cause: Mapping, reference: str) -> list[str]:
    """The cause's cue values that the reference rationale states as words, in cue order."""
    said = _words(reference)
    terms = []
    for key, value in (cause.get("cues") or {}).items():
        if value is True:
            value = key.replace("_", " ")
        if not isinstance(value, str):
            continue
        term = " ".join(normalize(value))
        if term and f" {term} " in said and term not in terms:
            terms.append(term)
    return terms


def rationale_of(output: str) -> str:
    """A generated output without its answer line(s)."""
    return _ANSWER_LINE.sub(" ", output or "")


def named_share(output: str, terms: list[str]) -> float:
    """The share of ``terms`` the output's rationale holds as words."""
    said = _words(rationale_of(output))
    return sum(f" {t} " in said for t in terms) / len(terms)


def faithfulness(predictions: Iterable[Mapping], records: Mapping[str, Mapping]) -> dict:
    """``{"right"|"wrong": {n, names_cause, mean_terms_named}, "no_terms": n, "no_cause": n}``
    over ``predictions`` (rows with ``id``, ``output``, ``parsed``, ``gold``); ``records`` by id
    (with ``cause`` and ``rationale``)."""
    groups = {"right": [], "wrong": []}
    no_terms = no_cause = 0
    for row in predictions:
        record = records.get(str(row["id"]))
        if not record or not record.get("cause") or not record.get("rationale"):
            no_cause += 1
            continue
        terms = cause_terms(record["cause"], record["rationale"])
        if not terms:
            no_terms += 1
            continue
        right = row.get("parsed") is not None and row.get("parsed") == row.get("gold")
        groups["right" if right else "wrong"].append(named_share(row.get("output", ""), terms))
    out = {}
    for name, shares in groups.items():
        out[name] = {
            "n": len(shares),
            "names_cause": (sum(s == 1 for s in shares) / len(shares)) if shares else None,
            "mean_terms_named": (sum(shares) / len(shares)) if shares else None,
        }
    return out | {"no_terms": no_terms, "no_cause": no_cause}


def read_jsonl(path: str | Path) -> list[dict]:
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("predictions", help="predictions.jsonl of a generate evaluation")
    parser.add_argument("data", help="the mini EmoBench v2 folder the predictions came from")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", help="write the result as JSON here too")
    args = parser.parse_args(argv)
    records = {str(r["id"]): r for r in read_jsonl(Path(args.data) / f"{args.split}.jsonl")}
    result = faithfulness(read_jsonl(args.predictions), records)
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
