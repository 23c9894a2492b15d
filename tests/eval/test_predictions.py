"""The predictions store: append, resume by (task, id), and repair of a torn last line."""

import json
import logging

import pytest

from emollm_jax.eval.predictions import PredictionStore


def prediction(i, task="hate", output="yes"):
    return {
        "id": i,
        "task": task,
        "prompt": f"p{i}",
        "output": output,
        "parsed": "yes",
        "gold": "yes",
    }


RECORDS = [{"id": i, "task": "hate"} for i in range(5)]


def test_append_then_resume_skips_the_rows_done(tmp_path):
    path = tmp_path / "run" / "predictions.jsonl"
    store = PredictionStore(path)
    assert len(store) == 0 and store.pending(RECORDS) == RECORDS
    store.append([prediction(0), prediction(1)])
    store.append([prediction(2, output="ünïcode\nline")])

    reopened = PredictionStore(path)  # a rerun
    assert reopened.rows == store.rows
    assert reopened.rows[2]["output"] == "ünïcode\nline"
    assert reopened.done == {("hate", "0"), ("hate", "1"), ("hate", "2")}
    assert reopened.pending(RECORDS) == RECORDS[3:]
    assert {"id": "1", "task": "hate"} in reopened  # ids compare as strings
    assert {"id": 1, "task": "humor"} not in reopened  # keys include the task
    assert reopened.summary().endswith("3 predictions already stored")
    reopened.append([prediction(3), prediction(4)])
    assert PredictionStore(path).pending(RECORDS) == []


def test_each_append_is_on_disk_when_it_returns(tmp_path):
    store = PredictionStore(tmp_path / "predictions.jsonl")
    store.append([prediction(0)])
    lines = (tmp_path / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [prediction(0)]


def test_truncated_last_line_is_dropped_and_reported(tmp_path, caplog, monkeypatch):
    # A library's logging.config call earlier in the same process may have disabled loggers
    # that existed then; this test reads what the store logs.
    monkeypatch.setattr(logging.getLogger("emollm_jax.eval.predictions"), "disabled", False)
    caplog.set_level(logging.WARNING, logger="emollm_jax.eval.predictions")
    path = tmp_path / "predictions.jsonl"
    PredictionStore(path).append([prediction(0), prediction(1)])
    intact = path.read_bytes()
    torn = json.dumps(prediction(2)).encode()[:25]
    path.write_bytes(intact + torn)  # a crash in the middle of writing row 2

    store = PredictionStore(path)
    assert [r["id"] for r in store.rows] == [0, 1]
    assert store.truncated_bytes == len(torn)
    assert "truncated" in store.summary() and "truncated" in caplog.text
    assert path.read_bytes() == intact  # cut off the file
    assert store.pending(RECORDS) == RECORDS[2:]  # row 2 will be generated again
    store.append([prediction(2)])
    assert [r["id"] for r in PredictionStore(path).rows] == [0, 1, 2]


def test_torn_multibyte_character_counts_as_truncated(tmp_path):
    path = tmp_path / "predictions.jsonl"
    PredictionStore(path).append([prediction(0)])
    line = json.dumps(prediction(1, output="é"), ensure_ascii=False).encode()
    path.write_bytes(path.read_bytes() + line[: line.index("é".encode()) + 1])
    assert [r["id"] for r in PredictionStore(path).rows] == [0]


def test_complete_last_row_without_newline_is_kept(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text(json.dumps(prediction(0)))
    store = PredictionStore(path)
    assert store.truncated_bytes == 0 and len(store) == 1
    store.append([prediction(1)])
    assert [r["id"] for r in PredictionStore(path).rows] == [0, 1]


def test_corrupt_line_before_the_end_is_an_error(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text(json.dumps(prediction(0)) + "\n{oops\n" + json.dumps(prediction(1)) + "\n")
    with pytest.raises(ValueError, match=r"predictions.jsonl:2"):
        PredictionStore(path)


def test_duplicates_and_incomplete_rows_are_rejected_without_writing(tmp_path):
    path = tmp_path / "predictions.jsonl"
    store = PredictionStore(path)
    store.append([prediction(0)])
    with pytest.raises(ValueError, match="already stored"):
        store.append([prediction(1), prediction(0)])
    with pytest.raises(ValueError, match="lacks gold"):
        store.append([{k: v for k, v in prediction(2).items() if k != "gold"}])
    assert len(store) == 1 and len(PredictionStore(path)) == 1
    store.append([prediction(1)])  # the rejected batch left no trace
    assert len(PredictionStore(path)) == 2
