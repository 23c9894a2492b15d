"""HF -> ours -> HF: every tensor bit-identical, config fields preserved; bad checkpoints fail
with errors that name what is wrong."""

import json
import pathlib

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

import emollm_jax
from emollm_jax.convert.hf_io import CheckpointMismatchError
from emollm_jax.convert.safetensors_io import (
    CheckpointFormatError,
    PickledCheckpointError,
    TensorSource,
)
from tests import hf_models

pytestmark = pytest.mark.torch


def _tensors(path):
    return dict(TensorSource(path).items())


def _config(path):
    cfg = json.loads((pathlib.Path(path) / "config.json").read_text())
    cfg.pop("transformers_version", None)
    return cfg


@pytest.mark.parametrize(
    "make",
    [
        lambda: hf_models.llava(),
        lambda: hf_models.llava(text="qwen2", vision_feature_layer=-1),
        lambda: hf_models.llama(tie_word_embeddings=True),
        lambda: hf_models.llama(
            rope_scaling=dict(
                rope_type="llama3",
                factor=8.0,
                low_freq_factor=1.0,
                high_freq_factor=4.0,
                original_max_position_embeddings=64,
            )
        ),
        lambda: hf_models.qwen2(),
        lambda: hf_models.clip_vision(),
    ],
    ids=["llava", "llava_qwen2", "llama_tied", "llama3", "qwen2", "clip_vision"],
)
def test_round_trip_is_bit_identical(tmp_path, make):
    src = hf_models.save(make(), tmp_path / "src")
    emollm_jax.save_hf(emollm_jax.load_hf(src), tmp_path / "dst")
    before, after = _tensors(src), _tensors(tmp_path / "dst")
    assert sorted(before) == sorted(after)
    for name in before:
        assert before[name].dtype == after[name].dtype, name
        assert np.array_equal(before[name], after[name]), name
    assert _config(src) == _config(tmp_path / "dst")


def test_saved_model_loads_in_transformers_with_same_logits(tmp_path):
    import transformers

    hf = hf_models.llama()
    model = emollm_jax.load_hf(hf_models.save(hf, tmp_path / "src"))
    emollm_jax.save_hf(model, tmp_path / "dst", max_shard_size=20_000)  # forces several shards
    assert (tmp_path / "dst" / "model.safetensors.index.json").exists()
    again = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "dst").eval()
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        assert torch.equal(hf(input_ids=ids).logits, again(input_ids=ids).logits)
    # and we read the sharded layout back
    assert emollm_jax.load_hf(tmp_path / "dst").config == model.config


def test_save_refuses_existing_destination_unless_overwrite(tmp_path):
    model = emollm_jax.load_hf(hf_models.save(hf_models.llama(), tmp_path / "src"))
    (tmp_path / "dst").mkdir()
    with pytest.raises(FileExistsError, match="dst"):
        emollm_jax.save_hf(model, tmp_path / "dst")
    emollm_jax.save_hf(model, tmp_path / "dst", overwrite=True)
    assert (tmp_path / "dst" / "model.safetensors").exists()


def _rewrite(path, edit):
    tensors = _tensors(path)
    edit(tensors)
    (pathlib.Path(path) / "model.safetensors").unlink()
    save_file(tensors, str(pathlib.Path(path) / "model.safetensors"), metadata={"format": "pt"})


def test_missing_tensor_is_named(tmp_path):
    src = hf_models.save(hf_models.llama(), tmp_path / "src")
    _rewrite(src, lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
    with pytest.raises(CheckpointMismatchError, match=r"missing \(1\)") as err:
        emollm_jax.load_hf(src)
    assert "model.layers.1.mlp.up_proj.weight expected shape (96, 64)" in str(err.value)


def test_wrong_shape_and_unexpected_tensors_are_listed_together(tmp_path):
    src = hf_models.save(hf_models.llama(), tmp_path / "src")

    def edit(t):
        t["model.norm.weight"] = np.ones(63, np.float32)
        t["model.extra.weight"] = np.ones(3, np.float32)

    _rewrite(src, edit)
    with pytest.raises(CheckpointMismatchError) as err:
        emollm_jax.load_hf(src)
    msg = str(err.value)
    assert "model.norm.weight has (63,), expected (64,)" in msg
    assert "unexpected (1)" in msg and "model.extra.weight shape (3,)" in msg


def test_pickled_bin_checkpoint_is_refused_with_advice(tmp_path):
    hf = hf_models.llama()
    src = pathlib.Path(hf_models.save(hf, tmp_path / "src"))
    (src / "model.safetensors").unlink()
    torch.save(hf.state_dict(), src / "pytorch_model.bin")
    with pytest.raises(PickledCheckpointError, match="pytorch_model.bin.*safetensors"):
        emollm_jax.load_hf(src)


def test_truncated_safetensors_file_is_reported(tmp_path):
    src = pathlib.Path(hf_models.save(hf_models.llama(), tmp_path / "src"))
    data = (src / "model.safetensors").read_bytes()
    (src / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointFormatError, match="model.safetensors"):
        emollm_jax.load_hf(src)


def test_index_naming_a_missing_shard_is_reported(tmp_path):
    model = emollm_jax.load_hf(hf_models.save(hf_models.llama(), tmp_path / "src"))
    dst = emollm_jax.save_hf(model, tmp_path / "dst", max_shard_size=20_000)
    shard = sorted(dst.glob("model-*.safetensors"))[-1]
    shard.unlink()
    with pytest.raises(CheckpointFormatError, match=shard.name):
        emollm_jax.load_hf(dst)


def test_bfloat16_export(tmp_path):
    model = emollm_jax.load_hf(hf_models.save(hf_models.llama(), tmp_path / "src"))
    dst = emollm_jax.save_hf(model, tmp_path / "dst", dtype="bfloat16")
    with safe_open(str(dst / "model.safetensors"), "np") as f:
        assert str(f.get_tensor("model.norm.weight").dtype) == "bfloat16"
    assert json.loads((dst / "config.json").read_text())["dtype"] == "bfloat16"
