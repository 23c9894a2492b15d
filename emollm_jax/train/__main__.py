"""``emollm train --config configs/X.py --workdir DIR [--config.a.b=v ...]`` (also
``python -m emollm_jax.train``).

Trains, writing Orbax checkpoints under DIR/checkpoints, one JSON object per logged step to
DIR/metrics.jsonl and TensorBoard events under DIR/tensorboard. Rerunning with the same DIR
resumes from the latest complete checkpoint.

Exit status: 0 done; 2 refused at start (a bad config field, the workdir in use by another
run, a checkpoint of another model config or one that cannot be read: the message alone, the
traceback with ``--verbosity=1`` or ``EMOLLM_TRACEBACK=1``); 3 the run stopped itself (too many
non-finite steps, a bad record in strict mode, ``data.max_consecutive_bad`` refused records in a
row, a checkpoint that could not be written), the reason logged; 75 the hang watchdog stopped
a run whose steps stopped finishing (``config.train.hang_timeout_s``; every thread's stack is
in the log: restart it); 143 (128 + SIGTERM) stopped by SIGTERM after saving a checkpoint;
130 stopped by Ctrl-C after saving one. docs/resilience.md says what a scheduler should do
with each.
"""

from __future__ import annotations

import logging
import sys

from absl import flags
from ml_collections import config_flags

from emollm_jax.cli_errors import report_user_errors, run_absl
from emollm_jax.logs import setup as setup_logs
from emollm_jax.train.resume import ResumeError

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (checkpoints, metrics).")
flags.mark_flags_as_required(["config", "workdir"])


@report_user_errors(errors=(ResumeError,))  # ConfigError is among USER_ERRORS
def main(argv):
    del argv
    setup_logs()
    # Imported here (start-up): flag and config errors are reported before Orbax and Grain load.
    from emollm_jax.checkpoint.manager import CheckpointSaveError
    from emollm_jax.data.bad_input import BadRecordError
    from emollm_jax.train.loop import NonFiniteError, run

    try:
        run(_CONFIG.value, _WORKDIR.value)
    except (NonFiniteError, BadRecordError, CheckpointSaveError) as e:
        logging.error("%s", e)
        sys.exit(3)


if __name__ == "__main__":
    run_absl(main)
