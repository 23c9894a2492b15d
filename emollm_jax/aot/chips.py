"""Per-chip hardware figures for the roofline estimate (``aot.roofline``).

One ``Chip`` per accelerator kind: HBM capacity, peak bf16 FLOP/s, HBM, ICI and DCN bandwidth,
TensorCores per chip. The TPU figures are Google Cloud's published per-version specifications
(the "TPU v4/v5e/v5p/v6e" system-architecture pages, docs.cloud.google.com/tpu/docs/<version>),
the GPU figures NVIDIA's datasheets; every row names its source and every figure that is an
assumption rather than a published number says so. ``chip_for_device_kind`` maps JAX's
``device.device_kind`` strings to rows.

Units: bytes, FLOP/s, bytes/s. HBM capacities are binary (GiB): the pages write "GB" for some
versions, but the stacks are power-of-two sized and JAX reports them that way.

ICI bandwidth is ONE direction, summed over the chip's links. The Cloud pages state a
"bidirectional inter-chip interconnect (ICI) bandwidth (per chip)" in GBps (both directions of
all links); the value here is half of it. Older versions of the same pages state
"Interchip Interconnect BW" in Gbps (v5e 1,600 Gbps = 200 GB/s, v5p 4,800 Gbps = 600 GB/s):
exactly those halves.

DCN bandwidth is per chip, between slices (multi-slice only).
"""

from __future__ import annotations

import dataclasses
import math
import os

GiB = 2**30
_GBPS = 1e9 / 8  # one gigabit per second, in bytes/s
nan = math.nan


@dataclasses.dataclass(frozen=True)
class Chip:
    name: str
    hbm_bytes: float
    peak_bf16_flops: float
    hbm_bandwidth: float
    ici_bandwidth: float
    dcn_bandwidth: float
    cores_per_chip: int
    # The matrix unit's tile edge: a matmul dimension that is not a multiple of it leaves part
    # of the systolic array idle (TPU v4/v5e/v5p MXUs are 128x128, v6e's 256x256; a GPU's
    # tensor-core tiles are far smaller: 1, no effect modelled).
    mxu_tile: int = 1
    # Bytes/s one way between the chip's HBM and its host's memory (host offload of remat
    # residuals): ASSUMPTION for every TPU, a PCIe 4.0 x16 link per chip (32 GB/s nominal);
    # nan where unknown.
    host_bandwidth: float = math.nan

    @property
    def hbm_gib(self) -> float:
        return self.hbm_bytes / GiB


def _host_memory_bytes() -> float:
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return nan


