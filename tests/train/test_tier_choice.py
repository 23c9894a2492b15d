"""Which step and tier a restart resumes from (one process here; the two-process case runs in
test_checkpoint_tiers.py), and the hang watchdog's limit."""

from emollm_jax.checkpoint import tiers
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
