"""A user's mistake at the command line or in the config prints one ``error:`` line and exits 2,
with nothing created in the workdir; ``EMOLLM_TRACEBACK=1`` shows the traceback instead."""

import pytest

from tests.cli.helpers import emollm
from tests.configs import REPO

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
def test_the_traceback_on_request(tmp_path, how, mistake, raised):
    env = how if isinstance(how, dict) else None
    extra = [how] if isinstance(how, str) else []
    done = _train(tmp_path, mistake, *extra, env=env)
    assert done.returncode != 0
    assert "Traceback" in done.stderr and raised in done.stderr


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
