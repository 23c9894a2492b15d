"""Intervals over seeds on hand-made numbers, and the ablation's files from hand-made runs."""

import json
import math

import pytest

from emollm_jax.eval.ablation_files import summarise, write_ablation
from emollm_jax.eval.intervals import paired_difference, t_interval
from emollm_jax.eval.metrics import compute_metrics

T_975_2 = 4.302652729911275  # Student's t quantile 0.975 with 2 degrees of freedom (tables)


def test_t_interval_by_hand():
    iv = t_interval([0.5, 0.7, 0.9])  # mean 0.7, sample sd 0.2
    half = T_975_2 * 0.2 / math.sqrt(3)
    assert math.isclose(iv.mean, 0.7)
    assert math.isclose(iv.low, 0.7 - half) and math.isclose(iv.high, 0.7 + half)
    assert iv.n == 3
    wide = t_interval([0.0, 1.0], bounds=(0.0, 1.0))  # t(0.975, 1) = 12.7: clipped
    assert (wide.mean, wide.low, wide.high) == (0.5, 0.0, 1.0)
    one = t_interval([0.4])
    assert (one.mean, one.low, one.high, one.significant) == (0.4, None, None, False)
    with pytest.raises(ValueError):
        t_interval([])


def test_paired_difference_by_hand():
    base = {0: 0.5, 1: 0.6, 2: 0.6, 7: 0.9}  # seed 7 has no partner: left out
    close = paired_difference({0: 0.6, 1: 0.8, 2: 0.7}, base)  # differences .1 .2 .1
    half = T_975_2 * (0.1 / math.sqrt(3)) / math.sqrt(3)  # sd of (.1, .2, .1) = .1 / sqrt(3)
    assert math.isclose(close.mean, 0.4 / 3) and math.isclose(close.low, 0.4 / 3 - half)
    assert close.n == 3 and close.low < 0 and not close.significant
    clear = paired_difference({0: 0.6, 1: 0.72, 2: 0.71}, base)  # .1 .12 .11: sd .01
    assert math.isclose(clear.low, 0.11 - T_975_2 * 0.01 / math.sqrt(3))
    assert clear.significant
    worse = paired_difference({0: 0.4, 1: 0.48, 2: 0.49}, base)  # -.1 -.12 -.11
    assert worse.high < 0 and worse.significant
    spread = paired_difference({0: 1.0, 1: 0.0}, {0: 0.0, 1: 1.0})  # +1, -1: clipped
    assert (spread.low, spread.high) == (-1.0, 1.0)
    with pytest.raises(ValueError, match="no seed"):
        paired_difference({5: 0.1}, base)


def _metrics(hate_correct: int, humor_correct: int, hate_unparsed: int = 0):
    """Four hate and four humor rows with the given numbers answered right; of the wrong hate
    answers, ``hate_unparsed`` could not be parsed."""
    rows = []
    for task, correct in (("hate", hate_correct), ("humor", humor_correct)):
        for i in range(4):
            wrong = None if task == "hate" and i >= 4 - hate_unparsed else "no"
            rows.append(
                {"id": i, "task": task, "gold": "yes", "parsed": "yes" if i < correct else wrong}
            )
    return compute_metrics(rows)


def test_ablation_files(tmp_path):
    runs = {
        "base": {0: {"generate": _metrics(2, 2, 1)}, 1: {"generate": _metrics(2, 3)}},
        "new": {
            0: {"generate": _metrics(4, 2), "likelihood": _metrics(3, 3)},
            1: {"generate": _metrics(4, 3)},
        },
    }
    summary, differences = summarise(runs, "generate")
    assert math.isclose(summary["base"]["humor"].mean, 0.625)
    hate = differences["new"]["hate"]  # +50 points on both seeds: zero spread, significant
    assert math.isclose(hate.mean, 0.5) and math.isclose(hate.low, 0.5) and hate.significant
    assert math.isclose(differences["new"]["humor"].mean, 0.0)
    assert not differences["new"]["humor"].significant
    assert set(summary["new"]) == {"hate", "humor", "mean"}

    paths = write_ablation(tmp_path, runs, ["generate", "likelihood"], {"seeds": [0, 1]})
    assert paths["plot_generate"].stat().st_size > 0 and paths["plot_likelihood"].exists()
    doc = json.loads(paths["json"].read_text())
    assert doc["modes"]["generate"]["differences"]["new"]["hate"]["significant"] is True
    assert doc["modes"]["likelihood"]["summary"]["new"]["hate"]["n"] == 1
    assert doc["runs"]["new"]["0"]["likelihood"]["hate"] == 0.75
    md = paths["md"].read_text()
    assert "| `new` | 2 | +50.0 [+50.0, +50.0]* |" in md
    assert "| `base` | 2 | 50.0 [50.0, 50.0] | 62.5 [" in md
    assert "## likelihood" in md and "| `new` | 1 | 75.0 | 75.0 | 75.0 |" in md
    # One hate reply of base's seed 0 unparsed: 25% of its hate rows, 12.5% of all its rows;
    # mean over the two seeds 12.5% and 6.2%; "new" parsed everything.
    assert doc["modes"]["generate"]["unparsed"]["base"] == {
        "hate": 0.125, "humor": 0.0, "mean": 0.0625
    }
    assert "| `base` | 12.5 | 0.0 | 6.2 |" in md and "| `new` | 0.0 | 0.0 | 0.0 |" in md
    assert md.count("Unparsed replies") == 1  # the likelihood mode parses nothing
    # base, seed 0: hate 2 yes, 1 no, 1 unparsed -> top 50%; humor 2 yes, 2 no -> 50%;
    # seed 1: hate 2/2 -> 50%, humor 3 yes -> 75%. new, generate: hate 4 yes -> 100% both seeds.
    top = doc["modes"]["generate"]["top_answer"]
    assert top["base"] == {"hate": 0.5, "humor": 0.625} and top["new"]["hate"] == 1.0
    assert "Most frequent answer" in md and "| `base` | 50.0 | 62.5 |" in md
