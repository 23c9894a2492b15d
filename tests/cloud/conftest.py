"""A GCS emulator on loopback for the ``gs://`` tests: ``gcp-storage-emulator`` (pinned in
requirements.txt) in this process on a free port, in memory, with the environment every GCS
client the project uses reads:

- gcsfs (epath's ``gs://`` backend) and google-cloud-storage: ``STORAGE_EMULATOR_HOST``;
- TensorStore (Orbax's arrays): ``TENSORSTORE_GCS_HTTP_URL``, HTTP/1.1, and a fixed token
  (``GOOGLE_AUTH_TOKEN_FOR_TESTING``) in place of Google credentials.

The emulator ignores the ``ifGenerationMatch`` precondition; the lock tests say where that
matters. Its media downloads also lack the ``x-goog-generation`` header real GCS sends, and
without it TensorStore's OCDBT manifest writes failed now and then ("Malformed
StorageGeneration": 2 of 12 save/save/restore cycles here); ``_send_generation_headers`` adds
it (0 failures in 40 cycles).
"""

import os
import socket
import uuid

import pytest

BUCKET = "emollm-test"


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
    saved = {k: os.environ.get(k) for k in emulator_env(url)}
    os.environ.update(emulator_env(url))
    try:
        yield url
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def gs_dir(gcs_emulator) -> str:
    """A fresh ``gs://`` folder (a new prefix of the test bucket) for one test."""
    return f"gs://{BUCKET}/{uuid.uuid4().hex[:12]}"
