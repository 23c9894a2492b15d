"""The processor files of an export, so that PyTorch users get our preprocessing with
``AutoProcessor.from_pretrained(folder)`` (``trust_remote_code=True`` for EmoLLM):

- ``preprocessor_config.json``: transformers' CLIP image processor (PIL backend) set as our
  ``clip_preprocess`` (the vision tower's image size, mean and std);
- ``processor_config.json``: EmoLLM: ``EmoLLMProcessor`` (``hf_emollm/processing_emollm.py``,
  copied beside it) with the run's visual-token counts, video frame count and bos rule; LLaVA
  (the MLP projector): transformers' own ``LlavaProcessor``, whose ``<image>`` expansion
  (patches, +1 CLS, -1 under the ``default`` feature strategy) is set to our token count;
- ``chat_template.jinja``: the chat template the run trained with (``data.chat_template``); for
  LLaVA under the Vicuna template it starts with the bos token when the tokenizer adds none
  itself (ours): our pipeline prepends it, ``LlavaProcessor`` only tokenizes the prompt.
"""

from __future__ import annotations

import json
import pathlib
import shutil

from emollm_jax.config.model import ModelConfig
from emollm_jax.convert.emollm_layout import CODE_DIR
from emollm_jax.data import chat_templates
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


def _image_processor(cfg: ModelConfig, processor_class: str) -> dict:
    v = cfg.vision
    return {
        "image_processor_type": "CLIPImageProcessorPil",
        "processor_class": processor_class,
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


def _write(folder: pathlib.Path, image: dict, processor: dict, template: str, bos: bool):
    """The JSON files and the chat template (with a leading bos token when ``bos``)."""
    for name, content in (("preprocessor_config.json", image), ("processor_config.json", processor)):
        (folder / name).write_text(json.dumps(content, indent=2) + "\n")
    written = ["preprocessor_config.json", "processor_config.json"]
    jinja = {"vicuna_v1": chat_templates.VICUNA_JINJA, "chatml": chat_templates.CHATML_JINJA}
    if template in jinja:  # "tokenizer": the tokenizer's own template is already there
        text = ("{{ bos_token }}" if bos else "") + jinja[template]
        (folder / "chat_template.jinja").write_text(text)
        written.append("chat_template.jinja")
    return written


def write_processor(folder: pathlib.Path, cfg: ModelConfig, data_cfg: dict) -> list[str]:
    """Write the EmoLLM processor files into ``folder`` (which holds the tokenizer); their
    names."""
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
    written = _write(folder, _image_processor(cfg, "EmoLLMProcessor"), processor, template, False)
    write_processor_code(folder)
    return [*written[:2], PROCESSOR_FILE, *written[2:]]


def write_processor_code(folder: pathlib.Path) -> None:
    """Copy ``EmoLLMProcessor``'s code file (what processor_config.json's auto_map names)."""
    shutil.copy2(_CODE, folder / PROCESSOR_FILE)


def write_llava_processor(folder: pathlib.Path, cfg: ModelConfig, data_cfg: dict) -> list[str]:
    """Write a plain LLaVA export's processor files (transformers' ``LlavaProcessor``, no
    remote code) into ``folder`` (which holds the tokenizer); their names."""
    template = data_cfg.get("chat_template", "vicuna_v1")
    processor = {
        "processor_class": "LlavaProcessor",
        "image_token": "<image>",
        "patch_size": cfg.vision.patch_size,
        "vision_feature_select_strategy": cfg.vision_feature_select_strategy,
        "num_additional_image_tokens": 1,  # CLIP's CLS
    }
    image = _image_processor(cfg, "LlavaProcessor")
    bos = template == "vicuna_v1" and not _adds_bos(folder)
    return _write(folder, image, processor, template, bos)


def _adds_bos(folder: pathlib.Path) -> bool:
    """Whether the folder's tokenizer prepends bos by itself (a Llama tokenizer does; ours not)."""
    import transformers

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    ids = tokenizer("a")["input_ids"]
    return tokenizer.bos_token_id is not None and ids[:1] == [tokenizer.bos_token_id]
