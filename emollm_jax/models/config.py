"""Model configuration: frozen, hashable dataclasses built from an ml_collections config.

The dataclasses are the single source of truth for shapes; they are static under ``jax.jit``.
``from_config_dict`` validates a ``config.model`` ConfigDict and names the bad field in its
error (``config.model.text.num_kv_heads: ...``). Hugging Face ``config.json`` files map to and
from these classes in ``emollm_jax/convert/hf_config.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp

from emollm_jax.config.errors import ConfigError

ARCHS = ("llava", "llama", "qwen2", "clip_vision")
TEXT_FAMILIES = ("llama", "qwen2")
SELECT_STRATEGIES = ("default", "full")
DTYPES = ("float32", "bfloat16", "float16")
VISION_ACTS = ("quick_gelu", "gelu", "gelu_pytorch_tanh")
PROJECTOR_ACTS = ("gelu", "gelu_pytorch_tanh", "quick_gelu", "silu", "relu")
REMAT_POLICIES = ("none", "full", "dots", "dots_no_batch", "attention")
ATTENTION_KINDS = ("xla", "splash", "cudnn", "auto")
# ModelConfig fields that choose how the forward pass runs and shape no parameter.
ATTENTION_FIELDS = ("attention", "attention_interpret", "attention_block_q", "attention_block_kv")
FORWARD_ONLY = ("dtype", "param_dtype", "scan_layers", "remat", *ATTENTION_FIELDS)
PROJECTOR_TYPES = ("mlp", "multi_perspective")
PERSPECTIVES = ("patch", "depth", "relation", "global")
VIDEO_MODES = ("frames", "pooled")


@dataclasses.dataclass(frozen=True)
class RopeScaling:
    """llama3-style frequency scaling (the only scaling our checkpoints need so far)."""

    rope_type: str = "llama3"
    factor: float = 8.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192


@dataclasses.dataclass(frozen=True)
class VisionConfig:
    """CLIP ViT, as transformers' ``CLIPVisionModel`` computes it."""

    hidden_size: int = 32
    intermediate_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    image_size: int = 64
    patch_size: int = 16
    num_channels: int = 3
    layer_norm_eps: float = 1e-5
    hidden_act: str = "quick_gelu"
    # CLIP preprocessing (the data pipeline normalises with these).
    image_mean: tuple[float, ...] = (0.48145466, 0.4578275, 0.40821073)
    image_std: tuple[float, ...] = (0.26862954, 0.26130258, 0.27577711)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def num_positions(self) -> int:
        return self.num_patches + 1


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """A decoder LLM of the LLaMA family (LLaMA, Vicuna, Mistral-like) or Qwen2."""

    family: str = "llama"
    vocab_size: int = 1024
    hidden_size: int = 64
    intermediate_size: int = 128
    num_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2
    head_dim: int | None = None
    rope_theta: float = 10000.0
    rope_scaling: RopeScaling | None = None
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    max_position_embeddings: int = 2048
    bos_token_id: int | None = 1
    eos_token_id: int | tuple[int, ...] | None = 2
    pad_token_id: int | None = None

    @property
    def resolved_head_dim(self) -> int:
        return self.head_dim or self.hidden_size // self.num_heads

    @property
    def eos_token_ids(self) -> tuple[int, ...]:
        if self.eos_token_id is None:
            return ()
        if isinstance(self.eos_token_id, int):
            return (self.eos_token_id,)
        return tuple(self.eos_token_id)


@dataclasses.dataclass(frozen=True)
class ProjectorConfig:
    """The visual projector.

    ``mlp`` is LLaVA's 2-layer MLP (the baseline). ``multi_perspective`` is EmoLLM's projector
    as we design it (``projector_multi.py``; the paper does not publish the mechanism): the
    token sets of the enabled ``perspectives`` concatenated in the fixed order
    ``PERSPECTIVES``, each optionally tagged with a learned perspective embedding. The other
    fields configure it and are ignored by ``mlp``; ``visual_tokens.py`` turns them into token
    counts.
    """

    type: str = "mlp"
    hidden_act: str = "gelu"
    bias: bool = True
    perspectives: tuple[str, ...] = PERSPECTIVES
    perspective_embedding: bool = True
    # patch: LLaVA's per-patch MLP, the patch grid average-pooled pool x pool first.
    patch_pool: int = 1
    # depth: softmax mix of these hidden states (HF indexing: 0 = embeddings, -1 = last layer;
    # empty = all of them), pooled depth_pool x depth_pool.
    depth_layers: tuple[int, ...] = ()
    depth_pool: int = 2
    # relation: nodes = the patch grid pooled relation_pool x relation_pool; edges = each node's
    # relation_k most cosine-similar nodes; relation_rounds rounds of message passing.
    relation_pool: int = 2
    relation_k: int = 4
    relation_rounds: int = 1
    # global: learned queries cross-attending to all patches.
    global_queries: int = 8
    # Videos: "frames" = every frame as an image (LLaVA's way); "pooled" = per-frame global
    # tokens plus the other perspectives' tokens averaged over the frames.
    video: str = "frames"

    @property
    def active_perspectives(self) -> tuple[str, ...]:
        """The enabled perspectives in output order."""
        return tuple(name for name in PERSPECTIVES if name in self.perspectives)


