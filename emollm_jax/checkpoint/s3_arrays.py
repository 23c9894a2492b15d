"""Orbax checkpoint arrays on ``s3://``, through TensorStore's ``s3`` key-value store.

orbax-checkpoint 0.12 writes the metadata of a checkpoint through etils.epath (``s3://``
through ``s3fs``), but builds the TensorStore spec of its arrays for ``gs://`` and local paths
only: an ``s3://`` directory is refused ("Checkpoint path should be absolute"). TensorStore
itself has an ``s3`` driver. ``install()`` wraps Orbax's spec builder
(``tensorstore_utils.build_kvstore_tspec``, the one function every array read, write and OCDBT
merge goes through): for an ``s3://`` directory it builds the spec Orbax builds for the same
key on ``gs://`` (OCDBT, per-process folders, the target file size of a remote store) and
replaces each ``gcs`` store in it with an ``s3`` store of the bucket and that key.
Everything else is Orbax's own code; a checkpoint written so is the checkpoint Orbax writes to
a bucket, and reads back as one. Where an Orbax version lacks that function, or builds a spec
without a ``gcs`` store in it, an ``s3://`` checkpoint is refused with ``S3CheckpointError``
naming the path, rather than written some other way.

Where the store is: TensorStore's ``s3`` driver (0.1.86) does not take its endpoint from
``AWS_ENDPOINT_URL`` (with only that variable set, it sent the loopback test server no request
in 15 s), so the endpoint and region the AWS SDKs read from the environment
(``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``; ``AWS_REGION`` or ``AWS_DEFAULT_REGION``) go
into the spec. One set of variables thus points s3fs (the files) and TensorStore (the arrays)
at the same store: AWS itself when unset, or an S3-compatible server. Credentials are
TensorStore's default AWS chain (environment variables, the shared credentials file, the
instance's role), or the environment's keys straight away when set.

Orbax marks a step complete on ``s3://`` as on ``gs://``: a ``commit_success.txt`` written last
(an object store has no folder rename); ``RunCheckpoints`` asks for that.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

S3 = "s3://"
# The bucket of the gs:// path Orbax builds the spec for (a valid GCS bucket name whatever the
# S3 bucket's name, which Orbax's spec check would parse by GCS's rules), replaced by the real
# one in the s3 store.
_STAND_IN = "emollm-s3-bucket"


class S3CheckpointError(RuntimeError):
    """Orbax's arrays cannot be pointed at an ``s3://`` folder with this Orbax version."""


def endpoint_settings() -> dict[str, str]:
    """``endpoint`` and ``aws_region`` for TensorStore's ``s3`` spec, from the environment
    variables the AWS SDKs (and so s3fs) read; empty when no endpoint is set (AWS itself)."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return {}
    settings = {"endpoint": endpoint}
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        settings["aws_region"] = region
    return settings


def credential_settings() -> dict[str, Any]:
    """Keys in the environment: TensorStore's ``environment`` credentials, what its default
    chain would pick first anyway, without the chain logging an error for each source it
    tried before (no profile, no web identity...) at every store it opens."""
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        return {"aws_credentials": {"type": "environment"}}
    return {}


def s3_store(bucket: str, path: str) -> dict[str, Any]:
    """TensorStore's ``s3`` key-value store spec for ``s3://bucket/path``."""
    return {
        "driver": "s3",
        "bucket": bucket,
        "path": path,
        **endpoint_settings(),
        **credential_settings(),
    }


def _to_s3(spec: Any, bucket: str) -> tuple[Any, int]:
    """``spec`` with each ``gcs`` store of the stand-in bucket replaced by the ``s3`` store of
    ``bucket`` and the same key, and how many were replaced."""
    if isinstance(spec, list):
        parts = [_to_s3(s, bucket) for s in spec]
        return [p for p, _ in parts], sum(n for _, n in parts)
    if not isinstance(spec, dict):
        return spec, 0
    if spec.get("driver") in ("gcs", "gcs_grpc") and spec.get("bucket") == _STAND_IN:
        rest = {k: v for k, v in spec.items() if k not in ("driver", "bucket", "path")}
        return {**s3_store(bucket, spec.get("path", "")), **rest}, 1
    out, count = {}, 0
    for key, value in spec.items():
        out[key], n = _to_s3(value, bucket)
        count += n
    return out, count


def _refuse(directory: str, why: str) -> S3CheckpointError:
    return S3CheckpointError(
        f"{directory}: Orbax checkpoints cannot be written to or read from s3:// with "
        f"orbax-checkpoint {_orbax_version()} ({why}); use a local folder or gs://"
    )


def _orbax_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("orbax-checkpoint")
    except metadata.PackageNotFoundError:
        return "(unknown version)"


def _with_s3(build):
    @functools.wraps(build)
    def build_kvstore_tspec(directory, *args, **kwargs):
        text = os.fspath(directory)
        if not text.startswith(S3):
            return build(directory, *args, **kwargs)
        bucket, _, key = text[len(S3) :].partition("/")
        spec, replaced = _to_s3(build(f"gs://{_STAND_IN}/{key}", *args, **kwargs), bucket)
        if not replaced or _STAND_IN in json.dumps(spec):
            raise _refuse(text, "its array spec is not one GCS store to point at S3")
        return spec

    build_kvstore_tspec.emollm_s3 = True
    return build_kvstore_tspec


def _tensorstore_utils():
    try:
        from orbax.checkpoint._src.serialization import tensorstore_utils
    except ImportError:
        return None
    return tensorstore_utils if hasattr(tensorstore_utils, "build_kvstore_tspec") else None


def install() -> bool:
    """Let Orbax's arrays live on ``s3://`` (idempotent); False where this Orbax version has
    no spec builder to wrap (``check`` then refuses ``s3://`` checkpoints)."""
    module = _tensorstore_utils()
    if module is None:
        return False
    if not getattr(module.build_kvstore_tspec, "emollm_s3", False):
        module.build_kvstore_tspec = _with_s3(module.build_kvstore_tspec)
    return True


def check(directory) -> None:
    """Raise ``S3CheckpointError`` naming ``directory`` if it is an ``s3://`` folder and this
    Orbax version's arrays cannot be pointed at S3; install the adapter otherwise."""
    text = os.fspath(directory)
    if text.startswith(S3) and not install():
        raise _refuse(text, "no tensorstore_utils.build_kvstore_tspec to adapt")
