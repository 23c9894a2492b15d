"""Memory and time of ``python -m emollm_jax.convert`` against a plain copy of the same bytes.

For each size, writes a synthetic LLaMA checkpoint in the real HF layout (random bfloat16
weights in 1 GB shards, written tensor by tensor so this script stays small):

- ``tinyllama``: TinyLlama-1.1B's shapes, 2.2 GB;
- ``7b``: LLaMA-7B's shapes, 13.5 GB (skipped, saying why, when the disk lacks room: it needs
  about five times the checkpoint).

Then it runs HF -> Orbax and Orbax -> HF, each in a child process, and prints per direction:

- the wall time, and the time beyond the interpreter's start and imports: a child that only
  imports what a conversion loads (the converters, transformers' config classes, which import
  torch and accelerate lazily on first use, and JAX's CPU backend) is timed too, and its time
  subtracted;
- that time as a ratio of a plain copy (``cp -r``) of the checkpoint. The copy is timed cold
  (the source's pages evicted from the page cache with ``posix_fadvise(DONTNEED)`` after a
  sync, where the kernel allows it) and warm (just read); the conversions read a source that
  was just written or converted, so the ratio uses the warm copy;
- the peak resident set size (the child's ``ru_maxrss`` from ``os.wait4``) as a ratio of the
  checkpoint's size, with and without the import-only child's peak.

The exported folder is compared tensor by tensor with the synthetic one (bit-identical), then
everything is deleted.

    python benchmarks/bench_convert.py [--sizes tinyllama,7b] [--workdir /tmp]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pathlib
import platform
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

COMMON = dict(
    vocab_size=32000,
    max_position_embeddings=2048,
    rms_norm_eps=1e-5,
    bos_token_id=1,
    eos_token_id=2,
    tie_word_embeddings=False,
)
SIZES = {
    "tinyllama": dict(
        COMMON,
        hidden_size=2048,
        intermediate_size=5632,
        num_attention_heads=32,
        num_key_value_heads=4,
        num_hidden_layers=22,
    ),
    "7b": dict(
        COMMON,
        hidden_size=4096,
        intermediate_size=11008,
        num_attention_heads=32,
        num_key_value_heads=32,
        num_hidden_layers=32,
    ),
}
# What a conversion imports and starts besides its own modules: transformers' config classes
# (imported lazily on first use; LlamaConfig's import brings in torch, accelerate and some 900
# modules) and JAX's CPU backend.
IMPORTS = (
    "import emollm_jax.convert.hf_to_orbax, emollm_jax.convert.orbax_to_hf, transformers, jax; "
    "transformers.AutoConfig; transformers.LlamaConfig; jax.devices()"
)


def llama_tensors(config: dict) -> list[tuple[str, tuple[int, ...]]]:
    """HF LLaMA tensor names and shapes, in transformers' order."""
    h, m, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    kv = h // config["num_attention_heads"] * config["num_key_value_heads"]
    out = [("model.embed_tokens.weight", (v, h))]
    for i in range(config["num_hidden_layers"]):
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


def write_checkpoint(path: pathlib.Path, config: dict, shard: str) -> int:
    import ml_dtypes
    import transformers

    path.mkdir(parents=True)
    bf16 = np.dtype(ml_dtypes.bfloat16)
    plan = [(name, shape, bf16) for name, shape in llama_tensors(config)]
    rng = np.random.default_rng(0)
    writer = ShardWriter(path, plan, parse_size(shard))
    for name, shape, dtype in plan:
        writer.write(name, (rng.standard_normal(shape, np.float32) * 0.02).astype(dtype))
    writer.close()
    hf_config = transformers.LlamaConfig(**config)
    hf_config.architectures = ["LlamaForCausalLM"]
    hf_config.dtype = "bfloat16"
    hf_config.save_pretrained(path)
    return writer.total_bytes


def measure(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS bytes of a child process (which must succeed)."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}")
    return seconds, usage.ru_maxrss * 1024  # Linux reports KiB


def evict(folder: pathlib.Path) -> bool:
    """Drop ``folder``'s files from the page cache; whether the kernel allowed it."""
    os.sync()
    try:
        for path in folder.rglob("*"):
            if path.is_file():
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)
    except (AttributeError, OSError):
        return False
    return True


def dir_bytes(path: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        lines = pathlib.Path("/proc/cpuinfo").read_text().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if "model name" in line)
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{model}, {os.cpu_count()} cores, load average {load}"


