"""``metrics.jsonl`` on resume: the rows after the restored step dropped, and a line that is no
row (torn by a crash mid-write, garbage) named in the log and moved to
``metrics.jsonl.set_aside`` rather than kept for new rows to be appended after."""

import json
import logging

from emollm_jax.train.metrics_log import SET_ASIDE, MetricsLog

ROW = {"loss": 1.0, "learning_rate": 1e-3, "grad_norm": 0.5, "tokens_per_sec": 10.0, "mfu": 0.1}


def _row(step: int) -> str:
    return json.dumps({"step": step} | ROW) + "\n"


def _resume(workdir, start_step: int) -> MetricsLog:
    return MetricsLog(
        workdir, total_steps=10, start_step=start_step, tensorboard=False, progress_bar="off"
    )


def test_bad_lines_are_named_and_set_aside_on_resume(tmp_path, caplog):
    metrics = tmp_path / "metrics.jsonl"
    torn = '{"step": 5, "loss": 0.9, "learni'  # the process died mid-write: no newline
    metrics.write_text(
        _row(1) + _row(2) + "garbage \x00\n" + _row(3) + "\n" + _row(4) + '["step", 2]\n' + torn
    )
    with caplog.at_level(logging.WARNING):
        log = _resume(tmp_path, start_step=3)
    log.write(4, ROW)
    log.close()

    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # row 4 of the old run dropped, the new one appended
    aside = (tmp_path / SET_ASIDE).read_text().splitlines()
    assert aside == [
        "metrics.jsonl:3: garbage \x00",
        'metrics.jsonl:7: ["step", 2]',
        f"metrics.jsonl:8: {torn}",
    ]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 3
    assert all(f"moved to {tmp_path / SET_ASIDE}" in w for w in warned)
    assert f"{metrics} line 8 is not a metrics row" in warned[2]

    # A second resume finds nothing more to set aside, and keeps what was set aside before.
    metrics.write_text(metrics.read_text() + "{oops\n")
    _resume(tmp_path, start_step=4).close()
    assert (tmp_path / SET_ASIDE).read_text().splitlines() == [*aside, "metrics.jsonl:5: {oops"]
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == steps


def test_a_clean_log_is_left_as_it_is(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(_row(1) + _row(2))
    before = metrics.stat().st_mtime_ns
    _resume(tmp_path, start_step=2).close()
    assert metrics.stat().st_mtime_ns == before
    assert not (tmp_path / SET_ASIDE).exists()
