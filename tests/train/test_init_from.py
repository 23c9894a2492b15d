"""A Hugging Face folder as a run's initial weights: a LLaVA for the LLaVA baseline, and the
same LLaVA's towers and projector carried into an EmoLLM model."""

import jax
import numpy as np
import pytest
import torch
import transformers
from flax import nnx

import emollm_jax
from emollm_jax.config.model import from_config_dict
from emollm_jax.convert import hf_config
from tests.configs import load_config
from tests.hf_models import randomize
from tests.train.helpers import train_config

pytestmark = pytest.mark.torch

ONE = {"data": 1, "fsdp": 1, "tensor": 1}


def _hf_llava_like_tiny(path):
    """A random HF LLaVA with llava_tiny's shapes."""
    cfg = hf_config.to_hf(from_config_dict(load_config("llava_tiny").model))
    torch.manual_seed(0)
    randomize(transformers.LlavaForConditionalGeneration(cfg)).save_pretrained(path)
    return path


def _flat(state):
    return {"/".join(map(str, p)): np.asarray(v.get_value()) for p, v in nnx.to_flat_state(state)}


def test_hf_llava_initialises_llava_and_emollm(tmp_path, small_emobench):
    from emollm_jax.train.loop import Trainer

    hf_dir = _hf_llava_like_tiny(tmp_path / "hf")
    reference = _flat(nnx.state(emollm_jax.load_hf(hf_dir), nnx.Param))

    cfg = train_config(small_emobench, **{"mesh.shape": ONE, "train.init_from": str(hf_dir)})
    trainer = Trainer(cfg, tmp_path / "llava", devices=jax.devices()[:1])
    got = _flat(nnx.merge_state(trainer.state.trainable, trainer.state.frozen))
    assert got.keys() == reference.keys()
    for k in reference:
        np.testing.assert_array_equal(got[k], reference[k], err_msg=k)
    trainer.close()

    emo = load_config("emollm_tiny")
    for section in ("data", "train", "log", "checkpoint", "mesh"):
        emo[section] = cfg[section]
    trainer = Trainer(emo, tmp_path / "emollm", devices=jax.devices()[:1])
    got = _flat(nnx.merge_state(trainer.state.trainable, trainer.state.frozen))
    for k, value in reference.items():
        if k.startswith(("vision_tower/", "language_model/")):
            np.testing.assert_array_equal(got[k], value, err_msg=k)
        else:  # LLaVA's projector is the patch perspective's MLP
            np.testing.assert_array_equal(
                got[k.replace("projector/", "projector/perspectives/patch/mlp/")], value, err_msg=k
            )
    assert any(k.startswith("projector/perspectives/global/") for k in got)
    trainer.close()


@pytest.mark.slow  # over ~8 s here
def test_orbax_run_initialises_a_lora_run(tmp_path, small_emobench):
    from emollm_jax.train.loop import Trainer

    first = Trainer(
        train_config(small_emobench, **{"mesh.shape": ONE}),
        tmp_path / "first",
        devices=jax.devices()[:1],
    )
    first.train_step(next(first.iterator))
    first.save()
    first.close()
    trained = _flat(nnx.merge_state(first.state.trainable, first.state.frozen))

    cfg = train_config(
        small_emobench,
        **{
            "mesh.shape": ONE,
            "train.init_from": str(tmp_path / "first"),
            "model.lora": {"rank": 4},
        },
    )
    second = Trainer(cfg, tmp_path / "second", devices=jax.devices()[:1])
    got = _flat(nnx.merge_state(second.state.trainable, second.state.frozen))
    assert {k for k in got if "lora_" in k} and all(
        "lora_" in k for k in got.keys() - trained.keys()
    )
    for k, value in trained.items():
        np.testing.assert_array_equal(got[k], value, err_msg=k)
    second.close()
