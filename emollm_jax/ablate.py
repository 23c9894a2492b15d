"""Multi-seed ablation: the main job's recipe per variant and seed, then tables with intervals.

    emollm ablate --config configs/emollm_tiny.py \\
        --variants baseline,mp,emoprompt,full --seeds 0,1,2 --out runs/ablate \\
        [--seeds-for baseline=0,1,2,3,4 ...] \\
        [--train-fractions 0.25,0.5,1] [--fractions-for full=1,0.25 ...] \\
        [--data data/mini_emobench_v3] [--mini-version 3] [--split test] \\
        [--runs OUT/runs] [--jobs 1] [--probe-perspectives [--probe-limit N]] \\
        [--config.recipe.grounding_steps=1000] [--config.train.steps=1500 ...]

The data: ``--data`` (default ``data/mini_emobench_v3``) is built first as the mini EmoBench
``--mini-version`` (default 3, the version the ablation reports on) when it holds no split
file; a mini EmoBench of another version there is refused.

Each run is ``python -m emollm_jax.main_job --config CONFIG:VARIANT`` in its own process, with
``config.seed`` (model init, training rng) and ``config.data.seed`` (data order) set to the seed
(``--seeds``, or a variant's own ``--seeds-for`` list; comparisons pair the seeds two variants
share), into ``RUNS/<variant>/seed<seed>`` (``--runs``, default ``OUT/runs``; its output in
``job.log`` there); ``--config.*`` arguments go to every run (the recipe's too:
``--config.recipe.grounding_steps=0``). Besides the config's variants, ``LEVERS`` names variants
made of one with settings changed (``emoprompt_no_rationale``: guiding prompts, bare-label targets;
``emoprompt_rationale_w0.3``: rationale tokens weighted 0.3 in the loss; ``emoprompt_mix_bare``:
half of phase 2's records with bare-label targets). ``--train-fractions`` (default 1) runs every
variant and seed on each share of the training split (``config.data.train_fraction``: its first
records in file order); a share below 1 names its runs ``<variant>_train<percent>``.
``--fractions-for VARIANT=SHARES`` (repeatable) gives one variant its own shares, and
``--seeds-for`` also takes such a run name (``full_train25=0,1,2``; a run without an entry of its
own takes its variant's). A run whose evaluation results exist is skipped, and an interrupted one
resumes from its checkpoints and stored predictions, so rerunning the command resumes the ablation.
Each run's predictions get a byte-reproducible gzip copy (``predictions.jsonl.gz``), which the
probes read where the plain file is missing: a runs folder kept in git with only its runs' results,
gzip copies and train configs (``docs/ablation/runs/.gitignore``) is a sweep that another machine
resumes, or aggregates without training. ``--jobs N`` trains N runs side by side, each with its
perspective probe; one progress line per run as it ends. Then ``OUT/results.json``, ``results.md``
and ``ablation_<mode>.png`` (``emollm_jax.eval.ablation_files``): per evaluation mode, the mean and
95% t interval over seeds per sub-task and for the EmoBench mean, and each variant's paired
difference from the first one, with what the likelihood mode scored per variant and how many records
it left unscored; the spread over seeds, a chance row and the comparisons that
``docs/ablation/protocol.md`` names (``eval.ablation_analysis``); accuracy per cue scale and
rationale faithfulness from each run's predictions; with ``--probe-perspectives``, the accuracy drop
when each perspective's tokens are zeroed in a trained multi-perspective model (``ablate_probes``).
A failing run stops the command (the runs under way end first), naming its log.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import subprocess
import sys
import threading
import time
from pathlib import Path

from emollm_jax import ablate_probes
from emollm_jax.data.mini import REPORTED_DIR, REPORTED_VERSION, make_mini_emobench
from emollm_jax.eval.ablation_files import summarise_probes, write_ablation
from emollm_jax.eval.faithfulness import read_jsonl
from emollm_jax.eval.likelihood import EVAL_MODES, SUBDIR
from emollm_jax.eval.result_files import read_results

# Variants that are a config variant with settings changed: {name: (config variant, --config.*)}.
# They come before the command's own --config.* arguments, which win.
LEVERS = {
    # EmoPrompt's guiding prompts with bare-label targets: the prompt without the rationale.
    "emoprompt_no_rationale": ("emoprompt", ["--config.emoprompt.rationale_targets=False"]),
    # Rationale targets whose rationale tokens weigh 0.3 in the loss (the answer line 1).
    "emoprompt_rationale_w0.3": ("emoprompt", ["--config.emoprompt.rationale_loss_weight=0.3"]),
    # Half of phase 2's records keep bare-label targets (each record's lot fixed by the seed).
    "emoprompt_mix_bare": ("emoprompt", ["--config.emoprompt.bare_label_fraction=0.5"]),
    # The Qwen2 decoder (ChatML) in place of LLaMA's.
    "baseline_qwen2": ("variant=baseline,backbone=qwen2", []),
    "full_qwen2": ("variant=full,backbone=qwen2", []),
}


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _fractions(text: str) -> list[float]:
    values = [float(x) for x in text.split(",") if x.strip()]
    if not values or any(not 0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: shares above 0 and at most 1, e.g. 0.25,1")
    return values


def _per_variant(values, shape: str):
    """An argparse type for ``NAME=VALUES`` entries, ``values`` parsing the part after ``=``;
    ``shape`` is the form the error message shows (``baseline=0,1,2,3,4``)."""

    def parse(text: str) -> tuple[str, list]:
        name, _, rest = text.partition("=")
        try:
            parsed = values(rest)
        except (ValueError, argparse.ArgumentTypeError):
            parsed = []
        if not name.strip() or not parsed:
            raise argparse.ArgumentTypeError(f"{text!r}: {shape}")
        return name.strip(), parsed

    return parse


def seeds_of(args: argparse.Namespace, variant: str, name: str = "") -> list[int]:
    """The seeds a run runs on: the ``--seeds-for`` entry of its run name (``full_train25``),
    else of its variant, else ``--seeds``."""
    given = dict(args.seeds_for)
    return given.get(name, given.get(variant, args.seeds))


def fractions_of(args: argparse.Namespace, variant: str) -> list[float]:
    """The shares of train a variant runs on: its ``--fractions-for`` entry, else
    ``--train-fractions``."""
    return dict(args.fractions_for).get(variant, args.train_fractions)


def plan_runs(args: argparse.Namespace) -> tuple[dict, list[tuple[str, int]]]:
    """``{run name: (variant, share of train)}`` and the ``(run name, seed)`` pairs, in order:
    share by share (in the order they are first named), variant by variant within a share."""
    shares = [*args.train_fractions, *(f for _, fs in args.fractions_for for f in fs)]
    names = {
        run_name(v, f): (v, f)
        for f in dict.fromkeys(shares)
        for v in args.variants
        if f in fractions_of(args, v)
    }
    return names, [(n, s) for n, (v, _) in names.items() for s in seeds_of(args, v, n)]


def run_name(variant: str, fraction: float) -> str:
    """A run's name in the tables: the variant, with the share of train when below 1."""
    return variant if fraction == 1 else f"{variant}_train{100 * fraction:g}"


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="config file taking a variant argument")
    parser.add_argument("--variants", type=_names, required=True, help="e.g. baseline,full")
    parser.add_argument("--seeds", type=_ints, required=True, help="e.g. 0,1,2")
    parser.add_argument(
        "--seeds-for",
        type=_per_variant(_ints, "VARIANT=SEEDS, e.g. baseline=0,1,2,3,4"),
        action="append",
        default=[],
        metavar="VARIANT=SEEDS",
        help="one variant's seeds in place of --seeds (repeatable), e.g. baseline=0,1,2,3,4",
    )
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--runs",
        help="the runs' folder (default OUT/runs); one kept in git carries a sweep across machines",
    )
    parser.add_argument("--data", default=REPORTED_DIR)
    parser.add_argument(
        "--mini-version",
        type=int,
        choices=sorted(make_mini_emobench.FORMAT_VERSIONS),
        default=REPORTED_VERSION,
        help=f"mini EmoBench version built into --data when it holds none ({REPORTED_VERSION})",
    )
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--train-fractions",
        type=_fractions,
        default=[1.0],
        help="shares of the training split, each run for every variant and seed (default 1)",
    )
    parser.add_argument(
        "--fractions-for",
        type=_per_variant(_fractions, "VARIANT=SHARES, e.g. full=1,0.25,0.5"),
        action="append",
        default=[],
        metavar="VARIANT=SHARES",
        help="one variant's shares of train in place of --train-fractions (repeatable), "
        "e.g. full=1,0.25,0.5",
    )
    parser.add_argument(
        "--probe-perspectives",
        action="store_true",
        help="evaluate every multi-perspective run once per perspective with its tokens zeroed",
    )
    parser.add_argument(
        "--probe-limit",
        type=int,
        default=0,
        help="the perspective probe's records: the split's first N (default 0: all)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs trained side by side, each in its own process (default 1)",
    )
    args, extra = parser.parse_known_args(argv)
    args.runs = args.runs or str(Path(args.out) / "runs")
    bad = [a for a in extra if not a.startswith("--config.")]
    if bad:
        parser.error(f"unrecognized arguments: {' '.join(bad)} (only --config.* pass through)")
    if ":" in Path(args.config).name:
        parser.error(f"--config {args.config}: give the file; --variants picks its argument")
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: at least 1")
    if not args.variants or not args.seeds:
        parser.error("--variants and --seeds need at least one value each")
    for name, _ in args.fractions_for:
        if name not in args.variants:
            parser.error(f"--fractions-for {name}=...: {name} is not one of --variants")
    planned = plan_runs(args)[0]
    for name, _ in args.seeds_for:
        if name not in args.variants and name not in planned:
            parser.error(
                f"--seeds-for {name}=...: {name} is neither one of --variants nor a planned run "
                f"({', '.join(planned)})"
            )
    return args, extra


