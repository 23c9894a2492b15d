"""The ``README.md`` model card of an EmoLLM or LLaVA export: what the model is (size, initial
weights, data), how it was trained (the run's config and step), the prompt format it was
trained with (EmoPrompt's guiding prompt and answer format, built by ``emoprompt.hook`` for an
example record), its EmoBench table when the run was evaluated (``<run>/eval/test/results.md``,
written by ``python -m emollm_jax.evaluate``), and PyTorch lines that run as pasted."""

from __future__ import annotations

import json
import pathlib

from emollm_jax.config.model import ModelConfig
from emollm_jax.convert.emollm_layout import is_emollm
from emollm_jax.emoprompt.hook import EmoPromptHook

# The example the card's prompt is built for: a close-set emotion record as EmoBench has them.
EXAMPLE_TASK = "emotion_closed"
EXAMPLE_OPTIONS = ("anger", "joy", "sadness", "surprise")
EXAMPLE_QUESTION = f"Which emotion does the person show? Options: {', '.join(EXAMPLE_OPTIONS)}."
# The files of a card: the card and the run config it describes.
CARD_FILES = ("README.md", "emollm_train_config.json")
# Below this many parameters a model is called tiny (a test or demo size, not a usable model).
TINY = 100_000_000

USAGE = """```python
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

folder = {folder!r}  # {folder_note}
processor = AutoProcessor.from_pretrained(folder{remote})
model = AutoModelForImageTextToText.from_pretrained(folder{remote}).eval()
image = Image.open("face.jpg").convert("RGB")  # your image
question = {question!r}
guide = {guide!r}
messages = [{{"role": "user", "content": [
    {{"type": "image"}},
    {{"type": "text", "text": question + ("\\n" + guide if guide else "")}},
]}}]
prompt = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
inputs = processor(text=prompt, images=[image], return_tensors="pt")
with torch.no_grad():
    out = model.generate(**inputs, max_new_tokens={new_tokens}, do_sample=False)
print(processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
```"""
EMOLLM_VIDEO = """A video is a list of frames (PIL images or a uint8 array [T, H, W, 3]): put
`{{"type": "video"}}` in the message and pass `videos=[frames]`; the processor samples {frames}
frames uniformly. Text written by hand marks an image `<image>` and a video `<video>`; a bare
`<image>` takes a video when no image is left, as in EmoBench's own records, which mark every
medium `<image>`. `pipeline("image-text-to-text", model=folder, trust_remote_code=True)` takes
the same messages with the media inside them (`{{"type": "image", "image": pil_image}}`)."""
LLAVA_VIDEO = """transformers' `LlavaProcessor` takes images only (no video input).
`pipeline("image-text-to-text", model=folder)` takes the same messages with the image inside
them (`{{"type": "image", "image": pil_image}}`)."""
EMOLLM_LOADING = """Loading options, checked on EmoLLM exports: `dtype=torch.bfloat16` or
`dtype=torch.float16` load and generate (logits within the dtype's rounding of float32's);
`device_map="auto"` loads (on a CPU-only machine everything stays on the CPU)."""
LLAVA_LOADING = """The model is transformers' own `LlavaForConditionalGeneration`: `dtype` and
`device_map` work as for any model of that class."""


def example_prompt(emoprompt: dict) -> tuple[str, str, str]:
    """(question, guiding prompt or "", answer format sentence) the run's EmoPrompt settings
    give the example record at evaluation."""
    hook = EmoPromptHook(
        guiding_prompts=bool(emoprompt.get("guiding_prompts")),
        rationale_targets=bool(emoprompt.get("rationale_targets")),
        mode="eval",
        rationale_position=emoprompt.get("rationale_position", "before_answer"),
    )
    record = {
        "id": "example",
        "task": EXAMPLE_TASK,
        "media": [{"type": "image"}],
        "conversations": [
            {"from": "human", "value": f"<image>\n{EXAMPLE_QUESTION}"},
            {"from": "gpt", "value": EXAMPLE_OPTIONS[1]},
        ],
        "answer": EXAMPLE_OPTIONS[1],
        "options": list(EXAMPLE_OPTIONS),
    }
    value = hook(record)["conversations"][0]["value"]
    guide = value[len(f"<image>\n{EXAMPLE_QUESTION}") :].strip()
    if hook.rationale_targets:
        order = (
            "explains first, then ends with a line `Answer: <label>`"
            if hook.rationale_position == "before_answer"
            else "starts with a line `Answer: <label>`, then explains"
        )
        answer = f"The run trained on rationales: the reply {order}."
    else:
        answer = "The run trained on the bare label as the reply."
    if not hook.guiding_prompts:
        answer += " It trained without guiding prompts: the question alone is the prompt."
    return EXAMPLE_QUESTION, guide, answer


