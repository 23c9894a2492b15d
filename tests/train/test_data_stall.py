"""A training stream that refuses every record (all too long for ``data.seq_buckets``) never
yields a batch: the run stops by itself after ``data.max_consecutive_bad`` refusals, naming the
reason and the counts, logs a rate-limited summary rather than a line per record, and honours
SIGTERM while it waits for data. Real subprocesses and signals, under timeouts."""

import signal

import pytest

from tests.train.helpers import start_training, wait_for

pytestmark = pytest.mark.slow

ALL_TOO_LONG = "--config.data.seq_buckets=(32,)"


def test_refusing_every_record_stops_the_run_with_the_reason(tmp_path, small_emobench):
    proc = start_training(
        tmp_path / "run", small_emobench, ALL_TOO_LONG, "--config.data.max_consecutive_bad=200"
    )
    out, _ = proc.communicate(timeout=240)  # a hang fails here
    assert proc.returncode == 3, out
    assert "200 records in a row were refused" in out
    assert "config.data.max_consecutive_bad=200" in out
    assert "too_long=" in out
    assert "Traceback" not in out
    # 200 refusals, one running summary (rate-limited), not a warning per record.
    assert out.count("skipped ") <= 3, out[-3000:]
    assert not (tmp_path / "run" / "checkpoints" / "0").exists()  # nothing trained, nothing saved


def test_sigterm_while_waiting_for_data_stops_the_run(tmp_path, small_emobench):
    proc = start_training(
        tmp_path / "run", small_emobench, ALL_TOO_LONG, "--config.data.max_consecutive_bad=0"
    )
    lines = []

    def refusing():  # the first summary of refused records: the loop is waiting for data
        line = proc.stdout.readline()
        lines.append(line)
        return "skipped" in line and "too_long" in line

    try:
        assert wait_for(refusing, proc, timeout=180, poll=0), "".join(lines)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    out = "".join(lines) + out
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
    assert "SIGTERM while waiting for data" in out
