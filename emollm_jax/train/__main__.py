"""``python -m emollm_jax.train --config configs/X.py --workdir DIR [--config.a.b=v ...]``.

Trains, writing Orbax checkpoints under DIR/checkpoints, one JSON object per logged step to
DIR/metrics.jsonl and TensorBoard events under DIR/tensorboard. Rerunning with the same DIR
resumes from the latest complete checkpoint.
"""

from __future__ import annotations

import logging
import sys

from absl import app, flags
from ml_collections import config_flags

from emollm_jax import logs

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder (checkpoints, metrics).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    logs.setup()
    from emollm_jax.train.loop import NonFiniteError, run

    try:
        run(_CONFIG.value, _WORKDIR.value)
    except NonFiniteError as e:
        logging.error("%s", e)
        sys.exit(3)


if __name__ == "__main__":
    app.run(main)
