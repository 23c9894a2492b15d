"""``emollm``: the job list, and each job's ``--help`` (exit 0, ending with an example)."""

import shlex
import subprocess
import sys

import pytest

from emollm_jax.cli.main import JOBS, find_job
from tests.cli.helpers import emollm
from tests.configs import REPO


def _listed(text: str) -> list[str]:
    """The job names of ``emollm --help``'s lines (two spaces, the name, two spaces, a summary)."""
    names = []
    for line in text.splitlines():
        for job in JOBS:
            if line.startswith(f"  {job.name}  ") or line.startswith(f"  {job.name} "):
                names.append(job.name)
                break
    return names


def test_help_lists_every_job_one_line_each():
    done = emollm("--help")
    assert done.returncode == 0, done.stderr
    assert _listed(done.stdout) == [job.name for job in JOBS]


@pytest.mark.parametrize("args", [(), ("trian",), ("data", "minni")])
def test_no_job_or_an_unknown_one_lists_the_jobs_and_exits_2(args):
    done = emollm(*args)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ")
    assert _listed(done.stderr) == [job.name for job in JOBS]
    if args == ("trian",):
        assert "did you mean train?" in done.stderr.splitlines()[0]


def test_jobs_are_found_by_one_or_two_words():
    assert find_job(["train", "--config", "x"])[0].name == "train"
    job, rest = find_job(["data", "mini", "out"])
    assert (job.name, rest) == ("data mini", ["out"])
    assert find_job(["data"])[0] is None


@pytest.mark.slow  # over ~8 s here
@pytest.mark.parametrize("job", JOBS, ids=lambda j: j.name.replace(" ", "-"))
def test_job_help_exits_0_and_ends_with_its_example(job):
    done = emollm(*job.name.split(), "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.rstrip().splitlines()
    assert last[-2:] == ["example:", f"  {job.example}"]
    words = shlex.split(job.example)
    assert words[: 1 + len(job.name.split())] == ["emollm", *job.name.split()]
    if "--config" in words:  # the example's config file is there, relative to the repository
        config = words[words.index("--config") + 1].split(":")[0]
        assert (REPO / config).is_file(), config
    if job.style == "absl":  # the flags it lists are the job's own (not the dispatcher's none)
        assert "flags:" in done.stdout and "  --" in done.stdout


@pytest.mark.parametrize(
    "module", ["emollm_jax.train", "emollm_jax.evaluate", "emollm_jax.main_job"]
)
@pytest.mark.slow  # over ~8 s here
def test_python_m_aliases_help_exits_0(module):
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], cwd=REPO, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--config" in done.stdout


def test_a_job_runs_through_the_dispatcher(tmp_path):
    """The cheapest real job end to end: the routed ``main`` gets the arguments after the job."""
    done = emollm("data", "mini", tmp_path / "mini", "--train", 4, "--validation", 2, "--test", 2)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sum(1 for _ in (tmp_path / "mini" / "train.jsonl").open()) == 4


def test_an_absl_job_reads_its_own_arguments_in_sys_argv(monkeypatch, tmp_path):
    """A job that writes its command line into a report (compare, calibrate) reads the arguments
    after the job's name, not the job's name again."""
    import types

    from emollm_jax.cli import main as dispatcher

    seen = []
    fake = types.ModuleType("fake_absl_job")
    fake.main = lambda argv: seen.append(list(sys.argv))
    monkeypatch.setitem(sys.modules, "fake_absl_job", fake)
    monkeypatch.setattr(sys, "argv", ["emollm", "fakejob", "--verbosity=0"])
    job = dispatcher.Job("fakejob", "fake_absl_job", "a test job", "emollm fakejob", style="absl")
    # absl's own flag parsing is not under test (other tests' required flags live in FLAGS).
    monkeypatch.setattr(dispatcher, "run_absl", lambda main, argv, **_: main(argv))
    assert dispatcher.run(job, ["--verbosity=0"]) == 0
    assert seen == [["emollm fakejob", "--verbosity=0"]]
