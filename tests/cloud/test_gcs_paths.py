"""The path helper, the folder lock, destinations, metrics rewriting and folder moves on a
``gs://`` folder of the loopback GCS emulator."""

import json
import os
import pathlib

import pytest
from etils import epath

from emollm_jax import paths
from emollm_jax.destinations import DestinationError, check_destination
from emollm_jax.folder_lock import LOCK_NAME, FolderLock, FolderLockedError


def test_as_path_keeps_urls_and_local_paths():
    p = paths.as_path("gs://bucket/run")
    assert os.fspath(p / "checkpoints") == "gs://bucket/run/checkpoints"
    assert paths.is_url(p) and paths.url_scheme(p) == "gs"
    local = paths.as_path("runs/main")
    assert isinstance(local, pathlib.Path) and paths.is_local(local)
    assert paths.absolute("gs://bucket/run") == p
    assert os.fspath(paths.resolved("gs://bucket/run/../other/./x")) == "gs://bucket/other/x"
    with pytest.raises(ValueError, match="ftp:// scheme is not supported"):
        paths.as_path("ftp://host/x")


def test_destinations_compare_urls():
    check_destination("gs://b/export", "gs://b/run")
    check_destination("gs://b/run", "/local/run")  # another store: never overlapping
    with pytest.raises(DestinationError, match="is the source itself"):
        check_destination("gs://b/run/", "gs://b/x/../run")
    with pytest.raises(DestinationError, match="contains the source"):
        check_destination("gs://b", "gs://b/run")
    with pytest.raises(DestinationError, match="is inside the source"):
        check_destination("gs://b/run/eval", "gs://b/run")


def test_lock_on_gcs(gs_dir):
    first = FolderLock(gs_dir, "training workdir").acquire()
    stored = json.loads((epath.Path(gs_dir) / LOCK_NAME).read_text())
    assert stored["pid"] == os.getpid()
    other = FolderLock(gs_dir, "training workdir")
    other.holder = dict(other.holder, pid=first.holder["pid"] + 1)  # another live process...
    other.holder["host"] = "elsewhere"  # ...whose liveness cannot be checked from here
    with pytest.raises(FolderLockedError, match=f"in use by pid {os.getpid()}"):
        other.acquire()
    first.release()
    assert not (epath.Path(gs_dir) / LOCK_NAME).exists()
    other.acquire()
    other.release()


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


def test_write_text_atomic_and_move_folder(gs_dir):
    root = epath.Path(gs_dir)
    paths.write_text_atomic(root / "a.txt", "one\n")
    paths.write_text_atomic(root / "a.txt", "two\n")
    assert (root / "a.txt").read_text() == "two\n"
    assert not (root / "a.txt.tmp").exists()
    step = root / "checkpoints" / "4"
    (step / "params").mkdir(parents=True, exist_ok=True)
    (step / "params" / "x").write_text("x")
    (step / paths.COMMIT_MARK).write_text("")
    paths.move_folder(step, root / "abandoned" / "4", marker=paths.COMMIT_MARK)
    assert not step.exists()
    assert (root / "abandoned" / "4" / "params" / "x").read_text() == "x"


def test_metrics_log_rewrites_its_object(gs_dir):
    from emollm_jax.train.metrics_log import MetricsLog

    row = dict(loss=1.0, learning_rate=1e-3, grad_norm=1.0, tokens_per_sec=1.0, mfu=0.1)
    log = MetricsLog(gs_dir, total_steps=3, start_step=0, tensorboard=True, progress_bar="off")
    for step in (1, 2, 3):
        log.write(step, row)
    log.close()
    # A resumed run from step 2 drops row 3 and appends after the kept ones.
    log = MetricsLog(gs_dir, total_steps=3, start_step=2, tensorboard=True, progress_bar="off")
    log.write(3, row | {"loss": 0.5})
    log.close()
    rows = [json.loads(r) for r in (epath.Path(gs_dir) / "metrics.jsonl").read_text().splitlines()]
    assert [(r["step"], r["loss"]) for r in rows] == [(1, 1.0), (2, 1.0), (3, 0.5)]
    events = list((epath.Path(gs_dir) / "tensorboard").glob("events.out.tfevents.*"))
    assert events and all(e.stat().length > 0 for e in events)


def test_tokenizer_loads_from_gcs(gs_dir):
    from emollm_jax.data.pipeline import load_tokenizer

    shipped = pathlib.Path(__file__).resolve().parents[2] / "emollm_jax" / "assets" / "tokenizer"
    for file in shipped.iterdir():
        (epath.Path(gs_dir) / "tok" / file.name).write_bytes(file.read_bytes())
    ours, theirs = load_tokenizer(str(shipped)), load_tokenizer(f"{gs_dir}/tok")
    text = "<image>\nIs this funny? Answer: yes"
    assert theirs(text)["input_ids"] == ours(text)["input_ids"]
    assert theirs.chat_template == ours.chat_template


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
