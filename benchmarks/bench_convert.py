"""Memory and time of ``python -m emollm_jax.convert`` on a >2 GB checkpoint.

Writes a synthetic LLaMA checkpoint in the real HF layout (a TinyLlama-1.1B-shaped config with
random bfloat16 weights: 2.2 GB in 1 GB shards), written tensor by tensor so this script stays
small, then runs HF -> Orbax and Orbax -> HF each in a child process and prints, per
direction, the wall time beside a plain copy of the same bytes and the peak resident set size
(the child's ``ru_maxrss`` from ``os.wait4``) as a ratio of the checkpoint's size. The peak
includes the interpreter with JAX, Orbax and transformers imported, so the import-only peak of
a child is printed too and the ratio is also given without it. The exported folder is
compared tensor by tensor with the synthetic one (bit-identical), then everything is deleted.

    python benchmarks/bench_convert.py [--layers 22] [--workdir /tmp] [--max-shard-size 1GB]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emollm_jax.convert.safetensors_io import (  # noqa: E402
    ShardWriter,
    TensorSource,
    parse_size,
)

# TinyLlama-1.1B's shapes.
CONFIG = dict(
    vocab_size=32000,
    hidden_size=2048,
    intermediate_size=5632,
    num_attention_heads=32,
    num_key_value_heads=4,
    max_position_embeddings=2048,
    rms_norm_eps=1e-5,
    bos_token_id=1,
    eos_token_id=2,
    tie_word_embeddings=False,
)


def llama_tensors(layers: int) -> list[tuple[str, tuple[int, ...]]]:
    """HF LLaMA tensor names and shapes, in transformers' order."""
    h, m, v = CONFIG["hidden_size"], CONFIG["intermediate_size"], CONFIG["vocab_size"]
    kv = h // CONFIG["num_attention_heads"] * CONFIG["num_key_value_heads"]
    out = [("model.embed_tokens.weight", (v, h))]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [
            (p + "self_attn.q_proj.weight", (h, h)),
            (p + "self_attn.k_proj.weight", (kv, h)),
            (p + "self_attn.v_proj.weight", (kv, h)),
            (p + "self_attn.o_proj.weight", (h, h)),
            (p + "mlp.gate_proj.weight", (m, h)),
            (p + "mlp.up_proj.weight", (m, h)),
            (p + "mlp.down_proj.weight", (h, m)),
            (p + "input_layernorm.weight", (h,)),
            (p + "post_attention_layernorm.weight", (h,)),
        ]
    return out + [("model.norm.weight", (h,)), ("lm_head.weight", (v, h))]


def write_checkpoint(path: pathlib.Path, layers: int, shard: str) -> int:
    import ml_dtypes
    import transformers

    path.mkdir(parents=True)
    bf16 = np.dtype(ml_dtypes.bfloat16)
    plan = [(name, shape, bf16) for name, shape in llama_tensors(layers)]
    writer = ShardWriter(path, plan, parse_size(shard))
    rng = np.random.default_rng(0)
    for name, shape, dtype in plan:
        writer.write(name, (rng.standard_normal(shape, np.float32) * 0.02).astype(dtype))
    writer.close()
    config = transformers.LlamaConfig(num_hidden_layers=layers, **CONFIG)
    config.architectures = ["LlamaForCausalLM"]
    config.dtype = "bfloat16"
    config.save_pretrained(path)
    return writer.total_bytes


def measure(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS bytes of a child process (which must succeed)."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}")
    return seconds, usage.ru_maxrss * 1024  # Linux reports KiB


def dir_bytes(path: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=22)
    parser.add_argument("--workdir", default=None, help="where the big files go (deleted)")
    parser.add_argument("--max-shard-size", default="1GB", help="shards of both HF folders")
    args = parser.parse_args()

    layers_bytes = sum(math.prod(s) * 2 for _, s in llama_tensors(args.layers))
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="bench_convert-", dir=args.workdir))
    free = shutil.disk_usage(workdir).free
    if free < 5 * layers_bytes:
        shutil.rmtree(workdir)
        raise SystemExit(f"{workdir}: {free / 1e9:.1f} GB free, need {5 * layers_bytes / 1e9:.1f}")
    py = sys.executable
    try:
        src, orbax, dst, copy = (workdir / n for n in ("hf", "orbax", "export", "copy"))
        t = time.perf_counter()
        size = write_checkpoint(src, args.layers, args.max_shard_size)
        print(
            f"synthetic checkpoint: {size / 1e9:.2f} GB ({args.layers} layers, bfloat16), "
            f"written in {time.perf_counter() - t:.0f} s"
        )
        largest = max(math.prod(s) * 2 for _, s in llama_tensors(args.layers))

        imports = "import emollm_jax.convert.hf_to_orbax, emollm_jax.convert.orbax_to_hf"
        _, base_rss = measure([py, "-c", imports])
        copy_s, _ = measure(["cp", "-r", str(src), str(copy)])
        to_orbax_s, to_orbax_rss = measure(
            [py, "-m", "emollm_jax.convert", "hf-to-orbax", str(src), str(orbax)]
        )
        to_hf_s, to_hf_rss = measure(
            [
                py,
                "-m",
                "emollm_jax.convert",
                "orbax-to-hf",
                str(orbax),
                str(dst),
                "--max-shard-size",
                args.max_shard_size,
            ]
        )
        a, b = TensorSource(src), TensorSource(dst)
        identical = sorted(a.keys()) == sorted(b.keys()) and all(
            np.array_equal(a.get(k).view(np.uint16), b.get(k).view(np.uint16)) for k in a.keys()
        )
        orbax_bytes = dir_bytes(orbax)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    gb = 1e9
    rows = [
        ("plain copy (cp -r)", copy_s, None),
        ("hf-to-orbax", to_orbax_s, to_orbax_rss),
        ("orbax-to-hf", to_hf_s, to_hf_rss),
    ]
    print(
        f"checkpoint {size / gb:.2f} GB, largest tensor {largest / 1e6:.0f} MB, Orbax copy "
        f"{orbax_bytes / gb:.2f} GB; import-only child peak RSS {base_rss / 1e6:.0f} MB"
    )
    print(
        f"{'':22s} {'wall s':>7s} {'x copy':>7s} {'peak RSS MB':>12s} "
        f"{'RSS/size':>9s} {'(RSS-imports)/size':>19s}"
    )
    for name, seconds, rss in rows:
        line = f"{name:22s} {seconds:7.1f} {seconds / copy_s:7.1f}"
        if rss is not None:
            line += f" {rss / 1e6:12.0f} {rss / size:9.3f} {(rss - base_rss) / size:19.3f}"
        print(line)
    print(
        json.dumps(
            {
                "checkpoint_bytes": size,
                "largest_tensor_bytes": largest,
                "import_rss_bytes": base_rss,
                "copy_s": round(copy_s, 2),
                "hf_to_orbax": {"s": round(to_orbax_s, 2), "peak_rss_bytes": to_orbax_rss},
                "orbax_to_hf": {"s": round(to_hf_s, 2), "peak_rss_bytes": to_hf_rss},
                "round_trip_bit_identical": identical,
            }
        )
    )
    if not identical:
        raise SystemExit("the exported checkpoint differs from the synthetic one")


if __name__ == "__main__":
    main()
