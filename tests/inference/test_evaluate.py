"""``python -m emollm_jax.evaluate`` end to end on a tiny random LLaVA and a 12-record split:
result files, predictions rows, a limited first run, and reruns that skip finished ids."""

import json
import os
import socket
import subprocess
import sys

import jax.numpy as jnp
import pytest
from flax import nnx

import emollm_jax
from emollm_jax.checkpoint.manager import RunCheckpoints
from emollm_jax.config.model import from_config_dict
from emollm_jax.data.mini import make_mini_emobench
from emollm_jax.errors import ConfigError
from emollm_jax.eval import read_results
from emollm_jax.eval.predictions import FIELDS
from emollm_jax.inference.load import check_model_matches
from emollm_jax.inference.run import OutputFolderError, evaluate_generation
from emollm_jax.models.build import build_model
from emollm_jax.tasks import TASKS
from tests.configs import REPO
from tests.data.conftest import tiny_config

SIZES = {"train": 0, "validation": 0, "test": 12}  # two records per sub-task


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate")
    data = make_mini_emobench.build(root / "data", sizes=SIZES)
    model = build_model(from_config_dict(tiny_config().model), 0)
    emollm_jax.save_hf(model, root / "model")
    return root, data, model


def _config(data):
    c = tiny_config()
    c.data.dir = str(data)
    c.data.eval_batch_size = 4
    c.data.prefetch_buffer = 4
    c.eval.max_new_tokens = 6
    return c


def _rows_of(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _rows(out):
    return _rows_of(out / "predictions.jsonl")


def _cli(root, data, out, *extra, devices=1):
    """The evaluate command line, and its environment with ``devices`` CPU devices."""
    env = dict(
        os.environ,
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices} "
        "--xla_backend_optimization_level=0",
    )
    cmd = [
        sys.executable,
        "-m",
        "emollm_jax.evaluate",
        "--config",
        str(REPO / "configs" / "llava_tiny.py"),
        "--checkpoint",
        str(root / "model"),
        "--split",
        "test",
        "--workdir",
        str(out),
        f"--config.data.dir={data}",
        "--config.data.eval_batch_size=4",
        "--config.eval.max_new_tokens=6",
        *extra,
    ]
    return cmd, env


@pytest.mark.slow
def test_cli_then_resume(setup):
    root, data, model = setup
    out = root / "out"
    cmd, env = _cli(root, data, out, "--config.eval.limit=8", "--config.eval.model_name=tiny")
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| Model | Emotion (close-set)" in done.stdout and "| tiny |" in done.stdout

    names = {p.name for p in out.iterdir()}
    assert {"results.json", "results.md", "predictions.jsonl"} <= names
    rows = _rows(out)
    assert len(rows) == 8 and all(set(FIELDS) <= set(row) for row in rows)
    assert {f"confusion_{t}.png" for t in {row["task"] for row in rows}} <= names
    metrics, meta = read_results(out)
    assert metrics.n == 8 and meta["split"] == "test" and meta["eval"]["limit"] == 8
    assert "| tiny |" in (out / "results.md").read_text()

    # a crash mid-append leaves a torn last line: it is dropped and its records redone
    first = (out / "predictions.jsonl").read_bytes()
    with open(out / "predictions.jsonl", "ab") as f:
        f.write(b'{"id": "test-x", "ta')
    config = _config(data)  # no limit now; 8 fake devices: a data-parallel mesh
    result = evaluate_generation(
        config, str(root / "model"), "test", str(out), model=None, log=print
    )
    assert (result.generated, result.skipped) == (4, 8)
    assert (out / "predictions.jsonl").read_bytes().startswith(first)
    rows = _rows(out)
    assert len({(r["task"], r["id"]) for r in rows}) == len(rows) == 12
    assert result.metrics.n == 12 and set(result.metrics.tasks) == set(TASKS)
    assert read_results(out)[0].n == 12

    again = evaluate_generation(
        config, str(root / "model"), "test", str(out), model=model, log=print
    )
    assert (again.generated, again.skipped) == (0, 12)
    assert again.metrics == result.metrics


def test_model_that_disagrees_with_config_is_refused(setup):
    _, data, model = setup
    other = from_config_dict(tiny_config().model)
    check_model_matches(model.config, other)
    bad = tiny_config()
    bad.model.image_token_id = 5
    with pytest.raises(ConfigError, match="config.model.image_token_id"):
        check_model_matches(model.config, from_config_dict(bad.model))
    bad = _config(data)
    bad.eval.top_p = 0.0
    with pytest.raises(ConfigError, match="config.eval.top_p"):
        evaluate_generation(bad, "unused", "test", model=model)


