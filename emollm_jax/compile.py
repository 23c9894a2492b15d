"""``python -m emollm_jax.compile --config configs/X.py --topology v5p-64 [--json OUT]``.

Compiles the training step (or, with ``--program generate``, the decoding program) ahead of time
for a TPU topology, from a CPU box with no TPU (libtpu's compile-only devices; install
``requirements-tpu.txt``), or for ``cpu:N`` devices of this host, where the step is also run and
timed. Prints per-chip memory against the chip's HBM (the compiler's own figures), the step's
FLOPs, collectives read from the optimized HLO, and a roofline ESTIMATE of step time, tokens/s
and MFU (``emollm_jax/aot/roofline.py`` states the model; it is not a measurement).

Exit status: 0 compiled (whether or not it fits, unless ``--require-fit``), 1 the program did
not compile, 2 bad arguments, 4 it does not fit and ``--require-fit`` was given.
"""

from __future__ import annotations

import os

# libtpu in the environment makes every JAX start probe for a TPU; compile-only TPU devices
# come from libtpu directly, so the runtime backend stays the CPU.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")

import json  # noqa: E402
import pathlib  # noqa: E402
import sys  # noqa: E402

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_TOPOLOGY = flags.DEFINE_string("topology", None, "v4-32, v5e-16, v5p-64, v6e-256, cpu:8, ...")
_SLICES = flags.DEFINE_integer("num_slices", 1, "Slices (data parallel across slices).")
_PROGRAM = flags.DEFINE_enum("program", "train", ["train", "generate"], "What to compile.")
_BATCH = flags.DEFINE_integer("batch_per_chip", 1, "Rows per chip (global batch = this x chips).")
_SEQ = flags.DEFINE_integer("seq_len", 0, "Tokens per row (0: the largest data.seq_buckets).")
_FRAMES = flags.DEFINE_integer("frames", 1, "Frames per row (1: an image; 0: text only).")
_NEW = flags.DEFINE_integer("max_new_tokens", 0, "generate: new tokens (0: eval.max_new_tokens).")
_RUN = flags.DEFINE_integer("run_steps", 3, "cpu:N only: timed runs of the compiled step.")
_JSON = flags.DEFINE_string("json", "", "Write the report row as JSON here.")
_HLO = flags.DEFINE_string("hlo", "", "Write the optimized HLO text here.")
_XLA_FLAGS = flags.DEFINE_string(
    "xla_flags", "", "Compiler flags for this program, as LIBTPU_INIT_ARGS holds them "
    "('--xla_tpu_scoped_vmem_limit_kib=98304 ...'); recorded in the report."
)
_BREAKDOWN = flags.DEFINE_bool(
    "memory_breakdown", False, "Also list what fills HBM at the program's peak, by model part "
    "(read from XLA's dumps of this compile)."
)
_RECIPE = flags.DEFINE_string(
    "recipe", "", "A published run (emollm_jax/aot/published_runs.json, e.g. llama3.1-8b-v6e-8): "
    "its model, topology, batch, sequence, remat, attention and compiler flags, in place of "
    "--config (flags given explicitly still win)."
)
_REQUIRE_FIT = flags.DEFINE_bool("require_fit", False, "Exit 4 when it does not fit in HBM.")

GiB = 2**30
# Said wherever an estimate is printed: how far the calibrated estimator was from measured runs.
def _gib(x) -> str:
    if x is None:
        return "-"
    return f"{x / GiB:.2f} GiB" if abs(x) >= 2**28 else f"{x / 2**20:.2f} MiB"


