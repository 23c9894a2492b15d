"""Object store emulators on loopback for the cloud tests, each in this process on a free port,
in memory, started by the first test that needs it and stopped after the session.

GCS, for the ``gs://`` tests: ``gcp-storage-emulator`` (pinned in requirements.txt), with the
environment every GCS client the project uses reads:

- gcsfs (epath's ``gs://`` backend) and google-cloud-storage: ``STORAGE_EMULATOR_HOST``;
- TensorStore (Orbax's arrays): ``TENSORSTORE_GCS_HTTP_URL``, HTTP/1.1, and a fixed token
  (``GOOGLE_AUTH_TOKEN_FOR_TESTING``) in place of Google credentials.

The emulator ignores the ``ifGenerationMatch`` precondition; the lock tests say where that
matters. Its media downloads also lack the ``x-goog-generation`` header real GCS sends, and
without it TensorStore's OCDBT manifest writes failed now and then ("Malformed
StorageGeneration": 2 of 12 save/save/restore cycles here); ``_send_generation_headers`` adds
it (0 failures in 40 cycles).

S3, for the ``s3://`` tests: moto's server (``ThreadedMotoServer``, pinned in requirements.txt),
with the environment both S3 clients the project uses read:

- s3fs (epath's ``s3://`` backend, through botocore): ``AWS_ENDPOINT_URL``, the region and the
  access keys;
- TensorStore (Orbax's arrays): the same endpoint and region, put into its spec by
  ``emollm_jax.checkpoint.s3_arrays``, and the same keys (its default AWS credential chain).

``AWS_CONFIG_FILE`` and ``AWS_SHARED_CREDENTIALS_FILE`` name empty files, so that no profile of
the machine's own ``~/.aws`` is read.
"""

import contextlib
import os
import socket
import uuid

import pytest

BUCKET = "emollm-test"


@contextlib.contextmanager
def _environment(env: dict[str, str]):
    """``env`` set in ``os.environ`` for the block, the former values back after it."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def emulator_env(url: str) -> dict[str, str]:
    return {
        "STORAGE_EMULATOR_HOST": url,
        "TENSORSTORE_GCS_HTTP_URL": url,
        "TENSORSTORE_GCS_HTTP_VERSION": "1",
        "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator",
        # One request at a time: the emulator mixes up concurrent object writes (a manifest
        # read back with a "Malformed StorageGeneration" was seen with the default concurrency).
        "TENSORSTORE_GCS_REQUEST_CONCURRENCY": "1",
        # gcsfs would ask the storage-control gRPC API for the bucket's layout (not emulated).
        "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        "GOOGLE_CLOUD_PROJECT": "emollm-test",
    }


def _send_generation_headers(objects) -> None:
    """Make the emulator's media download send ``x-goog-generation`` / ``-metageneration`` as
    GCS does. Must run before ``gcp_storage_emulator.server`` is imported (its routing table
    holds the handler functions)."""
    download = objects.download
    if getattr(download, "sends_generation", False):
        return

    def with_generation(request, response, storage, *args, **kwargs):
        try:
            obj = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
        except Exception:  # not found: the original handler answers 404
            obj = None
        if obj is not None:
            response["x-goog-generation"] = str(obj["generation"])
            response["x-goog-metageneration"] = str(obj.get("metageneration", "1"))
        return download(request, response, storage, *args, **kwargs)

    with_generation.sends_generation = True
    objects.download = with_generation


@pytest.fixture(scope="session")
def gcs_emulator():
    """The emulator's URL; the environment points every GCS client at it for the session."""
    objects = pytest.importorskip(
        "gcp_storage_emulator.handlers.objects",
        reason="gcp-storage-emulator is not installed (pip install -r requirements.txt)",
    )
    _send_generation_headers(objects)
    server_module = pytest.importorskip(
        "gcp_storage_emulator.server",
        reason="gcp-storage-emulator is not installed (pip install -r requirements.txt)",
    )
    pytest.importorskip("gcsfs", reason="gcsfs is not installed (pip install -r requirements.txt)")
    import logging

    logging.getLogger("gcp_storage_emulator").setLevel(logging.CRITICAL)
    port = _free_port()
    server = server_module.create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        with _environment(emulator_env(url)):
            yield url
    finally:
        server.stop()


@pytest.fixture
def gs_dir(gcs_emulator) -> str:
    """A fresh ``gs://`` folder (a new prefix of the test bucket) for one test."""
    return f"gs://{BUCKET}/{uuid.uuid4().hex[:12]}"



def s3_emulator_env(url: str, aws_dir: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "emulator",
        "AWS_SECRET_ACCESS_KEY": "emulator",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.path.join(aws_dir, "config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(aws_dir, "credentials"),
    }


@pytest.fixture(scope="session")
def s3_emulator(tmp_path_factory):
    """The emulator's URL; the environment points every S3 client at it for the session."""
    why = "{} is not installed (pip install -r requirements.txt)"
    server_module = pytest.importorskip("moto.server", reason=why.format("moto[server]"))
    s3fs = pytest.importorskip("s3fs", reason=why.format("s3fs"))
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    aws_dir = tmp_path_factory.mktemp("aws")
    for name in ("config", "credentials"):
        (aws_dir / name).write_text("")
    port = _free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        with _environment(s3_emulator_env(url, str(aws_dir))):
            s3fs.S3FileSystem.clear_instance_cache()  # one made before holds another endpoint
            s3fs.S3FileSystem().mkdir(BUCKET)
            yield url
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


@pytest.fixture
def s3_dir(s3_emulator) -> str:
    """A fresh ``s3://`` folder (a new prefix of the test bucket) for one test."""
    return f"s3://{BUCKET}/{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["gs", "s3"])
def cloud_dir(request) -> str:
    """A fresh folder of each emulated object store in turn (``gs://``, then ``s3://``)."""
    return request.getfixturevalue(f"{request.param}_dir")
