"""Ahead-of-time compilation: the Trainer's step compiled for TPU topologies (compile-only
devices from libtpu, no TPU) and for cpu:8, and the report rows it yields."""

import functools
import json
import logging
import math
import os
import subprocess
import sys

import jax
import pytest

from emollm_jax.aot import analysis, topology
from emollm_jax.aot import hlo_stats
from emollm_jax.aot.report import REQUIRED_FIELDS
from emollm_jax.sharding.mesh import mesh_and_rules
from emollm_jax.sharding.rules import sufficiency
from emollm_jax.train.program import build_train_program
from tests.configs import REPO, load_config
from tests.train.helpers import train_config

pytestmark = pytest.mark.libtpu

pytest.importorskip("libtpu", reason="TPU topologies need libtpu (requirements-tpu.txt)")

STRATEGIES = ("dp", "fsdp", "tp", "fsdp_tp", "hsdp", "fsdp_vision_dp")


def tiny(strategy: str, wide: bool = False):
    """The tiny LLaVA on ``strategy``'s preset mesh; ``wide``: hidden sizes x4 (norm scales and
    biases, which no strategy shards, are then a negligible share, as at 7B)."""
    from emollm_jax.aot.compare import preset_shape
    from emollm_jax.config.model import from_config_dict

    c = load_config("llava_tiny")
    if wide:
        c.model.vision.hidden_size, c.model.vision.intermediate_size = 128, 512
        c.model.text.hidden_size, c.model.text.intermediate_size = 256, 1024
    c.mesh.strategy = strategy
    c.mesh.shape = preset_shape(strategy, from_config_dict(c.model), 8)
    return c


@pytest.fixture(scope="module")
def v5e8():
    return topology.devices(topology.parse("v5e-8"))


@functools.cache
def tiny_v5e8_row(strategy: str) -> dict:
    """``tiny(strategy)``'s training step compiled for v5e-8 (batch 1 per chip, 128 tokens) and
    its row, once per test process: the tests that read this program share its compilation."""
    devices = topology.devices(topology.parse("v5e-8"))
    return analysis.train_row(tiny(strategy), devices, batch_per_chip=1, seq_len=128)


def test_topology_names():
    assert topology.parse("v5p-64").chips == 32
    assert topology.parse("v5p-64").shape == (2, 4, 4)
    assert topology.parse("v4-32").chips == 16
    assert topology.parse("v6e-256").shape == (16, 16)
    assert topology.parse("cpu:8").platform == "cpu"
    for bad in ("v5p-63", "v7x-8", "tpu", "v5e-3", "cpu:0"):
        with pytest.raises(topology.TopologyError, match="TensorCores"):
            topology.parse(bad)


def test_libtpu_missing_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "libtpu", None)  # import libtpu -> ImportError
    with pytest.raises(topology.TopologyError, match="requirements-tpu.txt"):
        topology.devices(topology.parse("v5e-8"))


_QUIET_COMPILE = """
import os, jax, jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from emollm_jax.aot import topology
devices = topology.devices(topology.parse("v5e-8"))
x = jax.ShapeDtypeStruct((8, 128), jnp.float32, sharding=NamedSharding(Mesh(devices, "d"), P("d")))
jax.jit(lambda a: a * 2).lower(x).compile()
print(len(devices), os.environ.get("TPU_WORKER_HOSTNAMES"), os.environ.get("TPU_ACCELERATOR_TYPE"))
"""


