"""What every object store does alike, for ``gs://`` and ``s3://``: the path helper and
destinations, and on a folder of the GCS emulator and of the S3 emulator, the folder lock,
atomic text writes, folder moves, metrics and TensorBoard events rewritten whole, a tokenizer
loaded from the bucket."""

import json
import os
import pathlib

import pytest
from etils import epath

from emollm_jax import paths
from emollm_jax.destinations import DestinationError, check_destination
from emollm_jax.folder_lock import LOCK_NAME, FolderLock, FolderLockedError

SCHEMES = ["gs", "s3"]


def _keys(url: str) -> list[str]:
    """The object keys under ``url``, as the store's own fsspec client lists them."""
    import fsspec

    fs, key = fsspec.core.url_to_fs(url)
    fs.invalidate_cache()
    prefix = key.rstrip("/") + "/"
    return sorted(k[len(prefix) :] for k in fs.find(key))


@pytest.mark.parametrize("scheme", SCHEMES)
def test_as_path_keeps_urls_and_local_paths(scheme):
    p = paths.as_path(f"{scheme}://bucket/run")
    assert isinstance(p, epath.Path)
    assert os.fspath(p / "checkpoints") == f"{scheme}://bucket/run/checkpoints"
    assert paths.is_url(p) and paths.url_scheme(p) == scheme
    local = paths.as_path("runs/main")
    assert isinstance(local, pathlib.Path) and paths.is_local(local)
    assert paths.absolute(f"{scheme}://bucket/run") == p
    folded = paths.resolved(f"{scheme}://bucket/run/../other/./x")
    assert os.fspath(folded) == f"{scheme}://bucket/other/x"
    with pytest.raises(ValueError, match="ftp:// scheme is not supported"):
        paths.as_path("ftp://host/x")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_destinations_compare_urls(scheme):
    b = f"{scheme}://b"
    check_destination(f"{b}/export", f"{b}/run")
    check_destination(f"{b}/run", "/local/run")  # another store: never overlapping
    check_destination("gs://b/run" if scheme == "s3" else "s3://b/run", f"{b}/run")
    with pytest.raises(DestinationError, match="is the source itself"):
        check_destination(f"{b}/run/", f"{b}/x/../run")
    with pytest.raises(DestinationError, match="contains the source"):
        check_destination(b, f"{b}/run")
    with pytest.raises(DestinationError, match="is inside the source"):
        check_destination(f"{b}/run/eval", f"{b}/run")


def test_lock(cloud_dir):
    first = FolderLock(cloud_dir, "training workdir").acquire()
    stored = json.loads((epath.Path(cloud_dir) / LOCK_NAME).read_text())
    assert stored["pid"] == os.getpid()
    other = FolderLock(cloud_dir, "training workdir")
    other.holder = dict(other.holder, pid=first.holder["pid"] + 1)  # another live process...
    other.holder["host"] = "elsewhere"  # ...whose liveness cannot be checked from here
    with pytest.raises(FolderLockedError, match=f"in use by pid {os.getpid()}"):
        other.acquire()
    first.release()
    assert not (epath.Path(cloud_dir) / LOCK_NAME).exists()
    other.acquire()
    other.release()


def test_write_text_atomic_and_move_folder(cloud_dir):
    root = epath.Path(cloud_dir)
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
    assert _keys(f"{cloud_dir}/abandoned") == ["4/commit_success.txt", "4/params/x"]
    assert (root / "abandoned" / "4" / "params" / "x").read_text() == "x"


def test_metrics_log_rewrites_its_object(cloud_dir):
    from emollm_jax.train.metrics_log import MetricsLog

    row = dict(loss=1.0, learning_rate=1e-3, grad_norm=1.0, tokens_per_sec=1.0, mfu=0.1)
    log = MetricsLog(cloud_dir, total_steps=3, start_step=0, tensorboard=True, progress_bar="off")
    for step in (1, 2, 3):
        log.write(step, row)
    log.close()
    # A resumed run from step 2 drops row 3 and appends after the kept ones.
    log = MetricsLog(cloud_dir, total_steps=3, start_step=2, tensorboard=True, progress_bar="off")
    log.write(3, row | {"loss": 0.5})
    log.close()
    text = (epath.Path(cloud_dir) / "metrics.jsonl").read_text()
    rows = [json.loads(r) for r in text.splitlines()]
    assert [(r["step"], r["loss"]) for r in rows] == [(1, 1.0), (2, 1.0), (3, 0.5)]
    events = list((epath.Path(cloud_dir) / "tensorboard").glob("events.out.tfevents.*"))
    assert events and all(e.stat().length > 0 for e in events)


def test_tokenizer_loads_from_the_bucket(cloud_dir):
    from emollm_jax.data.pipeline import load_tokenizer

    shipped = pathlib.Path(__file__).resolve().parents[2] / "emollm_jax" / "assets" / "tokenizer"
    for file in shipped.iterdir():
        (epath.Path(cloud_dir) / "tok" / file.name).write_bytes(file.read_bytes())
    ours, theirs = load_tokenizer(str(shipped)), load_tokenizer(f"{cloud_dir}/tok")
    text = "<image>\nIs this funny? Answer: yes"
    assert theirs(text)["input_ids"] == ours(text)["input_ids"]
    assert theirs.chat_template == ours.chat_template
