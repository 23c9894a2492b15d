"""Evaluate a model on an EmoBench split and print the paper-shaped results table.

    emollm evaluate --config configs/llava_tiny.py --checkpoint DIR --split test \\
        [--step N] [--workdir OUT] [--config.eval.max_new_tokens=16 ...]

``DIR`` is an Orbax training run folder (its latest complete checkpoint is restored, or step
``N``) or a Hugging Face model folder (one with a ``config.json``). Writes ``results.json``,
``results.md``, ``predictions.jsonl`` and ``confusion_<task>.png`` to ``OUT`` (default
``DIR/eval/<split>``); a rerun resumes, skipping the records already in ``predictions.jsonl``.
Refused with the message alone and exit status 2 (the traceback with ``--verbosity=1``): a bad
config field, a missing checkpoint (nothing is created then), a checkpoint that cannot be read
(named by step and file, with the earlier step that restores: ``--step`` picks it), one made
with another model config (the differing fields named), an output folder in use by
another evaluation, overlapping the checkpoint, or holding predictions of another step or other
settings. With ``likelihood`` in ``config.eval.modes`` (the default, beside ``generate``) the closed-answer
sub-tasks are also scored by option likelihood, into ``OUT/likelihood``, and the table has a row
per mode. Generation and scoring settings are ``config.eval`` (``emollm_jax/config/base.py``);
the work is done by ``emollm_jax.inference.modes.evaluate_modes`` (scoring by
``emollm_jax.eval``).
"""

from __future__ import annotations

from absl import app, flags
from ml_collections import config_flags

from emollm_jax.cli_errors import report_user_errors, run_absl
from emollm_jax.inference.modes import evaluate_modes
from emollm_jax.inference.run import OutputFolderError
from emollm_jax.logs import setup as setup_logs
from emollm_jax.train.distributed import maybe_initialize
from emollm_jax.train.validate import check_fields

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment config file (a get_config() Python file).", lock_config=True
)
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Orbax training run folder, or Hugging Face model folder."
)
_SPLIT = flags.DEFINE_string("split", "test", "Data split to evaluate (train|validation|test).")
_STEP = flags.DEFINE_integer(
    "step", None, "Checkpoint step of a training run to evaluate (default: its latest)."
)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Output folder (default: <checkpoint>/eval/<split>)."
)
flags.mark_flags_as_required(["config", "checkpoint"])


@report_user_errors(errors=(OutputFolderError,))
def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    setup_logs()  # Orbax's and Grain's chatter at warnings, their tracebacks hidden
    config = _CONFIG.value
    sections = check_fields(config)  # before anything loads or is created
    if config.get("distributed") is not None:
        maybe_initialize(sections.distributed)  # before JAX sees any device
    result = evaluate_modes(
        config,
        _CHECKPOINT.value,
        _SPLIT.value,
        _WORKDIR.value,
        step=_STEP.value,
        log=lambda line: print(line, flush=True),
    )
    if result.generate is not None and not result.generate.paths:
        return  # not process 0: it prints and writes the results
    print()
    print(result.table)
    print(f"\nfiles in {result.out_dir}")


if __name__ == "__main__":
    run_absl(main)
