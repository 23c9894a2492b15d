"""``python -m emollm_jax.convert``: HF -> Orbax -> HF bit-identical, side files carried, the
Orbax side read by ``restore_model`` and the trainer's ``init_from``, dtype and shard control,
``--verify``."""

import json
import pathlib
import shutil
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
import transformers

from emollm_jax.checkpoint.restore import restore_model
from emollm_jax.convert import cli
from emollm_jax.convert.orbax_stream import ParamsReader
from emollm_jax.convert.safetensors_io import TensorSource
from tests import hf_models
from tests.configs import REPO

pytestmark = pytest.mark.torch

TOKENIZER = REPO / "emollm_jax" / "assets" / "tokenizer"


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def tensors(path) -> dict[str, np.ndarray]:
    return dict(TensorSource(path).items())


def config(path) -> dict:
    cfg = json.loads((pathlib.Path(path) / "config.json").read_text())
    cfg.pop("transformers_version", None)
    return cfg


def hf_folder(tmp_path, make, name="src") -> pathlib.Path:
    """A tiny HF model folder with a tokenizer beside it (as hub folders have)."""
    src = pathlib.Path(hf_models.save(make(), tmp_path / name))
    for f in TOKENIZER.iterdir():
        shutil.copy(f, src / f.name)
    return src


@pytest.mark.parametrize(
    "make", [hf_models.llava, hf_models.llama, hf_models.qwen2], ids=["llava", "llama", "qwen2"]
)
def test_hf_orbax_hf_round_trip_is_bit_identical(tmp_path, make):
    src = hf_folder(tmp_path, make)
    assert run("hf-to-orbax", src, tmp_path / "orbax") == 0
    assert run("orbax-to-hf", tmp_path / "orbax", tmp_path / "dst") == 0
    before, after = tensors(src), tensors(tmp_path / "dst")
    assert sorted(before) == sorted(after)
    for name in before:
        assert before[name].dtype == after[name].dtype, name
        assert np.array_equal(before[name], after[name]), name
    assert config(src) == config(tmp_path / "dst")
    for name in ("generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (tmp_path / "dst" / name).read_bytes() == (src / name).read_bytes(), name
    # the side folder of the Orbax checkpoint holds them meanwhile; no weights there
    side = sorted(p.name for p in (tmp_path / "orbax" / "hf").iterdir())
    assert "config.json" in side and not any(n.endswith(".safetensors") for n in side)


def test_orbax_side_is_what_load_model_and_the_trainer_read(tmp_path):
    from emollm_jax.train.loop import _initial_model

    hf = hf_models.llama()
    src = hf_models.save(hf, tmp_path / "src")
    assert run("hf-to-orbax", src, tmp_path / "orbax", "--verify") == 0
    model = restore_model(tmp_path / "orbax")
    reader = ParamsReader(tmp_path / "orbax")
    assert reader.step == 0 and reader.meta["model"]["arch"] == "llama"
    # stacked parameters are stored one layer per chunk: that is what bounds the memory
    leaf = reader.leaves["layers/mlp/gate/kernel"]
    assert leaf.shape == (2, 64, 96) and leaf.chunk_rows == 1
    config = ml_collections.ConfigDict(dict(train=dict(init_from=str(tmp_path / "orbax")), seed=0))
    initial = _initial_model(config, model.config, None, ())
    ids = np.array([[5, 6, 7, 8, 9]])
    np.testing.assert_array_equal(np.asarray(initial(ids)), np.asarray(model(ids)))


def test_dtype_and_shards(tmp_path):
    src = hf_models.save(hf_models.llama(), tmp_path / "src")
    assert run("hf-to-orbax", src, tmp_path / "bf16", "--dtype", "bfloat16", "--verify") == 0
    reader = ParamsReader(tmp_path / "bf16")
    assert {leaf.dtype.name for leaf in reader.leaves.values()} == {"bfloat16"}
    assert reader.meta["model"]["param_dtype"] == "bfloat16"
    argv = ("orbax-to-hf", tmp_path / "bf16", tmp_path / "dst", "--max-shard-size", "20KB")
    assert run(*argv, "--verify") == 0
    dst = tmp_path / "dst"
    index = json.loads((dst / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 3 and all((dst / s).stat().st_size < 20_000 + 4096 for s in shards)
    assert config(dst)["dtype"] == "bfloat16"
    before, after = tensors(src), tensors(dst)
    for name in before:
        assert after[name].dtype.name == "bfloat16"
        assert np.array_equal(before[name].astype(after[name].dtype), after[name]), name
    again = transformers.AutoModelForCausalLM.from_pretrained(dst)
    assert str(again.dtype) == "torch.bfloat16"
    # and back up to float32 exactly
    assert run("orbax-to-hf", tmp_path / "bf16", tmp_path / "f32", "--dtype", "float32") == 0
    up = tensors(tmp_path / "f32")
    assert all(np.array_equal(up[n], after[n].astype(np.float32)) for n in after)


def test_verify_fails_above_tolerance(tmp_path, capsys):
    src = hf_models.save(hf_models.llama(), tmp_path / "src")
    assert run("hf-to-orbax", src, tmp_path / "orbax", "--verify", "--tolerance", "1e-12") == 3
    out = capsys.readouterr().out
    assert "ABOVE tolerance" in out and "max |ours - transformers|" in out


def test_module_entry_point_refuses_existing_destination(tmp_path):
    src = hf_models.save(hf_models.llama(), tmp_path / "src")
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "keep.txt").write_text("mine")
    proc = subprocess.run(
        [sys.executable, "-m", "emollm_jax.convert", "hf-to-orbax", src, tmp_path / "dst"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert "exists" in proc.stderr and "--overwrite" in proc.stderr
    assert (tmp_path / "dst" / "keep.txt").read_text() == "mine"
    assert run("hf-to-orbax", src, tmp_path / "dst", "--overwrite") == 0
    assert not (tmp_path / "dst" / "keep.txt").exists()
    assert (tmp_path / "dst" / "checkpoints").is_dir()
