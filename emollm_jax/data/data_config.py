"""Start-up checks of ``config.data``: a bad field fails with a message naming it."""

from __future__ import annotations

from emollm_jax.data.chat_templates import TEMPLATES
from emollm_jax.errors import ConfigError
from emollm_jax.paths import is_url

SOURCES = ("jsonl", "tfds")
# Read through local-file libraries (JSONL, ArrayRecord, Pillow, PyAV): a URL is refused at
# start-up. data.tokenizer may be a URL (downloaded whole when loaded).
LOCAL_ONLY = ("dir", "tfds_dir")


def check_local(field: str, value) -> None:
    """A ``ConfigError`` naming ``config.<field>`` when ``value`` is a cloud storage URL."""
    if value and is_url(value):
        raise ConfigError(
            field,
            f"{value!r}: cloud storage is not supported here yet; copy it to a local (or "
            f"mounted) folder. The workdir, train.init_from, data.tokenizer and the convert "
            f"and evaluate folders may be gs:// or s3:// URLs.",
            value=value,
        )


def _buckets(d, name: str) -> None:
    values = tuple(d[name])
    if not values or any(not isinstance(v, int) or v <= 0 for v in values):
        raise ConfigError(f"data.{name}", value=values, expected="positive ints")


def check_data_config(d) -> None:
    for name in LOCAL_ONLY:
        check_local(f"data.{name}", d.get(name))
    if d.chat_template not in TEMPLATES:
        raise ConfigError.not_one_of("data.chat_template", d.chat_template, TEMPLATES)
    if d.source not in SOURCES:
        raise ConfigError.not_one_of("data.source", d.source, SOURCES)
    for name in ("batch_size", "eval_batch_size", "video_frames", "max_pixels"):
        if d[name] <= 0:
            raise ConfigError(f"data.{name}", value=d[name], expected="positive")
    for name in ("num_epochs", "worker_count", "read_threads", "max_consecutive_bad"):
        if d.get(name, 0) < 0:
            raise ConfigError(f"data.{name}", value=d[name], expected=">= 0")
    _buckets(d, "seq_buckets")
    _buckets(d, "frame_buckets")
    if d.video_frames > max(d.frame_buckets):
        raise ConfigError(
            "data.frame_buckets",
            f"the largest bucket {max(d.frame_buckets)} cannot hold a video of "
            f"video_frames={d.video_frames} frames",
            value=tuple(d.frame_buckets),
            expected=f"a bucket >= data.video_frames ({d.video_frames})",
        )
