"""Compile a program for a set of devices from shapes alone and describe what it costs.

``train_row`` compiles the Trainer's own step (``train.program.build_train_program``) and
``generate_row`` the decoding program (``generate.decode.Generator``) for the given devices,
nothing allocated, and return one report row (``aot.report.REQUIRED_FIELDS`` and extras):

- memory per chip: parameters, optimizer state and batch from their shardings (the fullest
  device), temp and output (net of donated buffers) from the compiler's ``memory_analysis()``;
  these are the compiler's own figures and are to be trusted;
- FLOPs: the model FLOPs the trainer counts for MFU (``train.flops``), and the hardware FLOPs
  of the compiled program (``aot.hlo_stats``: every dot, loops multiplied out, remat
  recomputation included);
- time: a roofline ESTIMATE (``aot.roofline``) from the HLO's FLOPs, HBM bytes and
  collectives and the chip table (``aot.chips``), not a measurement. On ``cpu:N`` the step
  is also run and timed (``measured_step_s``);
- where the time goes: ``parts`` splits FLOPs, HBM bytes and collective bytes by model part
  (the named scopes of ``aot.hlo_stats.PARTS``), each with its roofline seconds;
- ``params_sharding_ratio``: the fullest chip's parameter bytes over an even share (1.0:
  perfectly sharded; the chip count: replicated).

A program the compiler refuses for want of HBM is a row with ``fits`` false and the temp it
asked for; any other failure is a row with its ``error``: a sweep never stops on one.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tempfile
import time
import traceback

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from emollm_jax.aot import chips as chip_table
from emollm_jax.aot import hlo_stats, peak_memory, roofline, xla_flags
from emollm_jax.config.model import from_config_dict
from emollm_jax.generate.decode import GenerateConfig, Generator, cache_shardings
from emollm_jax.models.build import abstract_model
from emollm_jax.sharding.mesh import mesh_and_rules, num_slices
from emollm_jax.sharding.rules import indivisible_parameters, sufficiency
from emollm_jax.sharding.strategies import get_strategy
from emollm_jax.train import flops
from emollm_jax.train.program import abstract_batch, build_train_program, with_shardings


def measure_copy_bandwidth(n: int = 2**25, repeats: int = 3) -> float:
    """Bytes/s the host's memory streams through one jitted elementwise op (read + write)."""
    x = jnp.ones((n,), jnp.float32)
    f = jax.jit(lambda a: a * 2.0)
    f(x).block_until_ready()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        f(x).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return 2 * x.nbytes / best


def chip_for(devices) -> chip_table.Chip:
    """The chip table's row for ``devices``; for CPU devices of this host, measured now: its
    memory and memory bandwidth split over the devices, its float32 matmul rate as the peak,
    and the memory bandwidth standing in for the interconnect (devices share one host)."""
    d = devices[0]
    if d.platform == "cpu":
        host = chip_table.CHIPS["cpu"]
        bandwidth = measure_copy_bandwidth() / len(devices)
        return dataclasses.replace(
            host,
            hbm_bytes=host.hbm_bytes / len(devices),
            peak_bf16_flops=flops.measure_matmul_flops(),
            hbm_bandwidth=bandwidth,
            ici_bandwidth=bandwidth,
        )
    return chip_table.chip_for_device_kind(d.device_kind)


def per_device_bytes(tree) -> int:
    """Bytes of ``tree`` (``ShapeDtypeStruct``s with shardings) on its fullest device."""
    leaves = jax.tree.leaves(tree)
    return sufficiency(tree).per_device_bytes if leaves else 0


def _memory(compiled) -> dict:
    m = compiled.memory_analysis()
    out = m.output_size_in_bytes - m.alias_size_in_bytes
    return {
        "argument": int(m.argument_size_in_bytes),
        "temp": int(m.temp_size_in_bytes),
        "output": int(out),
        "total": int(m.argument_size_in_bytes + out + m.temp_size_in_bytes),
    }


def _cross_slice_bytes(stats, slices: int, dcn_axis: str, grad_bytes_per_chip: float) -> float:
    """Bytes per chip that cross the data-centre network (a stated model, not read from HLO):
    with ``data`` across slices, one all-reduce of the gradient shard (2 (s-1)/s x its bytes);
    with ``fsdp`` across slices, the parameters' all-gathers and the gradients' reduce-scatters
    span slices: their traffic times (s-1)/s."""
    if slices <= 1:
        return 0.0
    share = (slices - 1) / slices
    if dcn_axis == "data":
        return 2 * share * grad_bytes_per_chip
    kinds = ("all-gather", "reduce-scatter")
    return share * sum(stats.collectives.get(k, {}).get("bytes", 0.0) for k in kinds)


