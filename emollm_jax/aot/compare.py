"""``python -m emollm_jax.aot.compare --config configs/X.py --topology v5p-64
--strategies dp,fsdp,tp,fsdp_tp,hsdp,fsdp_vision_dp [--remat none,dots,full]
[--batch_per_chip 1,2,4,8] --out DIR``.

Compiles the training step ahead of time for every combination (``emollm_jax.compile``'s row)
and writes ``DIR/report.md``, ``DIR/report.json`` and ``DIR/chart.png``: per-chip memory (the
compiler's figures), a roofline ESTIMATE of step time and MFU (not a measurement), the
fastest combination that fits and, per strategy, the largest batch per chip that fits.

Each strategy runs on the mesh it is meant for (``strategies.Strategy.preset_shape``; a
``tensor`` size is capped to what the heads and the chip count divide). Combinations are
compiled in order of batch size; once a batch does not fit, larger ones of the same strategy
and remat are reported as not compiled, and one whose parameters and optimizer state alone
exceed HBM is not compiled at all. Rows are appended to ``DIR/rows.jsonl`` as they finish, so
an interrupted sweep resumes where it stopped; each compiled program's optimized HLO is kept in
``DIR/hlo/`` (gzip) so that ``--reestimate`` can redo the estimates after a change to the cost
model without compiling again.
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")

import gc  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file.")
_TOPOLOGY = flags.DEFINE_string("topology", None, "v4-32, v5e-256, v5p-64, v6e-256, cpu:8, ...")
_SLICES = flags.DEFINE_integer("num_slices", 1, "Slices (the strategy's dcn_axis spans them).")
_STRATEGIES = flags.DEFINE_list("strategies", ["dp", "fsdp", "tp", "fsdp_tp"], "Strategies.")
_REMAT = flags.DEFINE_list(
    "remat", [], "Remat policies (default: the config's; 'all': every policy of models/remat.py)."
)
_XLA_FLAGS = flags.DEFINE_string(
    "xla_flags", "", "Compiler flags for every program ('--xla_... --xla_...'), as a recipe "
    "passes them in LIBTPU_INIT_ARGS; recorded in each row."
)
_BATCH = flags.DEFINE_list("batch_per_chip", ["1", "2", "4", "8"], "Rows per chip.")
_SEQ = flags.DEFINE_integer("seq_len", 0, "Tokens per row (0: the largest data.seq_buckets).")
_FRAMES = flags.DEFINE_integer("frames", 1, "Frames per row (1: an image; 0: text only).")
_OUT = flags.DEFINE_string("out", None, "Report folder.")
_REESTIMATE = flags.DEFINE_bool(
    "reestimate", False, "Recompute the estimates of finished rows from their saved HLO."
)
flags.mark_flags_as_required(["config", "topology", "out"])


def preset_shape(strategy: str, model_cfg, chips_per_slice: int) -> dict[str, int]:
    """The mesh a strategy is compared on: its preset sizes, ``tensor`` and fixed ``fsdp``
    sizes lowered (halved) until they divide the heads and the chips."""
    # Imported when called (start-up): importing this module (tests, notebooks) loads no JAX.
    from emollm_jax.sharding.strategies import get_strategy

    heads = []
    if model_cfg.has_text:
        heads += [model_cfg.text.num_heads, model_cfg.text.num_kv_heads]
    if model_cfg.has_vision:
        heads.append(model_cfg.vision.num_heads)
    shape = {}
    for axis, size in get_strategy(strategy).preset_shape:
        if size > 0:
            divides = [chips_per_slice] + (heads if axis == "tensor" else [])
            while size > 1 and any(d % size for d in divides):
                size //= 2
        shape[axis] = size
    return shape


def combinations(strategies, remats, batches):
    return [(s, r, b) for s in strategies for r in remats for b in sorted(batches)]


def _key(strategy, remat, batch) -> str:
    return f"{strategy}/{remat}/b{batch}"


def _skipped(strategy, remat, batch, reason: str) -> dict:
    return {
        "program": "train", "strategy": strategy, "remat": remat, "batch_per_chip": batch,
        "fits": False, "bytes_per_chip": None, "hbm_bytes": None, "flops": None,
        "est_step_s": None, "est_mfu": None, "collectives": {}, "compile_s": None,
        "error": f"not compiled: {reason}",
    }  # fmt: skip


def load_done(path: pathlib.Path) -> dict[str, dict]:
    """Rows of an earlier (interrupted) sweep, by combination."""
    from emollm_jax.aot.report import read_rows

    return {_key(r["strategy"], r["remat"], r["batch_per_chip"]): r for r in read_rows(path)}


def _hlo_path(out_dir: pathlib.Path, key: str) -> pathlib.Path:
    return out_dir / "hlo" / (key.replace("/", "_") + ".hlo.gz")


def _save_hlo(out_dir: pathlib.Path, key: str, text: str) -> None:
    path = _hlo_path(out_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt") as f:
        f.write(text)
    os.replace(tmp, path)


def _reestimate(row: dict, out_dir: pathlib.Path, key: str) -> dict:
    # Imported when called (start-up): JAX and libtpu load only once a program is compiled.
    from emollm_jax.aot import analysis
    from emollm_jax.aot import chips

    path = _hlo_path(out_dir, key)
    if row.get("error") is None and row.get("chip") and path.exists():
        with gzip.open(path, "rt") as f:
            analysis.estimate(row, f.read(), chips.CHIPS[row["chip"]])
    return row


def sweep(
    config,
    topology_name: str,
    *,
    strategies,
    remats,
    batches,
    seq_len: int,
    frames: int,
    out_dir,
    num_slices: int = 1,
    progress: bool = True,
    reestimate: bool = False,
    xla_flags: str = "",
) -> list[dict]:
    """Every combination's row (compiled, skipped with the reason, or failed with the error).
    ``remats`` may hold ``all``: every policy of ``models/remat.py``."""
    # Imported when called (start-up): JAX and libtpu load only once a program is compiled.
    from tqdm import tqdm

    from emollm_jax.aot import analysis, topology
    from emollm_jax.aot.report import _jsonable
    from emollm_jax.config.model import from_config_dict
    from emollm_jax.models.remat import REMAT_POLICIES

    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows_path = out_dir / "rows.jsonl"
    done = load_done(rows_path)
    topo = topology.parse(topology_name)
    devices = topology.devices(topo, num_slices)
    model_cfg = from_config_dict(config.model)
    seq_len = seq_len or max(config.data.seq_buckets)
    rows, too_big = [], set()
    remats = list(remats or [config.model.get("remat", "none")])
    if "all" in remats:
        remats = list(REMAT_POLICIES)
    combos = combinations(strategies, remats, batches)
    bar = tqdm(combos, desc=f"compare {topology_name}", unit="combo", disable=not progress)
    for strategy, remat, batch in bar:
        key = _key(strategy, remat, batch)
        bar.set_postfix_str(key)
        if key in done:
            row = _reestimate(done[key], out_dir, key) if reestimate else done[key]
        elif (strategy, remat) in too_big:
            row = _skipped(strategy, remat, batch, "a smaller batch per chip already does not fit")
        else:
            c = config.copy_and_resolve_references()
            c.mesh.strategy = strategy
            c.mesh.shape = preset_shape(strategy, model_cfg, topo.chips)
            c.mesh.rules = None
            with c.unlocked():
                c.model.remat = remat
            started = time.perf_counter()
            row = analysis.train_row(c, devices, batch_per_chip=batch, seq_len=seq_len,
                                     frames=frames, precheck=True, flags=xla_flags)  # fmt: skip
            row.pop("traceback", None)
            row["wall_s"] = time.perf_counter() - started
            hlo = row.pop("hlo", None)
            if hlo:
                _save_hlo(out_dir, key, hlo)
            with rows_path.open("a") as f:
                f.write(json.dumps(_jsonable(row)) + "\n")
            jax_clear()
        if row.get("error") is None and not row.get("fits"):
            too_big.add((strategy, remat))
        if str(row.get("error") or "").startswith("not compiled: parameters"):
            too_big.add((strategy, remat))
        rows.append(row)
    if reestimate:
        tmp = rows_path.with_name(rows_path.name + ".tmp")
        tmp.write_text("".join(json.dumps(_jsonable(r)) + "\n" for r in rows))
        os.replace(tmp, rows_path)
    return rows


def jax_clear() -> None:
    import jax

    jax.clear_caches()
    gc.collect()


def notes_for(rows, seq_len: int, frames: int) -> list[str]:
    compiled = [r for r in rows if r.get("compile_s")]
    # Each row's own time (building, compiling, reading the HLO); compile time where an older
    # sweep did not record it.
    seconds = sum(r.get("wall_s") or r.get("compile_s") or 0.0 for r in rows)
    return [
        f"Each row is the Trainer's own training step (forward, backward, AdamW update; "
        f"{seq_len} tokens per row, {frames} image frame(s) per row), compiled ahead of time "
        "for compile-only TPU devices on a CPU host: nothing was run on a TPU.",
        "Memory per chip: parameters, optimizer state and batch from their shardings (the "
        "fullest chip); temp and output from the compiler's memory_analysis(); total = "
        "arguments + outputs not aliased to (donated) inputs + temp.",
        "Step time is an ESTIMATE from the op-level model of emollm_jax/aot/roofline.py, not "
        "a measurement: each scheduled op of the compiled program (loop trips multiplied out, "
        "remat recomputation included) takes the longer of its matmul time (its FLOPs at the "
        "chip's peak times the calibrated MXU or attention-kernel efficiency, less where a "
        "matmul dimension leaves the MXU's tile part-empty) and its HBM time; ops run one after "
        "another; asynchronous collectives and host-offload copies run beside them. Its "
        "constants were fitted on published measured runs (docs/calibration gives the error per "
        "run). MFU = model FLOPs (as the trainer counts them: 6 x params x tokens plus full "
        "attention, without recomputation) / (est. step x peak).",
        "XLA's own cost_analysis() is not used: with scanned layers it counts the loop body once.",
        f"Sweep: {len(rows)} combinations, {len(compiled)} compiled; {seconds / 60:.1f} min "
        f"summed over the rows (each row's wall time where recorded, else its compile time), "
        f"on this host "
        f"({platform.machine()}, {os.cpu_count()} cores, no accelerator).",
    ]


def main(argv):
    del argv
    # Imported here (start-up): flags are parsed before JAX and libtpu load.
    from emollm_jax import logs
    from emollm_jax.aot.report import best, write_report
    from emollm_jax.aot.topology import TopologyError
    from emollm_jax.sharding.strategies import get_strategy

    logs.setup()
    config = _CONFIG.value
    for strategy in _STRATEGIES.value:
        get_strategy(strategy)  # an unknown name is the user's mistake: ConfigError, exit 2
    try:
        batches = [int(b) for b in _BATCH.value]
    except ValueError:
        print(f"error: --batch_per_chip {_BATCH.value}: needs integers", file=sys.stderr)
        sys.exit(2)
    try:
        rows = sweep(
            config, _TOPOLOGY.value, strategies=_STRATEGIES.value, remats=_REMAT.value,
            batches=batches, seq_len=_SEQ.value, frames=_FRAMES.value, out_dir=_OUT.value,
            num_slices=_SLICES.value, reestimate=_REESTIMATE.value, xla_flags=_XLA_FLAGS.value,
        )  # fmt: skip
    except (TopologyError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    seq_len = _SEQ.value or max(config.data.seq_buckets)
    command = "python -m emollm_jax.aot.compare " + shlex.join(sys.argv[1:])
    paths = write_report(
        _OUT.value,
        topology=_TOPOLOGY.value,
        num_slices=_SLICES.value,
        config=flags.FLAGS["config"].config_filename,
        command=command,
        rows=rows,
        notes=notes_for(rows, seq_len, _FRAMES.value),
    )
    winner = best(rows)
    if winner:
        print(
            f"fastest that fits: {winner['strategy']}/{winner['remat']}/b{winner['batch_per_chip']}"
            f": est. step {winner['est_step_s']:.3f} s, est. MFU {winner['est_mfu']:.1%} "
            "(roofline estimate)"
        )
    else:
        print("no combination fits")
    print("wrote " + ", ".join(str(p) for p in paths.values()))


if __name__ == "__main__":
    from emollm_jax.aot.cli import underscore_flags
    from emollm_jax.cli_errors import run_absl

    run_absl(main, underscore_flags(sys.argv)[1:])
