"""Start-up checks of ``config.data``: a bad field fails with a message naming it."""

from __future__ import annotations

from emollm_jax.data.chat_templates import TEMPLATES
from emollm_jax.models.config import ConfigError

SOURCES = ("jsonl", "tfds")


def _fail(field: str, msg: str) -> ConfigError:
    return ConfigError(f"config.data.{field}: {msg}")


def _buckets(d, name: str) -> None:
    values = tuple(d[name])
    if not values or any(not isinstance(v, int) or v <= 0 for v in values):
        raise _fail(name, f"needs positive ints, got {values!r}")


def check_data_config(d) -> None:
    if d.chat_template not in TEMPLATES:
        raise _fail("chat_template", f"{d.chat_template!r} is not one of {TEMPLATES}")
    if d.source not in SOURCES:
        raise _fail("source", f"{d.source!r} is not one of {SOURCES}")
    for name in ("batch_size", "eval_batch_size", "video_frames", "max_pixels"):
        if d[name] <= 0:
            raise _fail(name, f"must be positive, got {d[name]}")
    for name in ("num_epochs", "worker_count", "read_threads", "max_consecutive_bad"):
        if d.get(name, 0) < 0:
            raise _fail(name, f"must be >= 0, got {d[name]}")
    _buckets(d, "seq_buckets")
    _buckets(d, "frame_buckets")
    if d.video_frames > max(d.frame_buckets):
        raise _fail(
            "frame_buckets",
            f"the largest bucket {max(d.frame_buckets)} cannot hold a video of "
            f"video_frames={d.video_frames} frames",
        )