def _base_row(config, devices, batch_per_chip: int, program: str, flags: str) -> dict:
    return {
        "program": program,
        "strategy": config.mesh.strategy,
        "remat": config.model.get("remat", "none"),
        "attention": config.model.get("attention", "xla"),
        "loss_chunk": config.train.get("loss_chunk", 0),
        "batch_per_chip": batch_per_chip,
        "fits": False,
        "bytes_per_chip": None,
        "hbm_bytes": None,
        "flops": None,
        "est_step_s": None,
        "est_mfu": None,
        "collectives": {},
        "compile_s": None,
        "error": None,
        "chips": len(devices),
        "num_slices": num_slices(devices),
        "xla_flags": flags,
    }


def _finish(row, compiled, parts: dict, chip) -> dict:
    """Fill ``row`` from the compiled program: memory, then the estimate (``estimate``)."""
    memory = _memory(compiled)
    row.update(
        fits=bool(memory["total"] <= chip.hbm_bytes),
        bytes_per_chip={
            **parts,
            "temp": memory["temp"],
            "output": memory["output"],
            "total": memory["total"],
        },  # fmt: skip
        hbm_bytes=chip.hbm_bytes,
        chip=chip.name,
        hlo=compiled.as_text(),
    )
    return estimate(row, row["hlo"], chip)


def estimate(row: dict, hlo_text: str, chip) -> dict:
    """The roofline fields of ``row`` from the optimized HLO (also used to re-estimate a saved
    sweep's rows from their HLO after the cost model changes, without compiling again)."""
    unknown_trips = max(row.get("max_new_tokens", 2) - 1, 1)
    stats = hlo_stats.analyze(hlo_text, unknown_trips)
    cross = _cross_slice_bytes(
        stats, row.get("num_slices", 1), row.get("dcn_axis", "data"), row.get("grad_bytes", 0.0)
    )
    bounds = roofline.estimate(
        flops_per_chip=stats.flops,
        bytes_accessed_per_chip=stats.bytes_accessed,
        collectives=stats.collectives,
        chip=chip,
        cross_slice_bytes=cross,
    )
    est = roofline.estimate_ops(stats.ops, chip, cross_slice_bytes=cross)
    tokens = row["batch_per_chip"] * row.get("max_new_tokens", row.get("seq_len", 0))
    row["parts"] = {
        name: {
            **part,
            "compute_s": part["flops"] / chip.peak_bf16_flops,
            "hbm_s": part["bytes"] / chip.hbm_bandwidth,
            "collective_s": part["collective_bytes"] / chip.ici_bandwidth,
        }
        for name, part in sorted(stats.parts.items())
    }
    row.update(
        hlo_flops=stats.flops,
        hlo_bytes_accessed=stats.bytes_accessed,
        host_transfer_bytes=sum(op.host_bytes for op in stats.ops),
        est_step_s=est.step_s,
        est_mfu=roofline.mfu(row["flops"], est.step_s, chip),
        est_tokens_per_s_per_chip=tokens / est.step_s if est.step_s else None,
        estimate=est.as_dict(),
        calibration=roofline.constants(),
        roofline=bounds.as_dict(),
        collectives=stats.collectives,
        while_loops=[list(loop) for loop in stats.while_loops],
        cross_slice_bytes=cross,
    )
    return row


class DoesNotFit(Exception):
    """The compiler refused the program for want of HBM; ``required`` is what it asked for."""

    def __init__(self, message: str, required: float | None):
        super().__init__(message)
        self.required = required


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_REQUIRED = re.compile(r"required for ([^(]*?)\s*\(([\d.]+)([KMGT]?)i?B?\)")


