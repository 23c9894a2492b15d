"""emollm_jax: EmoLLM and EmoBench in JAX/Flax NNX."""

__version__ = "0.1.0"


def load_hf(path, **kwargs):
    """Build a model from a Hugging Face directory (config.json + safetensors)."""
    # Imported when called: `import emollm_jax` (and the JAX-free emollm_jax.eval) loads no JAX.
    from emollm_jax.convert.hf_io import load_hf as _load_hf

    return _load_hf(path, **kwargs)


def save_hf(model, path, **kwargs):
    """Write a model as a Hugging Face directory that transformers' from_pretrained loads."""
    # Imported when called, as in load_hf.
    from emollm_jax.convert.hf_io import save_hf as _save_hf

    return _save_hf(model, path, **kwargs)