CHIPS: dict[str, Chip] = {
    # "TPU v4" page, table "Key specifications / v4 Pod values": "Peak compute per chip 275
    # teraflops (bf16 or int8)", "HBM2 capacity and bandwidth 32 GiB, 1200 GBps", "All-reduce
    # bandwidth per Pod 1.1 PB/s", "TPU Pod size 4096 chips"; two TensorCores per chip.
    # ICI: the page gives no per-chip figure; 1.1 PB/s / 4096 chips = 268.6 GB/s per chip (this
    # ratio gives exactly the per-direction figure on the v5e and v6e pages). 2,400 Gbps
    # (300 GB/s, 6 links x 50 GB/s) is quoted elsewhere; the documented ratio is used.
    # DCN: ASSUMPTION, 25 GB/s per host / 4 chips per host = 6.25 GB/s (not on the page).
    "v4": Chip(
        name="v4",
        hbm_bytes=32 * GiB,
        peak_bf16_flops=275e12,
        hbm_bandwidth=1200e9,
        ici_bandwidth=1.1e15 / 4096,
        dcn_bandwidth=25e9 / 4,
        cores_per_chip=2,
        mxu_tile=128,
        host_bandwidth=32e9,
    ),
    # "TPU v5e" page: "Peak compute per chip (bf16) 197 TFLOPs", "HBM2 capacity and bandwidth
    # 16 GB, 819 GBps", "Bidirectional inter-chip interconnect (ICI) bandwidth (per chip)
    # 400 GBps" (earlier page: "Interchip Interconnect BW 1600 Gbps"), "Data center network
    # bandwidth per Pod 6.4 Tbps", "TPU Pod size 256 chips", one TensorCore per chip.
    # ICI 400 / 2 = 200 GB/s. DCN 6.4 Tbps / 256 chips = 25 Gbps = 3.125 GB/s per chip (also
    # "Per-host NIC configuration 2 x 100 Gbps NIC" over "Chips per host 8").
    "v5e": Chip(
        name="v5e",
        hbm_bytes=16 * GiB,
        peak_bf16_flops=197e12,
        hbm_bandwidth=819e9,
        ici_bandwidth=400e9 / 2,
        dcn_bandwidth=6.4e12 / 8 / 256,
        cores_per_chip=1,
        mxu_tile=128,
        host_bandwidth=32e9,
    ),
    # "TPU v5p" page: "Peak compute per chip (BF16) 459 TFLOPs", "HBM capacity per chip (GiB)
    # 95", "HBM bandwidth per chip (GBps) 2765", "Number of TensorCores per chip 2",
    # "Bidirectional inter-chip interconnect (ICI) bandwidth per chip (GBps) 1200" (earlier
    # page: "Interchip Interconnect BW 4800 Gbps"), "Data center network (DCN) bandwidth per chip
    # (Gbps) 50". ICI 1200 / 2 = 600 GB/s; DCN 50 Gbps = 6.25 GB/s.
    "v5p": Chip(
        name="v5p",
        hbm_bytes=95 * GiB,
        peak_bf16_flops=459e12,
        hbm_bandwidth=2765e9,
        ici_bandwidth=1200e9 / 2,
        dcn_bandwidth=50 * _GBPS,
        cores_per_chip=2,
        mxu_tile=128,
        host_bandwidth=32e9,
    ),
    # "TPU v6e" (Trillium) page: "Peak compute per chip (bf16) 918 TFLOPs", "HBM capacity per
    # chip 32 GB", "HBM bandwidth per chip 1638 GBps" (the launch figure: 1640 GBps),
    # "Bidirectional inter-chip interconnect (ICI) bandwidth (per chip) 800 GBps", "Chips per
    # host 8", one TensorCore per chip. ICI 800 / 2 = 400 GB/s (= "All-reduce bandwidth per Pod
    # 102.4 TB/s" / 256 chips). DCN: ASSUMPTION, 25 GB/s per host / 8 chips = 3.125 GB/s.
    "v6e": Chip(
        name="v6e",
        hbm_bytes=32 * GiB,
        peak_bf16_flops=918e12,
        hbm_bandwidth=1638e9,
        ici_bandwidth=800e9 / 2,
        dcn_bandwidth=25e9 / 8,
        cores_per_chip=1,
        mxu_tile=256,
        host_bandwidth=32e9,
    ),
    # NVIDIA A100 datasheet (SXM4 80GB): "BFLOAT16 Tensor Core 312 TFLOPS" (dense), "GPU memory
    # 80GB HBM2e", "GPU memory bandwidth 2,039 GB/s", "NVLink: 600 GB/s" (both directions):
    # "ICI" here is NVLink, 300 GB/s one direction. DCN: ASSUMPTION, one 200 Gb/s HDR
    # InfiniBand NIC per GPU (DGX A100) = 25 GB/s.
    "a100": Chip(
        name="a100",
        hbm_bytes=80 * GiB,
        peak_bf16_flops=312e12,
        hbm_bandwidth=2039e9,
        ici_bandwidth=600e9 / 2,
        dcn_bandwidth=200 * _GBPS,
        cores_per_chip=1,
    ),
    # NVIDIA H100 datasheet (SXM): "BF16 Tensor Core 1,979 teraFLOPS" with sparsity, i.e.
    # 989.5 dense; "GPU memory 80GB", "GPU memory bandwidth 3.35TB/s", "NVLink 900GB/s" (both
    # directions) -> 450 GB/s. DCN: ASSUMPTION, one 400 Gb/s NDR NIC per GPU (DGX H100) = 50 GB/s.
    "h100": Chip(
        name="h100",
        hbm_bytes=80 * GiB,
        peak_bf16_flops=989.5e12,
        hbm_bandwidth=3.35e12,
        ici_bandwidth=900e9 / 2,
        dcn_bandwidth=400 * _GBPS,
        cores_per_chip=1,
    ),
    # NVIDIA H200 datasheet (SXM): "BF16 Tensor Core 1,979 TFLOPS" with sparsity (989.5 dense),
    # "GPU memory 141GB", "GPU memory bandwidth 4.8TB/s", "NVLink 900GB/s". DCN as for h100.
    "h200": Chip(
        name="h200",
        hbm_bytes=141 * GiB,
        peak_bf16_flops=989.5e12,
        hbm_bandwidth=4.8e12,
        ici_bandwidth=900e9 / 2,
        dcn_bandwidth=400 * _GBPS,
        cores_per_chip=1,
    ),
    # Placeholder for the host CPU (the tests' fake devices): "HBM" is the host's physical
    # memory (nan where the OS does not say); peak and bandwidths are unknown here and are nan,
    # so every time and MFU derived from them is nan. A caller that has measured a peak can
    # use dataclasses.replace(CHIPS["cpu"], peak_bf16_flops=...).
    "cpu": Chip(
        name="cpu",
        hbm_bytes=_host_memory_bytes(),
        peak_bf16_flops=nan,
        hbm_bandwidth=nan,
        ici_bandwidth=nan,
        dcn_bandwidth=nan,
        cores_per_chip=1,
    ),
}

TPU_CHIPS = ("v4", "v5e", "v5p", "v6e")

DEVICE_KINDS: dict[str, str] = {
    "TPU v4": "v4",
    "TPU v5 lite": "v5e",
    "TPU v5e": "v5e",
    "TPU v5": "v5p",
    "TPU v5p": "v5p",
    "TPU v6 lite": "v6e",
    "TPU v6e": "v6e",
    "NVIDIA A100-SXM4-80GB": "a100",
    "NVIDIA H100 80GB HBM3": "h100",
    "NVIDIA H200": "h200",
    "cpu": "cpu",
}

_BY_FOLDED_KIND = {kind.casefold(): name for kind, name in DEVICE_KINDS.items()}


def chip_for_device_kind(device_kind: str) -> Chip:
    """The ``Chip`` for a JAX ``device.device_kind`` (case and outer spaces ignored)."""
    name = _BY_FOLDED_KIND.get(" ".join(str(device_kind).split()).casefold())
    if name is None:
        known = ", ".join(repr(k) for k in DEVICE_KINDS)
        raise KeyError(f"unknown device kind {device_kind!r}; known kinds: {known}")
    return CHIPS[name]


def get_chip(name: str) -> Chip:
    """The ``Chip`` named ``name`` (``v5p``, ...) or, failing that, by device kind."""
    if name in CHIPS:
        return CHIPS[name]
    try:
        return chip_for_device_kind(name)
    except KeyError:
        raise KeyError(
            f"unknown chip {name!r}; chips: {', '.join(CHIPS)}; "
            f"device kinds: {', '.join(repr(k) for k in DEVICE_KINDS)}"
        ) from None
