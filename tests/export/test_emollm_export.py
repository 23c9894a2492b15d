"""EmoLLM for PyTorch users: orbax-to-hf of a run with the multi-perspective projector (and LoRA
adapters, merged) writes a folder that transformers loads with ``trust_remote_code=True`` (in a process without
emollm_jax) and that ``emollm_jax.export.hf_emollm`` loads without remote code; both give our
logits within 1e-4 for an image prompt and for video prompts (pooled videos, an image and a
video in one row, padding frames). The folder converts back bit-identically; unmerged adapters
load with peft."""

import dataclasses
import functools
import json
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from emollm_jax.checkpoint.manager import RunCheckpoints
from emollm_jax.checkpoint.restore import restore_model
from emollm_jax.config.model import LoraConfig, from_config_dict, to_dict
from emollm_jax.convert import cli
from emollm_jax.convert.safetensors_io import TensorSource
from emollm_jax.models.build import abstract_model
from emollm_jax.models.visual_tokens import tokens_per_media
from tests.configs import load_config

# An orbax-to-hf export with --verify per module, PyTorch (and peft) loading it in fresh processes.
pytestmark = [pytest.mark.slow, pytest.mark.torch]

TOL = 1e-4


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def _randomized(params, rng):
    """Every parameter drawn with spread (a fresh init has zero perspective embeddings and
    mixing logits, and tiny outputs): norm scales 1 + noise, the rest noise."""

    def draw(path, x):
        noise = rng.normal(0, 0.15, np.shape(x)).astype(np.float32)
        return 1 + noise if path[-1].key == "scale" else noise

    return jax.tree_util.tree_map_with_path(draw, params)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """(run folder, exported HF folder) of a tiny EmoLLM (pooled videos)."""
    root = tmp_path_factory.mktemp("emollm")
    model = load_config("emollm_tiny").model
    model.lora.update(rank=2, alpha=4.0, targets=("q", "v", "down"))  # stage-2 style adapters
    cfg = from_config_dict(model)
    shapes = nnx.to_pure_dict(nnx.split(abstract_model(cfg))[1])
    params = _randomized(shapes, np.random.default_rng(0))
    ckpts = RunCheckpoints(root / "run" / "checkpoints", async_save=False)
    meta = {"model": to_dict(cfg), "config": {}, "step": 5}
    ckpts.save(
        5, params=params, opt_state={"n": np.zeros(())}, train={"step": np.int64(5)}, meta=meta
    )
    ckpts.close()
    assert run("orbax-to-hf", root / "run", root / "hf", "--verify") == 0
    return root / "run", root / "hf"


def prompts(cfg) -> dict[str, dict[str, np.ndarray]]:
    """An image prompt; a batch of two video rows (row 0: an image then a 3-frame video; row 1:
    a 2-frame video and two padding frames), equal lengths."""
    rng = np.random.default_rng(1)
    image = tokens_per_media(cfg, "image")
    tok = cfg.image_token_id
    ids = np.concatenate([[1, 5, 6], np.full(image, tok), [7, 8, 9, 10]])[None]
    px = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    n0 = image + tokens_per_media(cfg, "video", 3)
    n1 = tokens_per_media(cfg, "video", 2)
    length = n0 + 6
    row0 = np.concatenate([[1, 5], np.full(n0, tok), [7, 8, 9, 10]])
    row1 = np.concatenate([[1, 5], np.full(n1, tok), rng.integers(5, 900, length - n1 - 2)])
    return {
        "image": {"input_ids": ids, "pixel_values": px},
        "video": {
            "input_ids": np.stack([row0, row1]),
            "pixel_values": rng.standard_normal((2, 4, 3, 64, 64)).astype(np.float32),
            "frame_media": np.array([[0, 1, 1, 1], [0, 0, -1, -1]]),
        },
    }


@functools.cache
def _our_model(run_dir):
    return restore_model(run_dir)


def ours(run_dir, inputs) -> np.ndarray:
    model = _our_model(run_dir)
    with jax.default_matmul_precision("highest"):
        return np.asarray(model(**{k: jnp.asarray(v) for k, v in inputs.items()}))


