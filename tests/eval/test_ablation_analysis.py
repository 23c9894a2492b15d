"""The ablation's analysis: chance levels, the spread over seeds, the protocol's comparisons,
accuracy per cue scale, the perspective drops, and the report sections they make."""

import json
import statistics

import numpy as np
import pytest

from emollm_jax import ablate_probes
from emollm_jax.eval import ablation_analysis as analysis
from emollm_jax.eval.ablation_files import summarise_probes, write_ablation
from emollm_jax.eval.metrics import compute_metrics
from emollm_jax.tasks import TASKS


def test_chance_levels():
    assert analysis.CHANCE["emotion_closed"] == 0.25
    assert analysis.CHANCE["intent"] == pytest.approx(1 / 6)
    assert analysis.CHANCE["mean"] == pytest.approx((0.25 + 1 / 7 + 1 / 6 + 1.5) / 6)


def test_spread_is_the_sample_standard_deviation():
    scores = {"a": {0: {"mean": 0.5}, 1: {"mean": 0.7}, 2: {"mean": 0.6}}, "b": {0: {"mean": 0.1}}}
    out = analysis.spread(scores)
    assert out["a"]["mean"] == pytest.approx(0.1)
    assert "b" not in out  # one seed has no spread


def test_comparisons_pair_by_seed_and_bonferroni_is_wider():
    scores = {
        "baseline": {s: {"mean": 0.5 + 0.01 * s} for s in range(5)},
        "mp": {s: {"mean": 0.55 + 0.01 * s + 0.005 * (-1) ** s} for s in range(5)},
    }
    wide = analysis.compare(scores, analysis.PRIMARY, confidence=analysis.BONFERRONI)
    narrow = analysis.compare(scores, analysis.PRIMARY)
    assert set(narrow) == {"mp - baseline"}  # the others' variants did not run
    iv, bonf = narrow["mp - baseline"]["mean"], wide["mp - baseline"]["mean"]
    assert iv.mean == pytest.approx(0.051) and iv.significant
    assert bonf.low < iv.low and bonf.high > iv.high
    assert analysis.BONFERRONI == pytest.approx(0.9875)


def test_per_scale_counts_unparsed_as_wrong():
    records = {
        "1": {"cause": {"scale": "local"}},
        "2": {"cause": {"scale": "local"}},
        "3": {"cause": {"scale": "relation"}},
        "4": {},
    }
    rows = [
        {"id": "1", "parsed": "joy", "gold": "joy"},
        {"id": "2", "parsed": None, "gold": "joy"},
        {"id": "3", "parsed": "no", "gold": "yes"},
        {"id": "4", "parsed": "no", "gold": "no"},
    ]
    assert analysis.per_scale(rows, records) == {"local": 0.5, "relation": 0.0}


HATE_GOLD = {"none": "yes", "text": "no", "image": "no"}  # by benign confounder


def _hate(confounder):
    caption = "neutral" if confounder == "text" else "demeaning"
    referent = "things" if confounder == "image" else "people"
    cues = {"caption": caption, "referent": referent, "confounder": confounder}
    return {"task": "hate", "cause": {"scale": "relation", "cues": cues}}


def test_per_confounder_tells_a_caption_reader_from_a_picture_reader():
    records = {f"{c}{k}": _hate(c) for c in analysis.CONFOUNDERS for k in range(2)}
    records["e0"] = {"task": "emotion_closed", "cause": {"cues": {"confounder": "none"}}}

    def answers(follow):  # what a model reading one cue alone answers
        rows = []
        for rid, r in records.items():
            cues = r["cause"]["cues"]
            said = (cues.get("caption") == "demeaning", cues.get("referent") == "people")
            parsed = "yes" if said[follow == "picture"] else "no"
            g = HATE_GOLD.get(cues["confounder"]) if r["task"] == "hate" else "joy"
            rows.append({"id": rid, "task": r["task"], "parsed": parsed, "gold": g})
        return rows

    assert analysis.per_confounder(answers("caption"), records) == {
        "none": 1.0, "text": 1.0, "image": 0.0
    }  # fmt: skip
    assert analysis.per_confounder(answers("picture"), records) == {
        "none": 1.0, "text": 0.0, "image": 1.0
    }  # fmt: skip
    unparsed = [{**r, "parsed": None} for r in answers("caption")]
    assert set(analysis.per_confounder(unparsed, records).values()) == {0.0}
    assert analysis.per_confounder(answers("caption"), {}) == {}  # records without a cause


