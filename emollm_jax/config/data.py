"""``config.data``: the data pipeline (``emollm_jax/data/``). Checks that span fields (a video
fits the largest frame bucket, a URL where only local folders are read) stay in
``emollm_jax/data/data_config.py``."""

from __future__ import annotations

import dataclasses

from emollm_jax.config.section import at_least_zero, one_of, option, positive, positive_fraction


@dataclasses.dataclass(frozen=True)
class DataConfig:
    dir: str = option(
        "data/mini_emobench",
        "EmoBench-format folder with {train,validation,test}.jsonl and media "
        "(`emollm data mini DIR` makes the mini one)",
    )
    make_mini_if_missing: bool = option(False, "make the mini EmoBench in `dir` if it is not there")
    tokenizer: str = option("emollm_jax/assets/tokenizer", "tokenizer folder (or URL)")
    chat_template: str = option(
        "vicuna_v1", "vicuna_v1 | chatml | tokenizer (the tokenizer's own chat_template)"
    )
    video_frames: int = option(8, "frames sampled uniformly from each video", positive)
    source: str = option(
        "jsonl",
        "where records come from: jsonl (the split files) or tfds (ArrayRecord shards of `dir`)",
        one_of("jsonl", "tfds"),
    )
    tfds_dir: str = option("", "where the tfds source's shards are built ('' = <dir>/tfds)")
    batch_size: int = option(8, "global training batch (split evenly over processes)", positive)
    eval_batch_size: int = option(16, "global evaluation batch", positive)
    seq_buckets: tuple = option(
        (128, 256), "padded sequence lengths; a row takes the smallest that fits, longer skipped"
    )
    frame_buckets: tuple = option(
        (1, 8), "frames per row (an image is 1, a video video_frames); the smallest that fits"
    )
    pack: bool = option(False, "pack several examples per row (first-fit, largest buckets)")
    seed: int = option(0, "shuffling seed")
    train_fraction: float = option(
        1.0,
        "share of the training split used: its first round(fraction * records) records, in "
        "file order",
        positive_fraction,
    )
    shuffle: bool = option(True, "shuffle the records")
    num_epochs: int = option(0, "passes over the split (0 = repeat forever)", at_least_zero)
    read_threads: int = option(2, "decoding threads in this process", at_least_zero)
    prefetch_buffer: int = option(16, "batches read ahead")
    worker_count: int = option(0, "Grain worker processes (0 = none)", at_least_zero)
    worker_buffer_size: int = option(2, "batches each worker keeps ready")
    strict: bool = option(False, "raise on the first bad record instead of skipping and counting")
    max_consecutive_bad: int = option(
        1000, "stop after this many refused records in a row (0 = no bound)", at_least_zero
    )
    max_pixels: int = option(
        16_000_000, "largest image or video frame accepted, in pixels", positive
    )
