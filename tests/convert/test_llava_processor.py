"""The PyTorch side of a plain LLaVA export (the MLP projector): transformers' own
``LlavaProcessor`` loads from the folder without remote code, and for a mini-EmoBench test
image its chat prompt (string or list content) gives our data pipeline's ``input_ids`` and
``pixel_values``, and ``pipeline("image-text-to-text")`` takes chat messages holding an image.
The folder carries a model card."""

import json

import jax
import numpy as np
import pytest
from flax import nnx

from emollm_jax.checkpoint.manager import RunCheckpoints
from emollm_jax.config.model import from_config_dict, to_dict
from emollm_jax.convert import cli
from emollm_jax.data.example_encoder import ExampleEncoder
from emollm_jax.data.pipeline import load_tokenizer
from emollm_jax.data.records import read_split
from emollm_jax.models.build import abstract_model
from tests.configs import REPO, load_config

DATA = {
    "tokenizer": str(REPO / "emollm_jax" / "assets" / "tokenizer"),
    "chat_template": "vicuna_v1",
    "video_frames": 4,
    "dir": "data/mini_emobench",
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("llava_processor")
    cfg = from_config_dict(load_config("llava_tiny").model)
    shapes = nnx.to_pure_dict(nnx.split(abstract_model(cfg))[1])
    params = jax.tree_util.tree_map(lambda x: np.zeros(x.shape, x.dtype), shapes)
    ckpts = RunCheckpoints(root / "run" / "checkpoints", async_save=False)
    config = {"data": DATA, "train": {"steps": 3, "stage": 2, "learning_rate": 1e-3}}
    meta = {"model": to_dict(cfg), "config": config, "step": 3}
    ckpts.save(3, params=params, opt_state={"n": np.zeros(())},
               train={"step": np.int64(3)}, meta=meta)  # fmt: skip
    ckpts.close()
    assert cli.main(["orbax-to-hf", str(root / "run"), str(root / "hf")]) == 0
    return cfg, root / "hf"


def test_llava_processor_gives_our_inputs(exported, small_emobench):
    from PIL import Image
    from transformers import AutoProcessor, LlavaProcessor

    cfg, folder = exported
    processor = AutoProcessor.from_pretrained(folder)  # no trust_remote_code
    assert type(processor) is LlavaProcessor
    assert not (folder / "processing_emollm.py").exists()
    records, _ = read_split(small_emobench, "test", max_pixels=16_000_000)
    record = next(r for r in records if [m["type"] for m in r["media"]] == ["image"])
    encoder = ExampleEncoder(
        load_tokenizer(DATA["tokenizer"]), cfg, chat_template="vicuna_v1", video_frames=4,
        max_len=1024, max_frames=4, max_pixels=16_000_000, mode="eval",
    )  # fmt: skip
    ours = encoder.encode(record)
    human = next(t["value"] for t in record["conversations"] if t["from"] == "human")
    messages = [{"role": "user", "content": human}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == "<s>" + ours["meta"]["prompt"]
    assert human.startswith("<image>\n")
    listed = [{"type": "image"}, {"type": "text", "text": human[len("<image>\n") :]}]
    messages = [{"role": "user", "content": listed}]
    assert text == processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False
    )
    with Image.open(record["media"][0]["path"]) as image:
        theirs = processor(text=text, images=[image], return_tensors="np")
    assert theirs["input_ids"][0].tolist() == ours["input_ids"].tolist()
    assert theirs["pixel_values"].shape == ours["pixel_values"].shape == (1, 3, 64, 64)
    np.testing.assert_allclose(theirs["pixel_values"], ours["pixel_values"], atol=1e-5)


def test_llava_folder_carries_a_model_card(exported):
    _, folder = exported
    card = (folder / "README.md").read_text()
    assert "plain `LlavaForConditionalGeneration`" in card and "checkpoint step: 3 of 3" in card
    assert "AutoProcessor.from_pretrained(folder)\n" in card
    assert "trust_remote_code" not in card
    assert json.loads((folder / "emollm_train_config.json").read_text())["data"] == DATA
    processor = json.loads((folder / "processor_config.json").read_text())
    assert processor["processor_class"] == "LlavaProcessor"


def test_llava_pipeline_takes_chat_messages_with_an_image(exported):
    import transformers
    from PIL import Image

    _, folder = exported
    pipe = transformers.pipeline("image-text-to-text", model=str(folder))
    image = Image.new("RGB", (80, 70), "peachpuff")
    content = [{"type": "image", "image": image}, {"type": "text", "text": "Which emotion?"}]
    messages = [{"role": "user", "content": content}]
    out = pipe(text=messages, max_new_tokens=3, do_sample=False, return_full_text=False)
    assert isinstance(out[0]["generated_text"], str)
