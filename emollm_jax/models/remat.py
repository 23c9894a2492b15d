"""Rematerialisation policies: which tensors of a layer the backward pass keeps, and where.

The layers name the tensors a policy can keep with ``jax.ad_checkpoint.checkpoint_name``:

- ``layer_input``: a decoder layer's input (its residual stream), ``[batch, len, embed]``;
- ``attention_q`` / ``attention_k`` / ``attention_v``: the projected (and rotated) queries, keys
  and values; ``attention_out``: the attention's output before its output projection;
  ``attention_proj``: the output projection's result; ``attention_residuals``: splash
  attention's residuals (its log-sum-exp);
- ``mlp_in``: the MLP's input projections (gate and up); ``mlp_out``: its down projection.

A policy is named for what it keeps: ``none`` keeps everything (no remat), ``full`` nothing but
each layer's input (the scan carry), ``save_qkv`` the q/k/v projections, and so on. An
``offload_*`` policy keeps its tensors in the host's memory instead of HBM
(``jax.checkpoint_policies.save_and_offload_only_these_names``, ``pinned_host``): the device
copies them out in the forward pass and back in the backward pass, and their HBM is free in
between. ``offload_layer_input_qkvo`` is MaxText's ``custom`` recipe for its published LLaMA and
Mistral runs on v6e (``decoder_layer_input``, ``query_proj``, ``key_proj``, ``value_proj`` and
``out_proj`` offloaded, the rest recomputed).

On a platform whose compiler has no host memory space (XLA:CPU), an offload policy keeps the
same tensors on the device instead (``policy_for``): the same program values, no host copy.
"""

from __future__ import annotations

import jax

LAYER_INPUT = "layer_input"
QKV = ("attention_q", "attention_k", "attention_v")
ATTENTION_OUT = "attention_out"
ATTENTION_PROJ = "attention_proj"
ATTENTION_RESIDUALS = "attention_residuals"
MLP_IN = "mlp_in"
MLP_OUT = "mlp_out"

_cp = jax.checkpoint_policies


def _save(*names: str):
    return _cp.save_only_these_names(*names)


def _offload(*names: str):
    return _cp.save_and_offload_only_these_names(
        names_which_can_be_saved=[],
        names_which_can_be_offloaded=list(names),
        offload_src="device",
        offload_dst="pinned_host",
    )


# Name -> (the names it keeps, offloaded?). ``None`` names: a policy of JAX's own.
_NAMED: dict[str, tuple[tuple[str, ...], bool]] = {
    "save_qkv": (QKV, False),
    "save_qkvo": ((*QKV, ATTENTION_PROJ), False),
    # What attention kernels need for their backward pass (q, k, v, the output and splash's
    # residuals); the MLP and the norms are recomputed.
    "attention": ((*QKV, ATTENTION_OUT, ATTENTION_RESIDUALS), False),
    # Every projection's output except the MLP's (MaxText's save_dot_except_mlp).
    "save_dots_except_mlp": ((*QKV, ATTENTION_OUT, ATTENTION_PROJ, ATTENTION_RESIDUALS), False),
    "offload_layer_input": ((LAYER_INPUT,), True),
    "offload_qkvo": ((*QKV, ATTENTION_PROJ), True),
    "offload_layer_input_qkvo": ((LAYER_INPUT, *QKV, ATTENTION_PROJ), True),
}

REMAT_POLICIES = {
    "none": None,
    "full": _cp.nothing_saveable,
    "dots": _cp.checkpoint_dots,
    "dots_no_batch": _cp.checkpoint_dots_with_no_batch_dims,
    **{
        name: (_offload(*names) if offload else _save(*names))
        for name, (names, offload) in _NAMED.items()
    },
}


def saved_names(policy: str) -> tuple[str, ...]:
    """The checkpoint names ``policy`` keeps (empty for none/full and JAX's dot policies)."""
    return _NAMED.get(policy, ((), False))[0]


def offloads(policy: str) -> bool:
    """Whether ``policy`` keeps its tensors in host memory."""
    return _NAMED.get(policy, ((), False))[1]


def _has_host_memory(platform: str) -> bool:
    return platform in ("tpu", "gpu", "cuda", "rocm")


def policy_for(policy: str, platform: str):
    """``jax.checkpoint``'s policy for ``policy`` on ``platform`` (see the module docstring)."""
    if offloads(policy) and not _has_host_memory(platform):
        return _save(*saved_names(policy))
    return REMAT_POLICIES[policy]
