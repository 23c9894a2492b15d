"""Bad input to ``python -m emollm_jax.convert``: exit status 2, a message naming the problem,
and nothing at the destination (not even a temporary folder), also when a conversion fails
halfway."""

import json
import pathlib

import pytest
from safetensors.numpy import save_file

from emollm_jax.convert import cli
from emollm_jax.convert.orbax_stream import ParamsReader
from emollm_jax.convert.safetensors_io import TensorSource
from tests import hf_models

pytestmark = pytest.mark.torch


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def assert_nothing_written(dst: pathlib.Path):
    assert not dst.exists()
    assert not [p.name for p in dst.parent.iterdir() if p.name.startswith(f".{dst.name}")]


@pytest.fixture
def src(tmp_path) -> pathlib.Path:
    return pathlib.Path(hf_models.save(hf_models.llama(), tmp_path / "src"))


def test_truncated_safetensors(tmp_path, src, capsys):
    data = (src / "model.safetensors").read_bytes()
    (src / "model.safetensors").write_bytes(data[: len(data) - 1000])
    assert run("hf-to-orbax", src, tmp_path / "dst") == 2
    err = capsys.readouterr().err
    assert "model.safetensors" in err and "truncated" in err
    assert_nothing_written(tmp_path / "dst")


def test_index_naming_a_missing_shard(tmp_path, src, capsys):
    assert run("hf-to-orbax", src, tmp_path / "orbax") == 0
    assert (
        run("orbax-to-hf", tmp_path / "orbax", tmp_path / "sharded", "--max-shard-size", "30KB")
        == 0
    )
    shard = sorted((tmp_path / "sharded").glob("model-*.safetensors"))[1]
    shard.unlink()
    assert run("hf-to-orbax", tmp_path / "sharded", tmp_path / "dst") == 2
    assert f"names shard(s) that do not exist: {shard.name}" in capsys.readouterr().err
    assert_nothing_written(tmp_path / "dst")


def test_config_shapes_disagree_with_tensors(tmp_path, src, capsys):
    cfg = json.loads((src / "config.json").read_text())
    cfg["intermediate_size"] = 80  # the tensors have 96
    (src / "config.json").write_text(json.dumps(cfg))
    assert run("hf-to-orbax", src, tmp_path / "dst") == 2
    err = capsys.readouterr().err
    assert "wrong shape (6)" in err
    assert "model.layers.0.mlp.up_proj.weight has (96, 64), expected (80, 64)" in err
    assert_nothing_written(tmp_path / "dst")


def test_orbax_meta_disagreeing_with_its_arrays(tmp_path, src, capsys):
    assert run("hf-to-orbax", src, tmp_path / "orbax") == 0
    meta_file = tmp_path / "orbax" / "checkpoints" / "0" / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    meta["model"]["text"]["hidden_size"] = 32
    meta["model"]["text"]["head_dim"] = 16
    meta_file.write_text(json.dumps(meta))
    assert run("orbax-to-hf", tmp_path / "orbax", tmp_path / "dst") == 2
    err = capsys.readouterr().err
    assert "does not match the model config in its meta item" in err
    assert "embed_tokens/embedding has (128, 64), expected (128, 32)" in err
    assert_nothing_written(tmp_path / "dst")


def test_existing_destination_refused_in_both_directions(tmp_path, src, capsys):
    assert run("hf-to-orbax", src, tmp_path / "orbax") == 0
    assert run("hf-to-orbax", src, tmp_path / "orbax") == 2
    (tmp_path / "hf").mkdir()
    assert run("orbax-to-hf", tmp_path / "orbax", tmp_path / "hf") == 2
    assert "exists" in capsys.readouterr().err
    assert list((tmp_path / "hf").iterdir()) == []
    assert run("orbax-to-hf", tmp_path / "orbax", tmp_path / "hf", "--overwrite") == 0


def _fail_after(monkeypatch, cls, method, calls):
    real = getattr(cls, method)
    count = {"n": 0}

    def flaky(self, *args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise OSError("disk on fire")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, method, flaky)


def test_failure_halfway_leaves_nothing(tmp_path, src, monkeypatch, capsys):
    assert run("hf-to-orbax", src, tmp_path / "orbax") == 0
    with monkeypatch.context() as m:
        _fail_after(m, TensorSource, "mapped", 5)
        assert run("hf-to-orbax", src, tmp_path / "dst") == 2
    assert_nothing_written(tmp_path / "dst")
    with monkeypatch.context() as m:
        _fail_after(m, ParamsReader, "read", 5)
        assert run("orbax-to-hf", tmp_path / "orbax", tmp_path / "dst") == 2
    assert "disk on fire" in capsys.readouterr().err
    assert_nothing_written(tmp_path / "dst")


def test_unknown_keys_name_the_first_and_its_nearest_known_key(tmp_path, src, capsys):
    tensors = dict(TensorSource(src).items())
    tensors["model.layers.0.mlp.gate_prj.weight"] = tensors.pop(
        "model.layers.0.mlp.gate_proj.weight"
    )
    (src / "model.safetensors").unlink()
    save_file(tensors, str(src / "model.safetensors"), metadata={"format": "pt"})
    assert run("hf-to-orbax", src, tmp_path / "dst") == 2
    err = capsys.readouterr().err
    assert (
        "first unknown key: model.layers.0.mlp.gate_prj.weight (nearest known key: "
        "model.layers.0.mlp.gate_proj.weight)" in err
    )
    assert_nothing_written(tmp_path / "dst")


def test_float16_overflow_names_the_parameter_and_writes_nothing(tmp_path, src, capsys):
    tensors = dict(TensorSource(src).items())
    tensors["model.layers.1.self_attn.o_proj.weight"][3, 5] = 1e5
    (src / "model.safetensors").unlink()
    save_file(tensors, str(src / "model.safetensors"), metadata={"format": "pt"})
    assert run("hf-to-orbax", src, tmp_path / "dst", "--dtype", "float16") == 2
    err = capsys.readouterr().err
    assert "model.layers.1.self_attn.o_proj.weight: 1 value(s) overflow float16" in err
    assert "100000" in err or "1e+05" in err
    assert_nothing_written(tmp_path / "dst")
    assert run("hf-to-orbax", src, tmp_path / "orbax") == 0
    assert run("orbax-to-hf", tmp_path / "orbax", tmp_path / "dst", "--dtype", "float16") == 2
    err = capsys.readouterr().err
    assert "layers/attn/o/kernel layer 1 (model.layers.1.self_attn.o_proj.weight)" in err
    assert_nothing_written(tmp_path / "dst")
