"""A model's forward pass on a pipeline batch: the one place that maps batch keys to the
model's arguments, shared by the training step, likelihood scoring and the tests."""

from __future__ import annotations

import jax
from flax import nnx

# Batch keys passed to the model as keyword arguments (beside ``input_ids``), where present.
MODEL_INPUTS = ("pixel_values", "attention_mask", "frame_media", "positions", "segment_ids")


def model_kwargs(model: nnx.Module, batch: dict[str, jax.Array]) -> dict:
    """The keyword arguments of ``model`` found in ``batch`` (media dropped for a text model)."""
    kwargs = {k: batch[k] for k in MODEL_INPUTS if k in batch}
    if model.config.arch != "llava":
        kwargs.pop("pixel_values", None)
        kwargs.pop("frame_media", None)
    return kwargs


def forward(model: nnx.Module, batch: dict[str, jax.Array]) -> jax.Array:
    """Logits for a pipeline batch (keys the model does not take are ignored)."""
    return model(batch["input_ids"], **model_kwargs(model, batch))
