"""A bare decoder LM at the shape of a published model, for ahead-of-time compilation.

``model`` is one of ``emollm_jax/config/shapes.py:LM_SHAPES``: llama2-7b, llama3.1-8b,
mistral-7b, llama3.1-70b, and MaxText's synthetic 16b and 32b (a plain relu MLP, head_dim 256,
tied embeddings). Text only (compile with ``--frames 0``)::

    emollm compile --config configs/lm.py:model=mistral-7b --topology v6e-8 --frames 0 \\
        --batch_per_chip 6 --seq_len 8192 --config.model.remat=offload_layer_input_qkvo \\
        --config.model.mlp_chunk=2048

``runlocal`` shrinks the model to the tiny LLM (the same options) for tests.
"""

from emollm_jax.config import presets
from emollm_jax.config.args import parse_arg


def get_config(arg: str | None = None):
    return presets.lm(**parse_arg(arg, model="llama3.1-8b", runlocal=False))
