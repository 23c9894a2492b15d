"""The PyTorch side of an EmoLLM export, as a PyTorch user meets it: in a fresh process that
imports only transformers, torch, numpy and Pillow, ``AutoProcessor`` and the model load from
the folder with ``trust_remote_code=True``; for a mini-EmoBench test image and a test video the
chat template (string content as the records write it, ``<image>`` marking the video too, and
transformers' list content) and the processor give our data pipeline's prompt, ``input_ids``,
``pixel_values`` and ``frame_media``; greedy generation, and ``pipeline("image-text-to-text")``
given chat messages holding the medium, give our tokens. The folder carries a model card."""

import json
import subprocess
import sys
import textwrap

import av
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emollm_jax.checkpoint.manager import RunCheckpoints
from emollm_jax.checkpoint.restore import restore_model
from emollm_jax.config.model import from_config_dict, to_dict
from emollm_jax.convert import cli
from emollm_jax.data.example_encoder import ExampleEncoder
from emollm_jax.data.pipeline import load_tokenizer
from emollm_jax.data.records import read_split
from emollm_jax.generate.decode import GenerateConfig, generate
from emollm_jax.models.build import abstract_model
from tests.configs import REPO, load_config
from tests.export.test_emollm_export import _randomized

FRAMES = 4
NEW_TOKENS = 6
DATA = {
    "tokenizer": str(REPO / "emollm_jax" / "assets" / "tokenizer"),
    "chat_template": "vicuna_v1",
    "video_frames": FRAMES,
    "dir": "data/mini_emobench",
}
RESULTS_MD = "| model | overall |\n| --- | --- |\n| tiny | 12.5 |"

# An orbax-to-hf export per module, PyTorch loading it and generating in a fresh process.
pytestmark = [pytest.mark.slow, pytest.mark.torch]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("emollm_processor")
    cfg = from_config_dict(load_config("emollm_tiny").model)
    shapes = nnx.to_pure_dict(nnx.split(abstract_model(cfg))[1])
    params = _randomized(shapes, np.random.default_rng(0))
    ckpts = RunCheckpoints(root / "run" / "checkpoints", async_save=False)
    config = {"data": DATA, "train": {"steps": 40, "stage": 2, "learning_rate": 1e-3}}
    meta = {"model": to_dict(cfg), "config": config, "step": 40}
    ckpts.save(40, params=params, opt_state={"n": np.zeros(())}, train={"step": np.int64(40)},
               meta=meta)  # fmt: skip
    ckpts.close()
    (root / "run" / "eval" / "test").mkdir(parents=True)
    (root / "run" / "eval" / "test" / "results.md").write_text(RESULTS_MD + "\n")
    assert cli.main(["orbax-to-hf", str(root / "run"), str(root / "hf")]) == 0
    return root / "run", root / "hf"


