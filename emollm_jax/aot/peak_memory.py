"""Where a compiled program's memory goes at its peak, read from the compiler's own dumps.

``memory_analysis()`` gives totals (arguments, outputs, temp). To say *what* fills HBM at the
moment of the peak, the program is compiled once more with ``xla_dump_to`` (a compile option, so
nothing else changes) and two of XLA's dump files are read:

- ``*after_optimizations-live-range.txt``: the buffers live at the peak of the program's
  schedule ("Live ranges at N (peak)"), with their sizes;
- ``*after_optimizations.txt``: the optimized HLO, for each buffer's shape, memory space
  (``S(1)`` VMEM, ``S(5)`` host; none: HBM) and ``op_name`` (the named scopes of the model).

Each HBM buffer live at the peak is put in one part by its ``op_name``: parameters and optimizer
state (the step's arguments), the layer stack's forward or backward pass, the loss, the
optimizer update, and so on. Buffers in VMEM or host memory are left out (they are not HBM).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

_PEAK = re.compile(r"Live ranges at \d+ \(peak\):")
_LIVE = re.compile(r"^\s+(\S+?)(\{[\d,]*\})?: (\d+) bytes")
_INSTR = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = (.*?) ([a-z][\w\-]*)\(")
_OP_NAME = re.compile(r'op_name="([^"]*)"')
_SPACE = re.compile(r"S\((\d+)\)")


@dataclasses.dataclass(frozen=True)
class Buffer:
    name: str
    bytes: int
    shape: str
    opcode: str
    op_name: str
    part: str


# (part, predicate on (opcode, op_name)) in order: the first that matches names the part.
def _part(name: str, opcode: str, op_name: str) -> str:
    if opcode == "parameter":
        return "arguments (parameters, optimizer state, batch)"
    scopes = op_name.split("/")
    backward = "transpose(" in op_name or "jvp(" in op_name and "transpose" in op_name
    if any(s.startswith("optimizer") for s in scopes):
        return "optimizer update"
    if "loss" in scopes or "lm_head" in scopes:
        return "loss and LM head" + (" (backward)" if backward else "")
    if "while" in scopes or "layers" in op_name or "scan" in op_name or "checkpoint" in op_name:
        return "layer stack" + (" (backward)" if backward else " (forward)")
    if "embed" in op_name:
        return "embedding" + (" (backward)" if backward else "")
    return "other" + (" (backward)" if backward else "")


def _instructions(hlo_text: str) -> dict[str, tuple[str, str, str]]:
    """instruction name -> (result shape, opcode, op_name)."""
    out = {}
    for line in hlo_text.splitlines():
        m = _INSTR.match(line)
        if m:
            op = _OP_NAME.search(line)
            out[m.group(1)] = (m.group(2), m.group(3), op.group(1) if op else "")
    return out


def _hbm(shape: str) -> bool:
    spaces = {int(s) for s in _SPACE.findall(shape)}
    return not spaces - {0}


def read(dump_dir) -> dict:
    """The peak's HBM buffers by part, from a dump folder of one compiled module."""
    dump = pathlib.Path(dump_dir)
    live = sorted(dump.glob("*after_optimizations-live-range.txt"))
    hlo = sorted(dump.glob("*after_optimizations.txt"))
    if not live or not hlo:
        raise FileNotFoundError(f"{dump}: no live-range or optimized HLO dump")
    instructions = _instructions(hlo[-1].read_text())
    lines = live[-1].read_text().splitlines()
    start = next((i for i, line in enumerate(lines) if _PEAK.search(line)), None)
    if start is None:
        raise ValueError(f"{live[-1]}: no 'Live ranges at N (peak)' section")
    buffers = []
    for line in lines[start + 1 :]:
        m = _LIVE.match(line)
        if not m:
            break
        name, size = m.group(1), int(m.group(3))
        shape, opcode, op_name = instructions.get(name, ("?", "?", ""))
        if not _hbm(shape):
            continue
        buffers.append(Buffer(name, size, shape, opcode, op_name, _part(name, opcode, op_name)))
    by_part: dict[str, int] = {}
    for b in buffers:
        by_part[b.part] = by_part.get(b.part, 0) + b.bytes
    largest = sorted(buffers, key=lambda b: -b.bytes)[:12]
    return {
        "peak_hbm_bytes": sum(b.bytes for b in buffers),
        "by_part": dict(sorted(by_part.items(), key=lambda kv: -kv[1])),
        "largest": [
            {"bytes": b.bytes, "shape": b.shape.split("{")[0], "opcode": b.opcode,
             "op_name": b.op_name[-160:], "part": b.part}
            for b in largest
        ],  # fmt: skip
    }


def dump_options(folder: str) -> dict[str, str]:
    """Compile options that make XLA write the files ``read`` needs into ``folder``."""
    return {"xla_dump_to": folder}
