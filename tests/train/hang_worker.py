"""A training run whose fourth step never returns (a test hook sleeps inside it), for the hang
watchdog's test. Usage: hang_worker.py DATA_DIR WORKDIR TIMEOUT_S"""

import sys
import time

import jax

from emollm_jax import logs
from emollm_jax.train.loop import Trainer
from tests.train.helpers import train_config


def main():
    data_dir, workdir, timeout_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
    logs.setup()
    overrides = {
        "train.hang_timeout_s": timeout_s,
        "train.hang_first_step_timeout_s": 600.0,
        "checkpoint.every_steps": 100,
        "mesh.shape": {"data": 1, "fsdp": 1, "tensor": 1},
    }
    trainer = Trainer(train_config(data_dir, **overrides), workdir, devices=jax.devices()[:1])
    step = trainer.train_step

    def stuck_at_step_4(batch):
        if trainer.step >= 3:
            print("step 4 never returns", flush=True)
            time.sleep(3600)
        return step(batch)

    trainer.train_step = stuck_at_step_4
    trainer.train()


if __name__ == "__main__":
    main()
