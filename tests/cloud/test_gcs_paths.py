"""The folder lock's guards on a ``gs://`` folder of the loopback GCS emulator, and cloud data
refused at start-up. What every object store does alike: ``test_object_store_paths.py``."""

import json

import pytest
from etils import epath

from emollm_jax.folder_lock import LOCK_NAME, FolderLock, FolderLockedError


def test_lock_on_gcs_refuses_when_another_write_lands_first(gs_dir, monkeypatch):
    """The write-then-verify guard: another process's lock object replaced ours between our
    write and our read-back (what GCS's precondition prevents; the emulator ignores it)."""
    import fsspec

    lock = FolderLock(gs_dir, "evaluation folder")
    theirs = dict(lock.holder, host="elsewhere", pid=1)
    real = fsspec.core.url_to_fs

    def racing(url, **kw):
        fs, key = real(url, **kw)
        original = fs.pipe_file

        def pipe_then_overwritten(path, data, mode="overwrite", **kw2):
            original(path, data, mode=mode, **kw2)
            original(path, json.dumps(theirs).encode())

        monkeypatch.setattr(fs, "pipe_file", pipe_then_overwritten)
        return fs, key

    monkeypatch.setattr(fsspec.core, "url_to_fs", racing)
    with pytest.raises(FolderLockedError, match="on host elsewhere"):
        lock.acquire()
    assert json.loads((epath.Path(gs_dir) / LOCK_NAME).read_text()) == theirs


def test_stale_lock_on_gcs_is_taken_over(gs_dir):
    (epath.Path(gs_dir) / LOCK_NAME).write_text(
        json.dumps(dict(FolderLock(gs_dir).holder, pid=2**22 + 12345))  # no such pid
    )
    with FolderLock(gs_dir) as lock:
        assert lock.held


def test_cloud_data_fails_at_start_up_naming_the_field(tmp_path, small_emobench):
    """Training, evaluation and the annotator refuse a gs:// data folder (or rationales file)
    before any model loads: evaluation's missing checkpoint is not even looked at."""
    from emollm_jax.errors import ConfigError
    from emollm_jax.inference.annotate import annotate
    from emollm_jax.inference.run import evaluate_generation
    from emollm_jax.train.loop import Trainer
    from tests.train.helpers import train_config

    cfg = train_config(str(small_emobench))
    cfg.data.dir = "gs://bucket/emobench"
    with pytest.raises(ConfigError, match=r"^config\.data\.dir: 'gs://bucket/emobench'"):
        Trainer(cfg, tmp_path / "run")
    with pytest.raises(ConfigError, match=r"^config\.data\.dir:"):
        evaluate_generation(cfg, str(tmp_path / "no_such_run"), "test", str(tmp_path / "eval"))
    with pytest.raises(ConfigError, match=r"^config\.data\.dir:"):
        annotate(cfg, str(tmp_path / "no_such_teacher"), "train", None)
    cfg.data.dir = str(small_emobench)
    cfg.emoprompt.rationales_file = "gs://bucket/r.jsonl"
    with pytest.raises(ConfigError, match=r"^config\.emoprompt\.rationales_file:"):
        Trainer(cfg, tmp_path / "run2")
