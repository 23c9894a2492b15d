"""Which step and tier a restart resumes from (one process here; the two-process case runs in
test_checkpoint_tiers.py), the refusal of a checkpoint saved by another process count, and the
hang watchdog's limit."""

import pytest

from emollm_jax.checkpoint import tiers
from emollm_jax.train.resume import ResumeError, check_same_process_count
from emollm_jax.train.watchdog import MIN_TIMEOUT_S, Watchdog


def test_newest_step_wins_local_tier_on_ties():
    assert tiers.choose(None, None) == tiers.Choice(None, None, "no checkpoint")
    assert tiers.choose(100, None).tier == tiers.PERSISTENT
    assert tiers.choose(100, [110, 120]) == tiers.Choice(
        tiers.LOCAL, 120, "newest step on every host"
    )
    assert tiers.choose(100, [100]).tier == tiers.LOCAL  # the same step reads faster there
    older = tiers.choose(100, [90])
    assert (older.tier, older.step) == (tiers.PERSISTENT, 100)
    assert "older than persistent step 100" in older.reason
    assert tiers.choose(None, []) == tiers.Choice(None, None, "no checkpoint")


def test_prune_local_removes_later_and_unfinished_steps(tmp_path):
    for name in ("10", "20", "30", "40.orbax-checkpoint-tmp-1"):
        (tmp_path / name).mkdir()
    assert tiers.prune_local(tmp_path, 20) == [30]
    assert tiers.complete_steps(tmp_path) == [10, 20]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["10", "20"]


def test_watchdog_limit_first_steps_then_configured_then_derived():
    configured = Watchdog(timeout_s=5.0, first_step_timeout_s=300.0)
    assert configured.limit_s() == 300.0  # compile and first steps
    configured.step_done()
    configured.step_done()
    assert configured.limit_s() == 5.0
    derived = Watchdog(timeout_s=0.0, first_step_timeout_s=300.0)
    for _ in range(5):
        derived.step_done()
    assert derived.limit_s() == MIN_TIMEOUT_S  # fast steps: the floor
    derived._intervals.extend([100.0] * 10)
    assert derived.limit_s() == 20 * 100.0


def test_a_checkpoint_of_another_process_count_is_refused_by_name(tmp_path):
    class Checkpoints:
        root = tmp_path

    data = tmp_path / "6" / "data"
    data.mkdir(parents=True)
    for name in ("process_0-of-2.json", "process_1-of-2.json"):
        (data / name).write_text("{}")
    with pytest.raises(ResumeError) as refused:
        check_same_process_count(Checkpoints, 6)  # this test process is 1 JAX process
    message = str(refused.value)
    assert "checkpoint 6 saved by 2 JAX process(es); this run has 1" in message
    assert f"--config.train.init_from={tmp_path}" in message
    (data / "process_1-of-2.json").unlink()
    (data / "process_0-of-2.json").rename(data / "process_0-of-1.json")
    check_same_process_count(Checkpoints, 6)