def _compile(lowered, flags: str = "", row: dict | None = None):
    """Compile with ``flags``; with a ``row``, also read where its temp HBM goes
    (``aot.peak_memory``: XLA's dumps, written to a temporary folder) into
    ``row["memory_breakdown"]``."""
    start = time.perf_counter()
    options = xla_flags.parse(flags)
    dump = tempfile.TemporaryDirectory(prefix="emollm-dump-") if row is not None else None
    if dump is not None:
        options.update(peak_memory.dump_options(dump.name))
    try:
        compiled = lowered.compile(compiler_options=options) if options else lowered.compile()
        if dump is not None:
            temp = compiled.memory_analysis().temp_size_in_bytes
            row["memory_breakdown"] = peak_memory.read(dump.name, temp)
    except Exception as e:  # noqa: BLE001 - XLA raises JaxRuntimeError
        text = str(e)
        if "RESOURCE_EXHAUSTED" in text or "Ran out of memory" in text:
            m = _REQUIRED.search(text)
            required = float(m.group(2)) * _UNITS[m.group(3)] if m else None
            raise DoesNotFit(text.strip().splitlines()[0], required) from e
        raise
    finally:
        if dump is not None:
            dump.cleanup()
    return compiled, time.perf_counter() - start


def _does_not_fit(row: dict, parts: dict, err: DoesNotFit, start: float) -> dict:
    """A row for a program the compiler refused: the temp it asked for and the total."""
    temp = err.required
    total = sum(parts.values()) + (temp or 0)
    row.update(
        fits=False,
        bytes_per_chip={**parts, "temp": temp, "output": None, "total": total},
        compile_s=time.perf_counter() - start,
        compiler_message=str(err),
    )
    return row


def _guard(row: dict, fn) -> dict:
    """Run ``fn(row)``; a failure becomes the row's ``error`` instead of an exception."""
    try:
        return fn(row)
    except Exception as e:  # noqa: BLE001 - a sweep reports every failure as a row
        row["error"] = f"{type(e).__name__}: {e}".strip()
        row["traceback"] = traceback.format_exc(limit=8)
        return row


def train_row(
    config,
    devices,
    *,
    batch_per_chip: int,
    seq_len: int,
    frames: int = 1,
    run_steps: int = 0,
    precheck: bool = False,
    flags: str = "",
    breakdown: bool = False,
) -> dict:
    """Compile the training step of ``config`` for ``devices`` and describe it (one row).

    The global batch is ``batch_per_chip x chips`` rows of ``seq_len`` tokens (and ``frames``
    frames per row for a LLaVA model). ``flags``: XLA / libtpu flags for this compile (``aot.xla_flags``; recorded in the row).
    ``breakdown``: also say which parts of the step fill the temp memory
    (``row["memory_breakdown"]``).
    ``run_steps`` > 0 (CPU devices only) also runs the step
    on zero-filled state that many times after a warm-up and records the best time.
    ``precheck``: skip compiling when parameters, optimizer state and batch alone exceed HBM
    (the row says so in ``error``).
    """
    config = config.copy_and_resolve_references()
    n = len(devices)
    row = _base_row(config, devices, batch_per_chip, "train", flags)
    row.update(seq_len=seq_len, frames=frames)

    def body(row):
        mesh, rules = mesh_and_rules(config, devices)
        row["mesh"] = dict(mesh.shape)
        config.data.batch_size = batch_per_chip * n
        program = build_train_program(config, mesh, rules, warn=False)
        row["indivisible"] = [str(i) for i in indivisible_parameters(
            program.abstract_params, mesh, rules)]  # fmt: skip
        state = program.abstract_state
        batch = program.abstract_batch(batch_per_chip * n, seq_len, frames)
        row["params_sharding_ratio"] = sufficiency((state.trainable, state.frozen)).ratio
        parts = {
            "params": per_device_bytes((state.trainable, state.frozen)),
            "opt_state": per_device_bytes(state.opt_state),
            "batch": per_device_bytes(batch),
        }
        chip = chip_for(devices)
        row["hbm_bytes"] = chip.hbm_bytes
        resident = sum(parts.values())
        if precheck and resident > chip.hbm_bytes:
            row["bytes_per_chip"] = {**parts, "temp": None, "output": None, "total": resident}
            row["error"] = (
                f"not compiled: parameters + optimizer state + batch alone need "
                f"{resident / 2**30:.1f} GiB per chip, more than the {chip.hbm_gib:.1f} GiB of HBM"
            )
            return row
        start = time.perf_counter()
        try:
            lowered = program.lower(batch)
            compiled, row["compile_s"] = _compile(lowered, flags, row if breakdown else None)
        except DoesNotFit as e:
            return _does_not_fit(row, parts, e, start)
        cfg = program.model_cfg
        model_flops = flops.train_step_flops(
            cfg, batch_per_chip * n, seq_len, frames if cfg.arch == "llava" else 0,
            config.train.train_vision,
        ) / n  # fmt: skip
        row.update(
            flops=model_flops,
            grad_bytes=per_device_bytes(state.trainable),
            dcn_axis=get_strategy(config.mesh.strategy).dcn_axis,
        )
        _finish(row, compiled, parts, chip)
        if run_steps and devices[0].platform == "cpu":
            row["measured_step_s"] = _time_step(compiled, program, batch, run_steps)
        return row

    return _guard(row, body)