def summary(row: dict) -> str:
    """The row as a few human-readable lines."""
    head = (
        f"{row['program']} program, strategy {row['strategy']}, remat {row['remat']}, "
        f"{row['batch_per_chip']} row(s) x {row.get('seq_len')} tokens per chip, "
        f"{row['chips']} chips x {row['num_slices']} slice(s), mesh {row.get('mesh')}"
        + (f"\nXLA flags: {row['xla_flags']}" if row.get("xla_flags") else "")
    )
    if row["error"]:
        return f"{head}\nFAILED: {row['error']}"
    b = row["bytes_per_chip"]
    parts = ", ".join(f"{k} {_gib(v)}" for k, v in b.items() if k != "total")
    over = b["total"] - row["hbm_bytes"]
    fit = "fits" if row["fits"] else f"DOES NOT FIT ({_gib(over)} over)"
    memory = (
        f"memory per chip (compiler): {parts}; total {_gib(b['total'])} of "
        f"{_gib(row['hbm_bytes'])} HBM: {fit}"
    )
    if "roofline" not in row:  # the compiler refused it for want of memory
        return f"{head}\n{memory}\ncompiler: {row.get('compiler_message', '')}"
    from emollm_jax.aot.roofline import calibration_note

    e = row.get("estimate") or {}
    lines = [
        head,
        memory,
        f"FLOPs per chip: model {row['flops'] / 1e12:.3g} T (as the trainer counts for MFU), "
        f"compiled program {row['hlo_flops'] / 1e12:.3g} T (dots incl. recomputation)",
        f"ESTIMATE (op-level roofline, not a measurement; {calibration_note()}): "
        f"{row['est_step_s']:.3g} s per run (ops {e.get('stream_s', 0):.3g}: matmul-bound "
        f"{e.get('compute_s', 0):.3g}, HBM-bound {e.get('memory_s', 0):.3g}, overhead "
        f"{e.get('overhead_s', 0):.3g}, synchronous collectives "
        f"{e.get('sync_collective_s', 0):.3g}; beside them: async collectives "
        f"{e.get('async_collective_s', 0):.3g}, host copies {e.get('host_s', 0):.3g}), "
        f"{row['est_tokens_per_s_per_chip']:.0f} tokens/s/chip, MFU {row['est_mfu']:.1%}, "
        f"{e.get('bound', '?')}-bound",
        "collectives: "
        + (
            ", ".join(
                f"{k} x{int(v['count'])} ({_gib(v['bytes'])})"
                for k, v in sorted(row["collectives"].items())
            )
            or "none"
        ),
        f"compiled in {row['compile_s']:.1f} s",
    ]
    if "memory_breakdown" in row:
        lines += breakdown_lines(row["memory_breakdown"])
    if "kv_cache_bytes_per_chip" in row:
        lines.insert(2, f"KV cache per chip: {_gib(row['kv_cache_bytes_per_chip'])}")
    if "measured_step_s" in row:
        lines.append(f"measured on this host: {row['measured_step_s']:.3g} s per step")
    for item in row.get("indivisible", []):
        lines.append(f"warning: {item}")
    return "\n".join(lines)


def breakdown_lines(mb: dict) -> list[str]:
    """The temp memory by part of the step, and its largest buffers."""
    lines = [f"temp memory by part (XLA's temp allocation, {_gib(mb['temp_allocation_bytes'])}):"]
    lines += [f"  {_gib(b):>10}  {part}" for part, b in mb["by_part"].items()]
    if mb.get("unattributed_bytes"):
        lines.append(f"  {_gib(mb['unattributed_bytes']):>10}  not in XLA's buffer assignment")
    lines.append("largest temp buffers:")
    lines += [
        f"  {_gib(b['bytes']):>10}  {b['shape']:<26} {b['part']}: {b['op_name'][-80:]}"
        for b in mb["largest"]
    ]
    return lines


