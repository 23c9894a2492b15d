"""Token-id prompts -> a left-padded batch whose length is bucketed, for ``Generator``.

The data pipeline's eval mode already produces such batches (``data/batching.py``); this is
for prompts built in code (tests, notebooks). Our choices: rows are padded on the LEFT so that
every row's next token is written at the same cache slot; the length is the smallest of
``buckets`` that fits the longest prompt (or the longest prompt itself when no buckets are
given), so that prompts of different lengths share one compiled program.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def bucket_length(n: int, buckets: Sequence[int] | None) -> int:
    """The smallest bucket >= ``n``; ``n`` itself without buckets."""
    if not buckets:
        return n
    fitting = [b for b in sorted(buckets) if b >= n]
    if not fitting:
        raise ValueError(f"a prompt of {n} tokens exceeds the largest bucket {max(buckets)}")
    return int(fitting[0])


def left_pad(
    prompts: Sequence[Sequence[int]], pad_id: int, buckets: Sequence[int] | None = None
) -> dict[str, np.ndarray]:
    """``input_ids``, ``attention_mask`` and ``positions`` (int32 ``[B, S]``), left-padded."""
    if not prompts or any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token")
    length = bucket_length(max(len(p) for p in prompts), buckets)
    ids = np.full((len(prompts), length), pad_id, np.int32)
    mask = np.zeros((len(prompts), length), np.int32)
    positions = np.zeros((len(prompts), length), np.int32)
    for row, prompt in enumerate(prompts):
        n = len(prompt)
        ids[row, length - n :] = prompt
        mask[row, length - n :] = 1
        positions[row, length - n :] = np.arange(n)
    return {"input_ids": ids, "attention_mask": mask, "positions": positions}
