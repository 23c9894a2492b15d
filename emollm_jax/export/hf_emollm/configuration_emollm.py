"""EmoLLM's configuration for transformers (PyTorch).

Shipped inside every exported EmoLLM folder (loaded with ``trust_remote_code=True``) and
importable from ``emollm_jax.export.hf_emollm`` without remote code. It must import nothing
but torch and transformers.

EmoLLM is LLaVA's architecture (CLIP vision tower -> visual projector -> decoder LLM) with
EmoLLM's multi-perspective visual projection. The paper publishes no mechanism for it: the
projector here is emollm_jax's design (see ``modeling_emollm.py``), and ``projector_config``
holds its switches with the same names as emollm_jax's ``config.model.projector``.
"""

from __future__ import annotations

from transformers import AutoConfig, PretrainedConfig
from transformers.configuration_utils import SubConfigSpec

# emollm_jax's ProjectorConfig defaults (``emollm_jax/config/model.py``).
PROJECTOR_DEFAULTS = {
    "hidden_act": "gelu",
    "bias": True,
    "perspectives": ["patch", "depth", "relation", "global"],
    "perspective_embedding": True,
    "patch_pool": 1,
    "depth_layers": [],
    "depth_pool": 2,
    "relation_pool": 2,
    "relation_k": 4,
    "relation_rounds": 1,
    "global_queries": 8,
    "video": "frames",
}
PERSPECTIVES = ("patch", "depth", "relation", "global")


class EmoLLMConfig(PretrainedConfig):
    model_type = "emollm"
    attribute_map = {"image_token_id": "image_token_index"}
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="clip_vision_model"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
    }

    vision_config: dict | PretrainedConfig | None = None
    text_config: dict | PretrainedConfig | None = None
    image_token_index: int = 32000
    vision_feature_layer: int | list[int] = -2
    vision_feature_select_strategy: str = "default"
    projector_config: dict | None = None
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.projector_config = {**PROJECTOR_DEFAULTS, **(self.projector_config or {})}
        unknown = set(self.projector_config) - set(PROJECTOR_DEFAULTS)
        if unknown:
            raise ValueError(f"projector_config: unknown fields {sorted(unknown)}")
        bad = [p for p in self.projector_config["perspectives"] if p not in PERSPECTIVES]
        if bad or not self.projector_config["perspectives"]:
            raise ValueError(f"projector_config.perspectives: {bad} not in {PERSPECTIVES}")
        if self.vision_feature_select_strategy not in ("default", "full"):
            raise ValueError(
                f"vision_feature_select_strategy {self.vision_feature_select_strategy!r}"
            )

    @property
    def active_perspectives(self) -> list[str]:
        """The enabled perspectives in output order."""
        chosen = self.projector_config["perspectives"]
        return [p for p in PERSPECTIVES if p in chosen]


__all__ = ["EmoLLMConfig"]
