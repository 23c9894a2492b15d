"""The roofline estimate on a made-up chip with hand-computed numbers, and the chip table."""

from __future__ import annotations

import dataclasses
import math

import pytest

from emollm_jax.aot.chips import CHIPS, TPU_CHIPS, Chip, GiB, chip_for_device_kind, get_chip
from emollm_jax.aot.roofline import Estimate, collective_seconds, estimate, mfu

# 100 FLOP/s, 10 B/s of HBM, 1 B/s of ICI, 0.5 B/s of DCN.
TOY = Chip(
    name="toy",
    hbm_bytes=1000.0,
    peak_bf16_flops=100.0,
    hbm_bandwidth=10.0,
    ici_bandwidth=1.0,
    dcn_bandwidth=0.5,
    cores_per_chip=1,
)


def test_compute_bound():
    # 1000 FLOP / 100 = 10 s; 50 B / 10 = 5 s; all-gather of 4 B over 4 chips moves 3 B = 3 s.
    est = estimate(
        flops_per_chip=1000.0,
        bytes_accessed_per_chip=50.0,
        collectives={"all-gather": {"count": 2, "bytes": 4.0, "groups": 4}},
        chip=TOY,
    )
    assert est.compute_s == pytest.approx(10.0)
    assert est.hbm_s == pytest.approx(5.0)
    assert est.collective_s == pytest.approx(3.0)
    assert est.step_s == pytest.approx(13.0)
    assert est.step_s_overlapped == pytest.approx(10.0)
    assert est.bound == "compute"


def test_hbm_bound():
    est = estimate(flops_per_chip=100.0, bytes_accessed_per_chip=200.0, collectives={}, chip=TOY)
    assert (est.compute_s, est.hbm_s, est.collective_s) == pytest.approx((1.0, 20.0, 0.0))
    assert est.step_s == pytest.approx(20.0)
    assert est.step_s_overlapped == pytest.approx(20.0)
    assert est.bound == "hbm"


def test_collective_bound():
    # all-reduce of 10 B over 2 chips: 2 * 10 * 1/2 = 10 B; collective-permute of 5 B: 5 B.
    est = estimate(
        flops_per_chip=100.0,
        bytes_accessed_per_chip=10.0,
        collectives={
            "all-reduce": {"count": 3, "bytes": 10.0, "groups": 2},
            "collective-permute": {"count": 1, "bytes": 5.0, "groups": 2},
        },
        chip=TOY,
    )
    assert est.collective_s == pytest.approx(15.0)
    assert est.step_s == pytest.approx(1.0 + 15.0)
    assert est.step_s_overlapped == pytest.approx(15.0)
    assert est.bound == "collectives"


def test_as_dict_round_trips():
    est = estimate(flops_per_chip=100.0, bytes_accessed_per_chip=0.0, collectives={}, chip=TOY)
    d = est.as_dict()
    assert set(d) == {"compute_s", "hbm_s", "collective_s", "step_s", "step_s_overlapped", "bound"}
    assert Estimate(**d) == est


@pytest.mark.parametrize(
    ("kind", "groups", "seconds"),
    [
        ("all-gather", 4, 6.0),  # 8 * 3/4
        ("reduce-scatter", 4, 6.0),
        ("all-to-all", 4, 6.0),
        ("all-reduce", 4, 12.0),  # 2 * 8 * 3/4
        ("all-gather", 8, 7.0),  # 8 * 7/8
        ("all-reduce", 8, 14.0),
        ("collective-permute", 4, 8.0),  # no ring factor
        ("all-gather", None, 8.0),  # unknown group size: (g-1)/g taken as 1
        ("all-gather", 0, 8.0),
        ("all-reduce", None, 16.0),
        ("all-gather", 1, 0.0),  # a group of one moves nothing
    ],
)
def test_ring_traffic_per_kind(kind, groups, seconds):
    stats = {"count": 1, "bytes": 8.0}
    if groups is not None:
        stats["groups"] = groups
    assert collective_seconds({kind: stats}, TOY) == pytest.approx(seconds)


def test_all_reduce_is_twice_all_gather():
    for g in (2, 4, 16, 256):
        ag = collective_seconds({"all-gather": {"count": 1, "bytes": 1e6, "groups": g}}, TOY)
        ar = collective_seconds({"all-reduce": {"count": 1, "bytes": 1e6, "groups": g}}, TOY)
        assert ag == pytest.approx(1e6 * (g - 1) / g)
        assert ar == pytest.approx(2 * ag)


def test_kinds_add_up():
    both = {
        "all-gather": {"count": 1, "bytes": 8.0, "groups": 4},
        "reduce-scatter": {"count": 1, "bytes": 8.0, "groups": 2},
    }
    assert collective_seconds(both, TOY) == pytest.approx(6.0 + 4.0)