def prepare_data(args, log=print) -> None:
    """Build the mini EmoBench ``--mini-version`` into ``--data`` if it holds no split file;
    refuse a mini EmoBench build of another version there (other data are used as they are)."""
    data = Path(args.data)
    if not (data / f"{args.split}.jsonl").exists():
        log(f"[ablate] building the mini EmoBench v{args.mini_version} in {data}")
        make_mini_emobench.build(data, version=args.mini_version, overwrite=True)
        return
    found = make_mini_emobench.built_version(data)
    if found is not None and found != args.mini_version:
        raise SystemExit(
            f"error: {data} holds the mini EmoBench v{found}, not v{args.mini_version}: pass "
            f"--mini-version {found}, or another --data"
        )


def run_dir(runs: Path, variant: str, seed: int) -> Path:
    return runs / variant / f"seed{seed}"


def eval_dir(args, variant: str, seed: int) -> Path:
    return run_dir(Path(args.runs), variant, seed) / "eval" / args.split


def keep_predictions(run: Path) -> list[Path]:
    """Write a gzip copy (``predictions.jsonl.gz``, byte-reproducible) beside each
    ``predictions.jsonl`` of a run's evaluations that lacks an up-to-date one; the copies are
    what a kept runs folder holds in place of the predictions themselves."""
    written = []
    for path in sorted((run / "eval").rglob(ablate_probes.PREDICTIONS)):
        packed = path.with_name(ablate_probes.PACKED)
        if packed.exists() and packed.stat().st_mtime >= path.stat().st_mtime:
            continue
        with (
            open(packed, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out,
        ):
            out.write(path.read_bytes())
        written.append(packed)
    return written


def job_command(
    args, extra: list[str], variant: str, seed: int, fraction: float = 1.0
) -> list[str]:
    base, settings = LEVERS.get(variant, (variant, []))
    if fraction != 1:
        settings = [*settings, f"--config.data.train_fraction={fraction}"]
    return [
        sys.executable,
        "-m",
        "emollm_jax.main_job",
        f"--config={args.config}:{base}",
        f"--workdir={run_dir(Path(args.runs), run_name(variant, fraction), seed)}",
        f"--data={args.data}",
        f"--split={args.split}",
        f"--config.seed={seed}",
        f"--config.data.seed={seed}",
        *settings,
        *extra,
    ]


def _mode_dirs(folder: Path) -> dict[str, Path]:
    found = {"generate": folder, "likelihood": folder / SUBDIR}
    return {mode: d for mode, d in found.items() if (d / "results.json").exists()}


def read_run(folder: Path) -> dict:
    """``{mode: Metrics}`` of a finished run's evaluation folder."""
    return {mode: read_results(d)[0] for mode, d in _mode_dirs(folder).items()}


def read_scoring(folder: Path) -> dict:
    """``{mode: (form, records left unscored)}`` of the modes whose results name a form."""
    out = {}
    for mode, d in _mode_dirs(folder).items():
        meta = read_results(d)[1]
        if "form" in meta:
            out[mode] = (meta["form"], sum(meta.get("unscored", {}).values()))
    return out


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prepare_data(args)
    names, plan = plan_runs(args)
    runs: dict = {name: {} for name in names}
    todo = []
    for k, (name, seed) in enumerate(plan, start=1):
        folder = eval_dir(args, name, seed)
        if (folder / "results.json").exists():
            runs[name][seed] = read_run(folder)
            print(f"{_head(k, plan)} finished earlier, {_means(runs[name][seed])}", flush=True)
        else:
            todo.append(k)
    if todo and not _train(args, extra, names, plan, todo, runs):
        return 1
    if args.probe_perspectives:  # runs finished earlier may miss theirs
        for name, seed in plan:
            if not _probe(args, extra, names, name, seed):
                return 1
    for name, seed in plan:
        keep_predictions(run_dir(Path(args.runs), name, seed))
    ran = {name: [s for n, s in plan if n == name] for name in names}  # each run name's seeds
    probes = summarise_probes(
        ablate_probes.collect(
            {name: {s: eval_dir(args, name, s) for s in seeds} for name, seeds in ran.items()},
            {str(r["id"]): r for r in read_jsonl(Path(args.data) / f"{args.split}.jsonl")},
        )
    )
    meta = {"config": args.config, "seeds": args.seeds, "split": args.split, "args": extra}
    if args.seeds_for:
        meta["seeds_for"] = ran
    meta["variants"] = list(names)
    meta["train_fractions"] = args.train_fractions
    if args.fractions_for:
        meta["fractions_for"] = {v: fractions_of(args, v) for v in args.variants}
    meta["data"] = {"dir": args.data, "mini_version": make_mini_emobench.built_version(args.data)}
    meta["forms"], meta["unscored"] = {}, {}
    for variant, seed in plan:
        for mode, (form, unscored) in read_scoring(eval_dir(args, variant, seed)).items():
            meta["forms"].setdefault(mode, {})[variant] = form
            meta["unscored"].setdefault(mode, {}).setdefault(variant, {})[str(seed)] = unscored
    meta["probe_limit"] = args.probe_limit if args.probe_perspectives else None
    paths = write_ablation(out, runs, EVAL_MODES, meta, probes)
    print((out / "results.md").read_text(encoding="utf-8"))
    print(f"wrote {', '.join(sorted(p.name for p in paths.values()))} to {out}")
    return 0


def _head(k: int, plan: list) -> str:
    name, seed = plan[k - 1]
    return f"[ablate] {k}/{len(plan)} {name} seed {seed}:"


def _probe(args, extra, names: dict, name: str, seed: int) -> bool:
    """The missing perspective-probe evaluations of one run (none for another projector)."""
    variant, fraction = names[name]
    return ablate_probes.run_perspective_probe(
        run_dir(Path(args.runs), name, seed),
        eval_dir(args, name, seed),
        job_command(args, extra, variant, seed, fraction),
        args.probe_limit,
    )


def _train(args, extra, names: dict, plan: list, todo: list[int], runs: dict) -> bool:
    """Train and evaluate the plan's runs numbered ``todo`` (1-based), ``--jobs`` side by side,
    each with its perspective probe when asked; a failure starts no further run and waits for
    the ones under way. One progress line per run as it ends."""
    seconds: list[float] = []
    failed = threading.Event()  # set by a failing run before it returns: no run starts after

    def one(k: int) -> tuple[int, bool | None, str]:
        if failed.is_set():
            return k, None, ""
        name, seed = plan[k - 1]
        variant, fraction = names[name]
        log_path = run_dir(Path(args.runs), name, seed) / "job.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        with open(log_path, "a", encoding="utf-8") as log:
            done = subprocess.run(
                job_command(args, extra, variant, seed, fraction),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        problem = ""
        if done.returncode != 0 or not (eval_dir(args, name, seed) / "results.json").exists():
            problem = f"FAILED (exit {done.returncode}); see {log_path}"
        elif args.probe_perspectives and not _probe(args, extra, names, name, seed):
            problem = "its perspective probe FAILED"
        if problem:
            failed.set()
            return k, False, problem
        seconds.append(time.perf_counter() - start)
        return k, True, ""

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        pending = [pool.submit(one, k) for k in todo]
        for future in concurrent.futures.as_completed(pending):
            k, fine, problem = future.result()
            name, seed = plan[k - 1]
            if fine is None:  # not started: a run failed
                continue
            if not fine:
                print(f"{_head(k, plan)} {problem}", flush=True)
                continue
            runs[name][seed] = read_run(eval_dir(args, name, seed))
            left = 0 if failed.is_set() else sum(not f.done() for f in pending)
            eta = left * sum(seconds) / len(seconds) / min(args.jobs, max(left, 1))
            print(
                f"{_head(k, plan)} {seconds[-1]:.0f} s, {_means(runs[name][seed])}; "
                f"{left} left, ~{eta:.0f} s",
                flush=True,
            )
    return not failed.is_set()


def _means(by_mode: dict) -> str:
    return ", ".join(
        f"mean {'–' if m.mean_accuracy is None else f'{100 * m.mean_accuracy:.1f}'} ({mode})"
        for mode, m in by_mode.items()
    )


if __name__ == "__main__":
    sys.exit(main())
