"""A user's mistake at the command line or in the config prints one ``error:`` line and exits 2,
with nothing created in the workdir; ``EMOLLM_TRACEBACK=1`` shows the traceback instead."""

import re

import pytest

from tests.cli.helpers import emollm
from tests.configs import REPO, load_config

TINY = str(REPO / "configs/llava_tiny.py")


def _train(tmp_path, *extra, config=TINY, env=None, data=None):
    """``emollm train`` from ``tmp_path`` into ``tmp_path/run`` (data: an existing folder, so
    that only the mistake under test is wrong)."""
    data = data if data is not None else tmp_path
    return emollm(
        "train", "--config", config, "--workdir", tmp_path / "run",
        f"--config.data.dir={data}", *extra, cwd=tmp_path, env=env,
    )  # fmt: skip


def _one_error_line(done) -> str:
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, done.stderr[-3000:]
    return errors[0]


@pytest.mark.parametrize(
    "extra, config, message",
    [
        (["--config.train.stepz=4"], TINY,
         "error: config.train.stepz: no such field (did you mean steps?)"),
        (["--config.trian.steps=4"], TINY,
         "error: config.trian: no such field (did you mean train?)"),
        (["--config.mesh.strategyy=fsdp"], TINY,
         "error: config.mesh.strategyy: no such field (did you mean strategy?)"),
        ([], f"{REPO}/configs/emollm_tiny.py:varient=mp",
         f"error: --config {REPO}/configs/emollm_tiny.py:varient=mp: config argument 'varient' "
         "is not a key of this config (variant, stage, backbone, runlocal)"),
        (["--config.mesh.strategy=fsdpp"], TINY,
         "error: config.mesh.strategy: 'fsdpp' is not one of "
         "('dp', 'fsdp', 'tp', 'fsdp_tp', 'hsdp', 'fsdp_vision_dp')"),
        (["--config.checkpoint.every_steps=0"], TINY,
         "error: config.checkpoint.every_steps: must be a positive int, got 0"),
        (["--config.log.every_steps=0"], TINY,
         "error: config.log.every_steps: must be a positive int, got 0"),
        (["--workdirr=x"], TINY,
         "error: Unknown command line flag 'workdirr'. Did you mean: workdir ?"),
        ([], "configs/nope.py", None),
    ],
    ids=["field", "section", "mesh-field", "config-argument", "strategy", "checkpoint-every",
         "log-every", "flag", "config-file"],
)  # fmt: skip
def test_train_refuses_with_one_line_and_creates_nothing(tmp_path, extra, config, message):
    done = _train(tmp_path, *extra, config=config)
    line = _one_error_line(done)
    if message is None:  # the config file: named, with the folder it was looked for in
        assert line.startswith("error: --config configs/nope.py: no such file")
        assert str(tmp_path) in line
    else:
        assert line == message
    assert not (tmp_path / "run").exists()


def test_a_relative_data_dir_that_is_not_there_names_where_it_looked(tmp_path):
    done = _train(tmp_path, data="data/mini_emobench")
    line = _one_error_line(done)
    assert line.startswith("error: config.data.dir: no folder data/mini_emobench")
    assert f"looked in {tmp_path / 'data/mini_emobench'}, relative to the current folder" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no workdir, no data folder


@pytest.mark.parametrize("how", [{"EMOLLM_TRACEBACK": "1"}, "--verbosity=1"], ids=["env", "flag"])
@pytest.mark.parametrize(
    "mistake, raised",
    [("--config.mesh.strategy=fsdpp", "ConfigError: config.mesh.strategy"),
     ("--config.train.stepz=4", "AttributeError")],
    ids=["config-value", "config-field"],
)  # fmt: skip
@pytest.mark.slow  # over ~8 s here
def test_the_traceback_on_request(tmp_path, how, mistake, raised):
    env = how if isinstance(how, dict) else None
    extra = [how] if isinstance(how, str) else []
    done = _train(tmp_path, mistake, *extra, env=env)
    assert done.returncode != 0
    assert "Traceback" in done.stderr and raised in done.stderr


@pytest.mark.slow  # over ~8 s here
@pytest.mark.parametrize("job", [["evaluate"], ["demo"], ["compile"], ["compare"], ["annotate"]])
def test_every_config_command_names_an_unknown_field(tmp_path, job):
    done = emollm(*job, "--config", TINY, "--config.eval.max_new_tokenz=3", cwd=tmp_path)
    assert _one_error_line(done).startswith(
        "error: config.eval.max_new_tokenz: no such field (did you mean max_new_tokens?)"
    )
    assert list(tmp_path.iterdir()) == []


