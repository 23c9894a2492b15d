"""EmoLLM in PyTorch: transformers' CLIP vision tower and LLM around the multi-perspective
projector, computing what emollm_jax computes (``emollm_jax/models/llava.py``,
``projector_multi.py``, ``perspectives.py``, ``video.py``).

Shipped inside every exported EmoLLM folder (``trust_remote_code=True``) and importable from
``emollm_jax.export.hf_emollm`` without remote code; it must import nothing but torch and
transformers. The projector is emollm_jax's design (the paper publishes no mechanism):

- ``patch``: LLaVA's per-patch MLP on the selected ViT features, the patch grid average-pooled
  ``patch_pool`` x ``patch_pool`` first;
- ``depth``: a learned softmax mix of several ViT layers' patch states, LayerNorm, pooling, MLP;
- ``relation``: pooled patch regions as graph nodes, each with edges to its ``relation_k``
  most cosine-similar other nodes (softmax-weighted); each round adds
  ``act(W [node; message])``; then an MLP;
- ``global``: learned queries cross-attending to all patches, then an MLP;

each perspective's tokens plus a learned perspective embedding, concatenated in that order.

Inputs: ``pixel_values [images, C, H, W]`` fill the image tokens of the whole batch in order
(as LLaVA's); ``pixel_values [batch, frames, C, H, W]`` with ``frame_media [batch, frames]``
(each frame's media index within its row, -1 on padding frames) fill each row's image tokens
from its own frames. With ``video="pooled"`` a media item of several frames gives its
non-global tokens averaged over the frames, then every frame's global tokens.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import AutoModel, AutoModelForCausalLM, GenerationMixin, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_emollm import EmoLLMConfig


def feature_layer_indices(config: EmoLLMConfig) -> list[int]:
    """``vision_feature_layer`` as indices into the ViT's ``hidden_states`` tuple."""
    total = config.vision_config.num_hidden_layers + 1
    layers = config.vision_feature_layer
    layers = layers if isinstance(layers, (list, tuple)) else [layers]
    return [layer % total for layer in layers]


def select_features(states, config: EmoLLMConfig) -> torch.Tensor:
    """LLaVA's selected features ``[N, tokens, D_vision * layers]`` (class token dropped under
    strategy ``default``)."""
    features = torch.cat([states[i] for i in feature_layer_indices(config)], dim=-1)
    if config.vision_feature_select_strategy == "default":
        features = features[:, 1:]
    return features


def patch_features(states, config: EmoLLMConfig) -> torch.Tensor:
    """The selected features of the patches only (never the class token)."""
    features = select_features(states, config)
    return features[:, 1:] if config.vision_feature_select_strategy == "full" else features


def grid_side(config: EmoLLMConfig) -> int:
    return config.vision_config.image_size // config.vision_config.patch_size


def pool_grid(x: torch.Tensor, side: int, pool: int) -> torch.Tensor:
    """Average ``pool x pool`` patches of a row-major grid: ``[N, side^2, D] -> [N, s^2, D]``."""
    if pool == 1:
        return x
    n, _, d = x.shape
    s = side // pool
    return x.reshape(n, s, pool, s, pool, d).mean(dim=(2, 4)).reshape(n, s * s, d)


def feature_width(config: EmoLLMConfig) -> int:
    return config.vision_config.hidden_size * len(feature_layer_indices(config))


class ProjectorMLP(nn.Module):
    """``linear_2(act(linear_1(x)))`` into the LLM's width."""

    def __init__(self, config: EmoLLMConfig, d_in: int):
        super().__init__()
        p, d_out = config.projector_config, config.text_config.hidden_size
        self.linear_1 = nn.Linear(d_in, d_out, bias=p["bias"])
        self.act = ACT2FN[p["hidden_act"]]
        self.linear_2 = nn.Linear(d_out, d_out, bias=p["bias"])

    def forward(self, x):
        return self.linear_2(self.act(self.linear_1(x)))


class PatchPerspective(nn.Module):
    def __init__(self, config: EmoLLMConfig):
        super().__init__()
        self.config = config
        self.mlp = ProjectorMLP(config, feature_width(config))

    def forward(self, states):
        config = self.config
        features = select_features(states, config)
        pool = config.projector_config["patch_pool"]
        if pool > 1:
            cls = int(config.vision_feature_select_strategy == "full")
            pooled = pool_grid(features[:, cls:], grid_side(config), pool)
            features = torch.cat([features[:, :1], pooled], 1) if cls else pooled
        return self.mlp(features)


class DepthPerspective(nn.Module):
    def __init__(self, config: EmoLLMConfig):
        super().__init__()
        self.config = config
        total = config.vision_config.num_hidden_layers + 1
        chosen = config.projector_config["depth_layers"] or list(range(total))
        self.indices = [layer % total for layer in chosen]
        d = config.vision_config.hidden_size
        self.mix = nn.Parameter(torch.zeros(len(self.indices)))
        self.norm = nn.LayerNorm(d, eps=config.vision_config.layer_norm_eps)
        self.mlp = ProjectorMLP(config, d)

    def forward(self, states):
        weights = torch.softmax(self.mix.float(), dim=0)
        stacked = torch.stack([states[i][:, 1:] for i in self.indices])  # [layers, N, P, D]
        mixed = torch.einsum("l,lnpd->npd", weights.to(stacked.dtype), stacked)
        pool = self.config.projector_config["depth_pool"]
        return self.mlp(pool_grid(self.norm(mixed), grid_side(self.config), pool))