def _all_frames(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _cases(data_dir, cfg, tmp_path):
    """Our pipeline's eval encoding of the first test image and the first test video, and
    what the PyTorch side is given for each (messages, media files)."""
    records, _ = read_split(data_dir, "test", max_pixels=16_000_000)
    encoder = ExampleEncoder(
        load_tokenizer(DATA["tokenizer"]), cfg, chat_template="vicuna_v1", video_frames=FRAMES,
        max_len=1024, max_frames=FRAMES, max_pixels=16_000_000, mode="eval",
    )  # fmt: skip
    cases = {}
    for kind in ("image", "video"):
        record = next(r for r in records if [m["type"] for m in r["media"]] == [kind])
        ours = encoder.encode(record)
        human = next(t["value"] for t in record["conversations"] if t["from"] == "human")
        media = record["media"][0]["path"]
        if kind == "video":
            np.save(tmp_path / "video.npy", _all_frames(media))
            media = str(tmp_path / "video.npy")
        assert human.startswith("<image>\n")
        cases[kind] = {
            "ours": ours,
            "given": {"content": human, "question": human[len("<image>\n"):],
                      "media": str(media), "kind": kind, "prompt": ours["meta"]["prompt"]},
        }  # fmt: skip
    return cases


REMOTE = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch, transformers
    from PIL import Image
    folder, cases_file, out = sys.argv[1:]
    processor = transformers.AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    model = transformers.AutoModelForImageTextToText.from_pretrained(
        folder, trust_remote_code=True
    ).eval()
    assert type(processor).__name__ == "EmoLLMProcessor", type(processor)
    assert not any(m.startswith("emollm_jax") for m in sys.modules)
    pipe = transformers.pipeline("image-text-to-text", model=folder, trust_remote_code=True)
    results, texts = {}, {}
    for name, case in json.load(open(cases_file)).items():
        kind = case["kind"]
        medium = Image.open(case["media"]) if kind == "image" else np.load(case["media"])
        given = {"images": [medium]} if kind == "image" else {"videos": [medium]}
        # String content as the records write it (<image> marks the video too) and list content.
        listed = [{"type": kind}, {"type": "text", "text": case["question"]}]
        for content in (case["content"], listed):
            messages = [{"role": "user", "content": content}]
            text = processor.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
            assert text == case["prompt"].replace("<image>", f"<{kind}>") or (
                content is case["content"] and text == case["prompt"]
            ), (text, case["prompt"])
            inputs = processor(text=text, **given)
            results[f"{name}/{'listed' if content is listed else 'string'}_ids"] = (
                inputs["input_ids"].numpy()
            )
        with torch.no_grad():
            out_ids = model.generate(**inputs, max_new_tokens=%d, do_sample=False)
        for key, value in inputs.items():
            results[f"{name}/{key}"] = value.numpy()
        results[f"{name}/generated"] = out_ids[0, inputs["input_ids"].shape[1]:].numpy()
        # The pipeline, given chat messages with the medium inside.
        frames = [Image.fromarray(f) for f in medium] if kind == "video" else medium
        listed[0] = {"type": kind, kind: frames}
        reply = pipe(text=[{"role": "user", "content": listed}], max_new_tokens=%d,
                     do_sample=False, return_full_text=False)
        texts[name] = reply[0]["generated_text"]
    np.savez(out, **results)
    json.dump(texts, open(out + ".json", "w"))
    """
    % (NEW_TOKENS, NEW_TOKENS)
)


def _our_tokens(model, ours, eos) -> list[int]:
    n = len(ours["frame_media"])
    batch = {
        "input_ids": ours["input_ids"][None],
        "attention_mask": np.ones((1, len(ours["input_ids"])), np.int32),
        "pixel_values": ours["pixel_values"][None],
        "frame_media": ours["frame_media"][None].reshape(1, n),
    }
    with jax.default_matmul_precision("highest"):
        out = generate(model, {k: jnp.asarray(v) for k, v in batch.items()},
                       GenerateConfig(max_new_tokens=NEW_TOKENS, eos_ids=(eos,)))  # fmt: skip
    return np.asarray(out.tokens)[0, : int(out.lengths[0])].tolist()


@pytest.mark.slow
def test_pytorch_user_gets_our_inputs_and_tokens(exported, small_emobench, tmp_path):
    run_dir, folder = exported
    model = restore_model(run_dir)
    cases = _cases(small_emobench, model.config, tmp_path)
    (tmp_path / "cases.json").write_text(json.dumps({k: c["given"] for k, c in cases.items()}))
    proc = subprocess.run(
        [sys.executable, "-c", REMOTE, folder, tmp_path / "cases.json", tmp_path / "out.npz"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = np.load(tmp_path / "out.npz")
    replies = json.loads((tmp_path / "out.npz.json").read_text())
    eos = model.config.text.eos_token_id
    tokenizer = load_tokenizer(DATA["tokenizer"])
    for name, case in cases.items():
        ours = case["ours"]
        # The record's own text (<image> for the video too) and list content: the same inputs.
        for form in ("string", "listed"):
            assert theirs[f"{name}/{form}_ids"][0].tolist() == ours["input_ids"].tolist(), form
        pixels = theirs[f"{name}/pixel_values"]
        if name == "video":
            assert theirs["video/frame_media"][0].tolist() == ours["frame_media"].tolist()
            pixels = pixels[0]
        np.testing.assert_allclose(pixels, ours["pixel_values"], atol=1e-5, err_msg=name)
        generated = theirs[f"{name}/generated"].tolist()
        if eos in generated:
            generated = generated[: generated.index(eos) + 1]
        tokens = _our_tokens(model, ours, eos)
        assert generated == tokens, name
        assert replies[name] == tokenizer.decode(tokens, skip_special_tokens=True), name


def test_folder_carries_processor_files_and_a_model_card(exported):
    run_dir, folder = exported
    processor = json.loads((folder / "processor_config.json").read_text())
    assert processor["auto_map"] == {"AutoProcessor": "processing_emollm.EmoLLMProcessor"}
    assert processor["num_frames"] == FRAMES and processor["add_bos"] is True
    image = json.loads((folder / "preprocessor_config.json").read_text())
    assert image["crop_size"] == {"height": 64, "width": 64}
    assert (folder / "processing_emollm.py").is_file()
    assert "ASSISTANT:" in (folder / "chat_template.jinja").read_text()
    card = (folder / "README.md").read_text()
    assert RESULTS_MD in card and "checkpoint step: 40 of 40" in card
    assert 'AutoProcessor.from_pretrained(folder, trust_remote_code=True)' in card
    assert f"folder = {str(folder)!r}" in card and ".partial-" not in card
    assert json.loads((folder / "emollm_train_config.json").read_text())["data"] == DATA


def test_processor_takes_media_alone_or_listed_and_names_mismatches(exported):
    from PIL import Image

    from emollm_jax.export.hf_emollm.processing_emollm import EmoLLMProcessor

    _, folder = exported
    processor = EmoLLMProcessor.from_pretrained(folder)
    image = Image.new("RGB", (80, 70), "peachpuff")
    alone, listed = (processor(text="<image>\nhi", images=x) for x in (image, [image]))
    assert alone["input_ids"].tolist() == listed["input_ids"].tolist()
    assert (alone["input_ids"] == processor.image_token_id).sum() == processor.tokens_per_image
    video = np.random.default_rng(0).integers(0, 255, (9, 48, 64, 3), dtype=np.uint8)
    out = processor(text=["<video> a", "<image> b"], videos=video, images=[image])
    assert tuple(out["pixel_values"].shape) == (2, FRAMES, 3, 64, 64)
    assert out["frame_media"].tolist() == [[0] * FRAMES, [0] + [-1] * (FRAMES - 1)]
    tokens = (out["input_ids"] == processor.image_token_id).sum(dim=1).tolist()
    assert tokens == [processor.media_tokens(FRAMES, True), processor.tokens_per_image]
    assert out["attention_mask"][1, 0] == 0  # the shorter row is left-padded
    with pytest.raises(ValueError, match="had no placeholder"):
        processor(text="hi", images=[image])
    with pytest.raises(ValueError, match="more <image> placeholders than media"):
        processor(text="<image><image>", images=[image])
    with pytest.raises(ValueError, match="needs text with one placeholder per medium"):
        processor(images=[image])
    # <image> takes a video once no image is left; <video> never takes an image.
    mixed = processor(text=["<image> a <image>"], images=[image], videos=video)
    assert mixed["frame_media"].tolist() == [[0] + [1] * FRAMES]
    with pytest.raises(ValueError, match="more <video> placeholders than media"):
        processor(text="<video>", images=[image])
