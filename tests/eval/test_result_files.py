"""Result files: they exist, the JSON round-trips, the Markdown table has the paper's shape."""

import json

import pytest

from emollm_jax.eval.metrics import compute_metrics
from emollm_jax.eval.result_files import (
    TASK_TITLES,
    markdown_table,
    read_results,
    write_results,
)
from emollm_jax.tasks import TASKS


def row(i, task, gold, parsed):
    return {"id": i, "task": task, "gold": gold, "parsed": parsed}


# emotion_closed 2/3 = 66.7 %, hate 1/8 = 12.5 %, sarcasm 1/1; the other three are missing.
ROWS = [
    row(1, "emotion_closed", "joy", "joy"),
    row(2, "emotion_closed", "fear", "fear"),
    row(3, "emotion_closed", "anger", None),
    *(row(10 + i, "hate", "yes", "yes" if i == 0 else "no") for i in range(8)),
    row(20, "sarcasm", "no", "no"),
]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    metrics = compute_metrics(ROWS)
    meta = {"config": "configs/emollm_tiny.py", "split": "test"}
    return out, metrics, meta, write_results(out, metrics, model="EmoLLM-tiny", meta=meta)


def test_files_exist(written):
    out, metrics, _, paths = written
    names = {"results.json", "results.md"} | {f"confusion_{t}.png" for t in metrics.tasks}
    assert {p.name for p in out.iterdir()} == names
    assert set(paths) == {"json", "md"} | {f"confusion_{t}" for t in metrics.tasks}
    for task in metrics.tasks:
        assert (out / f"confusion_{task}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_json_round_trips(written):
    out, metrics, meta, _ = written
    assert read_results(out) == (metrics, meta)
    document = json.loads((out / "results.json").read_text())
    assert document["metrics"]["tasks"]["hate"]["accuracy"] == 0.125
    assert document["metrics"]["missing"] == ["emotion_open", "intent", "humor"]


def test_markdown_table(written):
    out, *_ = written
    lines = (out / "results.md").read_text().splitlines()
    header = "| Model | " + " | ".join(TASK_TITLES[t] for t in TASKS) + " | Mean |"
    assert header in lines
    i = lines.index(header)
    assert lines[i + 1] == "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    # mean of 2/3, 1/8 and 1 = 0.5972 -> 59.7
    assert lines[i + 2] == "| EmoLLM-tiny | 66.7 | – | – | 12.5 | – | 100.0 | 59.7 |"
    assert "missing: emotion_open, intent, humor." in lines[i + 4]
    assert "| emotion_closed | 3 | 1 | 66.7 | 66.7 |" in lines  # F1 (1 + 1 + 0) / 3
    assert "- split: test" in lines


def test_complete_run_has_no_missing_note():
    rows = [
        row(i, t, "yes", "yes") if t in ("hate", "humor", "sarcasm") else row(i, t, "x", "x")
        for i, t in enumerate(TASKS)
    ]
    table = markdown_table(compute_metrics(rows), model="m")
    assert "missing" not in table
    assert table.splitlines()[-1] == "| m | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 |"


def test_plots_can_be_skipped(tmp_path):
    write_results(tmp_path, compute_metrics(ROWS), plots=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json", "results.md"]