def test_argparse_jobs_exit_2_naming_the_argument(tmp_path):
    done = emollm("data", "mini", tmp_path / "mini", "--trainn", 3, cwd=tmp_path)
    assert done.returncode == 2
    assert "unrecognized arguments: --trainn" in done.stderr


@pytest.mark.parametrize(
    "job",
    [["evaluate", "--checkpoint", "run"], ["demo", "--workdir", "run", "--data", "data"]],
    ids=["evaluate", "demo"],
)
def test_a_bad_strategy_is_refused_before_anything_is_built(tmp_path, job):
    done = emollm(*job, "--config", TINY, "--config.mesh.strategy=fsdpp", cwd=tmp_path)
    assert _one_error_line(done).startswith("error: config.mesh.strategy: 'fsdpp' is not one of")
    assert list(tmp_path.iterdir()) == []  # no output folder, no mini EmoBench


def _run_folder(root, config, steps):
    """A training run folder with checkpoints ``steps`` of a fresh model of ``configs/<config>``
    (the weights do not matter here), its meta as the trainer writes it."""
    import jax.numpy as jnp
    from flax import nnx

    from emollm_jax.checkpoint.manager import RunCheckpoints
    from emollm_jax.config.model import from_config_dict, to_dict
    from emollm_jax.models.build import build_model

    cfg = from_config_dict(load_config(config).model)
    params = nnx.to_pure_dict(nnx.state(build_model(cfg, 0)))
    checkpoints = RunCheckpoints(root / "checkpoints", async_save=False)
    for step in steps:
        checkpoints.save(
            step,
            params=params,
            opt_state={"count": jnp.zeros((), jnp.int32)},
            train={"step": jnp.asarray(step, jnp.int32)},
            meta={"model": to_dict(cfg), "step": step},
        )
    checkpoints.close()
    return root


@pytest.fixture(scope="module")
def corrupt_run(tmp_path_factory):
    """A LLaVA run with checkpoints 2 and 4, the arrays of 4 overwritten with garbage."""
    run = _run_folder(tmp_path_factory.mktemp("corrupt") / "run", "llava_tiny", (2, 4))
    for path in (run / "checkpoints/4/params").glob("ocdbt.process_*/d/*"):
        path.write_bytes(b"\0garbage" * 4)
    return run


def _evaluate(tmp_path, run, *extra):
    return emollm(
        "evaluate", "--config", TINY, "--checkpoint", run, "--workdir", tmp_path / "out",
        f"--config.data.dir={tmp_path}", *extra, cwd=tmp_path,
    )  # fmt: skip


def test_evaluate_names_a_corrupt_checkpoint_and_the_step_to_pick(tmp_path, corrupt_run):
    done = _evaluate(tmp_path, corrupt_run)
    # TensorStore's reader threads may print "Event loop is closed" tracebacks straight to
    # stderr after the failed read (not through logging, so not ours to hide): none may come
    # from our code, and exactly one error line names the checkpoint.
    assert done.returncode == 2, done.stderr[-3000:]
    assert not re.search(r'File "[^"]*emollm_jax/', done.stderr), done.stderr[-3000:]
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error: ")]
    params = corrupt_run / "checkpoints/4/params"
    assert line.startswith(f"error: checkpoint 4 in {corrupt_run / 'checkpoints'} cannot be read")
    assert f"(file {params}" in line
    assert line.endswith("Checkpoint 2 restores intact: rerun with --step 2 to evaluate it.")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # over ~8 s here
def test_evaluate_step_picks_a_checkpoint_and_refuses_one_not_there(tmp_path, corrupt_run):
    from emollm_jax.inference.load import load_hf_or_run

    _, step = load_hf_or_run(corrupt_run, load_config("llava_tiny"), step=2)
    assert step == 2
    line = _one_error_line(_evaluate(tmp_path, corrupt_run, "--step", 3))
    assert line == (
        f"error: checkpoint step 3: --checkpoint {corrupt_run} has no checkpoint 3 (it has [2, 4])"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # over ~8 s here
def test_evaluate_with_another_model_config_names_the_fields(tmp_path):
    run = _run_folder(tmp_path / "emollm_run", "emollm_tiny", (1,))
    done = _evaluate(tmp_path, run)
    line = _one_error_line(done)
    assert line == (
        f"error: --checkpoint {run}: checkpoint 1 holds a model of another config, whose "
        "parameters do not fit config.model:"
    )
    assert "config.model.projector.type: 'multi_perspective' in the checkpoint, 'mlp' now" in (
        done.stderr
    )
    assert "tree structures" not in done.stderr
    assert not (tmp_path / "out").exists()
