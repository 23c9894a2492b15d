"""Examples -> a batch dict of numpy arrays: padding to buckets, packed rows, eval prompts.

The batch contract (training step, generation and evaluation consume it)::

    input_ids      int32   [B, S]   pad_token_id on padding
    attention_mask int32   [B, S]   1 real token, 0 padding
    labels         int32   [B, S]   ids on assistant tokens (incl. the closing eos), else -100
    loss_weights   float32 [B, S]   only when the encoder weighs targets: each label's loss
                                    weight (1 on a plain target, 0 where labels are -100)
    positions      int32   [B, S]   0-based position within its own example, 0 on padding
    segment_ids    int32   [B, S]   1, 2, ... per packed example; 0 on padding
    pixel_values   float32 [B, F, C, H, W]  frames of the row's media, in placeholder order
    frame_media    int32   [B, F]   media index within the row of each frame, -1 on padding

Our static-shape rule: S is the smallest of ``data.seq_buckets`` that fits the batch's longest
row, F the smallest of ``data.frame_buckets`` that fits the row with most frames (so a batch of
images compiles with F=1 and a batch with a video with F=video_frames); packed batches always
use the largest bucket of each. Training pads on the right; eval prompts are padded on the LEFT
(generation appends at the end) and carry no labels. An eval batch always has B rows: rows past
the real ones repeat the first row (so that no row is all padding) and have no metadata.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from emollm_jax.data.example_encoder import IGNORE


def bucket(n: int, buckets: Sequence[int]) -> int:
    """The smallest bucket >= n."""
    for b in sorted(buckets):
        if n <= b:
            return int(b)
    raise ValueError(f"{n} exceeds the largest bucket {max(buckets)}")


def _pad_rows(
    examples: Sequence[dict], seq_len: int, num_frames: int, pad_id: int, left: bool
) -> dict[str, np.ndarray]:
    b = len(examples)
    frame_shape = examples[0]["pixel_values"].shape[1:]
    out = {
        "input_ids": np.full((b, seq_len), pad_id, np.int32),
        "attention_mask": np.zeros((b, seq_len), np.int32),
        "positions": np.zeros((b, seq_len), np.int32),
        "segment_ids": np.zeros((b, seq_len), np.int32),
        "pixel_values": np.zeros((b, num_frames, *frame_shape), np.float32),
        "frame_media": np.full((b, num_frames), -1, np.int32),
    }
    with_labels = "labels" in examples[0]
    if with_labels:
        out["labels"] = np.full((b, seq_len), IGNORE, np.int32)
    with_weights = "loss_weights" in examples[0]
    if with_weights:
        out["loss_weights"] = np.zeros((b, seq_len), np.float32)
    for i, ex in enumerate(examples):
        n = len(ex["input_ids"])
        cols = slice(seq_len - n, seq_len) if left else slice(0, n)
        out["input_ids"][i, cols] = ex["input_ids"]
        out["attention_mask"][i, cols] = 1
        out["positions"][i, cols] = np.arange(n, dtype=np.int32)
        out["segment_ids"][i, cols] = 1
        if with_labels:
            out["labels"][i, cols] = ex["labels"]
        if with_weights:
            out["loss_weights"][i, cols] = ex["loss_weights"]
        f = len(ex["frame_media"])
        out["pixel_values"][i, :f] = ex["pixel_values"]
        out["frame_media"][i, :f] = ex["frame_media"]
    return out


def collate_train(
    examples: Sequence[dict],
    *,
    seq_buckets: Sequence[int],
    frame_buckets: Sequence[int],
    pad_id: int,
) -> dict[str, np.ndarray]:
    """Right-padded training batch."""
    seq_len = bucket(max(len(ex["input_ids"]) for ex in examples), seq_buckets)
    num_frames = bucket(max(len(ex["frame_media"]) for ex in examples), frame_buckets)
    return _pad_rows(examples, seq_len, num_frames, pad_id, left=False)


def collate_eval(
    examples: Sequence[dict],
    *,
    batch_size: int,
    seq_buckets: Sequence[int],
    frame_buckets: Sequence[int],
    pad_id: int,
) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Left-padded prompts, always ``batch_size`` rows, and the real rows' metadata."""
    meta = [ex["meta"] for ex in examples]
    rows = list(examples) + [examples[0]] * (batch_size - len(examples))
    seq_len = bucket(max(len(ex["input_ids"]) for ex in rows), seq_buckets)
    num_frames = bucket(max(len(ex["frame_media"]) for ex in rows), frame_buckets)
    return _pad_rows(rows, seq_len, num_frames, pad_id, left=True), meta


# Keys Grain's packer fills, and the padding it uses for each (``loss_weights`` only when the
# encoder weighs targets).
PACKED_KEYS = ("input_ids", "labels", "pixel_values", "frame_media")


def packing_lengths(seq_len: int, num_frames: int, weighted: bool = False) -> dict[str, int]:
    lengths = {
        "input_ids": seq_len,
        "labels": seq_len,
        "pixel_values": num_frames,
        "frame_media": num_frames,
    }
    return lengths | ({"loss_weights": seq_len} if weighted else {})


def packing_padding(pad_id: int, weighted: bool = False) -> dict:
    padding = {"input_ids": pad_id, "labels": IGNORE, "pixel_values": 0.0, "frame_media": -1}
    return padding | ({"loss_weights": 0.0} if weighted else {})


def finish_packed_row(row: dict) -> dict[str, np.ndarray]:
    """One row from Grain's packer -> the batch contract's keys.

    Each packed example numbers its media from 0; here they are renumbered along the row, so
    that ``frame_media`` counts the row's media items in placeholder order.
    """
    segment_ids = row["input_ids_segment_ids"].astype(np.int32)
    frame_media = row["frame_media"].astype(np.int32).copy()
    frame_segments = row["frame_media_segment_ids"]
    offset = 0
    for seg in range(1, int(frame_segments.max(initial=0)) + 1):
        mine = frame_segments == seg
        if mine.any():
            frame_media[mine] += offset
            offset = int(frame_media[mine].max()) + 1
    out = {
        "input_ids": row["input_ids"].astype(np.int32),
        "attention_mask": (segment_ids > 0).astype(np.int32),
        "labels": row["labels"].astype(np.int32),
        "positions": row["input_ids_positions"].astype(np.int32),
        "segment_ids": segment_ids,
        "pixel_values": row["pixel_values"].astype(np.float32),
        "frame_media": frame_media,
    }
    if "loss_weights" in row:
        out["loss_weights"] = row["loss_weights"].astype(np.float32)
    return out
