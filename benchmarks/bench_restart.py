"""What a restart costs: time to the first finished step of a first start and of restarts with
and without the compilation cache and the local checkpoint tier.

    python benchmarks/bench_restart.py [--configs llava_tiny,emollm_tiny] [--json OUT]

Per config, in a temporary folder (the mini EmoBench built there):

1. ``first start``: a fresh run (empty workdir, empty compilation cache) with the local tier on,
   stopped by SIGTERM once 4 steps are logged (it saves its step to both tiers' newest);
2. restarts of that stopped run, each from the same stopped state (folders put back as they
   were), timed from the process launch to the first step finished after the restore
   (``steps`` in ``events.jsonl``): from the ``persistent`` tier (no local tier configured) or
   the ``local`` one, each with and without the compilation cache (``compile_cache_dir=off``).

Each row also gives the event log's split: set-up, restore and compile seconds. Figures are
labelled with the CPU model (``lscpu``) and the load average when the run began: other work on
the machine slows every row alike, not the ratios alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STOP_AFTER = 4  # logged steps before the first start is sent SIGTERM
STEPS = 12


def _cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown CPU"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def _command(config: str, workdir: Path, data: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "emollm_jax.train",
        "--config",
        str(REPO / "configs" / f"{config}.py"),
        "--workdir",
        str(workdir),
        f"--config.data.dir={data}",
        f"--config.train.steps={STEPS}",
        "--config.log.every_steps=1",
        "--config.log.tensorboard=False",
        "--config.log.progress_bar=off",
        "--config.checkpoint.every_steps=100",
        *extra,
    ]


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)  # each run's own <workdir>/compile_cache
    return env


def _events(workdir: Path) -> list[dict]:
    path = workdir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _timed(command: list[str], workdir: Path, stop_after: int | None = None) -> dict:
    """Launch, wait for the end (or send SIGTERM after ``stop_after`` logged steps); the
    attempt's time to its first finished step and its phases."""
    before = len([e for e in _events(workdir) if e["event"] == "start"])
    launched = time.time()
    proc = subprocess.Popen(
        command, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if stop_after is not None:
        metrics = workdir / "metrics.jsonl"
        while proc.poll() is None:
            if metrics.exists() and len(metrics.read_text().splitlines()) >= stop_after:
                proc.send_signal(signal.SIGTERM)
                break
            time.sleep(0.05)
    out, _ = proc.communicate(timeout=3600)
    if proc.returncode not in (0, 128 + signal.SIGTERM):
        raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n{out[-3000:]}")
    starts = [i for i, e in enumerate(_events(workdir)) if e["event"] == "start"]
    attempt = _events(workdir)[starts[before] :]
    at = {e["event"]: e for e in reversed(attempt)}  # the first of each kind
    restore = at.get("restore", {})
    compiled = [e for e in attempt if e["event"] == "compile"]
    return {
        "time_to_first_step_s": at["steps"]["time"] - launched,
        "launch_to_start_s": at["start"]["time"] - launched,
        "setup_s": at["ready"]["time"] - at["start"]["time"] - restore.get("seconds", 0.0),
        "restore_s": restore.get("seconds", 0.0),
        "restored": f"{restore['tier']} step {restore['step']}" if restore else "",
        "compile_s": sum(e["seconds"] for e in compiled),
        "cache_hits": sum(e["cache_hits"] for e in compiled),
        "cache_misses": sum(e["cache_misses"] for e in compiled),
    }


def bench(config: str, root: Path, data: Path) -> dict:
    run, local = root / config / "run", root / config / "local"
    tier = [f"--config.checkpoint.local_dir={local}", "--config.checkpoint.local_every_steps=1"]
    no_cache = ["--config.train.compile_cache_dir=off"]
    rows = {"first start": _timed(_command(config, run, data, *tier), run, STOP_AFTER)}
    # Each restart starts from the stopped run as it was, at the same paths: JAX's cache keys
    # hold the cache folder's path (XLA's autotuning cache lives under it), so a copied
    # workdir's cache would not be hit.
    for folder in (run, local):
        shutil.copytree(folder, folder.with_name(folder.name + "_stopped"))
    variants = {
        "persistent, no cache": no_cache,
        "persistent, cache": [],
        "local, no cache": tier + no_cache,
        "local, cache": tier,
    }
    for name, extra in variants.items():
        for folder in (run, local):
            shutil.rmtree(folder)
            shutil.copytree(folder.with_name(folder.name + "_stopped"), folder)
        rows[name] = _timed(_command(config, run, data, *extra), run)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="llava_tiny,emollm_tiny")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    machine = f"{_cpu_model()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    results = {"machine": machine, "configs": {}}
    with tempfile.TemporaryDirectory(prefix="bench_restart_") as tmp:
        root = Path(tmp)
        sys.path.insert(0, str(REPO))
        from emollm_jax.data.mini import make_mini_emobench

        data = make_mini_emobench.build(root / "emobench")
        for config in args.configs.split(","):
            results["configs"][config] = bench(config, root, data)
    print(f"machine: {machine}")
    for config, rows in results["configs"].items():
        first = rows["first start"]["time_to_first_step_s"]
        print(f"\n{config} (time to first step; set-up, restore, compile seconds)")
        for name, r in rows.items():
            print(
                f"  {name:<22} {r['time_to_first_step_s']:6.1f} s  "
                f"({r['time_to_first_step_s'] / first:4.2f}x first start)  set-up "
                f"{r['setup_s']:5.1f}  restore {r['restore_s']:4.1f} {r['restored']:<19} "
                f"compile {r['compile_s']:5.1f} (cache {r['cache_hits']} hits, "
                f"{r['cache_misses']} misses)"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
