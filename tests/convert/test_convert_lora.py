"""orbax-to-hf from a run with LoRA adapters (saved as the trainer saves): merged by default,
or base weights plus a PEFT adapter folder that peft loads; both reproduce our logits. Also:
the latest complete step unless ``--step``, side files found through ``train.init_from`` and
the tokenizer through ``data.tokenizer``."""

import dataclasses
import json

import jax.numpy as jnp
import numpy as np
import peft
import pytest
import torch
import transformers
from flax import nnx

import emollm_jax
from emollm_jax.checkpoint.manager import RunCheckpoints
from emollm_jax.checkpoint.restore import restore_model
from emollm_jax.config.model import LoraConfig, to_dict
from emollm_jax.convert import cli
from emollm_jax.convert.safetensors_io import TensorSource
from emollm_jax.convert.verify import random_inputs
from emollm_jax.models.build import build_model
from tests import hf_models

pytestmark = pytest.mark.torch

TOL = 1e-4


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def _with_random_adapters(tree, rng):
    """The params dict with every ``lora_b`` drawn (a fresh adapter's is zero)."""
    if not isinstance(tree, dict):
        return tree
    return {
        k: rng.normal(0, 0.2, v.shape).astype(np.float32)
        if k == "lora_b"
        else _with_random_adapters(v, rng)
        for k, v in tree.items()
    }


def _overlay(base, tree):
    """``tree`` with every leaf that ``base`` also has taken from ``base``."""
    if not isinstance(tree, dict):
        return base
    return {k: _overlay(base[k], v) if k in base else v for k, v in tree.items()}


def lora_run(tmp_path, make, targets=("q", "o", "gate", "down")):
    """A run folder with LoRA steps 1 (fresh adapters) and 2 (trained ones) on a HF model."""
    src = hf_models.save(make(), tmp_path / "src")
    base = emollm_jax.load_hf(src)
    cfg = dataclasses.replace(base.config, lora=LoraConfig(rank=4, alpha=8.0, targets=targets))
    fresh = nnx.to_pure_dict(nnx.state(build_model(cfg)))
    step1 = jax_tree_to_numpy(_overlay(nnx.to_pure_dict(nnx.state(base)), fresh))
    step2 = _with_random_adapters(step1, np.random.default_rng(0))
    meta = {
        "model": to_dict(cfg),
        "config": {
            "train": {"init_from": src},
            "data": {"tokenizer": "emollm_jax/assets/tokenizer"},
        },
    }
    ckpts = RunCheckpoints(tmp_path / "run" / "checkpoints", async_save=False)
    for step, params in ((1, step1), (2, step2)):
        ckpts.save(
            step,
            params=params,
            opt_state={"count": np.zeros((), np.int32)},
            train={"step": np.int64(step)},
            meta=meta | {"step": step},
        )
    ckpts.close()
    return src, tmp_path / "run"


def jax_tree_to_numpy(tree):
    if isinstance(tree, dict):
        return {k: jax_tree_to_numpy(v) for k, v in tree.items()}
    return np.asarray(tree)


def ours_and_theirs(run_dir, theirs, seed=3):
    ours = restore_model(run_dir)
    inputs = random_inputs(ours.config, seed)
    ours_out = np.asarray(
        ours(
            jnp.asarray(inputs["input_ids"]),
            pixel_values=jnp.asarray(inputs["pixel_values"]) if "pixel_values" in inputs else None,
        )
    )
    with torch.no_grad():
        theirs_out = theirs(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits.numpy()
    return ours_out, theirs_out


HF_CLASS = {
    "llama": transformers.LlamaForCausalLM,
    "llava": transformers.LlavaForConditionalGeneration,
}


@pytest.mark.slow  # over ~8 s here
@pytest.mark.parametrize("arch", ["llama", "llava"])
def test_lora_merged_and_as_peft_adapter(tmp_path, arch):
    make = hf_models.llama if arch == "llama" else hf_models.llava
    src, run_dir = lora_run(tmp_path, make)

    assert run("orbax-to-hf", run_dir, tmp_path / "merged", "--verify") == 0
    merged = HF_CLASS[arch].from_pretrained(tmp_path / "merged").eval()
    ours, theirs = ours_and_theirs(run_dir, merged)
    assert np.abs(ours - theirs).max() < TOL
    assert np.abs(theirs).max() > 0.5

    assert run("orbax-to-hf", run_dir, tmp_path / "split", "--no-merge-lora", "--verify") == 0
    # the base weights are the untouched original ones
    original, base = TensorSource(src), TensorSource(tmp_path / "split")
    assert sorted(original.keys()) == sorted(base.keys())
    assert all(np.array_equal(original.get(k), base.get(k)) for k in original.keys())
    adapter_dir = tmp_path / "split" / "adapter"
    adapter_config = json.loads((adapter_dir / "adapter_config.json").read_text())
    assert adapter_config["r"] == 4 and adapter_config["lora_alpha"] == 8.0
    model = peft.PeftModel.from_pretrained(
        HF_CLASS[arch].from_pretrained(tmp_path / "split").eval(), adapter_dir
    ).eval()
    # every adapter tensor found its module (and only the LLM's projections have one)
    wrapped = [n for n, m in model.named_modules() if hasattr(m, "lora_A")]
    assert len(wrapped) == 4 * 2 and not any("vision" in n for n in wrapped)
    ours, theirs = ours_and_theirs(run_dir, model)
    assert np.abs(ours - theirs).max() < TOL


def test_latest_step_by_default_and_side_files_from_the_run(tmp_path):
    src, run_dir = lora_run(tmp_path, hf_models.llama, targets=("v", "up"))
    assert run("orbax-to-hf", run_dir, tmp_path / "latest") == 0
    assert run("orbax-to-hf", run_dir, tmp_path / "first", "--step", "1") == 0
    original = TensorSource(src)
    latest, first = TensorSource(tmp_path / "latest"), TensorSource(tmp_path / "first")
    name = "model.layers.1.self_attn.v_proj.weight"
    assert np.array_equal(first.get(name), original.get(name))  # step 1: adapters still zero
    assert not np.array_equal(latest.get(name), original.get(name))
    assert np.array_equal(first.get("model.norm.weight"), original.get("model.norm.weight"))
    # config.json: layered over train.init_from's (fields we do not model survive)
    src_cfg = json.loads((tmp_path / "src" / "config.json").read_text())
    out_cfg = json.loads((tmp_path / "first" / "config.json").read_text())
    assert out_cfg["initializer_range"] == src_cfg["initializer_range"]
    # the tokenizer: the run's data.tokenizer (the HF source had none)
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "first")
    assert tokenizer("happy").input_ids
    assert run("orbax-to-hf", run_dir, tmp_path / "missing", "--step", "7") == 2
    assert not (tmp_path / "missing").exists()


def test_save_hf_merges_adapters_like_the_converter(tmp_path):
    _, run_dir = lora_run(tmp_path, hf_models.llama)
    assert run("orbax-to-hf", run_dir, tmp_path / "converted") == 0
    emollm_jax.save_hf(restore_model(run_dir), tmp_path / "saved")
    converted, saved = TensorSource(tmp_path / "converted"), TensorSource(tmp_path / "saved")
    assert sorted(converted.keys()) == sorted(saved.keys())
    assert all(np.array_equal(converted.get(k), saved.get(k)) for k in saved.keys())
    assert "lora" not in (tmp_path / "saved" / "config.json").read_text()
