"""EmoLLM for transformers (PyTorch), importable without remote code.

``configuration_emollm.py`` and ``modeling_emollm.py`` are also copied into every exported
EmoLLM folder, whose ``config.json`` names them in ``auto_map``, so PyTorch users without
emollm_jax load the folder with ``trust_remote_code=True``. Importing this package instead
registers the classes with transformers' Auto classes (model type ``emollm``), so that
``AutoModelForImageTextToText.from_pretrained(folder)`` runs this local copy and no remote
code.
"""

from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText

from emollm_jax.export.hf_emollm.configuration_emollm import EmoLLMConfig
from emollm_jax.export.hf_emollm.modeling_emollm import EmoLLMForConditionalGeneration

# The files an export carries and its config.json's auto_map: emollm_jax/convert/emollm_layout.py.

AutoConfig.register(EmoLLMConfig.model_type, EmoLLMConfig, exist_ok=True)
AutoModel.register(EmoLLMConfig, EmoLLMForConditionalGeneration, exist_ok=True)
AutoModelForImageTextToText.register(EmoLLMConfig, EmoLLMForConditionalGeneration, exist_ok=True)

__all__ = ["EmoLLMConfig", "EmoLLMForConditionalGeneration"]
