"""Generation: jitted KV-cache decoding of batched, left-padded (multimodal) prompts.

``Generator(model, GenerateConfig(...))(batch, key)`` prefills each prompt once and decodes all
new tokens in one compiled ``while_loop``; ``decode_answers`` turns the ids into answer text.
"""

from emollm_jax.generate.decode import (
    GenerateConfig,
    GenerateOutput,
    Generator,
    generate,
    prompt_positions,
)
from emollm_jax.generate.prompts import left_pad
from emollm_jax.generate.sampling import SamplingConfig, filter_logits, next_token
from emollm_jax.generate.text import (
    decode_answers,
    stop_sequences,
    stop_settings,
    stop_token_ids,
    truncate_at_stop,
)

__all__ = [
    "GenerateConfig",
    "GenerateOutput",
    "Generator",
    "SamplingConfig",
    "decode_answers",
    "filter_logits",
    "generate",
    "left_pad",
    "next_token",
    "prompt_positions",
    "stop_sequences",
    "stop_settings",
    "stop_token_ids",
    "truncate_at_stop",
]