def _zeros(tree):
    def one(x):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.key(0)
        return jnp.zeros(x.shape, x.dtype)

    return jax.jit(lambda: jax.tree.map(one, tree),
                   out_shardings=jax.tree.map(lambda x: x.sharding, tree))()  # fmt: skip


def _time_step(compiled, program, batch_sds, steps: int) -> float:
    """Best wall time of ``steps`` runs of the compiled step on zero-filled state and a batch
    of token 0 (one warm-up run first)."""
    batch = {
        k: jax.device_put(np.zeros(v.shape, v.dtype), v.sharding) for k, v in batch_sds.items()
    }
    batch["attention_mask"] = jax.device_put(
        np.ones(batch_sds["attention_mask"].shape, np.int32), batch_sds["attention_mask"].sharding
    )
    state = _zeros(program.abstract_state)
    state, metrics = compiled(state, batch)
    jax.block_until_ready(metrics)
    best = math.inf
    for _ in range(steps):
        start = time.perf_counter()
        state, metrics = compiled(state, batch)
        jax.block_until_ready(metrics)
        best = min(best, time.perf_counter() - start)
    return best


def generate_row(
    config,
    devices,
    *,
    batch_per_chip: int,
    prompt_len: int,
    max_new_tokens: int,
    frames: int = 1,
    flags: str = "",
) -> dict:
    """Compile the decoding program (prefill + while loop over a preallocated KV cache) for
    ``devices``; the loop is costed at its upper bound of ``max_new_tokens - 1`` steps."""
    config = config.copy_and_resolve_references()
    n = len(devices)
    row = _base_row(config, devices, batch_per_chip, "generate", flags)
    row.update(seq_len=prompt_len, max_new_tokens=max_new_tokens, frames=frames)

    def body(row):
        mesh, rules = mesh_and_rules(config, devices)
        row["mesh"] = dict(mesh.shape)
        cfg = from_config_dict(config.model)
        model = abstract_model(cfg)
        gen = Generator(model, GenerateConfig(max_new_tokens=max_new_tokens), mesh=mesh,
                        rules=rules)  # fmt: skip
        b = batch_per_chip * n
        batch = abstract_batch(
            cfg, gen.batch_sharding, b, prompt_len, frames, ("input_ids", "attention_mask")
        )
        key = jax.eval_shape(lambda: jax.random.key(0))
        key = jax.ShapeDtypeStruct(key.shape, key.dtype, sharding=gen.replicated)
        params = with_shardings(nnx.state(model), jax.tree.map(lambda x: x.sharding, gen.state))
        parts = {
            "params": per_device_bytes(params),
            "opt_state": 0,
            "batch": per_device_bytes(batch),
            "kv_cache": per_device_bytes(
                cache_shardings(cfg, b, prompt_len + max_new_tokens, mesh, rules)
            ),  # fmt: skip
        }
        chip = chip_for(devices)
        row["hbm_bytes"] = chip.hbm_bytes
        start = time.perf_counter()
        try:
            compiled, row["compile_s"] = _compile(gen.lower(batch, key), flags)
        except DoesNotFit as e:
            return _does_not_fit(row, parts, e, start)
        # The prefill's logits are read at the last position only (XLA computes no others).
        unread_logits = 2 * cfg.text.hidden_size * cfg.text.vocab_size * b * (prompt_len - 1)
        model_flops = (
            flops.llm_forward_flops(cfg, b, prompt_len)
            - unread_logits
            + (max_new_tokens - 1) * flops.llm_forward_flops(cfg, b, 1)
        ) / n
        if cfg.arch == "llava" and frames:
            model_flops += (flops.vision_forward_flops(cfg, b * frames)
                            + flops.projector_forward_flops(cfg, b * frames)) / n  # fmt: skip
        row["flops"] = model_flops
        _finish(row, compiled, parts, chip)
        row["kv_cache_bytes_per_chip"] = parts["kv_cache"]
        return row

    return _guard(row, body)
