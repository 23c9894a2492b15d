"""Orbax checkpoints on an ``s3://`` folder of the loopback S3 emulator (moto's server) through
TensorStore's s3 store, the spec that points it there, its refusal where it cannot, and the
lock's create-only-if-absent write on S3. What every object store does alike:
``test_object_store_paths.py``."""

import json
import os

import numpy as np
import pytest
from etils import epath

from emollm_jax import paths
from emollm_jax.checkpoint import s3_arrays
from emollm_jax.folder_lock import FolderLock


def _keys(url: str) -> list[str]:
    """The object keys under ``url``, listed by the S3 API itself (not through epath)."""
    import s3fs

    fs = s3fs.S3FileSystem(skip_instance_cache=True)
    return sorted(os.path.relpath(k, url.split("://", 1)[1]) for k in fs.find(url))


def test_s3_spec_takes_the_endpoint_the_aws_sdks_read(monkeypatch):
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    assert s3_arrays.s3_store("b", "run/x") == {"driver": "s3", "bucket": "b", "path": "run/x"}
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    assert s3_arrays.s3_store("b", "x")["aws_credentials"] == {"type": "environment"}
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert s3_arrays.endpoint_settings() == {
        "endpoint": "http://127.0.0.1:9",
        "aws_region": "eu-west-1",
    }
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:8")  # the S3-only one wins
    assert s3_arrays.endpoint_settings()["endpoint"] == "http://127.0.0.1:8"


def test_orbax_array_specs_on_s3_gs_and_local(monkeypatch):
    """The wrapped builder gives an s3 store for s3://, and Orbax's own spec otherwise."""
    from orbax.checkpoint._src.serialization import tensorstore_utils

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    assert s3_arrays.install() and s3_arrays.install()  # idempotent
    build = tensorstore_utils.build_kvstore_tspec
    spec = build("s3://b/run/checkpoints/2/params", "w", use_ocdbt=True)
    base = spec["base"]
    assert spec["driver"] == "ocdbt" and base["driver"] == "s3"
    assert (base["bucket"], base["path"]) == ("b", "run/checkpoints/2/params")
    assert base["endpoint"] == "http://127.0.0.1:9" and base["aws_region"] == "us-east-1"
    assert "gcs" not in json.dumps(spec)
    plain = build("s3://b/run/params", "w", use_ocdbt=False)
    assert plain == {"driver": "s3", "bucket": "b", "path": "run/params/w"} | {
        "endpoint": "http://127.0.0.1:9",
        "aws_region": "us-east-1",
    }
    assert build("gs://b/run/params", "w", use_ocdbt=False)["driver"] == "gcs"
    assert build("/tmp/run/params", "w", use_ocdbt=False) == {
        "driver": "file",
        "path": "/tmp/run/params/w",
    }


def test_s3_checkpoints_are_refused_where_orbax_cannot_be_adapted(monkeypatch, tmp_path):
    from emollm_jax.checkpoint.manager import RunCheckpoints

    # An Orbax whose spec builder for gs:// makes no GCS store (another layout): refused.
    other = s3_arrays._with_s3(lambda d, name=None, **kw: {"driver": "file", "path": d})
    with pytest.raises(s3_arrays.S3CheckpointError, match=r"^s3://b/run/2/params: Orbax"):
        other("s3://b/run/2/params", "w")
    # An Orbax without the spec builder: refused before anything is written.
    monkeypatch.setattr(s3_arrays, "_tensorstore_utils", lambda: None)
    with pytest.raises(s3_arrays.S3CheckpointError, match=r"^s3://b/run/checkpoints: Orbax"):
        RunCheckpoints("s3://b/run/checkpoints", read_only=True)
    RunCheckpoints(tmp_path / "checkpoints", keep=1).close()  # a local folder is unaffected


def test_checkpoint_save_and_restore_on_s3(s3_dir):
    """The arrays are objects of the bucket (TensorStore's s3 store), the step is committed by
    its marker, restored values are the saved ones, and a step without its marker is not
    listed."""
    import jax
    import jax.numpy as jnp

    from emollm_jax.checkpoint.manager import RunCheckpoints

    root = f"{s3_dir}/checkpoints"
    params = {"w": jnp.arange(12, dtype=jnp.float32).reshape(3, 4), "b": jnp.ones(4, jnp.bfloat16)}
    ckpts = RunCheckpoints(root, keep=3, async_save=True)
    for step in (1, 2):
        scaled = jax.tree.map(lambda x, s=step: x * s, params)
        ckpts.save(
            step,
            params=scaled,
            opt_state={"mu": jnp.zeros(2)},
            train={"step": step},
            meta={"step": step},
        )
        ckpts.wait()
    ckpts.close()
    keys = _keys(root)
    assert {"1/commit_success.txt", "2/commit_success.txt"} <= set(keys)
    assert any(k.startswith("2/params/") and "/d/" in k for k in keys), keys  # OCDBT data
    assert not any(".orbax-checkpoint-tmp" in k for k in keys)

    (epath.Path(root) / "2" / paths.COMMIT_MARK).unlink()  # as if killed before its commit
    again = RunCheckpoints(root, read_only=True)
    assert again.all_steps() == [1]
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    restored = again.restore(params=abstract, train={"step": 0}, meta=True)
    assert restored["step"] == 1 and restored["meta"] == {"step": 1}
    for name, value in params.items():
        assert restored["params"][name].dtype == value.dtype
        assert np.array_equal(np.asarray(restored["params"][name]), np.asarray(value))
    again.close()


def test_lock_create_is_conditional_on_s3(s3_dir):
    """The lock object is written with S3's ``If-None-Match: *``: a second create of it fails
    at the store even when the existence check before it was passed (a race lost)."""
    import fsspec

    lock = FolderLock(s3_dir)
    lock.acquire()
    theirs = FolderLock(s3_dir)
    theirs.holder = dict(theirs.holder, host="elsewhere")
    fs, key = fsspec.core.url_to_fs(os.fspath(theirs.path))
    with pytest.raises(FileExistsError):
        fs.pipe_file(key, json.dumps(theirs.holder).encode(), mode="create")
    assert json.loads(lock.path.read_text()) == lock.holder
    lock.release()
