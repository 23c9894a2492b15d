"""``emollm <job> [arguments]``: one console script, one subcommand per job.

Each job is a row of ``JOBS``: the module that implements it (its ``python -m`` path keeps
working as an alias), how its arguments are read (absl flags or an ``argv`` list) and an example
that ``emollm <job> --help`` ends with. The dispatcher only routes: the module's ``main`` gets
the remaining arguments. ``emollm`` alone, or an unknown job, lists the jobs and exits 2.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from dataclasses import dataclass

from emollm_jax.cli_errors import USAGE_ERROR, asks_for_help, report_user_errors, run_absl

PROG = "emollm"


@dataclass(frozen=True)
class Job:
    name: str  # "train", or "data mini" for a job in a group
    module: str  # the module whose ``main`` runs it (its ``python -m`` path)
    summary: str  # one line for ``emollm --help``
    example: str  # a command that works from the repository root (after the set-up)
    style: str = "argv"  # "absl": flags (config files); "argv": main(list of arguments)


# The jobs, in the order ``emollm --help`` lists them. A module that moves is one line here.
JOBS = (
    Job("demo", "emollm_jax.main_job",
        "the main job: mini EmoBench -> train a tiny EmoLLM on CPU -> EmoBench table",
        "emollm demo --config.train.steps=100 --config.recipe.grounding_steps=100", "absl"),
    Job("train", "emollm_jax.train.__main__",
        "train from a config: Orbax checkpoints and metrics.jsonl in --workdir, resumable",
        "emollm train --config configs/llava_tiny.py --workdir runs/tiny "
        "--config.train.steps=20", "absl"),
    Job("goodput", "emollm_jax.goodput",
        "a run's goodput and badput by cause, across restarts, from its events.jsonl",
        "emollm goodput runs/tiny --json"),
    Job("evaluate", "emollm_jax.evaluate",
        "EmoBench table of a run or a Hugging Face folder on a split",
        "emollm evaluate --config configs/llava_tiny.py --checkpoint runs/tiny --split test",
        "absl"),
    Job("ablate", "emollm_jax.ablate",
        "variants x seeds of the main job's recipe, tables with intervals",
        "emollm ablate --config configs/emollm_tiny.py --variants baseline,full --seeds 0,1 "
        "--out runs/ablate"),
    Job("compile", "emollm_jax.compile",
        "compile a step ahead of time for a TPU topology: memory, FLOPs, estimates",
        "emollm compile --config configs/llava_tiny.py --topology cpu:8", "absl"),
    Job("compare", "emollm_jax.aot.compare",
        "sweep sharding strategies x remat x batch per chip, ahead of time: report.md",
        "emollm compare --config configs/llava_tiny.py --topology cpu:8 --strategies dp,fsdp "
        "--batch_per_chip 1 --out runs/compare", "absl"),
    Job("report", "emollm_jax.aot.report",
        "winners (or --variants) table of compare reports",
        "emollm report runs/compare/report.json"),
    Job("calibrate", "emollm_jax.aot.calibrate",
        "published measured runs against our step-time estimate: docs/calibration",
        "emollm calibrate --runs llama3.1-8b-v6e-8 --out runs/calibration", "absl"),
    Job("convert", "emollm_jax.convert.cli",
        "hf-to-orbax | orbax-to-hf: Orbax checkpoints <-> Hugging Face folders",
        "emollm convert orbax-to-hf runs/tiny export/tiny --verify"),
    Job("data mini", "emollm_jax.data.mini.make_mini_emobench",
        "build the mini EmoBench (drawn by code, no downloads)",
        "emollm data mini data/mini_emobench"),
    Job("data sources", "emollm_jax.data.sources.__main__",
        "build an EmoBench-format folder from public emotion data sets",
        "emollm data sources build --source fer2013=/data/fer2013 data/emobench"),
    Job("data tfds", "emollm_jax.data.emobench_tfds",
        "EmoBench-format folder -> TFDS ArrayRecord data set",
        "emollm data tfds data/mini_emobench data/tfds"),
    Job("data tokenizer", "emollm_jax.data.mini.make_tokenizer",
        "train the mini EmoBench's small tokenizer",
        "emollm data tokenizer data/mini_emobench runs/tokenizer"),
    Job("annotate", "emollm_jax.inference.annotate",
        "EmoPrompt rationales from a teacher model told the ground truth",
        "emollm annotate --config configs/emollm_tiny.py --teacher runs/main --split train "
        "--limit 8 --out runs/rationales.jsonl", "absl"),
    Job("config show", "emollm_jax.config.show",
        "every config field with its type, default and meaning (any job's --help-config)",
        "emollm config show"),
)


def _listing() -> str:
    width = max(len(job.name) for job in JOBS)
    lines = [f"usage: {PROG} <job> [arguments]   ({PROG} <job> --help for a job's arguments)", ""]
    lines += [f"  {job.name:<{width}}  {job.summary}" for job in JOBS]
    return "\n".join(lines)


def find_job(args: list[str]) -> tuple[Job | None, list[str]]:
    """The job ``args`` name (one word, or a group and a word) and the arguments after it."""
    for words in (2, 1):
        name = " ".join(args[:words])
        for job in JOBS:
            if len(args) >= words and job.name == name:
                return job, args[words:]
    return None, args


def run(job: Job, args: list[str]) -> int:
    """Run ``job``'s module's ``main`` on ``args``; its exit status."""
    prog = f"{PROG} {job.name}"
    usage = f"example:\n  {job.example}"
    if job.style == "absl":
        from emollm_jax.aot.cli import underscore_flags

        if "--help-config" in args:  # every config field, its default and meaning
            from emollm_jax.config.show import table

            print(table())
            return 0

        module = importlib.import_module(job.module)
        define_flags = getattr(module, "define_flags", None)
        if define_flags is not None:  # a module that defines its flags only when run
            define_flags()
        sys.argv = [prog, *args]  # what a job that records its own command line reads
        run_absl(module.main, underscore_flags(args), prog=prog, usage=usage)
        return 0
    module = importlib.import_module(job.module)
    sys.argv = [prog, *args]  # argparse's usage line names the job
    if asks_for_help(args):
        try:
            module.main(args)
        except SystemExit as e:
            if e.code not in (None, 0):  # a hand-read usage message
                print(e.code if isinstance(e.code, str) else "", file=sys.stderr)
        print(f"\n{usage}")
        return 0
    return report_user_errors(module.main)(args) or 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("--help", "-h", "help"):
        print(_listing())
        return 0
    job, rest = find_job(args)
    if job is None:
        name = " ".join(args[:2]) if args[:1] == ["data"] else " ".join(args[:1])
        close = difflib.get_close_matches(name, [job.name for job in JOBS], n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        what = f"unknown job {name!r}{hint}" if args else "no job given"
        print(f"error: {what}\n\n{_listing()}", file=sys.stderr)
        return USAGE_ERROR
    try:
        return run(job, rest)
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C)", file=sys.stderr)
        return 128 + 2


if __name__ == "__main__":
    sys.exit(main())
