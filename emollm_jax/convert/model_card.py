"""The ``README.md`` model card of an EmoLLM or LLaVA export: what the model is, how it was
trained (the run's config and step), its EmoBench table when the run was evaluated
(``<run>/eval/test/results.md``, written by ``python -m emollm_jax.evaluate``), and the PyTorch
lines that use it."""

from __future__ import annotations

import json
import pathlib

from emollm_jax.convert.emollm_layout import is_emollm
from emollm_jax.models.config import ModelConfig

USAGE = '''```python
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

folder = "{folder}"
processor = AutoProcessor.from_pretrained(folder{remote})
model = AutoModelForImageTextToText.from_pretrained(folder{remote}).eval()
messages = [{{"role": "user", "content": "<image>\\nWhat emotion does this face show?"}}]
prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
inputs = processor(text=prompt, images=[Image.open("face.jpg")])
with torch.no_grad():
    out = model.generate(**inputs, max_new_tokens=32, do_sample=False)
print(processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
```'''
EMOLLM_VIDEO = """A video is a list of frames (PIL images or a uint8 array [T, H, W, 3]) passed as
`videos=[frames]` for a `<video>` placeholder; the processor samples {frames} frames uniformly."""
LLAVA_VIDEO = "transformers' `LlavaProcessor` takes images only (no video input)."


def _what(cfg: ModelConfig) -> str:
    towers = (
        f"a CLIP ViT vision tower (hidden {cfg.vision.hidden_size}, {cfg.vision.num_layers} "
        f"layers, {cfg.vision.image_size}px)"
    )
    text = (
        f"a {cfg.text.family} language model (hidden {cfg.text.hidden_size}, "
        f"{cfg.text.num_layers} layers, vocabulary {cfg.text.vocab_size})"
    )
    p = cfg.projector
    if is_emollm(cfg):
        return (
            f"EmoLLM (multimodal emotional understanding) exported from emollm_jax: {towers}, "
            f"the multi-perspective visual projector (perspectives {', '.join(p.perspectives)}; "
            f"videos {p.video}) and {text}. The projector and EmoPrompt are emollm_jax's reading "
            "of the EmoLLM paper, whose exact mechanisms are not public."
        )
    return (
        f"LLaVA exported from emollm_jax as a plain `LlavaForConditionalGeneration`: {towers}, "
        f"the MLP projector and {text}."
    )


def card(cfg: ModelConfig, meta: dict, run_dir: pathlib.Path, folder_name: str) -> str:
    config = meta.get("config") or {}
    train, data = config.get("train") or {}, config.get("data") or {}
    emollm = is_emollm(cfg)
    lines = [
        f"# {folder_name}",
        "",
        _what(cfg),
        "",
        "## Training",
        "",
        f"- checkpoint step: {meta.get('step', 'unknown')} of {train.get('steps', 'unknown')}",
        f"- data: `{data.get('dir', 'unknown')}`, chat template `{data.get('chat_template')}`, "
        f"{data.get('video_frames')} frames per video",
        f"- stage {train.get('stage')}, learning rate {train.get('learning_rate')}, "
        f"initial weights `{train.get('init_from') or 'random'}`",
        "",
        "The run's whole config is in `emollm_train_config.json`.",
        "",
    ]
    results = run_dir / "eval" / "test" / "results.md"
    lines += ["## EmoBench (test split)", ""]
    if results.is_file():
        lines += [results.read_text().strip(), ""]
    else:
        lines += ["Not evaluated (`emollm evaluate` writes the table).", ""]
    lines += [
        "## Use it from PyTorch",
        "",
        USAGE.format(folder=folder_name, remote=", trust_remote_code=True" if emollm else ""),
        (EMOLLM_VIDEO if emollm else LLAVA_VIDEO).format(frames=data.get("video_frames", 8)),
        "",
    ]
    return "\n".join(lines)


def write_card(folder: pathlib.Path, cfg: ModelConfig, meta: dict, run_dir: pathlib.Path) -> None:
    (folder / "README.md").write_text(card(cfg, meta, run_dir, folder.name))
    config = meta.get("config") or {}
    (folder / "emollm_train_config.json").write_text(json.dumps(config, indent=2) + "\n")