LORA_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")


@dataclasses.dataclass(frozen=True)
class LoraConfig:
    """Low-rank adapters on the LLM's projections (``rank`` 0 = none).

    Each targeted projection gains ``x @ a @ b * alpha / rank`` with ``b`` zero at start, so a
    fresh adapter leaves the model's function unchanged.
    """

    rank: int = 0
    alpha: float = 16.0
    targets: tuple[str, ...] = LORA_TARGETS


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A whole model: LLaVA composite, a bare LLM, or a bare CLIP vision tower."""

    arch: str = "llava"
    vision: VisionConfig | None = dataclasses.field(default_factory=VisionConfig)
    text: TextConfig | None = dataclasses.field(default_factory=TextConfig)
    projector: ProjectorConfig | None = dataclasses.field(default_factory=ProjectorConfig)
    image_token_id: int = 4
    vision_feature_layer: int | tuple[int, ...] = -2
    vision_feature_select_strategy: str = "default"
    param_dtype: str = "float32"
    dtype: str = "float32"
    lora: LoraConfig = dataclasses.field(default_factory=LoraConfig)
    # Forward-pass choices; they change no parameter.
    scan_layers: bool = False
    remat: str = "none"
    # Attention implementation (models/attention.py): xla | splash | cudnn | auto. Interpret
    # runs splash in Pallas interpret mode on any platform (tests); block sizes are splash's
    # (multiples of 128; lowered to what divides the padded sequence).
    attention: str = "xla"
    attention_interpret: bool = False
    attention_block_q: int = 512
    attention_block_kv: int = 512

    @property
    def jnp_param_dtype(self):
        return jnp.dtype(self.param_dtype)

    @property
    def jnp_dtype(self):
        return jnp.dtype(self.dtype)

    @property
    def feature_layers(self) -> tuple[int, ...]:
        layer = self.vision_feature_layer
        return (layer,) if isinstance(layer, int) else tuple(layer)

    @property
    def has_vision(self) -> bool:
        return self.arch in ("llava", "clip_vision")

    @property
    def has_text(self) -> bool:
        return self.arch in ("llava", "llama", "qwen2")


# ---------------------------------------------------------------------------------------------
# Validation and construction from a ConfigDict
# ---------------------------------------------------------------------------------------------


_fail = ConfigError  # ConfigError(field, problem): the message reads "config.<field>: <problem>"


def _plain(value: Any) -> Any:
    """ConfigDict / FrozenConfigDict / lists -> plain dicts and tuples."""
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


def _build(cls, values: Mapping[str, Any] | None, prefix: str):
    """Instantiate a dataclass from a mapping, refusing unknown fields by name."""
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise _fail(f"{prefix}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(names))})")
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        v = values[f.name]
        if v is None and "None" in str(f.type):
            continue  # an optional field left unset
        default = f.default if f.default is not dataclasses.MISSING else None
        if isinstance(default, bool) and not isinstance(v, bool):
            raise _fail(f"{prefix}.{f.name}", f"expected a bool, got {v!r}")
        if (
            isinstance(default, int)
            and not isinstance(default, bool)
            and (isinstance(v, bool) or not isinstance(v, int))
        ):
            raise _fail(f"{prefix}.{f.name}", f"expected an int, got {v!r}")
        if isinstance(default, float) and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise _fail(f"{prefix}.{f.name}", f"expected a number, got {v!r}")
        if isinstance(default, float):
            values[f.name] = float(v)
    return cls(**values)


def _positive(cfg, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if value is not None and value <= 0:
            raise _fail(f"{prefix}.{name}", f"must be positive, got {value}")


def _validate_projector(cfg: ModelConfig) -> None:
    p, prefix = cfg.projector, "model.projector"
    if p.type not in PROJECTOR_TYPES:
        raise _fail(f"{prefix}.type", f"{p.type!r} is not one of {PROJECTOR_TYPES}")
    if p.video not in VIDEO_MODES:
        raise _fail(f"{prefix}.video", f"{p.video!r} is not one of {VIDEO_MODES}")
    if p.type == "mlp":
        if p.video != "frames":
            raise _fail(f"{prefix}.video", "the 'mlp' projector only supports 'frames'")
        return
    for name in ("perspectives", "depth_layers"):
        if not isinstance(getattr(p, name), tuple):
            raise _fail(f"{prefix}.{name}", f"expected a tuple, got {getattr(p, name)!r}")
    names = p.perspectives
    if not names:
        raise _fail(f"{prefix}.perspectives", "enable at least one perspective")
    for name in names:
        if name not in PERSPECTIVES:
            raise _fail(f"{prefix}.perspectives", f"{name!r} is not one of {PERSPECTIVES}")
    if len(set(names)) != len(names):
        raise _fail(f"{prefix}.perspectives", f"{names} names a perspective twice")
    _positive(p, prefix, "patch_pool", "depth_pool", "relation_pool", "relation_rounds")
    _positive(p, prefix, "relation_k", "global_queries")
    grid = cfg.vision.image_size // cfg.vision.patch_size
    for name in ("patch_pool", "depth_pool", "relation_pool"):
        if grid % getattr(p, name):
            raise _fail(
                f"{prefix}.{name}", f"{getattr(p, name)} does not divide the {grid}x{grid} grid"
            )
    nodes = (grid // p.relation_pool) ** 2
    if "relation" in names and p.relation_k >= nodes:
        raise _fail(f"{prefix}.relation_k", f"{p.relation_k} must be below the {nodes} nodes")
    n = cfg.vision.num_layers
    for layer in p.depth_layers:
        if isinstance(layer, bool) or not isinstance(layer, int) or not -(n + 1) <= layer <= n:
            raise _fail(
                f"{prefix}.depth_layers", f"{layer!r} is outside [-{n + 1}, {n}] ({n} layers)"
            )
    if len({layer % (n + 1) for layer in p.depth_layers}) != len(p.depth_layers):
        raise _fail(f"{prefix}.depth_layers", f"{p.depth_layers} names a layer twice")


def validate(cfg: ModelConfig) -> ModelConfig:
    """Check cross-field constraints; raise ConfigError naming the first bad field."""
    if cfg.arch not in ARCHS:
        raise _fail("model.arch", f"{cfg.arch!r} is not one of {ARCHS}")
    for name in ("param_dtype", "dtype"):
        if getattr(cfg, name) not in DTYPES:
            raise _fail(f"model.{name}", f"{getattr(cfg, name)!r} is not one of {DTYPES}")
    if cfg.remat not in REMAT_POLICIES:
        raise _fail("model.remat", f"{cfg.remat!r} is not one of {REMAT_POLICIES}")
    if cfg.attention not in ATTENTION_KINDS:
        raise _fail("model.attention", f"{cfg.attention!r} is not one of {ATTENTION_KINDS}")
    for name in ("attention_block_q", "attention_block_kv"):
        size = getattr(cfg, name)
        if size <= 0 or size % 128:
            raise _fail(f"model.{name}", f"must be a positive multiple of 128, got {size}")
    if cfg.has_vision:
        v = cfg.vision
        if v is None:
            raise _fail("model.vision", f"arch {cfg.arch!r} needs a vision config")
        _positive(
            v,
            "model.vision",
            "hidden_size",
            "intermediate_size",
            "num_layers",
            "num_heads",
            "image_size",
            "patch_size",
            "num_channels",
        )
        if v.hidden_size % v.num_heads:
            raise _fail(
                "model.vision.num_heads",
                f"hidden_size {v.hidden_size} is not divisible by num_heads {v.num_heads}",
            )
        if v.image_size % v.patch_size:
            raise _fail(
                "model.vision.patch_size",
                f"image_size {v.image_size} is not divisible by patch_size {v.patch_size}",
            )
        if v.hidden_act not in VISION_ACTS:
            raise _fail("model.vision.hidden_act", f"{v.hidden_act!r} is not one of {VISION_ACTS}")
        for name in ("image_mean", "image_std"):
            if len(getattr(v, name)) != v.num_channels:
                raise _fail(
                    f"model.vision.{name}", f"needs {v.num_channels} values (one per channel)"
                )
    if cfg.has_text:
        t = cfg.text
        if t is None:
            raise _fail("model.text", f"arch {cfg.arch!r} needs a text config")
        if t.family not in TEXT_FAMILIES:
            raise _fail("model.text.family", f"{t.family!r} is not one of {TEXT_FAMILIES}")
        _positive(
            t,
            "model.text",
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "head_dim",
            "rope_theta",
        )
        if t.num_heads % t.num_kv_heads:
            raise _fail(
                "model.text.num_kv_heads",
                f"num_heads {t.num_heads} is not divisible by num_kv_heads {t.num_kv_heads}",
            )
        if t.head_dim is None and t.hidden_size % t.num_heads:
            raise _fail(
                "model.text.head_dim",
                f"not set and hidden_size {t.hidden_size} is not divisible by num_heads "
                f"{t.num_heads}",
            )
        if t.resolved_head_dim % 2:
            raise _fail("model.text.head_dim", f"must be even for RoPE, got {t.resolved_head_dim}")
        if t.rope_scaling is not None and t.rope_scaling.rope_type != "llama3":
            raise _fail(
                "model.text.rope_scaling.rope_type",
                f"{t.rope_scaling.rope_type!r} is not supported (only 'llama3')",
            )
    if cfg.lora.rank < 0:
        raise _fail("model.lora.rank", f"must be >= 0, got {cfg.lora.rank}")
    bad = sorted(set(cfg.lora.targets) - set(LORA_TARGETS))
    if bad:
        raise _fail("model.lora.targets", f"{bad[0]!r} is not one of {LORA_TARGETS}")
    if cfg.arch == "llava":
        p = cfg.projector
        if p is None:
            raise _fail("model.projector", "arch 'llava' needs a projector config")
        if p.hidden_act not in PROJECTOR_ACTS:
            raise _fail(
                "model.projector.hidden_act", f"{p.hidden_act!r} is not one of {PROJECTOR_ACTS}"
            )
        _validate_projector(cfg)
        if not 0 <= cfg.image_token_id < cfg.text.vocab_size:
            raise _fail(
                "model.image_token_id",
                f"{cfg.image_token_id} is outside the vocabulary [0, {cfg.text.vocab_size})",
            )
        n = cfg.vision.num_layers
        for layer in cfg.feature_layers:
            if not -(n + 1) <= layer <= n:
                raise _fail(
                    "model.vision_feature_layer",
                    f"{layer} is outside [-{n + 1}, {n}] for {n} vision layers",
                )
        if cfg.vision_feature_select_strategy not in SELECT_STRATEGIES:
            raise _fail(
                "model.vision_feature_select_strategy",
                f"{cfg.vision_feature_select_strategy!r} is not one of {SELECT_STRATEGIES}",
            )
    return cfg


def from_config_dict(model_cd: Any) -> ModelConfig:
    """Build and validate a ModelConfig from ``config.model`` (a ConfigDict or a dict)."""
    values = _plain(model_cd)
    if not isinstance(values, dict):
        raise _fail("model", f"expected a mapping, got {type(values).__name__}")
    sub = {}
    for name, cls in (
        ("vision", VisionConfig),
        ("text", TextConfig),
        ("projector", ProjectorConfig),
    ):
        if values.get(name) is not None:
            part = dict(values[name])
            if name == "text" and part.get("rope_scaling") is not None:
                part["rope_scaling"] = _build(
                    RopeScaling, part["rope_scaling"], "model.text.rope_scaling"
                )
            sub[name] = _build(cls, part, f"model.{name}")
        else:
            sub[name] = None
    values.update(sub)
    if values.get("lora") is not None:
        values["lora"] = _build(LoraConfig, values["lora"], "model.lora")
    else:
        values.pop("lora", None)
    if isinstance(values.get("vision_feature_layer"), list):
        values["vision_feature_layer"] = tuple(values["vision_feature_layer"])
    return validate(_build(ModelConfig, values, "model"))


def to_dict(cfg: ModelConfig) -> dict[str, Any]:
    """The inverse of ``from_config_dict`` (plain, JSON-friendly)."""
    return dataclasses.asdict(cfg)