def test_a_tpu_compile_on_a_machine_without_tpu_prints_no_alarm():
    env = {k: v for k, v in os.environ.items() if not k.startswith("TPU_")}
    done = subprocess.run(
        [sys.executable, "-c", _QUIET_COMPILE], cwd=REPO, env=env | {"PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["8", "None", "None"]  # the host's environment as it was
    for alarm in ("unexpected worker hostname", "E0000", "Failed to find host bounds"):
        assert alarm not in done.stderr, done.stderr[-3000:]


@pytest.mark.slow  # over ~8 s here
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_compiles_for_v5e8(strategy):
    row = tiny_v5e8_row(strategy)
    assert row["error"] is None, row.get("traceback")
    assert set(REQUIRED_FIELDS) <= set(row)
    assert row["fits"] and row["chip"] == "v5e" and row["hbm_bytes"] == 16 * 2**30
    b = row["bytes_per_chip"]
    assert b["total"] >= b["temp"] >= 0 and b["params"] > 0
    assert row["est_step_s"] > 0 and 0 < row["est_mfu"] < 1
    # The compiled program does at least the model's FLOPs (the trainer's count), at most a
    # few times more (remat off here; elementwise work is not counted by either).
    assert row["flops"] <= row["hlo_flops"] * 1.05
    assert row["hlo_flops"] < 4 * row["flops"]
    # Every part's work is found under its named scope.
    parts = row["parts"]
    assert parts["attention"]["flops"] > 0 and parts["vision_tower"]["flops"] > 0
    assert parts["lm_head"]["flops"] > 0 and parts["optimizer"]["bytes"] > 0


@pytest.mark.slow  # 60-80 s each here (Mosaic compiles the splash kernels)
@pytest.mark.parametrize("strategy", ["fsdp", "fsdp_tp"])
def test_splash_and_chunked_loss_compile_for_v5e8(strategy, v5e8):
    """The Mosaic kernel inside shard_map, forward and backward, for a TPU; its modelled FLOPs
    are counted, above XLA's count of the plain path (the kernels' backward recomputes)."""
    kernels = tiny(strategy)
    kernels.model.attention = "splash"
    kernels.train.loss_chunk = 64
    row = analysis.train_row(kernels, v5e8, batch_per_chip=1, seq_len=256)
    assert row["error"] is None, row.get("traceback")
    assert row["fits"]
    plain = analysis.train_row(tiny(strategy), v5e8, batch_per_chip=1, seq_len=256)
    splash_attention = row["parts"]["attention"]["flops"]
    xla_attention = plain["parts"]["attention"]["flops"]
    assert xla_attention < splash_attention < 2.5 * xla_attention
    assert row["flops"] <= row["hlo_flops"] < 4 * row["flops"]


def _param_bytes(strategy, devices):
    config = tiny(strategy, wide=True)
    mesh, rules = mesh_and_rules(config, devices)
    program = build_train_program(config, mesh, rules)
    state = program.abstract_state
    return sufficiency((state.trainable, state.frozen)), program


def test_fsdp_shards_and_dp_replicates(v5e8):
    fsdp, _ = _param_bytes("fsdp", v5e8)
    assert fsdp.per_device_bytes <= 1.02 * fsdp.total_bytes / 8
    dp, _ = _param_bytes("dp", v5e8)
    assert dp.per_device_bytes == dp.total_bytes
    # The optimizer moments follow the parameters (XLA alone would replicate them).
    _, program = _param_bytes("fsdp", v5e8)
    opt = sufficiency(program.abstract_state.opt_state)
    assert opt.per_device_bytes <= 1.05 * opt.total_bytes / 8


def test_vision_tower_replicated_only_under_fsdp_vision_dp(v5e8):
    def vision_spec(strategy):
        _, program = _param_bytes(strategy, v5e8)
        frozen = program.abstract_state.frozen
        leaf = frozen["vision_tower"]["layers"]["mlp"]["fc1"]["kernel"].get_value()
        return leaf.sharding.spec

    assert "fsdp" in jax.tree.leaves(tuple(vision_spec("fsdp")))
    assert all(a is None for a in vision_spec("fsdp_vision_dp"))


def _hlo(strategy):
    """The optimized HLO of ``tiny(strategy)``'s training step for v5e-8 (global batch 8 of 128
    tokens): the program ``test_every_strategy_compiles_for_v5e8`` compiles."""
    row = tiny_v5e8_row(strategy)
    assert row["error"] is None, row.get("traceback")
    return row["hlo"]


@pytest.mark.slow  # three compilations where test_every_strategy_compiles_for_v5e8 ran elsewhere
def test_collectives_by_strategy(v5e8):
    """TP all-reduces activations; FSDP all-gathers parameters and reduces gradients to their
    shards; DP gathers no parameter. XLA:TPU writes FSDP's gradient reduce-scatter as an
    all-reduce at this size (and as collective-permute loops, windowed einsums, at 7B), so
    either counts."""
    tp = hlo_stats.analyze(_hlo("tp")).collectives
    assert tp.get("all-reduce", {}).get("count", 0) >= 1
    fsdp = hlo_stats.analyze(_hlo("fsdp")).collectives
    assert fsdp.get("all-gather", {}).get("count", 0) >= 4
    reduced = sum(fsdp.get(k, {}).get("count", 0) for k in ("reduce-scatter", "all-reduce"))
    assert reduced >= 1
    dp = hlo_stats.analyze(_hlo("dp")).collectives
    assert dp.get("all-gather", {}).get("bytes", 0) < fsdp["all-gather"]["bytes"] / 10
    config = tiny("dp")
    mesh, rules = mesh_and_rules(config, v5e8)
    program = build_train_program(config, mesh, rules)
    grad_bytes = sufficiency(program.abstract_state.trainable).total_bytes
    assert dp["all-reduce"]["bytes"] >= grad_bytes


def test_indivisible_parameter_is_named(v5e8, caplog):
    config = tiny("fsdp")
    config.mesh.rules = {"vocab": "fsdp"}
    config.model.text.vocab_size = 1020  # not a multiple of 8
    mesh, rules = mesh_and_rules(config, v5e8)
    with caplog.at_level(logging.WARNING, logger="emollm_jax.sharding.rules"):
        build_train_program(config, mesh, rules)
    named = [r.getMessage() for r in caplog.records if "vocab=1020" in r.getMessage()]
    assert any("language_model/embed_tokens/embedding" in m for m in named), caplog.text


def test_mesh_not_matching_the_topology_is_named(v5e8):
    config = tiny("fsdp")
    config.mesh.shape = {"data": 1, "fsdp": 16, "tensor": 1}
    row = analysis.train_row(config, v5e8, batch_per_chip=1, seq_len=128)
    assert "config.mesh.shape" in row["error"] and "8 are available" in row["error"]


@pytest.mark.slow  # compiles and runs the training step on 8 CPU devices
def test_cpu8_compiles_the_trainers_program(small_emobench, tmp_path):
    from emollm_jax.data.global_batch import to_global
    from emollm_jax.train.loop import Trainer

    config = train_config(small_emobench)
    config.mesh.strategy = "fsdp"
    config.mesh.shape = {"data": 1, "fsdp": 8, "tensor": 1}
    trainer = Trainer(config, tmp_path / "run")
    try:
        batch = to_global(next(trainer.iterator), trainer.mesh, trainer.rules)
        seq, frames = batch["input_ids"].shape[1], batch["pixel_values"].shape[1]
        trainers = trainer._step.lower(trainer.state, batch).compile().memory_analysis()
    finally:
        trainer.close()
    row = analysis.train_row(
        config, jax.devices()[:8], batch_per_chip=1, seq_len=seq, frames=frames, run_steps=1
    )
    assert row["error"] is None, row.get("traceback")
    ours = row["bytes_per_chip"]
    assert ours["temp"] == trainers.temp_size_in_bytes
    assert ours["output"] == trainers.output_size_in_bytes - trainers.alias_size_in_bytes
    assert ours["total"] == (
        trainers.argument_size_in_bytes + ours["output"] + trainers.temp_size_in_bytes
    )
    assert row["measured_step_s"] > 0 and math.isfinite(row["est_step_s"])


def _cli(*args, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow  # the CLI in subprocesses, each compiling
def test_compile_cli_json_and_exit_codes(tmp_path):
    out = tmp_path / "row.json"
    ok = _cli("emollm_jax.compile", "--config", "configs/llava_tiny.py", "--topology", "v5e-8",
              "--config.mesh.strategy=fsdp", "--config.mesh.shape.fsdp=-1",
              "--config.mesh.shape.data=1", "--json", str(out))  # fmt: skip
    assert ok.returncode == 0, ok.stderr[-3000:]
    row = json.loads(out.read_text())
    assert set(REQUIRED_FIELDS) <= set(row) and row["fits"] and row["error"] is None
    assert "ESTIMATE" in ok.stdout and "fits" in ok.stdout
    bad = _cli("emollm_jax.compile", "--config", "configs/llava_tiny.py", "--topology", "v5q-8")
    assert bad.returncode == 2 and "v5p-64" in bad.stderr


@pytest.mark.slow
@pytest.mark.full_size
def test_llava_7b_data_parallel_does_not_fit_v5e(tmp_path):
    """Replicated 7B parameters and AdamW moments cannot fit 16 GiB: the row says by how
    much, and --require-fit turns that into exit status 4."""
    out = tmp_path / "row.json"
    r = _cli("emollm_jax.compile", "--config", "configs/llava_7b.py", "--topology", "v5e-8",
             "--config.mesh.strategy=dp", "--config.mesh.shape.data=-1",
             "--config.mesh.shape.fsdp=1", "--require_fit", "--json", str(out))  # fmt: skip
    assert r.returncode == 4, r.stdout[-2000:] + r.stderr[-3000:]
    row = json.loads(out.read_text())
    assert not row["fits"] and row["bytes_per_chip"]["total"] > row["hbm_bytes"]
    assert "DOES NOT FIT" in r.stdout


@pytest.mark.slow
@pytest.mark.full_size
def test_emollm_7b_compiles_for_v5p_under_fsdp():
    """The real 7B EmoLLM (scanned layers, full remat, bf16 compute) on v5p-64 with splash
    attention and the chunked loss: 100-235 s of compilation on 2-core machines (one libtpu
    compile, which every check reads)."""
    config = load_config("emollm_7b")
    config.model.attention = "splash"
    config.train.loss_chunk = 512
    devices = topology.devices(topology.parse("v5p-64"))
    # The tests' "highest" matmul precision would ask Mosaic for fp32 contract precision on
    # bfloat16 operands, which it refuses (README: what does not work yet).
    with jax.default_matmul_precision("default"):
        row = analysis.train_row(config, devices, batch_per_chip=1, seq_len=2048)
    assert row["error"] is None, row.get("traceback")
    assert row["fits"] and row["mesh"]["fsdp"] == 32
    b = row["bytes_per_chip"]
    # ~7.1B float32 parameters over 32 chips; AdamW's two moments for the trainable part.
    assert 0.7 * 2**30 < b["params"] < 0.95 * 2**30
    assert 1.3 * 2**30 < b["opt_state"] < 1.8 * 2**30
    # The scanned 32-layer loop is multiplied out: the program's dots are at least the
    # model's FLOPs (recomputation adds ~1/3 with full remat).
    assert row["flops"] <= row["hlo_flops"] < 2 * row["flops"]
    # The splash kernels are in the program, and no [rows, 2048, vocab] float32 logits.
    assert row["parts"]["attention"]["flops"] > 0


@pytest.mark.slow  # about 30 s here
def test_two_slices_put_the_strategys_dcn_axis_across_slices():
    devices = topology.devices(topology.parse("v5e-8"), num_slices=2)
    assert len(devices) == 16
    hybrid = analysis.train_row(tiny("hsdp"), devices, batch_per_chip=1, seq_len=128)
    assert hybrid["error"] is None, hybrid.get("traceback")
    # hsdp: FSDP over the 8 chips of a slice, data parallel across the 2 slices.
    assert hybrid["mesh"] == {"data": 2, "fsdp": 8, "tensor": 1}
    assert hybrid["num_slices"] == 2 and hybrid["cross_slice_bytes"] > 0
    mesh, _ = mesh_and_rules(tiny("hsdp"), devices)
    for column in range(8):  # each fsdp group stays inside one slice
        assert len({d.slice_index for d in mesh.devices[0, column].flat}) == 1
    assert {d.slice_index for d in mesh.devices[:, 0, 0].flat} == {0, 1}


def test_generate_program_reports_its_kv_cache(v5e8):
    config = tiny("fsdp")
    row = analysis.generate_row(config, v5e8, batch_per_chip=2, prompt_len=64, max_new_tokens=16)
    assert row["error"] is None, row.get("traceback")
    t = config.model.text
    rows, slots, head_dim = 2 * 8, 64 + 16, t.hidden_size // t.num_heads
    kv = 2 * t.num_layers * rows * slots * t.num_kv_heads * head_dim * 4  # k and v, float32
    valid = rows * slots  # the slot mask, one byte each
    assert row["kv_cache_bytes_per_chip"] == (kv + valid) // 8 + 4  # batch split 8 ways; index
    assert row["bytes_per_chip"]["opt_state"] == 0 and row["fits"]
    # The decoding loop may stop early, so its cost is the upper bound: 15 steps after prefill.
    assert any(trips is None for _, trips in row["while_loops"])
    assert 0.8 * row["flops"] <= row["hlo_flops"] <= 1.25 * row["flops"]
    assert row["parts"]["attention"]["flops"] > 0 and row["parts"]["vision_tower"]["flops"] > 0
