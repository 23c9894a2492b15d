"""Decoding and CLIP preprocessing."""

import io

import numpy as np
import pytest
from PIL import Image

from emollm_jax.data import clip_preprocess, media
from emollm_jax.data.bad_input import BadRecord
from emollm_jax.data.mini.make_mini_emobench import encode_mp4


def _grey_video(n):
    """Frame t is flat grey level 20 * t, so a decoded frame tells its index."""
    return encode_mp4([Image.new("RGB", (64, 48), (20 * t,) * 3) for t in range(n)])


@pytest.mark.parametrize(("total", "wanted"), [(12, 4), (8, 8), (3, 8)])
def test_video_frames_are_sampled_uniformly(total, wanted):
    frames = media.decode("video", _grey_video(total), num_frames=wanted, max_pixels=10**6)
    assert frames.shape == (wanted, 48, 64, 3)
    got = np.round(frames.reshape(wanted, -1).mean(axis=1) / 20).astype(int)
    want = np.round(np.linspace(0, total - 1, wanted)).astype(int)
    np.testing.assert_array_equal(got, want)


def test_image_is_one_rgb_frame():
    buf = io.BytesIO()
    Image.new("L", (30, 20), 7).save(buf, format="PNG")
    frames = media.decode("image", buf.getvalue(), num_frames=8, max_pixels=10**6)
    assert frames.shape == (1, 20, 30, 3) and frames.dtype == np.uint8 and frames.max() == 7


def test_decompression_bomb_is_refused_before_decoding():
    buf = io.BytesIO()
    Image.new("1", (4000, 4000)).save(buf, format="PNG")  # 16 Mpx in a few kB
    with pytest.raises(BadRecord, match="too_many_pixels"):
        media.decode("image", buf.getvalue(), num_frames=1, max_pixels=1_000_000)


@pytest.mark.parametrize("shape", [(128, 128, 3), (96, 130, 3), (150, 71, 3)])
def test_clip_preprocess_matches_transformers(shape):
    from transformers import CLIPImageProcessor

    img = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    proc = CLIPImageProcessor(size={"shortest_edge": 64}, crop_size={"height": 64, "width": 64})
    want = proc(images=[img], return_tensors="np")["pixel_values"]
    got = clip_preprocess.preprocess(img[None], 64, proc.image_mean, proc.image_std)
    assert got.shape == (1, 3, 64, 64) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-6)
