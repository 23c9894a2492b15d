"""The README's main job: build the mini EmoBench, train a tiny EmoLLM on CPU, evaluate it on
the test split and print the EmoBench table.

    python -m emollm_jax.main_job [--config configs/emollm_tiny.py] [--workdir runs/main]
                                  [--data data/mini_emobench] [--config.train.steps=N ...]

Rerunning with the same workdir resumes training from its last checkpoint and evaluation from
the predictions already written.
"""

from __future__ import annotations

import pathlib
import time

from absl import app, flags
from ml_collections import config_flags

from emollm_jax import logs

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/emollm_tiny.py", "Experiment config (default: the full tiny EmoLLM)."
)
_WORKDIR = flags.DEFINE_string("workdir", "runs/main", "Run folder.")
_DATA = flags.DEFINE_string("data", "data/mini_emobench", "Where the mini EmoBench lives.")
_SPLIT = flags.DEFINE_string("split", "test", "Split to evaluate.")


def _stage(name: str):
    print(f"\n== {name}", flush=True)
    return time.perf_counter()


def main(argv):
    del argv
    logs.setup()
    config = _CONFIG.value
    config.data.dir = _DATA.value
    workdir = pathlib.Path(_WORKDIR.value)
    started = time.perf_counter()

    t = _stage(f"1/3 data: the mini EmoBench in {_DATA.value}")
    data = pathlib.Path(_DATA.value)
    if not (data / f"{_SPLIT.value}.jsonl").exists():
        from emollm_jax.data import make_mini_emobench

        make_mini_emobench.build(data)
        print(f"built in {time.perf_counter() - t:.0f} s", flush=True)
    else:
        print("already built", flush=True)

    t = _stage(f"2/3 training: {config.train.steps} steps into {workdir}")
    from emollm_jax.train.loop import run

    run(config, str(workdir))
    print(f"trained in {time.perf_counter() - t:.0f} s", flush=True)

    t = _stage(f"3/3 evaluation on the {_SPLIT.value} split")
    from emollm_jax.eval.run import evaluate

    result = evaluate(config, str(workdir), split=_SPLIT.value)
    print(f"evaluated in {time.perf_counter() - t:.0f} s", flush=True)
    print(f"\nEmoBench on the mini EmoBench {_SPLIT.value} split (accuracy, %):\n")
    print(result.table, flush=True)
    print(f"\nfiles in {result.out_dir}; whole job {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    app.run(main)
