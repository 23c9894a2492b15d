"""Full EmoLLM at real size on a Qwen2-7B backbone: CLIP ViT-L/14-336 + Qwen2-7B-Instruct.

Everything but the LLM, its tokenizer and chat template is ``emollm_7b.py``'s (same projector,
EmoPrompt, mesh and stages). ``<image>`` takes id 151646, the first id past Qwen2's special
tokens (the vocabulary is padded to 152064; the pipeline inserts the id, so the tokenizer need
not know it). No public checkpoint pairs these towers: the initial weights are composed from a
``CLIPVisionModel`` folder and a ``Qwen2ForCausalLM`` folder with
``emollm_jax.models.compose.compose(cfg, vision=..., language_model=...)`` (fresh projector),
then trained from stage 1 (``--config configs/emollm_qwen2_7b.py:stage1``).

Visual tokens: as ``emollm_7b.py`` (232 per image, 344 per 8-frame video).
"""

import importlib.util
from pathlib import Path

QWEN2_7B = "checkpoints/Qwen2-7B-Instruct"

QWEN2_7B_TEXT = dict(
    family="qwen2",
    vocab_size=152064,
    hidden_size=3584,
    intermediate_size=18944,
    num_layers=28,
    num_heads=28,
    num_kv_heads=4,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    qkv_bias=True,
    max_position_embeddings=32768,
    bos_token_id=151643,  # as Qwen2's config.json; ChatML prepends no bos
    eos_token_id=151645,
    pad_token_id=151643,
)


def _emollm_7b(arg):
    path = Path(__file__).with_name("emollm_7b.py")
    spec = importlib.util.spec_from_file_location("emollm_7b", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def get_config(arg: str | None = None):
    c = _emollm_7b(arg)
    c.model.text = QWEN2_7B_TEXT
    c.model.image_token_id = 151646
    c.data.tokenizer = QWEN2_7B
    c.data.chat_template = "chatml"
    c.train.init_from = ""  # composed from the CLIP and Qwen2 folders (see above)
    return c