def _rows(n_right, n=4, task="hate"):
    return [
        {"id": f"{task}-{k}", "task": task, "output": "yes", "parsed": "yes",
         "gold": "yes" if k < n_right else "no", "options": ["yes", "no"]}
        for k in range(n)
    ]  # fmt: skip


def _write(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "results.json").write_text("{}")


def test_perspective_drops_are_paired_on_the_probed_records(tmp_path):
    records = {f"hate-{k}": {"cause": {"scale": "relation"}} for k in range(4)}
    dirs = {}
    for seed in (0, 1):
        intact = tmp_path / f"runs/full/seed{seed}/eval/test"
        _write(intact, _rows(4))  # every record right
        # the probe saw the first two records only, and got one of them wrong
        probe = ablate_probes.zeroed_dir(intact, "relation")
        _write(probe, [{**r, "parsed": "no"} if r["id"] == "hate-0" else r for r in _rows(4)[:2]])
        dirs[seed] = intact
    found = ablate_probes.collect({"full": dirs}, records)
    assert found["perspectives_intact"]["full"][0]["hate"] == 1.0
    assert found["perspectives"]["full"]["relation"][1]["hate"] == 0.5
    summary = summarise_probes(found)
    drop = summary["perspectives"]["full"]["relation"]["hate"]
    assert drop.mean == pytest.approx(-0.5) and drop.n == 2
    assert summary["per_scale"]["full"]["relation"].mean == 1.0
    assert "per_confounder" not in summary  # these records name no confounder
    assert "faithfulness" not in summary  # bare-label replies carry no rationale


def test_zeroed_command_evaluates_the_run_with_one_perspective_zeroed(tmp_path):
    base = ["python", "-m", "emollm_jax.main_job", "--config=c.py:full", "--workdir=W",
            "--data=D", "--split=test", "--config.seed=2", "--config.x=1"]  # fmt: skip
    run = tmp_path / "run"
    command = ablate_probes.zeroed_command(base, run, run / "eval/test", "depth", 300)
    assert command[:3] == ["python", "-m", "emollm_jax.evaluate"]
    assert "--workdir=W" not in command and "--data=D" not in command
    assert f"--checkpoint={run}" in command and "--config.data.dir=D" in command
    assert f"--workdir={run / 'eval/test-zeroed-depth'}" in command
    assert "--config.model.zeroed_perspectives=('depth',)" in command
    assert "--config.eval.limit=300" in command and "--config.x=1" in command
    (run).mkdir()
    (run / "train_config.json").write_text(
        json.dumps({"model": {"projector": {"type": "multi_perspective",
                                            "perspectives": ["global", "patch"]}}})  # fmt: skip
    )
    assert ablate_probes.perspectives_of(run) == ("patch", "global")
    (run / "train_config.json").write_text(json.dumps({"model": {"projector": {"type": "mlp"}}}))
    assert ablate_probes.perspectives_of(run) == ()


def test_report_has_chance_spread_comparisons_and_probes(tmp_path):
    def metrics(right):
        return compute_metrics(_rows(right, n=8))

    runs = {
        "baseline": {s: {"generate": metrics(4 + s % 2)} for s in range(3)},
        "mp": {s: {"generate": metrics(6 + s % 2)} for s in range(3)},
    }
    probes = {"perspectives": {"mp": {"relation": {
        "hate": analysis.paired_difference({0: 0.5, 1: 0.25}, {0: 0.75, 1: 0.75})
    }}}}  # fmt: skip
    write_ablation(tmp_path, runs, ["generate"], {"seeds": [0, 1, 2], "split": "test"}, probes)
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["chance"]["hate"] == 0.5
    gen = doc["modes"]["generate"]
    assert gen["primary"]["mp - baseline"]["hate"]["mean"] == pytest.approx(0.25)
    assert gen["spread"]["baseline"]["hate"] == pytest.approx(statistics.stdev([0.5, 0.625, 0.5]))
    assert doc["probes"]["perspectives"]["mp"]["relation"]["hate"]["mean"] == pytest.approx(-0.375)
    md = (tmp_path / "results.md").read_text()
    assert "| chance | | 50.0 | 50.0 |" in md
    assert "Standard deviation over seeds" in md and "Bonferroni" in md
    assert "`mp - baseline`" in md and "## Perspective ablation" in md


