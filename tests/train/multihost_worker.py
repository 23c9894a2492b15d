"""One process of the multi-host test (also run alone as the single-process reference).

Usage: multihost_worker.py DATA_DIR WORKDIR NUM_PROCESSES PROCESS_ID PORT
Trains 3 FSDP steps, saves, closes; a fresh Trainer then resumes from that checkpoint and
trains to step 6. Prints one JSON line: this process's view of every step's loss.
"""

import json
import sys

import jax

from emollm_jax.train.loop import Trainer
from tests.train.helpers import train_config


def main():
    data_dir, workdir, nproc, pid, port = sys.argv[1:6]
    nproc, pid = int(nproc), int(pid)
    overrides = {
        "mesh.strategy": "fsdp",
        "mesh.shape": {"data": 1, "fsdp": 8, "tensor": 1},
        "train.steps": 6,
        "checkpoint.every_steps": 100,
    }
    if nproc > 1:
        overrides |= {
            "distributed.initialize": "on",
            "distributed.coordinator_address": f"127.0.0.1:{port}",
            "distributed.num_processes": nproc,
            "distributed.process_id": pid,
        }
    cfg = train_config(data_dir, **overrides)
    losses = {}
    for stop in (3, 6):
        trainer = Trainer(cfg, workdir)
        assert jax.device_count() == 8 and jax.process_count() == nproc
        while trainer.step < stop:
            step = trainer.step + 1
            losses[step] = float(jax.device_get(trainer.train_step(next(trainer.iterator)))["loss"])
        trainer.save()
        trainer.close()
    print(json.dumps({"process": jax.process_index(), "losses": losses}), flush=True)


if __name__ == "__main__":
    main()