def _save_run(run, model, step):
    ckpts = RunCheckpoints(run / "checkpoints", async_save=False)
    ckpts.save(
        step,
        params=nnx.to_pure_dict(nnx.state(model)),
        opt_state={"count": jnp.zeros((), jnp.int32)},
        train={"step": jnp.asarray(step, jnp.int32)},
        meta={"model": tiny_config().model.to_dict(), "step": step},
    )
    ckpts.close()


@pytest.mark.slow
def test_orbax_run_folder_answers_like_its_weights_in_hf_form(setup, tmp_path):
    root, data, model = setup
    run = tmp_path / "run"
    _save_run(run, model, 7)
    config = _config(data)
    config.eval.limit = 4
    from_hf = evaluate_generation(config, str(root / "model"), "test", str(tmp_path / "hf"))
    from_run = evaluate_generation(config, str(run), "test")
    assert from_run.out_dir == run / "eval" / "test"  # the default output folder
    hf_rows, run_rows = _rows(from_hf.out_dir), _rows(from_run.out_dir)
    assert [r["output"] for r in run_rows] == [r["output"] for r in hf_rows]
    assert {r["checkpoint_step"] for r in run_rows} == {7}
    assert "| run@7 |" in from_run.table
    # the run trained on: its new latest checkpoint must not mix into step 7's predictions
    _save_run(run, model, 9)
    with pytest.raises(ValueError, match="step 9 is evaluated now: pass another --workdir"):
        evaluate_generation(config, str(run), "test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.multiprocess
def test_two_processes_share_the_split_and_answer_like_one(setup, tmp_path):
    """2 JAX processes x 4 CPU devices form one 8-device mesh over a loopback coordinator."""
    root, data, model = setup
    out = tmp_path / "two"
    address = f"127.0.0.1:{_free_port()}"
    procs = []
    for index in range(2):
        cmd, env = _cli(
            root,
            data,
            out,
            "--config.distributed.initialize=on",
            f"--config.distributed.coordinator_address={address}",
            "--config.distributed.num_processes=2",
            f"--config.distributed.process_id={index}",
            devices=4,
        )
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True))
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    assert "| Model |" in logs[0] and "| Model |" not in logs[1]  # process 0 reports
    shares = [_rows_of(out / f"predictions.p{i}.jsonl") for i in range(2)]
    assert [len(rows) for rows in shares] == [6, 6]
    two = {r["id"]: r["output"] for rows in shares for r in rows}

    # one process, 8 devices: the same answers; then a rerun over the two files skips all
    single = evaluate_generation(_config(data), "tiny", "test", str(tmp_path / "one"), model=model)
    assert {r["id"]: r["output"] for r in _rows(single.out_dir)} == two
    again = evaluate_generation(_config(data), "tiny", "test", str(out), model=model)
    assert (again.generated, again.skipped) == (0, 12)
    assert again.metrics == single.metrics == read_results(out)[0]


def test_mistyped_checkpoint_creates_nothing(setup, tmp_path):
    _, data, _ = setup
    with pytest.raises(FileNotFoundError, match="no such folder"):
        evaluate_generation(_config(data), str(tmp_path / "typo"), "test")
    assert not (tmp_path / "typo").exists()


def _prompt_lengths(config):
    """Tokens per prompt of the split, by record, as the eval pipeline encodes them."""
    from emollm_jax.data.pipeline import make_encoder, open_source

    encoder = make_encoder(config, "eval")
    return [
        (record["task"], len(encoder(record)["input_ids"]))
        for record in open_source(config.data, "test")
    ]


@pytest.mark.slow
def test_dropped_prompts_are_counted_and_other_settings_refused(setup, tmp_path):
    _, data, model = setup
    config = _config(data)
    lengths = _prompt_lengths(config)
    # A bucket between the shortest and the longest prompt: some sub-tasks lose rows.
    bucket = sorted(n for _, n in lengths)[len(lengths) // 2]
    config.data.seq_buckets = (bucket,)
    expected = {task: 0 for task in TASKS}
    for task, n in lengths:
        expected[task] += n > bucket
    assert 0 < sum(expected.values()) < len(lengths)

    out = tmp_path / "out"
    result = evaluate_generation(config, "tiny", "test", str(out), model=model)
    assert result.metrics.n == len(lengths) - sum(expected.values())
    _, meta = read_results(out)
    assert meta["dropped_per_task"] == expected
    report = (out / "results.md").read_text()
    assert "Records left out of the scores" in report
    for task, n in expected.items():
        assert (f"{task} {n}" in report) == (n > 0)
    assert all(row["settings"]["eval.max_new_tokens"] == 6 for row in _rows(out))

    config.eval.max_new_tokens = 5  # stored rows were made with 6: not reused
    with pytest.raises(OutputFolderError, match="eval.max_new_tokens 6 there, 5 now"):
        evaluate_generation(config, "tiny", "test", str(out), model=model)
    assert all(row["settings"]["eval.max_new_tokens"] == 6 for row in _rows(out))