def test_training_curve_per_share_and_paired_differences():
    scores = {
        "baseline": {s: {"mean": 0.60 + 0.01 * s} for s in range(5)},
        "full": {s: {"mean": 0.58} for s in range(5)},
        "mp": {s: {"mean": 0.9} for s in range(3)},  # on all of train only: no curve
        "baseline_train25": {s: {"mean": 0.40 + 0.02 * s} for s in range(3)},
        "full_train25": {s: {"mean": 0.50 + 0.01 * s} for s in range(3)},
        "full_train50": {s: {"mean": 0.55} for s in range(3)},
    }
    found = analysis.training_curve(scores)
    assert list(found["curve"]) == ["baseline", "full"]
    assert list(found["curve"]["full"]) == ["25", "50", "100"]  # ascending, not as seen
    assert found["curve"]["baseline"]["100"].n == 5 and found["curve"]["baseline"]["25"].n == 3
    assert found["curve"]["baseline"]["25"].mean == pytest.approx(0.42)
    diff = found["differences"]["full - baseline"]
    assert set(diff) == {"25", "100"}  # baseline has no 50% run to pair with
    assert diff["25"].mean == pytest.approx(0.09) and diff["25"].n == 3
    assert diff["100"].mean == pytest.approx(-0.04) and diff["100"].n == 5
    # The difference at 25% minus the one on all of train, per seed s in 0-2:
    # (0.50 + 0.01 s - 0.40 - 0.02 s) - (0.58 - 0.60 - 0.01 s) = 0.12; no 50% baseline run.
    shift = found["against_all"]["full - baseline"]
    assert set(shift) == {"25"} and shift["25"].n == 3
    assert shift["25"].mean == pytest.approx(0.12) and shift["25"].significant
    assert analysis.training_curve({k: scores[k] for k in ("baseline", "mp")}) == {}


def test_report_draws_the_training_curve(tmp_path):
    runs = {
        name: {s: {"generate": compute_metrics(_rows(right + s % 2, n=8))} for s in range(3)}
        for name, right in (("baseline", 5), ("full", 6), ("baseline_train25", 3),
                            ("full_train25", 5))
    }  # fmt: skip
    paths = write_ablation(tmp_path, runs, ["generate"], {"seeds": [0, 1, 2], "split": "test"})
    assert paths["curve_generate"].exists()
    gen = json.loads((tmp_path / "results.json").read_text())["modes"]["generate"]
    curve = gen["training_curve"]
    assert curve["differences"]["full - baseline"]["25"]["mean"] == pytest.approx(0.25)
    md = (tmp_path / "results.md").read_text()
    assert "| Variant | 25% of train | 100% of train |" in md
    assert "| `full - baseline` | +25.0 [+25.0, +25.0]* (3) | +12.5 [+12.5, +12.5]* (3) |" in md
    assert "| `full - baseline`, minus on all of train | +12.5 [+12.5, +12.5]* (3) | – |" in md


