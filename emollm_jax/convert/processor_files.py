"""The processor files of an EmoLLM export, so that PyTorch users get our preprocessing with
``AutoProcessor.from_pretrained(folder, trust_remote_code=True)``:

- ``preprocessor_config.json``: transformers' CLIP image processor (PIL backend) set as our
  ``clip_preprocess`` (the vision tower's image size, mean and std);
- ``processor_config.json``: ``EmoLLMProcessor`` (``hf_emollm/processing_emollm.py``, copied
  beside it) with the run's visual-token counts, video frame count and bos rule;
- ``chat_template.jinja``: the chat template the run trained with (``data.chat_template``).
"""

from __future__ import annotations

import json
import pathlib
import shutil

from emollm_jax.convert.emollm_layout import CODE_DIR
from emollm_jax.data import chat_templates
from emollm_jax.models.config import ModelConfig
from emollm_jax.models.visual_tokens import perspective_tokens, tokens_per_frame

PROCESSOR_FILE = "processing_emollm.py"
_CODE = CODE_DIR / PROCESSOR_FILE


def _video_counts(cfg: ModelConfig) -> tuple[str, int, int]:
    """(video mode, tokens shared by a pooled video's frames, tokens per pooled frame)."""
    if cfg.projector is None or cfg.projector.video == "frames":
        return "frames", 0, tokens_per_frame(cfg)
    counts = perspective_tokens(cfg)
    per_frame = counts.pop("global", 0)
    return "pooled", sum(counts.values()), per_frame


def write_processor(folder: pathlib.Path, cfg: ModelConfig, data_cfg: dict) -> list[str]:
    """Write the processor files into ``folder`` (which holds the tokenizer); their names."""
    v = cfg.vision
    image = {
        "image_processor_type": "CLIPImageProcessorPil",
        "processor_class": "EmoLLMProcessor",
        "do_resize": True,
        "size": {"shortest_edge": v.image_size},
        "resample": 3,  # bicubic
        "do_center_crop": True,
        "crop_size": {"height": v.image_size, "width": v.image_size},
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": list(v.image_mean),
        "image_std": list(v.image_std),
        "do_convert_rgb": True,
    }
    mode, shared, per_frame = _video_counts(cfg)
    template = data_cfg.get("chat_template", "vicuna_v1")
    processor = {
        "processor_class": "EmoLLMProcessor",
        "auto_map": {"AutoProcessor": "processing_emollm.EmoLLMProcessor"},
        "image_token": "<image>",
        "video_token": "<video>",
        "tokens_per_image": tokens_per_frame(cfg),
        "video_mode": mode,
        "video_shared_tokens": shared,
        "video_frame_tokens": per_frame,
        "num_frames": int(data_cfg.get("video_frames", 8)),
        "add_bos": template == "vicuna_v1",
    }
    for name, content in (("preprocessor_config.json", image), ("processor_config.json", processor)):
        (folder / name).write_text(json.dumps(content, indent=2) + "\n")
    written = ["preprocessor_config.json", "processor_config.json", PROCESSOR_FILE]
    jinja = {"vicuna_v1": chat_templates.VICUNA_JINJA, "chatml": chat_templates.CHATML_JINJA}
    if template in jinja:  # "tokenizer": the tokenizer's own template is already there
        (folder / "chat_template.jinja").write_text(jinja[template])
        written.append("chat_template.jinja")
    shutil.copy2(_CODE, folder / PROCESSOR_FILE)
    return written
