"""Media bytes -> RGB uint8 frames: Pillow for images, PyAV for videos; header checks.

Our choices: an image is one frame; a video becomes exactly ``num_frames`` frames picked
uniformly over its length (indices ``round(linspace(0, n - 1, num_frames))``, so a short video
repeats frames and the first and last frames are always in). Every image and every video frame
is checked against a pixel limit *before* its pixels are decoded (decompression bombs), and any
decoding failure is a ``BadRecord("corrupt_media")``.
"""

from __future__ import annotations

import io
import warnings

import av
import numpy as np
from PIL import Image

from emollm_jax.data.bad_input import BadRecord

MEDIA_TYPES = ("image", "video")


def _pixel_check(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise BadRecord("too_many_pixels", f"{width}x{height} > {max_pixels} pixels")


def _file(data: bytes | str):
    """Bytes in memory, or a path (header checks need not read a whole file)."""
    return io.BytesIO(data) if isinstance(data, bytes) else data


def _open_image(data: bytes | str, max_pixels: int) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(_file(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadRecord("too_many_pixels", str(e)) from e
    except Exception as e:  # Pillow raises many types for bad bytes
        raise BadRecord("corrupt_media", f"image: {e}") from e
    _pixel_check(*img.size, max_pixels)
    return img


def check_header(media_type: str, data: bytes | str, max_pixels: int) -> None:
    """Cheap checks on the header only (``data``: bytes or a path): container, pixel limit."""
    if media_type == "image":
        _open_image(data, max_pixels)
    elif media_type == "video":
        try:
            with av.open(_file(data)) as container:
                if not container.streams.video:
                    raise BadRecord("corrupt_media", "video: no video stream")
                ctx = container.streams.video[0].codec_context
                _pixel_check(ctx.width, ctx.height, max_pixels)
        except BadRecord:
            raise
        except Exception as e:
            raise BadRecord("corrupt_media", f"video: {e}") from e
    else:
        raise BadRecord("malformed_record", f"media type {media_type!r} not in {MEDIA_TYPES}")


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """uint8 [1, H, W, 3]."""
    img = _open_image(data, max_pixels)
    try:
        rgb = np.asarray(img.convert("RGB"))
    except Exception as e:
        raise BadRecord("corrupt_media", f"image: {e}") from e
    return rgb[None]


def uniform_indices(total: int, num_frames: int) -> np.ndarray:
    return np.round(np.linspace(0, total - 1, num_frames)).astype(np.int64)


def decode_video(data: bytes, num_frames: int, max_pixels: int) -> np.ndarray:
    """uint8 [num_frames, H, W, 3], sampled uniformly over the video."""
    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.video:
                raise BadRecord("corrupt_media", "video: no video stream")
            stream = container.streams.video[0]
            _pixel_check(stream.codec_context.width, stream.codec_context.height, max_pixels)
            total = stream.frames  # 0 when the container does not say
            wanted = set(uniform_indices(total, num_frames).tolist()) if total > 0 else None
            kept: dict[int, np.ndarray] = {}
            for i, frame in enumerate(container.decode(stream)):
                if wanted is None or i in wanted:
                    kept[i] = frame.to_ndarray(format="rgb24")
                if wanted is not None and i >= max(wanted):
                    break
    except BadRecord:
        raise
    except Exception as e:
        raise BadRecord("corrupt_media", f"video: {e}") from e
    if not kept:
        raise BadRecord("corrupt_media", "video: no frames")
    frames = [kept[k] for k in sorted(kept)]
    if wanted is not None and len(kept) == len(wanted):
        picked = [kept[k] for k in uniform_indices(total, num_frames)]
    else:  # unknown or wrong frame count in the header: sample what was decoded
        picked = [frames[k] for k in uniform_indices(len(frames), num_frames)]
    return np.stack(picked)


def decode(media_type: str, data: bytes, *, num_frames: int, max_pixels: int) -> np.ndarray:
    """uint8 [frames, H, W, 3]: 1 frame for an image, ``num_frames`` for a video."""
    if media_type == "image":
        return decode_image(data, max_pixels)
    if media_type == "video":
        return decode_video(data, num_frames, max_pixels)
    raise BadRecord("malformed_record", f"media type {media_type!r} not in {MEDIA_TYPES}")
