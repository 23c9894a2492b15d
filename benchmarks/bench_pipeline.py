"""Throughput of the Grain data pipeline on the mini EmoBench: examples/s, images and videos.

    python benchmarks/bench_pipeline.py [--data-dir DIR] [--batches N] [--workers 0,2]

Builds the mini EmoBench in a temporary folder unless ``--data-dir`` holds one, splits its train
records into an image-only and a video-only set (and keeps the whole split as "mixed"), and times training batches of the tiny config
(``configs/llava_tiny.py``: 64x64 input, 8 frames per video, batch 8) in this process and with
Grain worker processes. Warm-up batches (process start, first reads) are not timed.

Beside it, the tiny config's training consumption rate: examples/s of the jitted train step
on batches fetched in advance (every batch shape compiled before timing), measured in the same
run; the ratio pipeline / training says whether the pipeline could limit training (< 1).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _tiny_config():
    spec = importlib.util.spec_from_file_location("llava_tiny", REPO / "configs" / "llava_tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def _subset(src: Path, dst: Path, media_type: str) -> Path:
    """A folder whose train.jsonl holds only ``media_type`` records.

    Media are hard-linked where possible (a symlink out of the folder would be refused as a path
    leaving the data folder).
    """
    dst.mkdir(parents=True, exist_ok=True)
    if not (dst / "media").exists():
        try:
            shutil.copytree(src / "media", dst / "media", copy_function=os.link)
        except OSError:
            shutil.rmtree(dst / "media", ignore_errors=True)
            shutil.copytree(src / "media", dst / "media")
    lines = [
        line
        for line in (src / "train.jsonl").read_text().splitlines()
        if json.loads(line)["media"]["type"] == media_type
    ]
    (dst / "train.jsonl").write_text("\n".join(lines) + "\n")
    return dst


def measure(config, batches: int, warmup: int) -> tuple[float, float]:
    """(examples/s over ``batches`` after ``warmup`` batches, seconds to the first batch)."""
    from emollm_jax.data import pipeline

    start = time.perf_counter()
    it = iter(pipeline.train_dataset(config))
    next(it)
    first = time.perf_counter() - start
    for _ in range(warmup):
        next(it)
    start = time.perf_counter()
    n = 0
    for _ in range(batches):
        n += len(next(it)["input_ids"])
    rate = n / (time.perf_counter() - start)
    if hasattr(it, "close"):
        it.close()
    return rate, first


def measure_training(config, workdir: Path, steps: int) -> float:
    """Examples/s the train step consumes (pipeline time excluded)."""
    import jax

    from emollm_jax.train.loop import Trainer

    config.mesh.shape = {"data": 1, "fsdp": 1, "tensor": 1}
    config.log.tensorboard = False
    trainer = Trainer(config, workdir, devices=jax.devices()[:1])
    batches = [next(trainer.iterator) for _ in range(steps)]
    shapes = {}
    for b in batches:  # compile every shape first
        shapes.setdefault((b["input_ids"].shape, b["pixel_values"].shape), b)
    for b in shapes.values():
        jax.block_until_ready(trainer.train_step(b))
    start = time.perf_counter()
    for b in batches:
        metrics = trainer.train_step(b)
    jax.block_until_ready(metrics)
    rate = sum(len(b["input_ids"]) for b in batches) / (time.perf_counter() - start)
    trainer.close()
    return rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="an existing mini EmoBench (default: build one)")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", default="0,2", help="Grain worker process counts to try")
    parser.add_argument("--train-steps", type=int, default=30, help="steps timed for training")
    args = parser.parse_args(argv)
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    from emollm_jax.data.mini import make_mini_emobench

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = Path(args.data_dir) if args.data_dir else make_mini_emobench.build(tmp / "mini")
        config = _tiny_config()
        print(
            f"tiny config: batch {config.data.batch_size}, "
            f"{config.model.vision.image_size}px, {config.data.video_frames} frames/video, "
            f"{os.cpu_count()} CPUs"
        )
        print(f"{'media':<7}{'workers':>8}{'examples/s':>12}{'first batch s':>15}")
        rates = {}
        for media_type in ("image", "video", "mixed"):
            if media_type == "mixed":  # the train split as training reads it (~10% videos)
                config.data.dir = str(data)
            else:
                config.data.dir = str(_subset(data, tmp / media_type, media_type))
            for workers in (int(w) for w in args.workers.split(",")):
                config.data.worker_count = workers
                rate, first = measure(config, args.batches, args.warmup)
                rates[(media_type, workers)] = rate
                print(f"{media_type:<7}{workers:>8}{rate:>12.1f}{first:>15.2f}")
        train_config = _tiny_config()
        train_config.data.dir = str(data)
        train_rate = measure_training(train_config, tmp / "train", args.train_steps)
    print(f"\ntraining step of the tiny config consumes {train_rate:.1f} examples/s (mixed data)")
    for workers in (int(w) for w in args.workers.split(",")):
        ratio = rates[("mixed", workers)] / train_rate
        verdict = "keeps up" if ratio >= 1 else "LIMITS TRAINING"
        print(f"pipeline / training, mixed, {workers} workers: {ratio:.2f}x ({verdict})")


if __name__ == "__main__":
    main()