def neighbour_messages(x: torch.Tensor, k: int) -> torch.Tensor:
    """Each node's message: its ``k`` most cosine-similar other nodes, softmax-weighted."""
    x32 = x.float()
    unit = x32 * torch.rsqrt((x32 * x32).sum(-1, keepdim=True) + 1e-6)
    sim = unit @ unit.transpose(1, 2)
    eye = torch.eye(x.shape[1], dtype=torch.bool, device=x.device)
    sim = sim.masked_fill(eye, -2.0)  # no self-edges (cosine >= -1)
    top, index = sim.topk(k, dim=-1)  # [N, nodes, k]
    weights = torch.softmax(top, dim=-1).to(x.dtype)
    rows = torch.arange(x.shape[0], device=x.device)[:, None, None]
    return (weights[..., None] * x[rows, index]).sum(dim=2)


class RelationPerspective(nn.Module):
    def __init__(self, config: EmoLLMConfig):
        super().__init__()
        self.config = config
        p, d = config.projector_config, feature_width(config)
        self.act = ACT2FN[p["hidden_act"]]
        self.norm = nn.LayerNorm(d, eps=config.vision_config.layer_norm_eps)
        self.rounds = nn.ModuleList([nn.Linear(2 * d, d) for _ in range(p["relation_rounds"])])
        self.mlp = ProjectorMLP(config, d)

    def forward(self, states):
        p = self.config.projector_config
        features = patch_features(states, self.config)
        nodes = self.norm(pool_grid(features, grid_side(self.config), p["relation_pool"]))
        for update in self.rounds:
            message = neighbour_messages(nodes, p["relation_k"])
            nodes = nodes + self.act(update(torch.cat([nodes, message], dim=-1)))
        return self.mlp(nodes)


class CrossAttention(nn.Module):
    """Multi-head attention of queries over a context (no mask)."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.q_proj = nn.Linear(d, d)
        self.k_proj = nn.Linear(d, d)
        self.v_proj = nn.Linear(d, d)
        self.out_proj = nn.Linear(d, d)

    def forward(self, queries, context):
        n, q_len, _ = queries.shape
        q = self.q_proj(queries).view(n, q_len, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(context).view(n, -1, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(context).view(n, -1, self.heads, self.head_dim).transpose(1, 2)
        logits = (q.float() @ k.float().transpose(-1, -2)) * self.head_dim**-0.5
        out = torch.softmax(logits, dim=-1).to(v.dtype) @ v  # [N, heads, Q, head_dim]
        return self.out_proj(out.transpose(1, 2).reshape(n, q_len, -1))


class GlobalPerspective(nn.Module):
    def __init__(self, config: EmoLLMConfig):
        super().__init__()
        self.config = config
        d, eps = feature_width(config), config.vision_config.layer_norm_eps
        self.queries = nn.Parameter(torch.zeros(config.projector_config["global_queries"], d))
        self.query_norm = nn.LayerNorm(d, eps=eps)
        self.context_norm = nn.LayerNorm(d, eps=eps)
        self.attn = CrossAttention(d, config.vision_config.num_attention_heads)
        self.mlp = ProjectorMLP(config, d)

    def forward(self, states):
        context = self.context_norm(patch_features(states, self.config))
        queries = self.queries.to(context.dtype).expand(context.shape[0], -1, -1)
        return self.mlp(queries + self.attn(self.query_norm(queries), context))


PERSPECTIVE_MODULES = {
    "patch": PatchPerspective,
    "depth": DepthPerspective,
    "relation": RelationPerspective,
    "global": GlobalPerspective,
}


class MultiPerspectiveProjector(nn.Module):
    def __init__(self, config: EmoLLMConfig):
        super().__init__()
        self.config = config
        self.names = config.active_perspectives
        self.perspectives = nn.ModuleDict({n: PERSPECTIVE_MODULES[n](config) for n in self.names})
        self.embedding = None
        if config.projector_config["perspective_embedding"]:
            self.embedding = nn.Parameter(
                torch.zeros(len(self.names), config.text_config.hidden_size)
            )

    def parts(self, states):
        """Per frame: the non-global perspectives' tokens ``[N, S, D]`` and the global ones
        ``[N, Q, D]`` (None when no such perspective is on)."""
        local, global_ = [], None
        for k, name in enumerate(self.names):
            tokens = self.perspectives[name](states)
            if self.embedding is not None:
                tokens = tokens + self.embedding[k].to(tokens.dtype)
            if name == "global":
                global_ = tokens
            else:
                local.append(tokens)
        return (torch.cat(local, dim=1) if local else None), global_

    def images(self, states) -> torch.Tensor:
        """Every frame an independent image: ``[N, K, D]``."""
        return torch.cat([x for x in self.parts(states) if x is not None], dim=1)

    def rows(self, states, frame_media: torch.Tensor | None, batch: int, frames: int):
        """Each row's visual tokens ``[V_b, D]`` (a list) from ``[batch * frames]`` frames."""
        pooled = self.config.projector_config["video"] == "pooled"
        if not pooled or frames == 1:
            tokens = self.images(states)
            return list(tokens.reshape(batch, frames * tokens.shape[1], tokens.shape[-1]))
        if frame_media is None:
            raise ValueError(
                "projector video='pooled' needs frame_media for pixel_values with more than "
                "one frame per row"
            )
        local, global_ = self.parts(states)
        out = []
        for b in range(batch):
            media = frame_media[b].tolist()
            pieces, f = [], 0
            while f < frames and media[f] >= 0:
                end = f
                while end < frames and media[end] == media[f]:
                    end += 1
                if local is not None:
                    pieces.append(local[b * frames + f : b * frames + end].mean(dim=0))
                if global_ is not None:
                    pieces += list(global_[b * frames + f : b * frames + end])
                f = end
            width = self.config.text_config.hidden_size
            out.append(torch.cat(pieces, dim=0) if pieces else states[0].new_zeros(0, width))
        return out


