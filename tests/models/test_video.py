"""Frames grouped into media items: first frames, time pooling and the ragged row layout."""

import jax.numpy as jnp
import numpy as np

from emollm_jax.models import video

# Row 0: image, 2-frame video, image. Row 1: 3-frame video, padding.
FRAME_MEDIA = jnp.asarray([[0, 1, 1, 2], [0, 0, 0, -1]])


def test_first_frames_and_same_media():
    assert video.first_frames(FRAME_MEDIA).tolist() == [
        [True, True, False, True],
        [True, False, False, False],
    ]
    same = video.same_media(FRAME_MEDIA)
    assert same[0].sum(-1).tolist() == [1, 2, 2, 1]
    assert same[1].sum(-1).tolist() == [3, 3, 3, 0]  # padding belongs to nothing


def test_time_pool_averages_over_each_media_item():
    x = jnp.arange(8, dtype=jnp.float32).reshape(2, 4, 1, 1)
    pooled = video.time_pool(x, video.same_media(FRAME_MEDIA))[..., 0, 0]
    np.testing.assert_allclose(pooled, [[0, 1.5, 1.5, 3], [5, 5, 5, 0]])


def test_compact_concatenates_each_frames_slice():
    tokens = jnp.arange(2 * 3 * 4, dtype=jnp.float32).reshape(2, 3, 4, 1)
    start = jnp.asarray([[0, 2, 1], [3, 0, 0]])
    count = jnp.asarray([[4, 2, 0], [1, 0, 3]])
    out = video.compact(tokens, start, count)[..., 0]
    assert out.shape == (2, 12)
    assert out[0, :6].tolist() == [0, 1, 2, 3, 6, 7]
    assert out[1, :4].tolist() == [15, 20, 21, 22]


def test_pooled_rows_layout():
    # Local token = 10 * frame + k; global token = 100 + frame, per row.
    f = jnp.arange(4, dtype=jnp.float32)[None, :, None, None]
    local = jnp.broadcast_to(10 * f + jnp.arange(2.0)[None, None, :, None], (2, 4, 2, 1))
    global_ = jnp.broadcast_to(100 + f, (2, 4, 1, 1))
    rows = video.pooled_rows(local, global_, FRAME_MEDIA)[..., 0]
    # image (local 0, 1; global 100), video (mean of frames 1, 2; globals 101, 102), image 3
    assert rows[0, :10].tolist() == [0, 1, 100, 15, 16, 101, 102, 30, 31, 103]
    assert rows[1, :5].tolist() == [10, 11, 100, 101, 102]
    no_global = video.pooled_rows(local, None, FRAME_MEDIA)[..., 0]
    assert no_global[1, :2].tolist() == [10, 11]
    only_global = video.pooled_rows(None, global_, FRAME_MEDIA)[..., 0]
    assert only_global[0, :4].tolist() == [100, 101, 102, 103]
