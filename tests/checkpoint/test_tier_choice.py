"""Which step and tier a restart resumes from (one process here; the two-process case runs in
test_checkpoint_tiers.py), the data position a checkpoint saved by another process count resumes
at (or why it cannot), and the hang watchdog's limit."""

import pytest
from ml_collections import ConfigDict

from emollm_jax.checkpoint import tiers
from emollm_jax.train.resume import ResumeError, data_state
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


class _Checkpoints:
    """A run's checkpoints as ``resume.data_state`` reads them: step 3 saved by 2 processes,
    each 12 records into its share (3 steps of a global batch of 8)."""

    def __init__(self, root, data):
        self.root, self._data = root, data
        folder = root / "3" / "data"
        folder.mkdir(parents=True)
        for p in (0, 1):
            (folder / f"process_{p}-of-2.json").write_text('{"next_index": 12}')

    def read_meta(self, step):
        return {"config": {"data": self._data}}

    def all_steps(self):
        return [3]


def _data_config(**data):
    return ConfigDict({"data": {"batch_size": 8, "worker_count": 0, "pack": False} | data})


def test_another_process_count_resumes_at_the_same_record(tmp_path):
    checkpoints = _Checkpoints(tmp_path, _data_config().data.to_dict())
    # this test process is 1 JAX process: it starts where both had got to
    assert data_state(checkpoints, 3, _data_config()) == {"next_index": 24}
    (tmp_path / "3" / "data" / "process_1-of-2.json").unlink()
    (tmp_path / "3" / "data" / "process_0-of-2.json").rename(
        tmp_path / "3" / "data" / "process_0-of-1.json"
    )
    assert data_state(checkpoints, 3, _data_config()) is None  # Grain restores its own state


def test_another_process_count_is_refused_naming_what_prevents_it(tmp_path):
    checkpoints = _Checkpoints(tmp_path, _data_config(batch_size=16).data.to_dict())
    with pytest.raises(ResumeError) as refused:
        data_state(checkpoints, 3, _data_config())
    message = str(refused.value)
    assert "checkpoint 3 saved by 2 JAX process(es); this run has 1" in message
    assert "config.data.batch_size is 16 in the checkpoint, 8 now" in message

    checkpoints = _Checkpoints(tmp_path / "workers", _data_config(worker_count=8).data.to_dict())
    with pytest.raises(ResumeError) as refused:
        data_state(checkpoints, 3, _data_config(pack=True))
    message = str(refused.value)
    assert "not one with data.worker_count=8, data.pack=True" in message
    assert f"--config.train.init_from={checkpoints.root}" in message
