"""Start-up checks of ``config.data``: a bad field fails with a message naming it."""

from __future__ import annotations

from emollm_jax.config.errors import ConfigError
from emollm_jax.data.chat_templates import TEMPLATES

SOURCES = ("jsonl", "tfds")


def _buckets(d, name: str) -> None:
    values = tuple(d[name])
    if not values or any(not isinstance(v, int) or v <= 0 for v in values):
        raise ConfigError(f"data.{name}", value=values, expected="positive ints")


def check_data_config(d) -> None:
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
