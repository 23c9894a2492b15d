"""Configs for training tests: the tiny LLaVA on the session's small mini EmoBench, one batch
shape (so each test compiles one step), no TensorBoard."""

from tests.configs import load_config


def train_config(data_dir, **overrides):
    c = load_config("llava_tiny")
    c.data.dir = str(data_dir)
    c.data.batch_size = 8
    c.data.seq_buckets = (256,)
    c.data.frame_buckets = (8,)
    c.data.prefetch_buffer = 2
    c.data.read_threads = 1
    c.train.steps = 6
    c.train.warmup_steps = 2
    c.log.every_steps = 1
    c.log.tensorboard = False
    c.log.progress_bar = "off"
    c.checkpoint.every_steps = 2
    for key, value in overrides.items():
        node = c
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return c