def test_cross_slice_bytes_go_over_dcn():
    # 2 B across slices at 0.5 B/s = 4 s on top of 3 s of ICI traffic.
    est = estimate(
        flops_per_chip=0.0,
        bytes_accessed_per_chip=0.0,
        collectives={"all-gather": {"count": 1, "bytes": 4.0, "groups": 4}},
        chip=TOY,
        cross_slice_bytes=2.0,
    )
    assert est.collective_s == pytest.approx(7.0)
    assert est.step_s == pytest.approx(7.0)
    assert est.bound == "collectives"


def test_dcn_fraction_splits_traffic():
    # 8 B of traffic: 6 B over ICI (6 s) and 2 B over DCN (4 s).
    c = {"all-gather": {"count": 1, "bytes": 8.0}}
    assert collective_seconds(c, TOY, dcn_kinds_fraction=0.25) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="dcn_kinds_fraction"):
        collective_seconds(c, TOY, dcn_kinds_fraction=1.5)


def test_mfu():
    assert mfu(50.0, 1.0, TOY) == pytest.approx(0.5)
    assert mfu(1000.0, 20.0, TOY) == pytest.approx(0.5)
    assert mfu(0.0, 1.0, TOY) == 0.0
    assert math.isnan(mfu(50.0, 0.0, TOY))
    assert math.isnan(mfu(50.0, None, TOY))


def test_nan_peak_gives_nan_not_an_exception():
    chip = dataclasses.replace(TOY, peak_bf16_flops=math.nan)
    est = estimate(flops_per_chip=100.0, bytes_accessed_per_chip=10.0, collectives={}, chip=chip)
    assert math.isnan(est.compute_s)
    assert est.hbm_s == pytest.approx(1.0)
    assert math.isnan(est.step_s) and math.isnan(est.step_s_overlapped)
    assert est.bound == "unknown"
    assert math.isnan(mfu(100.0, 1.0, chip))


def test_cpu_placeholder_estimates_are_nan():
    est = estimate(
        flops_per_chip=1e9,
        bytes_accessed_per_chip=1e6,
        collectives={"all-reduce": {"count": 1, "bytes": 1e3, "groups": 8}},
        chip=CHIPS["cpu"],
    )
    assert math.isnan(est.step_s) and est.bound == "unknown"
    assert math.isnan(mfu(1e9, 1.0, CHIPS["cpu"]))


def test_chip_table():
    v5p = CHIPS["v5p"]
    assert v5p.peak_bf16_flops == 459e12
    assert v5p.hbm_bytes == 95 * GiB
    assert v5p.hbm_bandwidth == 2765e9
    assert v5p.ici_bandwidth == 600e9
    assert v5p.cores_per_chip == 2
    assert CHIPS["v4"].cores_per_chip == 2
    assert CHIPS["v5e"].cores_per_chip == 1 and CHIPS["v6e"].cores_per_chip == 1
    assert CHIPS["v5e"].hbm_bytes == 16 * GiB and CHIPS["v5e"].peak_bf16_flops == 197e12
    assert CHIPS["v6e"].peak_bf16_flops == 918e12 and CHIPS["v4"].peak_bf16_flops == 275e12
    assert set(TPU_CHIPS) == {"v4", "v5e", "v5p", "v6e"}
    for name in TPU_CHIPS:
        chip = CHIPS[name]
        assert chip.name == name
        for field in ("hbm_bytes", "peak_bf16_flops", "hbm_bandwidth", "ici_bandwidth"):
            value = getattr(chip, field)
            assert math.isfinite(value) and value > 0, (name, field)
        assert math.isfinite(chip.dcn_bandwidth) and 0 < chip.dcn_bandwidth < chip.ici_bandwidth
        assert chip.cores_per_chip in (1, 2)
        # Plausibility: bytes/s and FLOP/s, not GB/s or TFLOP/s.
        assert 1e14 < chip.peak_bf16_flops < 1e16 and 1e11 < chip.hbm_bandwidth < 1e13


def test_chip_for_device_kind():
    assert chip_for_device_kind("TPU v5 lite") is CHIPS["v5e"]
    assert chip_for_device_kind("TPU v5e") is CHIPS["v5e"]
    assert chip_for_device_kind("TPU v5") is CHIPS["v5p"]
    assert chip_for_device_kind("TPU v5p") is CHIPS["v5p"]
    assert chip_for_device_kind("TPU v4") is CHIPS["v4"]
    assert chip_for_device_kind("TPU v6 lite") is CHIPS["v6e"]
    assert chip_for_device_kind(" tpu  v6e ") is CHIPS["v6e"]
    assert chip_for_device_kind("cpu") is CHIPS["cpu"]
    with pytest.raises(KeyError) as info:
        chip_for_device_kind("TPU v99 turbo")
    message = str(info.value)
    assert "TPU v99 turbo" in message
    for kind in ("TPU v4", "TPU v5 lite", "TPU v5", "TPU v6 lite"):
        assert repr(kind) in message


def test_get_chip():
    assert get_chip("v6e") is CHIPS["v6e"]
    assert get_chip("TPU v5 lite") is CHIPS["v5e"]
    with pytest.raises(KeyError, match="v5p"):
        get_chip("v7x-nope")
