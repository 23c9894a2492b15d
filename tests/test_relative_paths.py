"""Every path argument works relative to the working directory as well as absolute: convert in
both directions (with --verify), training (workdir, data dir, init_from), evaluation (checkpoint,
data dir, output folder), compile (config, --json, --hlo), the sharding comparison and report,
the rationale annotator (config, teacher, data dir, --out), the mini EmoBench, tokenizer, TFDS
and source-build commands, and the ablation driver. Orbax itself takes only absolute paths."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from emollm_jax.convert import cli
from emollm_jax.convert.safetensors_io import TensorSource
from tests.configs import REPO
from tests.train.helpers import train_config


@pytest.mark.torch
def test_convert_both_ways_with_relative_paths(tmp_path, monkeypatch):
    from tests import hf_models  # PyTorch's classes: only this test of the module needs them

    monkeypatch.chdir(tmp_path)
    hf_models.save(hf_models.llava(), "src")
    assert cli.main(["hf-to-orbax", "src", "orbax"]) == 0
    assert cli.main(["orbax-to-hf", "orbax", "export/main", "--verify"]) == 0
    before, after = dict(TensorSource("src").items()), dict(TensorSource("export/main").items())
    assert sorted(before) == sorted(after)
    for name, value in before.items():
        assert np.array_equal(value, after[name]), name


@pytest.mark.slow
def test_train_and_evaluate_with_relative_paths(tmp_path, monkeypatch, small_emobench):
    from emollm_jax.inference.run import evaluate_generation
    from emollm_jax.train.loop import Trainer

    monkeypatch.chdir(tmp_path)
    data = os.path.relpath(small_emobench, tmp_path)
    cfg = train_config(data, **{"train.steps": 1})
    trainer = Trainer(cfg, "runs/first")
    try:
        trainer.train()
    finally:
        trainer.close()
    # A second run starting from the first one's weights, named relatively.
    cfg = train_config(data, **{"train.steps": 1, "train.init_from": "runs/first"})
    trainer = Trainer(cfg, "runs/second")
    try:
        trainer.train()
    finally:
        trainer.close()
    assert (tmp_path / "runs" / "second" / "checkpoints" / "1").is_dir()
    cfg.data.eval_batch_size = 4
    cfg.eval.limit = 4
    cfg.eval.max_new_tokens = 4
    cfg.eval.plots = False
    result = evaluate_generation(cfg, "runs/second", "test", "eval/second")
    assert result.paths and (tmp_path / "eval" / "second" / "results.json").is_file()


def _in(folder, *args, timeout=300):
    """``python -m ARGS`` run in ``folder`` (not the repository), importing this checkout."""
    path = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(path),
        JAX_PLATFORMS="cpu",
        XLA_FLAGS="--xla_force_host_platform_device_count=1 --xla_backend_optimization_level=0",
    )
    done = subprocess.run([sys.executable, "-m", *args], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture
def configs_here(tmp_path, monkeypatch):
    """The working directory is ``tmp_path``, holding a copy of ``configs/`` (named relatively)."""
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow  # a JAX subprocess compiling the tiny training step
def test_compile_with_relative_paths(configs_here):
    _in(configs_here, "emollm_jax.compile", "--config", "configs/llava_tiny.py",
        "--topology", "cpu:1", "--run_steps", "0", "--seq_len", "64", "--json", "out/row.json",
        "--hlo", "step.hlo")  # fmt: skip
    row = json.loads((configs_here / "out" / "row.json").read_text())
    assert row["error"] is None and row["topology"] == "cpu:1"
    assert "HloModule" in (configs_here / "step.hlo").read_text()


@pytest.mark.slow  # a JAX subprocess compiling the tiny training step
def test_sharding_compare_with_relative_paths(configs_here):
    _in(configs_here, "emollm_jax.aot.compare", "--config", "configs/llava_tiny.py",
        "--topology", "cpu:1", "--strategies", "dp", "--batch_per_chip", "1", "--seq_len", "64",
        "--out", "report")  # fmt: skip
    for name in ("report.json", "report.md", "chart.png", "rows.jsonl"):
        assert (configs_here / "report" / name).is_file(), name
    # ... and the report command reads it back by a relative path.
    from emollm_jax.aot import report

    report.main(["report/report.json"])


def test_sharding_report_reads_relative_paths(tmp_path, monkeypatch, capsys):
    from emollm_jax.aot import report
    from tests.aot.test_report import _rows

    monkeypatch.chdir(tmp_path)
    rows = _rows()
    report.write_report("sweep/v5e", topology="v5e-8", num_slices=1, config="c.py", command="x",
                        rows=rows)  # fmt: skip
    assert (tmp_path / "sweep" / "v5e" / "report.json").is_file()
    report.main(["sweep/v5e/report.json"])
    assert "| v5e-8 | `fsdp/full/b4` |" in capsys.readouterr().out
    report.main(["--variants", "sweep/v5e/report.json"])
    assert "fsdp" in capsys.readouterr().out


@pytest.mark.slow  # a JAX subprocess: the tiny teacher's decoder compiled
def test_annotate_with_relative_paths(configs_here, small_emobench):
    import emollm_jax
    from emollm_jax.config.model import from_config_dict
    from emollm_jax.models.build import build_model
    from tests.configs import load_config

    shutil.copytree(small_emobench, "data")
    c = load_config("emollm_tiny", "baseline")
    emollm_jax.save_hf(build_model(from_config_dict(c.model), seed=0), configs_here / "teacher")
    _in(configs_here, "emollm_jax.inference.annotate", "--config",
        "configs/emollm_tiny.py:baseline", "--teacher=teacher", "--out=rationales/r.jsonl",
        "--limit=2", "--max_new_tokens=2", "--config.data.dir=data",
        "--config.data.eval_batch_size=2", "--config.data.seq_buckets=(512,)")  # fmt: skip
    summary = json.loads((configs_here / "rationales" / "r.summary.json").read_text())
    assert summary["records"] == 2 and summary["teacher"] == "teacher"


def test_mini_emobench_tokenizer_and_tfds_with_relative_paths(tmp_path, monkeypatch, capsys):
    from transformers import AutoTokenizer

    from emollm_jax.data import emobench_tfds
    from emollm_jax.data.mini import make_mini_emobench, make_tokenizer

    monkeypatch.chdir(tmp_path)
    make_mini_emobench.main(["data/mini", "--train=6", "--validation=2", "--test=2"])
    assert len((tmp_path / "data" / "mini" / "train.jsonl").read_text().splitlines()) == 6
    make_tokenizer.main(["data/mini", "tok"])
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "tok"), local_files_only=True)
    assert tok.convert_tokens_to_ids("<image>") == 4
    emobench_tfds.main(["data/mini", "data/tfds"])
    assert "train: 6 examples" in capsys.readouterr().out
    source = emobench_tfds.TfdsSource("data/tfds", "train")
    assert len(source) == 6 and source[0]["id"]
    assert (tmp_path / "data" / "tfds" / "emo_bench" / "1.0.0" / "dataset_info.json").is_file()


@pytest.mark.parametrize("media", ["hardlink", "copy"])
def test_sources_build_with_relative_paths(tmp_path, monkeypatch, capsys, media):
    from emollm_jax.data import records
    from emollm_jax.data.sources.__main__ import main
    from tests.data.sources.fixtures import MAKERS

    monkeypatch.chdir(tmp_path)
    MAKERS["hateful_memes"](tmp_path / "raw" / "hm")
    argv = ["build", "--source", "hateful_memes=raw/hm", "built/hm", "--media", media,
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    found, bad = records.read_split("built/hm", "train", max_pixels=10**6, strict=True)
    assert len(found) > 0 and bad.total == 0
    for record in found:  # the media were linked or copied into the output folder
        for item in record["media"]:
            assert (tmp_path / "built" / "hm" / item["path"]).is_file()


def test_ablate_with_relative_paths(tmp_path, monkeypatch, capsys):
    """Each job runs in the same working directory with the folders as given; a rerun over
    finished (here: planted) runs reads them and writes the summary under the relative --out."""
    from emollm_jax import ablate
    from emollm_jax.eval.result_files import write_results

    monkeypatch.chdir(tmp_path)
    argv = ["--config", "configs/emollm_tiny.py", "--variants", "a,b", "--seeds", "0",
            "--out", "abl", "--data", "data/mini"]  # fmt: skip
    args, extra = ablate.parse_args(argv)
    command = ablate.job_command(args, extra, "a", 0)
    assert "--workdir=abl/runs/a/seed0" in command and "--data=data/mini" in command
    from tests.eval.test_intervals import _metrics

    for variant, correct in (("a", 2), ("b", 3)):
        write_results(ablate.eval_dir(args, variant, 0), _metrics(correct, correct), plots=False)
    assert ablate.main(argv) == 0
    assert capsys.readouterr().out.count("finished earlier") == 2
    assert {p.name for p in (tmp_path / "abl").iterdir()} >= {"results.json", "results.md"}
