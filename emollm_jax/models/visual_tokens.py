"""How many visual tokens one media item becomes: read by the model and the data pipeline alike.

The data pipeline expands each media item's placeholder to exactly this many image tokens; the
model scatters exactly this many projected visual tokens into them. Keeping the count in one
function keeps the two from drifting apart.
"""

from __future__ import annotations

from emollm_jax.models.config import ModelConfig


def tokens_per_frame(cfg: ModelConfig) -> int:
    """Visual tokens of one image (one frame) after the projector."""
    n = cfg.vision.num_patches
    if cfg.vision_feature_select_strategy == "full":
        n += 1
    return n


def tokens_per_media(cfg: ModelConfig, media_type: str, num_frames: int = 1) -> int:
    """Visual tokens of one media item: an image, or a video of ``num_frames`` frames."""
    if media_type == "image":
        return tokens_per_frame(cfg)
    if media_type == "video":
        return num_frames * tokens_per_frame(cfg)
    raise ValueError(f"media type must be 'image' or 'video', got {media_type!r}")
