"""Rationale faithfulness on the mini EmoBench v2: which cause terms a record has, and the shares
of generated rationales naming them, split by right and wrong answers."""

import json

import pytest

from emollm_jax.data.mini import make_mini_emobench
from emollm_jax.eval import faithfulness as f


@pytest.fixture(scope="module")
def v2_records(tmp_path_factory):
    out = make_mini_emobench.build(
        tmp_path_factory.mktemp("v2"), sizes={"train": 6, "validation": 6, "test": 60}, version=2
    )
    return out, [json.loads(x) for x in (out / "test.jsonl").read_text().splitlines()]


def test_terms_are_the_cues_the_reference_states():
    cause = {"rule": "emotion_marked_face", "scale": "relation",
             "cues": {"marker": "arrow", "side": "left", "expression": "surprise",
                      "other_expression": "neutral", "clown_nose": True, "count": 3}}  # fmt: skip
    reference = "The arrow points at the face on the left, wearing a clown nose: surprise."
    assert f.cause_terms(cause, reference) == ["arrow", "left", "surprise", "clown nose"]
    terms = ["arrow", "left", "surprise"]
    assert f.named_share("The arrow marks the left face; it shows surprise.", terms) == 1
    # the answer line does not count as naming the cause, and words must match whole
    assert f.named_share("The arrow marks a face.\nAnswer: surprise", terms) == pytest.approx(1 / 3)
    assert f.named_share("leftover arrows", terms) == 0


def test_reference_rationales_name_their_cause_and_wrong_ones_do_not(v2_records, tmp_path):
    data, records = v2_records
    by_id = {r["id"]: r for r in records}
    rows = []
    for k, r in enumerate(records):
        right = k % 2 == 0
        # right answers come with the record's own rationale, wrong ones with another
        # record's rationale of another rule
        other = next(o for o in records if o["cause"]["rule"] != r["cause"]["rule"])
        text = r["rationale"] if right else other["rationale"]
        wrong_label = next(o for o in (r.get("options") or ["x", "y"]) if o != r["answer"])
        rows.append({"id": r["id"], "output": f"{text}\nAnswer: {r['answer']}",
                     "parsed": r["answer"] if right else wrong_label, "gold": r["answer"]})  # fmt: skip
    result = f.faithfulness(rows, by_id)
    with_terms = [k for k, r in enumerate(records) if f.cause_terms(r["cause"], r["rationale"])]
    assert result["no_terms"] == len(records) - len(with_terms) < len(records) // 2
    assert result["right"]["n"] == sum(k % 2 == 0 for k in with_terms)
    assert result["right"]["names_cause"] == 1.0 == result["right"]["mean_terms_named"]
    assert result["wrong"]["n"] == sum(k % 2 == 1 for k in with_terms)
    assert result["wrong"]["names_cause"] < 0.5
    # the command reads a predictions file and the split, and writes the same result
    preds = tmp_path / "predictions.jsonl"
    preds.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert f.main([str(preds), str(data), "--out", str(tmp_path / "f.json")]) == 0
    assert json.loads((tmp_path / "f.json").read_text()) == result