REMOTE = textwrap.dedent(
    """
    import sys
    import numpy as np, torch, transformers
    folder, inputs, out = sys.argv[1:]
    model = transformers.AutoModelForImageTextToText.from_pretrained(
        folder, trust_remote_code=True
    ).eval()
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    assert not any(m.startswith("emollm_jax") for m in sys.modules)
    data = np.load(inputs)
    results = {}
    for name in ("image", "video"):
        kwargs = {k.split("/")[1]: torch.from_numpy(data[k]) for k in data if k.startswith(name)}
        with torch.no_grad():
            results[name] = model(**kwargs).logits.numpy()
    np.savez(out, **results)
    """
)


def test_remote_code_export_gives_our_logits(export, tmp_path):
    run_dir, folder = export
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "emollm" and "AutoModelForImageTextToText" in config["auto_map"]
    assert (folder / "modeling_emollm.py").exists() and (
        folder / "configuration_emollm.py"
    ).exists()
    cases = prompts(_our_model(run_dir).config)
    flat = {f"{name}/{k}": v for name, case in cases.items() for k, v in case.items()}
    np.savez(tmp_path / "inputs.npz", **flat)
    proc = subprocess.run(
        [sys.executable, "-c", REMOTE, folder, tmp_path / "inputs.npz", tmp_path / "out.npz"],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # not the repository: only the folder's own code is there to run
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = np.load(tmp_path / "out.npz")
    for name, inputs in cases.items():
        mine = ours(run_dir, inputs)
        assert np.abs(mine - theirs[name]).max() < TOL, name
        assert np.abs(theirs[name]).max() > 0.5, name


def test_importable_without_remote_code_and_generates(export):
    from emollm_jax.export.hf_emollm import EmoLLMForConditionalGeneration

    run_dir, folder = export
    model = EmoLLMForConditionalGeneration.from_pretrained(folder).eval()
    cases = prompts(_our_model(run_dir).config)
    for name, inputs in cases.items():
        with torch.no_grad():
            theirs = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.numpy()
        assert np.abs(ours(run_dir, inputs) - theirs).max() < TOL, name
    # generate: the image goes in at the first step only, and greedy decoding agrees with
    # repeated full forward passes
    image = {k: torch.from_numpy(v) for k, v in cases["image"].items()}
    with torch.no_grad():
        out = model.generate(**image, max_new_tokens=3, do_sample=False)
        ids = image["input_ids"]
        for _ in range(3):
            nxt = model(input_ids=ids, pixel_values=image["pixel_values"]).logits[:, -1].argmax(-1)
            ids = torch.cat([ids, nxt[:, None]], dim=1)
    assert torch.equal(out, ids)


def test_export_converts_back_bit_identically(export, tmp_path):
    run_dir, folder = export
    assert run("hf-to-orbax", folder, tmp_path / "orbax", "--verify") == 0
    back, original = restore_model(tmp_path / "orbax").config, _our_model(run_dir).config
    # adapters merged; the HF config spells head_dim out where ours left it implied
    text = dataclasses.replace(original.text, head_dim=original.text.resolved_head_dim)
    assert back == dataclasses.replace(original, text=text, lora=LoraConfig())
    assert run("orbax-to-hf", tmp_path / "orbax", tmp_path / "again") == 0
    before, after = TensorSource(folder), TensorSource(tmp_path / "again")
    assert sorted(before.keys()) == sorted(after.keys())
    assert all(np.array_equal(before.get(k), after.get(k)) for k in before.keys())
    for name in ("config.json", "modeling_emollm.py", "configuration_emollm.py"):
        assert (folder / name).read_text() == (tmp_path / "again" / name).read_text(), name


def test_unmerged_adapters_load_with_peft(export, tmp_path):
    import peft

    from emollm_jax.export.hf_emollm import EmoLLMForConditionalGeneration

    run_dir, _ = export
    assert run("orbax-to-hf", run_dir, tmp_path / "base", "--no-merge-lora", "--verify") == 0
    base = EmoLLMForConditionalGeneration.from_pretrained(tmp_path / "base").eval()
    model = peft.PeftModel.from_pretrained(base, tmp_path / "base" / "adapter").eval()
    wrapped = [n for n, m in model.named_modules() if hasattr(m, "lora_A")]
    assert len(wrapped) == 3 * 2 and all(".language_model." in n for n in wrapped)
    inputs = prompts(_our_model(run_dir).config)["video"]
    with torch.no_grad():
        theirs = model(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.numpy()
    assert np.abs(ours(run_dir, inputs) - theirs).max() < TOL
