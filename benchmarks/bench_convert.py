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
  sync, where the kernel allows it) and warm (just read). Where eviction works, each
  conversion too starts from an evicted source and the ratio uses the cold copy; otherwise
  both are warm and the ratio uses the warm copy (the output says which);
- the peak resident set size (the child's ``ru_maxrss`` from ``os.wait4``) as a ratio of the
  checkpoint's size, with and without the import-only child's peak.

Every step starts after a ``sync``, so no step pays for flushing the previous one's writes.
With ``--repeat N`` each step runs N times, interleaved, and the fastest run counts (the
largest peak); on a shared host the fastest is the least disturbed. ``--baseline DIR`` times
the converter of another checkout (e.g. an earlier commit, unpacked with ``git archive``)
in the same runs, and prints how much faster this one is.

The exported folder is compared tensor by tensor with the synthetic one (bit-identical), then
everything is deleted.

    python benchmarks/bench_convert.py [--sizes tinyllama,7b] [--workdir /tmp] [--repeat N]
        [--baseline DIR]
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


def measure(argv: list[str], cwd: pathlib.Path = REPO) -> tuple[float, int]:
    """Wall seconds and peak RSS bytes of a child process (which must succeed), started
    after a sync."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    os.sync()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
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


def best(runs: list[tuple[float, int]]) -> tuple[float, int]:
    """The fastest time and the largest peak of several runs."""
    return min(t for t, _ in runs), max(r for _, r in runs)


def bench_size(name: str, workdir: pathlib.Path, args, imports: dict) -> dict:
    config, shard = SIZES[name], args.max_shard_size
    size = sum(math.prod(s) * 2 for _, s in llama_tensors(config))
    free = shutil.disk_usage(workdir).free
    if free < 5 * size:
        reason = f"{free / 1e9:.1f} GB free in {workdir}, needs {5 * size / 1e9:.1f} GB"
        print(f"{name}: skipped ({reason})")
        return {"size": name, "skipped": reason}
    py = sys.executable
    src, copy = workdir / "hf", workdir / "copy"
    checkouts = {"this": REPO, **({"baseline": args.baseline} if args.baseline else {})}
    runs = {(who, d): [] for who in checkouts for d in ("hf-to-orbax", "orbax-to-hf")}
    copies: dict[str, list] = {"cold": [], "warm": []}
    identical = True
    try:
        t = time.perf_counter()
        write_checkpoint(src, config, shard)
        print(f"{name}: synthetic checkpoint {size / 1e9:.2f} GB (bfloat16), written in "
              f"{time.perf_counter() - t:.0f} s")  # fmt: skip
        cold = evict(src)
        for _ in range(args.repeat):
            evict(src)
            copies["cold"].append(measure(["cp", "-r", str(src), str(copy)])[0])
            shutil.rmtree(copy)
            copies["warm"].append(measure(["cp", "-r", str(src), str(copy)])[0])
            shutil.rmtree(copy)
            for who, checkout in checkouts.items():
                orbax, dst = workdir / f"orbax-{who}", workdir / f"export-{who}"
                convert = [py, "-m", "emollm_jax.convert"]
                if cold:
                    evict(src)
                to_orbax = [*convert, "hf-to-orbax", str(src), str(orbax)]
                runs[who, "hf-to-orbax"].append(measure(to_orbax, checkout))
                if cold:
                    evict(orbax)
                to_hf = [*convert, "orbax-to-hf", str(orbax), str(dst), "--max-shard-size", shard]
                runs[who, "orbax-to-hf"].append(measure(to_hf, checkout))
                if who == "this":
                    identical = identical and same_tensors(src, dst)
                    orbax_bytes = dir_bytes(orbax)
                shutil.rmtree(orbax)
                shutil.rmtree(dst)
    finally:
        for folder in workdir.iterdir():
            shutil.rmtree(folder, ignore_errors=True)

    largest = max(math.prod(s) * 2 for _, s in llama_tensors(config))
    print(f"{name}: checkpoint {size / 1e9:.2f} GB, largest tensor {largest / 1e6:.0f} MB, "
          f"Orbax copy {orbax_bytes / 1e9:.2f} GB")  # fmt: skip
    copy_cold, copy_warm = min(copies["cold"]), min(copies["warm"])
    basis = "cold" if cold else "warm"
    copy_s = copy_cold if cold else copy_warm
    cold_text = f"{copy_cold:.2f} s" if cold else f"{copy_cold:.2f} s (eviction refused: warm)"
    print(f"{name}: plain copy (cp -r) cold {cold_text}, warm {copy_warm:.2f} s; conversions "
          f"start {basis} and the ratios use the {basis} copy; best of {args.repeat}")  # fmt: skip
    print(f"{'':23s} {'wall s':>7s} {'- imports':>9s} {'x copy':>7s} {'peak RSS MB':>12s} "
          f"{'RSS/size':>9s} {'(RSS-imports)/size':>19s}")  # fmt: skip
    row = {"size": name, "checkpoint_bytes": size, "largest_tensor_bytes": largest,
           "orbax_bytes": orbax_bytes, "copy_cold_s": round(copy_cold, 2) if cold else None,
           "copy_warm_s": round(copy_warm, 2), "ratio_basis": f"{basis} copy",
           "repeat": args.repeat, "round_trip_bit_identical": identical}  # fmt: skip
    for (who, direction), found in runs.items():
        seconds, rss = best(found)
        base_s, base_rss = imports[who]
        beyond = seconds - base_s
        label = direction if who == "this" else f"{direction} ({who})"
        print(f"{label:23s} {seconds:7.1f} {beyond:9.1f} {beyond / copy_s:7.1f} "
              f"{rss / 1e6:12.0f} {rss / size:9.3f} {(rss - base_rss) / size:19.3f}")  # fmt: skip
        row.setdefault(who, {})[direction] = {
            "s": round(seconds, 2), "beyond_imports_s": round(beyond, 2),
            "x_copy": round(beyond / copy_s, 2), "peak_rss_bytes": rss,
            "rss_net_of_imports_over_size": round((rss - base_rss) / size, 3),
        }  # fmt: skip
    if "baseline" in row:
        for direction in ("hf-to-orbax", "orbax-to-hf"):
            ratio = (row["baseline"][direction]["beyond_imports_s"]
                     / row["this"][direction]["beyond_imports_s"])  # fmt: skip
            row["this"][direction]["x_faster_than_baseline"] = round(ratio, 2)
            print(f"{direction}: {ratio:.1f}x faster than the baseline, beyond imports")
    if not identical:
        raise SystemExit(f"{name}: the exported checkpoint differs from the synthetic one")
    return row


def same_tensors(a: pathlib.Path, b: pathlib.Path) -> bool:
    a, b = TensorSource(a), TensorSource(b)
    return sorted(a.keys()) == sorted(b.keys()) and all(
        np.array_equal(a.get(k).view(np.uint16), b.get(k).view(np.uint16)) for k in a.keys()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="tinyllama,7b", help=f"of {sorted(SIZES)}")
    parser.add_argument("--workdir", default=None, help="where the big files go (deleted)")
    parser.add_argument("--max-shard-size", default="1GB", help="shards of both HF folders")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each step; best counts")
    parser.add_argument("--baseline", type=pathlib.Path, default=None,
                        help="a checkout whose converter is timed in the same runs")  # fmt: skip
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    unknown = sorted(set(sizes) - set(SIZES))
    if unknown:
        raise SystemExit(f"--sizes: unknown {unknown}; known {sorted(SIZES)}")

    print(f"machine: {machine()}")
    args.baseline = args.baseline.resolve() if args.baseline else None
    checkouts = {"this": REPO, **({"baseline": args.baseline} if args.baseline else {})}
    imports = {}
    for who, checkout in checkouts.items():
        imports[who] = best(
            [measure([sys.executable, "-c", IMPORTS], checkout) for _ in range(args.repeat)]
        )
        print(f"import-only child ({who}): {imports[who][0]:.1f} s, "
              f"peak RSS {imports[who][1] / 1e6:.0f} MB")  # fmt: skip
    rows = []
    for name in sizes:
        workdir = pathlib.Path(tempfile.mkdtemp(prefix="bench_convert-", dir=args.workdir))
        try:
            rows.append(bench_size(name, workdir, args, imports))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"machine at the end: {machine()}")
    print(json.dumps({"machine": machine(), "imports": {k: {"s": round(v[0], 2), "rss_bytes":
                      v[1]} for k, v in imports.items()}, "sizes": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