class EmoLLMPreTrainedModel(PreTrainedModel):
    config_class = EmoLLMConfig
    config: EmoLLMConfig
    base_model_prefix = ""
    input_modalities = ("image", "video", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True

    def _init_weights(self, module):
        super()._init_weights(module)
        std = getattr(self.config.text_config, "initializer_range", 0.02)
        if isinstance(module, GlobalPerspective):
            nn.init.normal_(module.queries, std=std)
        elif isinstance(module, DepthPerspective):
            nn.init.zeros_(module.mix)
        elif isinstance(module, MultiPerspectiveProjector) and module.embedding is not None:
            nn.init.zeros_(module.embedding)


class EmoLLMForConditionalGeneration(EmoLLMPreTrainedModel, GenerationMixin):
    def __init__(self, config: EmoLLMConfig):
        super().__init__(config)
        self.vision_tower = AutoModel.from_config(config.vision_config)
        self.projector = MultiPerspectiveProjector(config)
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()

    def get_input_embeddings(self):
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self):
        return self.language_model.get_output_embeddings()

    def vision_states(self, pixel_values: torch.Tensor):
        """``[N, C, H, W]`` -> the ViT's hidden states (embeddings, then every layer)."""
        dtype = self.vision_tower.dtype
        out = self.vision_tower(pixel_values.to(dtype), output_hidden_states=True)
        return out.hidden_states

    def visual_tokens(self, input_ids, pixel_values, frame_media=None) -> list[torch.Tensor]:
        """Each row's visual tokens in placeholder order, exactly one per image token."""
        counts = (input_ids == self.config.image_token_index).sum(dim=1).tolist()
        if pixel_values.dim() == 4:
            tokens = self.projector.images(self.vision_states(pixel_values))
            flat = tokens.reshape(-1, tokens.shape[-1])
            if flat.shape[0] != sum(counts):
                raise ValueError(
                    f"{sum(counts)} image tokens but {flat.shape[0]} visual tokens from "
                    f"{tokens.shape[0]} images"
                )
            return list(flat.split(counts))
        if pixel_values.dim() != 5:
            raise ValueError(
                "pixel_values must be [images, C, H, W] or [batch, frames, C, H, W], got "
                f"{tuple(pixel_values.shape)}"
            )
        b, f = pixel_values.shape[:2]
        states = self.vision_states(pixel_values.reshape(b * f, *pixel_values.shape[2:]))
        rows = self.projector.rows(states, frame_media, b, f)
        for i, (row, n) in enumerate(zip(rows, counts)):
            if row.shape[0] < n:
                raise ValueError(f"row {i}: {n} image tokens but {row.shape[0]} visual tokens")
        return [row[:n] for row, n in zip(rows, counts)]

    def embed(self, input_ids, pixel_values=None, frame_media=None) -> torch.Tensor:
        embeds = self.get_input_embeddings()(input_ids)
        is_image = input_ids == self.config.image_token_index
        if pixel_values is None or not bool(is_image.any()):
            return embeds
        visual = torch.cat(self.visual_tokens(input_ids, pixel_values, frame_media), dim=0)
        return embeds.masked_scatter(is_image[..., None], visual.to(embeds.dtype))

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        frame_media: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """Logits ``[B, T, vocab]`` (loss with ``labels``); ``kwargs`` go to the LLM (cache,
        positions...). Steps of ``generate`` after the first carry no image token and skip
        the vision tower."""
        if inputs_embeds is None:
            inputs_embeds = self.embed(input_ids, pixel_values, frame_media)
        return self.language_model(
            inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels, **kwargs
        )


__all__ = [
    "EmoLLMForConditionalGeneration",
    "EmoLLMPreTrainedModel",
    "MultiPerspectiveProjector",
]