def test_record_churn_is_the_spread_of_independent_per_record_coin_flips():
    rng = np.random.default_rng(0)
    seeds, n = 400, 300
    rate = {t: rng.uniform(0.1, 0.9, n) for t in TASKS}  # each record's own chance of being right
    right = {
        s: {t: {f"{t}-{i}": bool(rng.random() < rate[t][i]) for i in range(n)} for t in TASKS}
        for s in range(seeds)
    }
    churn = analysis.record_churn(right)
    assert set(churn) == {*TASKS, analysis.MEAN}
    for t in TASKS:
        # The formula estimates what these runs do: their accuracies' spread over seeds.
        observed = statistics.stdev(sum(r[t].values()) / n for r in right.values())
        assert churn[t] == pytest.approx(observed, rel=0.1)
        assert churn[t] == pytest.approx(np.sqrt(np.sum(rate[t] * (1 - rate[t]))) / n, rel=0.05)
    mean = [statistics.mean(sum(r[t].values()) / n for t in TASKS) for r in right.values()]
    assert churn[analysis.MEAN] == pytest.approx(statistics.stdev(mean), rel=0.1)


def test_record_churn_counts_only_records_every_seed_answered():
    same = {"hate": {"a": True, "b": False}}
    assert analysis.record_churn({0: same, 1: same}) == {"hate": 0.0}
    # Two seeds that disagree on both records: p = 1/2 each, Var = 2 * 1/4 / 2^2 * 2/1.
    flipped = {
        0: {"hate": {"a": True, "b": False}},
        1: {"hate": {"a": False, "b": True, "c": True}},
    }
    assert analysis.record_churn(flipped) == {"hate": pytest.approx(0.5)}
    assert analysis.record_churn({0: same}) == {}  # one seed: no spread


def test_report_splits_the_spread_by_record_churn(tmp_path):
    def rows(seed):  # 8 hate records; seed 1 gets the first two wrong
        return [
            {"id": f"h{i}", "task": "hate", "parsed": "yes" if (i > 1 or seed == 0) else "no",
             "gold": "yes", "output": "yes"}
            for i in range(8)
        ]

    dirs = {}
    for seed in (0, 1):
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows(seed)))
        dirs[seed] = folder
    probes = summarise_probes(ablate_probes.collect({"baseline": dirs}, {}))
    # Records h0 and h1: p = 1/2; Var = 2 * 1/4 / 8^2 * 2.
    assert probes["record_churn"]["baseline"]["hate"] == pytest.approx(np.sqrt(1 / 64))
    runs = {"baseline": {s: {"generate": compute_metrics(rows(s))} for s in (0, 1)}}
    write_ablation(tmp_path, runs, ["generate"], {"seeds": [0, 1], "split": "t"}, probes)
    md = (tmp_path / "results.md").read_text()
    assert "## Spread over seeds that the split's records alone explain" in md
    assert "| Variant | Hate |" in md and "| `baseline` | 12.5 |" in md


def test_report_shows_hate_per_confounder(tmp_path):
    records = {f"{c}{k}": _hate(c) for c in analysis.CONFOUNDERS for k in range(2)}
    rows = [  # the caption alone: "yes" wherever the caption demeans
        {"id": rid, "task": "hate", "output": "x", "gold": HATE_GOLD[rid[:-1]],
         "parsed": "yes" if r["cause"]["cues"]["caption"] == "demeaning" else "no"}
        for rid, r in records.items()
    ]  # fmt: skip
    dirs = {}
    for seed in (0, 1):
        _write(tmp_path / f"seed{seed}", rows)
        dirs[seed] = tmp_path / f"seed{seed}"
    probes = summarise_probes(ablate_probes.collect({"emoprompt": dirs}, records))
    row = probes["per_confounder"]["emoprompt"]
    assert (row["none"].mean, row["text"].mean, row["image"].mean) == (1.0, 1.0, 0.0)
    runs = {"emoprompt": {s: {"generate": compute_metrics(rows)} for s in (0, 1)}}
    write_ablation(tmp_path, runs, ["generate"], {"seeds": [0, 1], "split": "t"}, probes)
    md = (tmp_path / "results.md").read_text()
    assert "## Hate per benign confounder (generate)" in md
    cells = "100.0 [100.0, 100.0] | 100.0 [100.0, 100.0] | 0.0 [0.0, 0.0]"
    assert f"| `emoprompt` | 2 | {cells} |" in md
    document = json.loads((tmp_path / "results.json").read_text())
    assert document["probes"]["per_confounder"]["emoprompt"]["image"]["mean"] == 0.0