def bench_size(name: str, workdir: pathlib.Path, shard: str, imports: tuple) -> dict:
    config = SIZES[name]
    size = sum(math.prod(s) * 2 for _, s in llama_tensors(config))
    free = shutil.disk_usage(workdir).free
    if free < 5 * size:
        reason = f"{free / 1e9:.1f} GB free in {workdir}, needs {5 * size / 1e9:.1f} GB"
        print(f"{name}: skipped ({reason})")
        return {"size": name, "skipped": reason}
    py = sys.executable
    base_s, base_rss = imports
    src, orbax, dst, copy = (workdir / n for n in ("hf", "orbax", "export", "copy"))
    try:
        t = time.perf_counter()
        write_checkpoint(src, config, shard)
        print(f"{name}: synthetic checkpoint {size / 1e9:.2f} GB (bfloat16), written in "
              f"{time.perf_counter() - t:.0f} s")  # fmt: skip
        cold = evict(src)
        copy_cold, _ = measure(["cp", "-r", str(src), str(copy)])
        shutil.rmtree(copy)
        copy_warm, _ = measure(["cp", "-r", str(src), str(copy)])
        shutil.rmtree(copy)
        convert = [py, "-m", "emollm_jax.convert"]
        to_orbax = measure([*convert, "hf-to-orbax", str(src), str(orbax)])
        to_hf = measure([*convert, "orbax-to-hf", str(orbax), str(dst), "--max-shard-size", shard])
        a, b = TensorSource(src), TensorSource(dst)
        identical = sorted(a.keys()) == sorted(b.keys()) and all(
            np.array_equal(a.get(k).view(np.uint16), b.get(k).view(np.uint16)) for k in a.keys()
        )
        orbax_bytes = dir_bytes(orbax)
    finally:
        for folder in (src, orbax, dst, copy):
            shutil.rmtree(folder, ignore_errors=True)

    largest = max(math.prod(s) * 2 for _, s in llama_tensors(config))
    print(f"{name}: checkpoint {size / 1e9:.2f} GB, largest tensor {largest / 1e6:.0f} MB, "
          f"Orbax copy {orbax_bytes / 1e9:.2f} GB")  # fmt: skip
    cold_text = f"{copy_cold:.1f} s" if cold else f"{copy_cold:.1f} s (eviction refused: warm)"
    print(f"{name}: plain copy (cp -r) cold {cold_text}, warm {copy_warm:.1f} s; the ratios "
          "below use the warm copy")  # fmt: skip
    print(f"{'':14s} {'wall s':>7s} {'- imports':>9s} {'x copy':>7s} {'peak RSS MB':>12s} "
          f"{'RSS/size':>9s} {'(RSS-imports)/size':>19s}")  # fmt: skip
    row = {"size": name, "checkpoint_bytes": size, "largest_tensor_bytes": largest,
           "orbax_bytes": orbax_bytes, "copy_cold_s": round(copy_cold, 2) if cold else None,
           "copy_warm_s": round(copy_warm, 2), "round_trip_bit_identical": identical}  # fmt: skip
    for direction, (seconds, rss) in (("hf-to-orbax", to_orbax), ("orbax-to-hf", to_hf)):
        beyond = seconds - base_s
        print(f"{direction:14s} {seconds:7.1f} {beyond:9.1f} {beyond / copy_warm:7.1f} "
              f"{rss / 1e6:12.0f} {rss / size:9.3f} {(rss - base_rss) / size:19.3f}")  # fmt: skip
        net = round((rss - base_rss) / size, 3)
        row[direction] = {"s": round(seconds, 2), "beyond_imports_s": round(beyond, 2),
                          "x_copy": round(beyond / copy_warm, 2), "peak_rss_bytes": rss,
                          "rss_net_of_imports_over_size": net}  # fmt: skip
    if not identical:
        raise SystemExit(f"{name}: the exported checkpoint differs from the synthetic one")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="tinyllama,7b", help=f"of {sorted(SIZES)}")
    parser.add_argument("--workdir", default=None, help="where the big files go (deleted)")
    parser.add_argument("--max-shard-size", default="1GB", help="shards of both HF folders")
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    unknown = sorted(set(sizes) - set(SIZES))
    if unknown:
        raise SystemExit(f"--sizes: unknown {unknown}; known {sorted(SIZES)}")

    print(f"machine: {machine()}")
    imports = measure([sys.executable, "-c", IMPORTS])
    print(f"import-only child: {imports[0]:.1f} s, peak RSS {imports[1] / 1e6:.0f} MB")
    rows = []
    for name in sizes:
        workdir = pathlib.Path(tempfile.mkdtemp(prefix="bench_convert-", dir=args.workdir))
        try:
            rows.append(bench_size(name, workdir, args.max_shard_size, imports))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"machine": machine(), "import_s": round(imports[0], 2),
                      "import_rss_bytes": imports[1], "sizes": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
