"""The goodput report from an event log written by hand: a run preempted once, killed once
(steps redone after the restart) and hung once; every second of wall time lands in exactly one
cause, and the steps done twice count as lost, not productive."""

import json

import pytest

from emollm_jax import goodput


def _log(tmp_path, rows):
    lines = [json.dumps({"process": 0} | row) for row in rows]  # process: 0 unless given
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path


def _row(t, event, attempt, **fields):
    return {"time": t, "event": event, "attempt": attempt} | fields


ROWS = [
    # attempt a: 10 s of set-up, 5 s compiling, steps 1-20, a save of step 20, SIGTERM
    _row(100.0, "start", "a"),
    _row(110.0, "ready", "a", step=0),
    _row(116.0, "compile", "a", seconds=5.0, cache_hits=0, cache_misses=1),
    _row(116.0, "steps", "a", step=1, count=1, step_s=0.5, data_s=0.5),
    _row(135.0, "steps", "a", step=20, count=19, step_s=19.0, data_s=0.0),
    _row(137.0, "checkpoint", "a", tier="persistent", step=20, blocked_s=2.0),
    _row(137.0, "preempted", "a", step=20),
    # 13 s later, attempt b resumes from step 20, does steps 21-30 and is SIGKILLed (no event)
    _row(150.0, "start", "b"),
    _row(152.0, "restore", "b", tier="persistent", step=20, seconds=1.0),
    _row(153.0, "ready", "b", step=20),
    _row(154.0, "compile", "b", seconds=1.0, cache_hits=1, cache_misses=0),
    _row(164.0, "steps", "b", step=30, count=10, step_s=10.0, data_s=0.0),
    # attempt c resumes from the local tier's step 25: steps 26-30 of attempt b were lost
    _row(170.0, "start", "c"),
    _row(171.0, "restore", "c", tier="local", step=25, seconds=0.5),
    _row(171.5, "ready", "c", step=25),
    _row(172.5, "compile", "c", seconds=1.0, cache_hits=1, cache_misses=0),
    _row(182.5, "steps", "c", step=35, count=10, step_s=10.0, data_s=0.0),
    # 30 s later every process's watchdog ends the hung attempt (one hang, not two)
    _row(212.5, "hang", "c", step=35, idle_s=30.0, limit_s=30.0),
    _row(212.5, "hang", "c", step=35, idle_s=30.0, limit_s=30.0, process=1),
]


def test_causes_account_for_all_wall_time_and_redone_steps_are_lost(tmp_path):
    r = goodput.summarize(goodput.read_events(_log(tmp_path, ROWS)))
    s = r["seconds"]
    assert r["wall_s"] == pytest.approx(112.5)
    assert sum(s.values()) == pytest.approx(r["wall_s"])  # goodput + causes = 100%
    assert sum(r["share"].values()) == pytest.approx(1.0)
    assert s["initialisation"] == pytest.approx(10.0 + 2.0 + 1.0)  # less restores
    assert s["restore"] == pytest.approx(1.5)
    assert s["compilation"] == pytest.approx(7.0)
    assert s["checkpoint"] == pytest.approx(2.0)
    assert s["data"] == pytest.approx(0.5)
    assert s["lost_steps"] == pytest.approx(5.0)  # steps 26-30 of attempt b, done again
    assert s["productive"] == pytest.approx(0.5 + 19.0 + 5.0 + 10.0)
    assert s["hang"] == pytest.approx(30.0)
    assert s["restart_gap"] == pytest.approx(13.0 + 6.0)
    assert r["goodput"] == pytest.approx(34.5 / 112.5)
    assert r["restores"] == [{"step": 20, "tier": "persistent"}, {"step": 25, "tier": "local"}]
    assert (r["attempts"], r["preemptions"], r["hangs"]) == (3, 1, 1)


def test_cli_prints_json_and_text(tmp_path, capsys):
    workdir = _log(tmp_path, ROWS[:7])
    assert goodput.main([str(workdir), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["attempts"] == 1 and r["preemptions"] == 1
    assert goodput.main([str(workdir)]) == 0
    text = capsys.readouterr().out
    assert "goodput" in text and "compilation" in text and "lost_steps" in text
    assert goodput.main([str(tmp_path / "missing")]) == 2
