"""How many visual tokens one media item becomes: read by the model and the data pipeline alike.

The data pipeline expands each media item's placeholder to exactly this many image tokens; the
model scatters exactly this many projected visual tokens into them (the multi-perspective
projector checks its outputs against ``perspective_tokens`` while tracing). Keeping the count
in one place keeps the two from drifting apart.

With ``g = image_size // patch_size`` (the patch grid side), one frame gives

- ``mlp`` (LLaVA): ``g * g`` tokens, plus 1 with ``vision_feature_select_strategy="full"``;
- ``multi_perspective``: the sum over enabled perspectives of
  ``patch`` ``(g / patch_pool)^2`` (+1 with ``"full"``: the class token stays in front),
  ``depth`` ``(g / depth_pool)^2``, ``relation`` ``(g / relation_pool)^2``, ``global``
  ``global_queries``.

A video of ``T`` frames gives ``T`` times a frame's tokens with ``projector.video="frames"``;
with ``"pooled"`` (and ``T > 1``) it gives the non-global perspectives' tokens once (averaged
over the frames) plus ``T * global_queries``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emollm_jax.config.model import ModelConfig


def grid_side(cfg: ModelConfig) -> int:
    """Patches along one side of a frame."""
    return cfg.vision.image_size // cfg.vision.patch_size


def perspective_tokens(cfg: ModelConfig) -> dict[str, int]:
    """Tokens each enabled perspective of the multi-perspective projector gives one frame, in
    output order."""
    p, g = cfg.projector, grid_side(cfg)
    cls = 1 if cfg.vision_feature_select_strategy == "full" else 0
    counts = {
        "patch": (g // p.patch_pool) ** 2 + cls,
        "depth": (g // p.depth_pool) ** 2,
        "relation": (g // p.relation_pool) ** 2,
        "global": p.global_queries,
    }
    return {name: counts[name] for name in p.active_perspectives}


def tokens_per_frame(cfg: ModelConfig) -> int:
    """Visual tokens of one image (one frame) after the projector."""
    if cfg.projector is not None and cfg.projector.type == "multi_perspective":
        return sum(perspective_tokens(cfg).values())
    n = cfg.vision.num_patches
    if cfg.vision_feature_select_strategy == "full":
        n += 1
    return n


def tokens_per_media(cfg: ModelConfig, media_type: str, num_frames: int = 1) -> int:
    """Visual tokens of one media item: an image, or a video of ``num_frames`` frames."""
    if media_type == "image":
        return tokens_per_frame(cfg)
    if media_type != "video":
        raise ValueError(f"media type must be 'image' or 'video', got {media_type!r}")
    if cfg.projector is None or cfg.projector.video == "frames" or num_frames == 1:
        return num_frames * tokens_per_frame(cfg)
    counts = perspective_tokens(cfg)
    per_frame = counts.pop("global", 0)
    return sum(counts.values()) + num_frames * per_frame