def compile_row(
    config,
    topology_name: str,
    num_slices: int = 1,
    program: str = "train",
    batch_per_chip: int = 1,
    seq_len: int = 0,
    frames: int = 1,
    max_new_tokens: int = 0,
    run_steps: int = 0,
    xla_flags: str = "",
    memory_breakdown: bool = False,
) -> dict:
    """One report row for ``config`` compiled for ``topology_name`` (what the CLI prints)."""
    # Imported when called (start-up): JAX and libtpu load only once a program is compiled.
    from emollm_jax.aot import analysis, topology, xla_flags as flag_text

    flag_text.parse(xla_flags)  # a malformed string is the user's mistake: FlagError
    topo = topology.parse(topology_name)
    devices = topology.devices(topo, num_slices)
    seq_len = seq_len or max(config.data.seq_buckets)
    if program == "generate":
        row = analysis.generate_row(
            config, devices, batch_per_chip=batch_per_chip, prompt_len=seq_len,
            max_new_tokens=max_new_tokens or config.eval.max_new_tokens, frames=frames,
            flags=xla_flags,
        )  # fmt: skip
    else:
        row = analysis.train_row(
            config, devices, batch_per_chip=batch_per_chip, seq_len=seq_len, frames=frames,
            run_steps=run_steps if topo.platform == "cpu" else 0, flags=xla_flags,
            breakdown=memory_breakdown,
        )  # fmt: skip
    row["topology"] = topology_name
    return row


def _arguments() -> dict:
    """``compile_row``'s arguments from the flags, a recipe's where it gives one and the flag was
    not set explicitly."""
    from emollm_jax.aot import published

    given = {name: flags.FLAGS[name].present for name in ("topology", "batch_per_chip", "seq_len",
                                                          "frames", "xla_flags")}  # fmt: skip
    args = dict(
        config=_CONFIG.value, topology_name=_TOPOLOGY.value, num_slices=_SLICES.value,
        program=_PROGRAM.value, batch_per_chip=_BATCH.value, seq_len=_SEQ.value,
        frames=_FRAMES.value, max_new_tokens=_NEW.value, run_steps=_RUN.value,
        xla_flags=_XLA_FLAGS.value, memory_breakdown=_BREAKDOWN.value,
    )  # fmt: skip
    if _RECIPE.value:
        run = published.run(_RECIPE.value)
        recipe = dict(
            topology_name=run["topology"], batch_per_chip=run["batch_per_chip"],
            seq_len=run["seq_len"], frames=0, xla_flags=published.flags_for(run),
        )  # fmt: skip
        names = dict(topology_name="topology")
        args.update({k: v for k, v in recipe.items() if not given[names.get(k, k)]})
        if args["config"] is None:
            args["config"] = published.config_for(run)
    if args["config"] is None:
        raise app.UsageError("give --config FILE (or --recipe NAME)")
    if not args["topology_name"]:
        raise app.UsageError("give --topology (or --recipe NAME)")
    return args


def write_json(row: dict, path: str) -> None:
    # Imported when called (start-up): the report module loads JAX.
    from emollm_jax.aot.report import _jsonable

    out = pathlib.Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(_jsonable(row), indent=2) + "\n")
    os.replace(tmp, out)


def main(argv):
    del argv
    # Imported here (start-up): flags are parsed before JAX and libtpu load.
    from emollm_jax.aot.topology import TopologyError
    from emollm_jax.aot.xla_flags import FlagError
    from emollm_jax.logs import setup as setup_logs
    from emollm_jax.train.validate import check_fields

    setup_logs()
    args = _arguments()
    check_fields(args["config"])
    try:
        row = compile_row(**args)
        if _RECIPE.value:
            row["recipe"] = _RECIPE.value
    except (TopologyError, FlagError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    hlo = row.pop("hlo", None)
    print(summary(row))
    if _HLO.value and hlo:
        pathlib.Path(_HLO.value).write_text(hlo)
    if _JSON.value:
        write_json(row, _JSON.value)
    if row["error"]:
        sys.exit(1)
    if _REQUIRE_FIT.value and not row["fits"]:
        sys.exit(4)


if __name__ == "__main__":
    from emollm_jax.aot.cli import underscore_flags
    from emollm_jax.cli_errors import run_absl

    run_absl(main, underscore_flags(sys.argv)[1:])
