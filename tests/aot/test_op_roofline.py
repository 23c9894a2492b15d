"""The op-level step-time model (``aot.roofline.estimate_ops``), term by term, on hand-built ops
and hand-written HLO whose effect is known."""

import dataclasses
import math

import pytest

from emollm_jax.aot import hlo_stats, roofline
from emollm_jax.aot.chips import CHIPS
from emollm_jax.aot.hlo_stats import Op

V6E = CHIPS["v6e"]
PLAIN = roofline.Calibration()  # every efficiency 1, no fixed costs: the bare per-op roofline


def _matmul(flops=918e12, bytes_=0.0, dims=(8192, 4096, 4096), name="dot"):
    return Op(name, "fusion", "other", 1.0, flops, bytes_, mxu_dims=dims)


def test_each_op_takes_the_longer_of_its_matmul_and_memory_time_and_ops_add_up():
    # 1 s of matmul beside 0.5 s of bytes, then 0.2 s of matmul beside 1 s of bytes.
    ops = [_matmul(918e12, 0.5 * 1638e9), _matmul(0.2 * 918e12, 1638e9, name="b")]
    est = roofline.estimate_ops(ops, V6E, PLAIN)
    assert est.step_s == pytest.approx(2.0)
    assert est.compute_s == pytest.approx(1.0) and est.memory_s == pytest.approx(1.0)
    # The old whole-program roofline would have said max(1.2, 1.5) = 1.5 s.
    assert est.step_s > max(1.2, 1.5)


def test_an_async_collective_beside_a_matmul_is_hidden_and_a_synchronous_one_is_not():
    traffic = 0.5 * V6E.ici_bandwidth  # 0.5 s on the wire (group unknown: share 1)
    gather = Op("ag", "all-gather-start", "other", 1.0, 0.0, 0.0, collective="all-gather",
                buffer=traffic, is_async=True)  # fmt: skip
    hidden = roofline.estimate_ops([_matmul(), gather], V6E, PLAIN)
    assert hidden.step_s == pytest.approx(1.0)
    assert hidden.async_collective_s == pytest.approx(0.5)
    exposed = roofline.estimate_ops([_matmul(), dataclasses.replace(gather, is_async=False)],
                                    V6E, PLAIN)  # fmt: skip
    assert exposed.step_s == pytest.approx(1.5)
    # A collective longer than everything beside it bounds the step.
    long = dataclasses.replace(gather, buffer=3 * V6E.ici_bandwidth)
    assert roofline.estimate_ops([_matmul(), long], V6E, PLAIN).bound == "collectives"


def test_a_matmul_below_the_mxu_tile_runs_slower_than_its_flops_say():
    assert roofline.mxu_fill((8192, 4096, 4096), 256) == 1.0
    assert roofline.mxu_fill((8192, 100, 4096), 128) == pytest.approx(100 / 128)
    assert roofline.mxu_fill((8192, 100, 64), 128) == pytest.approx(100 / 128 * 64 / 128)
    thin = roofline.estimate_ops([_matmul(dims=(8192, 64, 4096))], V6E, PLAIN)
    assert thin.step_s == pytest.approx(256 / 64)  # a quarter of a 256-wide MXU
    assert CHIPS["h100"].mxu_tile == 1  # no such effect modelled for a GPU


def test_per_op_and_per_collective_fixed_costs_scale_with_their_counts():
    c = dataclasses.replace(PLAIN, op_overhead_s=1e-3, collective_latency_s=1e-2)
    ops = [dataclasses.replace(_matmul(918e9), count=10.0),
           Op("ar", "all-reduce", "other", 5.0, 0.0, 0.0, collective="all-reduce", buffer=0.0)]
    est = roofline.estimate_ops(ops, V6E, c)
    assert est.overhead_s == pytest.approx(10 * 1e-3)
    assert est.sync_collective_s == pytest.approx(5 * 1e-2)
    assert est.step_s == pytest.approx(1e-3 * 1 + 10e-3 + 5e-2)


def test_host_offload_copies_run_beside_the_stream_at_the_host_link_speed():
    copy = Op("cp", "copy-start", "other", 1.0, 0.0, 0.0, host_bytes=2 * V6E.host_bandwidth,
              is_async=True)  # fmt: skip
    est = roofline.estimate_ops([_matmul(), copy], V6E, PLAIN)
    assert est.host_s == pytest.approx(2.0)
    assert est.step_s == pytest.approx(2.0) and est.bound == "host"


_HLO = """HloModule m, num_partitions=8

%fused (p0: bf16[1024,4096], p1: bf16[4096,256]) -> bf16[1024,256] {
  %p0 = bf16[1024,4096]{1,0:T(8,128)(2,1)S(1)} parameter(0)
  %p1 = bf16[4096,256]{1,0:T(8,128)(2,1)S(1)} parameter(1)
  ROOT %d = bf16[1024,256]{1,0} dot(%p0, %p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

ENTRY %main (a: bf16[1024,4096], w: bf16[4096,256]) -> bf16[1024,256] {
  %a = bf16[1024,4096]{1,0:T(8,128)(2,1)S(1)} parameter(0)
  %w = bf16[4096,256]{1,0:T(8,128)(2,1)S(1)} parameter(1)
  ROOT %f = bf16[1024,256]{1,0:T(8,128)(2,1)S(1)} fusion(%a, %w), kind=kOutput, calls=%fused
}
"""


def test_a_fusion_whose_operands_stay_on_chip_moves_no_hbm_bytes():
    stats = hlo_stats.analyze(_HLO)
    (op,) = [o for o in stats.ops if o.opcode == "fusion"]
    assert op.flops == 2 * 1024 * 256 * 4096
    assert op.mxu_dims == (1024, 256, 4096)
    assert op.bytes == 0.0  # operands and result in VMEM (S(1))
    on_hbm = hlo_stats.analyze(_HLO.replace("S(1)", ""))
    (hbm_op,) = [o for o in on_hbm.ops if o.opcode == "fusion"]
    assert hbm_op.bytes == 2 * (1024 * 4096 + 4096 * 256 + 1024 * 256)
    est = roofline.estimate_ops(on_hbm.ops, V6E, PLAIN)
    assert est.bound == "hbm" and not math.isnan(est.step_s)


def test_the_calibrated_constants_are_printed_with_their_names():
    names = set(roofline.constants())
    assert {"mxu_efficiency", "attention_efficiency", "hbm_efficiency", "op_overhead_s",
            "collective_latency_s"} <= names  # fmt: skip
