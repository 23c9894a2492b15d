"""Model configuration: frozen, hashable dataclasses built from an ml_collections config.

The dataclasses are the single source of truth for shapes; they are static under ``jax.jit``.
Each checks itself on construction (``__post_init__``), so direct construction and
``dataclasses.replace`` cannot skip validation; checks that span parts live in
``ModelConfig``. A bad value raises ``ConfigError`` naming the field
(``config.model.text.num_kv_heads: ...``). Values that name an implementation (architecture,
activation, remat policy, attention kernel, projector, perspective) are checked against the
names below, which the implementing modules' tables are keyed by. ``from_config_dict`` builds a
``ModelConfig`` from a ``config.model`` ConfigDict; Hugging Face ``config.json`` files map to
and from these classes in ``emollm_jax/convert/hf_config.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

import jax.numpy as jnp

from emollm_jax.errors import ConfigError

# The names a field may take that choose an implementation. The schema holds the names only;
# the modules that implement them key their tables by these names (a test checks the two agree),
# so importing the schema loads no model code.
ARCHS = ("llava", "llama", "qwen2", "clip_vision")  # models/build.py: ARCHS
# The text architectures are the decoder's families (the LLM inside a LLaVA is one of them).
TEXT_FAMILIES = ("llama", "qwen2")
ACTIVATIONS = (  # models/layers.py: ACTIVATIONS
    "quick_gelu", "gelu", "gelu_pytorch_tanh", "silu", "relu", "relu2",
)
ATTENTION_KINDS = ("xla", "splash", "cudnn", "auto")  # models/attention.py
PROJECTORS = ("mlp", "multi_perspective")  # models/llava.py: PROJECTORS
# models/perspectives.py: PERSPECTIVE_MODULES; their token sets come in this order.
PERSPECTIVES = ("patch", "depth", "relation", "global")
REMAT_POLICIES = (  # models/remat.py: REMAT_POLICIES
    "none", "full", "dots", "dots_no_batch", "save_qkv", "save_qkvo", "attention",
    "save_dots_except_mlp", "offload_layer_input", "offload_qkvo", "offload_layer_input_qkvo",
)
SELECT_STRATEGIES = ("default", "full")
DTYPES = ("float32", "bfloat16", "float16")
# ModelConfig fields that choose how the forward pass runs and shape no parameter.
ATTENTION_FIELDS = (
    "attention",
    "attention_interpret",
    "attention_block_q",
    "attention_block_kv",
    "attention_fused_backward",
)
FORWARD_ONLY = (
    "dtype",
    "param_dtype",
    "scan_layers",
    "remat",
    "embed_one_hot",
    "mlp_chunk",
    "zeroed_perspectives",
    *ATTENTION_FIELDS,
)
VIDEO_MODES = ("frames", "pooled")
LORA_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")


def _one_of(field: str, value: Any, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ConfigError(field, f"{value!r} is not one of {allowed}")


def _positive(cfg, prefix: str, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if value is not None and value <= 0:
            raise ConfigError(f"{prefix}.{name}", f"must be positive, got {value}")


@dataclasses.dataclass(frozen=True)
class RopeScaling:
    """llama3-style frequency scaling (the only scaling our checkpoints need so far)."""

    rope_type: str = "llama3"
    factor: float = 8.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_position_embeddings: int = 8192

    def __post_init__(self):
        if self.rope_type != "llama3":
            raise ConfigError(
                "model.text.rope_scaling.rope_type",
                f"{self.rope_type!r} is not supported (only 'llama3')",
            )


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

    def __post_init__(self):
        prefix = "model.vision"
        _positive(
            self,
            prefix,
            "hidden_size",
            "intermediate_size",
            "num_layers",
            "num_heads",
            "image_size",
            "patch_size",
            "num_channels",
        )
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"{prefix}.num_heads",
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}",
            )
        if self.image_size % self.patch_size:
            raise ConfigError(
                f"{prefix}.patch_size",
                f"image_size {self.image_size} is not divisible by patch_size {self.patch_size}",
            )
        _one_of(f"{prefix}.hidden_act", self.hidden_act, ACTIVATIONS)
        for name in ("image_mean", "image_std"):
            if len(getattr(self, name)) != self.num_channels:
                raise ConfigError(
                    f"{prefix}.{name}", f"needs {self.num_channels} values (one per channel)"
                )

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
    # The MLP: gated ``down(act(gate(x)) * up(x))`` (LLaMA's SwiGLU with silu) or plain
    # ``down(act(up(x)))`` (transformers' Arcee; MaxText's synthetic 16B/32B with relu).
    gated_mlp: bool = True
    hidden_act: str = "silu"
    max_position_embeddings: int = 2048
    bos_token_id: int | None = 1
    eos_token_id: int | tuple[int, ...] | None = 2
    pad_token_id: int | None = None

    def __post_init__(self):
        prefix = "model.text"
        _one_of(f"{prefix}.family", self.family, TEXT_FAMILIES)
        _positive(
            self,
            prefix,
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "head_dim",
            "rope_theta",
        )
        _one_of(f"{prefix}.hidden_act", self.hidden_act, ACTIVATIONS)
        if not self.gated_mlp and self.family != "llama":
            raise ConfigError(f"{prefix}.gated_mlp", f"a plain MLP is a llama-family option, not {self.family!r}")
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(
                f"{prefix}.num_kv_heads",
                f"num_heads {self.num_heads} is not divisible by num_kv_heads {self.num_kv_heads}",
            )
        if self.head_dim is None and self.hidden_size % self.num_heads:
            raise ConfigError(
                f"{prefix}.head_dim",
                f"not set and hidden_size {self.hidden_size} is not divisible by num_heads "
                f"{self.num_heads}",
            )
        if self.resolved_head_dim % 2:
            raise ConfigError(
                f"{prefix}.head_dim", f"must be even for RoPE, got {self.resolved_head_dim}"
            )

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

    def __post_init__(self):
        """The checks that need no other part (``ModelConfig`` checks against the vision
        tower's grid and depth)."""
        prefix = "model.projector"
        _one_of(f"{prefix}.hidden_act", self.hidden_act, ACTIVATIONS)
        _one_of(f"{prefix}.type", self.type, PROJECTORS)
        _one_of(f"{prefix}.video", self.video, VIDEO_MODES)
        if self.type == "mlp":
            if self.video != "frames":
                raise ConfigError(f"{prefix}.video", "the 'mlp' projector only supports 'frames'")
            return
        for name in ("perspectives", "depth_layers"):
            if not isinstance(getattr(self, name), tuple):
                raise ConfigError(f"{prefix}.{name}", f"expected a tuple, got {getattr(self, name)!r}")
        names = self.perspectives
        if not names:
            raise ConfigError(f"{prefix}.perspectives", "enable at least one perspective")
        for name in names:
            _one_of(f"{prefix}.perspectives", name, PERSPECTIVES)
        if len(set(names)) != len(names):
            raise ConfigError(f"{prefix}.perspectives", f"{names} names a perspective twice")
        _positive(self, prefix, "patch_pool", "depth_pool", "relation_pool", "relation_rounds")
        _positive(self, prefix, "relation_k", "global_queries")


@dataclasses.dataclass(frozen=True)
class LoraConfig:
    """Low-rank adapters on the LLM's projections (``rank`` 0 = none).

    Each targeted projection gains ``x @ a @ b * alpha / rank`` with ``b`` zero at start, so a
    fresh adapter leaves the model's function unchanged.
    """

    rank: int = 0
    alpha: float = 16.0
    targets: tuple[str, ...] = LORA_TARGETS

    def __post_init__(self):
        if self.rank < 0:
            raise ConfigError("model.lora.rank", f"must be >= 0, got {self.rank}")
        bad = sorted(set(self.targets) - set(LORA_TARGETS))
        if bad:
            raise ConfigError("model.lora.targets", f"{bad[0]!r} is not one of {LORA_TARGETS}")


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
    # splash: dq computed in the dk/dv backward kernel (one kernel instead of two).
    attention_fused_backward: bool = False
    # Token embeddings as a one-hot matmul instead of a gather (MaxText's use_iota_embed): under
    # FSDP the gather's backward scatters every chip's tokens into float32 ([chips, rows, seq,
    # embed / chips]); the matmul's backward is a matmul.
    embed_one_hot: bool = False
    # The MLP over slices of this many tokens, each slice rematerialised (models/decoder.py:
    # MLP); 0 runs it over the whole sequence.
    mlp_chunk: int = 0
    # A probe, not a training setting: the multi-perspective projector's tokens of these
    # perspectives replaced by zero vectors (their count and positions kept), to measure what a
    # trained model reads from each (eval/perspective_probe.py).
    zeroed_perspectives: tuple[str, ...] = ()

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
        return self.arch == "llava" or self.arch in TEXT_FAMILIES

    def __post_init__(self):
        """Each part checked itself; here the fields of the whole and the checks across parts."""
        _one_of("model.arch", self.arch, ARCHS)
        for name in ("param_dtype", "dtype"):
            _one_of(f"model.{name}", getattr(self, name), DTYPES)
        _one_of("model.remat", self.remat, REMAT_POLICIES)
        _one_of("model.attention", self.attention, ATTENTION_KINDS)
        for name in ("attention_block_q", "attention_block_kv"):
            size = getattr(self, name)
            if size <= 0 or size % 128:
                raise ConfigError(f"model.{name}", f"must be a positive multiple of 128, got {size}")
        if self.mlp_chunk < 0:
            raise ConfigError("model.mlp_chunk", f"must be >= 0, got {self.mlp_chunk}")
        if self.has_vision and self.vision is None:
            raise ConfigError("model.vision", f"arch {self.arch!r} needs a vision config")
        if self.has_text and self.text is None:
            raise ConfigError("model.text", f"arch {self.arch!r} needs a text config")
        if self.arch == "llava":
            self._check_llava()
        self._check_zeroed()

    def _check_zeroed(self) -> None:
        zeroed, field = self.zeroed_perspectives, "model.zeroed_perspectives"
        if not isinstance(zeroed, tuple):
            raise ConfigError(field, f"expected a tuple, got {zeroed!r}")
        if not zeroed:
            return
        if self.projector is None or self.projector.type != "multi_perspective":
            raise ConfigError(field, "only the 'multi_perspective' projector has perspectives")
        for name in zeroed:
            _one_of(field, name, self.projector.active_perspectives)

    def _check_llava(self) -> None:
        if self.projector is None:
            raise ConfigError("model.projector", "arch 'llava' needs a projector config")
        if self.projector.type == "multi_perspective":
            self._check_perspectives()
        if not 0 <= self.image_token_id < self.text.vocab_size:
            raise ConfigError(
                "model.image_token_id",
                f"{self.image_token_id} is outside the vocabulary [0, {self.text.vocab_size})",
            )
        n = self.vision.num_layers
        for layer in self.feature_layers:
            if not -(n + 1) <= layer <= n:
                raise ConfigError(
                    "model.vision_feature_layer",
                    f"{layer} is outside [-{n + 1}, {n}] for {n} vision layers",
                )
        _one_of(
            "model.vision_feature_select_strategy",
            self.vision_feature_select_strategy,
            SELECT_STRATEGIES,
        )

    def _check_perspectives(self) -> None:
        """The multi-perspective projector against the vision tower's patch grid and depth."""
        p, prefix = self.projector, "model.projector"
        grid = self.vision.image_size // self.vision.patch_size
        for name in ("patch_pool", "depth_pool", "relation_pool"):
            if grid % getattr(p, name):
                raise ConfigError(
                    f"{prefix}.{name}", f"{getattr(p, name)} does not divide the {grid}x{grid} grid"
                )
        nodes = (grid // p.relation_pool) ** 2
        if "relation" in p.perspectives and p.relation_k >= nodes:
            raise ConfigError(f"{prefix}.relation_k", f"{p.relation_k} must be below the {nodes} nodes")
        n = self.vision.num_layers
        for layer in p.depth_layers:
            if isinstance(layer, bool) or not isinstance(layer, int) or not -(n + 1) <= layer <= n:
                raise ConfigError(
                    f"{prefix}.depth_layers", f"{layer!r} is outside [-{n + 1}, {n}] ({n} layers)"
                )
        if len({layer % (n + 1) for layer in p.depth_layers}) != len(p.depth_layers):
            raise ConfigError(f"{prefix}.depth_layers", f"{p.depth_layers} names a layer twice")


# ---------------------------------------------------------------------------------------------
# Construction from a ConfigDict
# ---------------------------------------------------------------------------------------------


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
        raise ConfigError(f"{prefix}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(names))})")
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        v = values[f.name]
        if v is None and "None" in str(f.type):
            continue  # an optional field left unset
        default = f.default if f.default is not dataclasses.MISSING else None
        if isinstance(default, bool) and not isinstance(v, bool):
            raise ConfigError(f"{prefix}.{f.name}", f"expected a bool, got {v!r}")
        if (
            isinstance(default, int)
            and not isinstance(default, bool)
            and (isinstance(v, bool) or not isinstance(v, int))
        ):
            raise ConfigError(f"{prefix}.{f.name}", f"expected an int, got {v!r}")
        if isinstance(default, float) and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ConfigError(f"{prefix}.{f.name}", f"expected a number, got {v!r}")
        if isinstance(default, float):
            values[f.name] = float(v)
    return cls(**values)


def from_config_dict(model_cd: Any) -> ModelConfig:
    """A ModelConfig (checked as it is built) from ``config.model`` (a ConfigDict or a dict)."""
    values = _plain(model_cd)
    if not isinstance(values, dict):
        raise ConfigError("model", f"expected a mapping, got {type(values).__name__}")
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
    return _build(ModelConfig, values, "model")


def to_dict(cfg: ModelConfig) -> dict[str, Any]:
    """The inverse of ``from_config_dict`` (plain, JSON-friendly)."""
    return dataclasses.asdict(cfg)