def _what(cfg: ModelConfig, parameters: int) -> str:
    towers = (
        f"a CLIP ViT vision tower (hidden {cfg.vision.hidden_size}, {cfg.vision.num_layers} "
        f"layers, {cfg.vision.image_size}px)"
    )
    text = (
        f"a {cfg.text.family} language model (hidden {cfg.text.hidden_size}, "
        f"{cfg.text.num_layers} layers, vocabulary {cfg.text.vocab_size})"
    )
    size = f"{parameters / 1e6:.1f} million parameters"
    p = cfg.projector
    if is_emollm(cfg):
        return (
            f"EmoLLM (multimodal emotional understanding) exported from emollm_jax, {size}: "
            f"{towers}, the multi-perspective visual projector (perspectives "
            f"{', '.join(p.perspectives)}; videos {p.video}) and {text}. The projector and "
            "EmoPrompt are emollm_jax's reading of the EmoLLM paper, whose exact mechanisms are "
            "not public."
        )
    return (
        f"LLaVA exported from emollm_jax as a plain `LlavaForConditionalGeneration`, {size}: "
        f"{towers}, the MLP projector and {text}."
    )


def _origin(parameters: int, train: dict, data: dict) -> str:
    """What kind of model this is: tiny or not, random or pretrained start, demo data or not."""
    start = train.get("init_from") or ""
    started = f"started from `{start}`" if start else "started from random initialisation"
    mini = "mini_emobench" in str(data.get("dir", ""))
    said = [f"It {started}"]
    if mini:
        said.append("and was trained on mini EmoBench, a small synthetic data set")
    line = " ".join(said) + "."
    if parameters < TINY or mini:
        line += (
            " This is a demonstration of the export, not a usable emotion model: its replies "
            "show that the pieces fit together, not what the emotion is."
        )
    return line


def _exported(weights: str, train: dict) -> str:
    if weights == "ema":
        return (
            "the moving average of the learning parameters (decay "
            f"{train.get('ema_decay')}); the frozen ones as trained"
        )
    return "the parameters at that step"


def card(
    cfg: ModelConfig,
    meta: dict,
    run_dir: pathlib.Path,
    folder: str,
    parameters: int,
    weights: str = "params",
) -> str:
    """The card's text; ``folder`` is the path its Python loads from; ``weights`` what was
    exported: ``params`` or ``ema`` (``ParamsReader.weights``)."""
    config = meta.get("config") or {}
    train, data = config.get("train") or {}, config.get("data") or {}
    emollm = is_emollm(cfg)
    question, guide, answer = example_prompt(config.get("emoprompt") or {})
    title = "EmoLLM" if emollm else "LLaVA"
    lines = [
        f"# {title} (emollm_jax export)",
        "",
        _what(cfg, parameters),
        "",
        _origin(parameters, train, data),
        "",
        "## Training",
        "",
        f"- checkpoint step: {meta.get('step', 'unknown')} of {train.get('steps', 'unknown')}",
        f"- data: `{data.get('dir', 'unknown')}`, chat template `{data.get('chat_template')}`, "
        f"{data.get('video_frames')} frames per video",
        f"- stage {train.get('stage')}, learning rate {train.get('learning_rate')}, "
        f"initial weights `{train.get('init_from') or 'random'}`",
        f"- exported weights: {_exported(weights, train)}",
        "",
        "The run's whole config is in `emollm_train_config.json`.",
        "",
        "## Prompt format",
        "",
        "The user turn holds the medium, the question and, when the run used EmoPrompt's guiding "
        "prompts, a guiding line naming the cues to weigh and the answer format. For a "
        "close-set emotion question the run's settings give:",
        "",
        "```text",
        f"{question}\n{guide}".strip(),
        "```",
        "",
        answer,
        "",
    ]
    results = run_dir / "eval" / "test" / "results.md"
    lines += ["## EmoBench (test split)", ""]
    if results.is_file():
        lines += [results.read_text().strip(), ""]
    else:
        lines += ["Not evaluated (`emollm evaluate` writes the table).", ""]
    new_tokens = 96 if answer.startswith("The run trained on rationales") else 16
    remote = "://" in folder
    note = f"downloaded from {folder}" if remote else "change the path if you move the folder"
    folder = f"./{folder.rstrip('/').rsplit('/', 1)[-1]}" if remote else folder
    lines += [
        "## Use it from PyTorch",
        "",
        USAGE.format(
            folder=folder,
            folder_note=f"this folder ({note})",
            remote=", trust_remote_code=True" if emollm else "",
            question=question,
            guide=guide,
            new_tokens=new_tokens,
        ),
        "",
        (EMOLLM_VIDEO if emollm else LLAVA_VIDEO).format(frames=data.get("video_frames", 8)),
        "",
        EMOLLM_LOADING if emollm else LLAVA_LOADING,
        "",
    ]
    return "\n".join(lines)


def write_card(
    folder: pathlib.Path,
    cfg: ModelConfig,
    meta: dict,
    run_dir: pathlib.Path,
    *,
    destination: str,
    parameters: int,
    weights: str = "params",
) -> None:
    """``README.md`` and ``emollm_train_config.json`` into ``folder`` (the temporary folder that
    becomes ``destination``)."""
    readme, config_file = CARD_FILES
    (folder / readme).write_text(card(cfg, meta, run_dir, destination, parameters, weights))
    config = meta.get("config") or {}
    (folder / config_file).write_text(json.dumps(config, indent=2) + "\n")
