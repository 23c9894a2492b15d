"""Where a compiled program's HBM goes, read from the compiler's own dumps.

``memory_analysis()`` gives totals (arguments, outputs, temp). To say *what* fills the temp, the
program is compiled with ``xla_dump_to`` (a compile option: the program is the same) and two of
XLA's dump files are read:

- ``*after_optimizations-buffer-assignment.txt``: the temp allocation (``preallocated-temp``) and
  every value placed in it, with its offset and size: values whose lifetimes do not overlap
  share bytes;
- ``*after_optimizations.txt``: the optimized HLO, for each value's ``op_name`` (the model's
  named scopes: the layer stack, ``loss``, ``optimizer``, ...).

Each byte of the temp allocation is attributed to the largest value placed on it, and that
value to a part of the step by its ``op_name`` (``by_part``): the bytes sum to the allocation.
On TPU, ``memory_analysis()``'s temp can exceed this allocation (the rest is not in XLA's
buffer-assignment dump; ``unattributed``).
"""

from __future__ import annotations

import pathlib
import re

_ALLOCATION = re.compile(r"^allocation (\d+): size (\d+), (.*)")
_VALUE = re.compile(r"^ value: <\d+ ([\w.\-]+)(?:\{[\d,]*\})?[^>]*> \(size=(\d+),offset=(\d+)\): (\S+)")
_INSTR = re.compile(r"^\s*(?:ROOT )?%?([\w.\-]+) = ")
_OP_NAME = re.compile(r'op_name="([^"]*)"')


def part_of(op_name: str) -> str:
    """The part of a training step an ``op_name`` (JAX's named scopes) belongs to."""
    backward = "transpose(" in op_name
    if "/optimizer" in op_name or op_name.startswith("optimizer"):
        return "optimizer update"
    if "/loss" in op_name or "lm_head" in op_name:
        return "loss and LM head" + (" (backward)" if backward else "")
    if "/while" in op_name or "checkpoint" in op_name or "remat" in op_name:
        return "layer stack" + (" (backward)" if backward else " (forward)")
    if not op_name:
        return "no op_name (compiler-made copies and constants)"
    return "other" + (" (backward)" if backward else "")


def _op_names(hlo_text: str) -> dict[str, str]:
    out = {}
    for line in hlo_text.splitlines():
        m = _INSTR.match(line)
        if m:
            op = _OP_NAME.search(line)
            out[m.group(1)] = op.group(1) if op else ""
    return out


def _temp_values(text: str) -> tuple[int, list[tuple[str, int, int, str]]]:
    """The HBM temp allocation's size and its values (name, offset, size, shape)."""
    size, values, inside = 0, [], False
    for line in text.splitlines():
        m = _ALLOCATION.match(line)
        if m:
            rest = m.group(3)
            inside = "preallocated-temp" in rest and "color" not in rest
            if inside:
                size = int(m.group(2))
            continue
        if inside:
            v = _VALUE.match(line)
            if v and not v.group(4).startswith("("):  # tuples are pointer tables
                values.append((v.group(1), int(v.group(3)), int(v.group(2)), v.group(4)))
    return size, values


def read(dump_dir, temp_bytes: int | None = None) -> dict:
    """The temp allocation by part, and its largest values, from one module's dump folder.
    ``temp_bytes``: ``memory_analysis()``'s temp, to report what the dump does not hold."""
    dump = pathlib.Path(dump_dir)
    assignment = sorted(dump.glob("*after_optimizations-buffer-assignment.txt"))
    hlo = sorted(dump.glob("*after_optimizations.txt"))
    if not assignment or not hlo:
        raise FileNotFoundError(f"{dump}: no buffer-assignment or optimized HLO dump")
    op_names = _op_names(hlo[-1].read_text())
    size, values = _temp_values(assignment[-1].read_text())
    # Elementary intervals of the address range; each goes to the largest value covering it.
    cuts = sorted({0, size, *(o for _, o, _, _ in values), *(o + s for _, o, s, _ in values)})
    by_offset = sorted(values, key=lambda v: v[1])
    by_part: dict[str, int] = {}
    for lo, hi in zip(cuts, cuts[1:]):
        covering = [v for v in by_offset if v[1] <= lo and v[1] + v[2] >= hi]
        if not covering:
            continue
        name = max(covering, key=lambda v: v[2])[0]
        part = part_of(op_names.get(name, ""))
        by_part[part] = by_part.get(part, 0) + (hi - lo)
    # One row per place in memory (a buffer and the copies and loop states aliasing it), named
    # by a value there that has an op_name.
    places: dict[tuple[int, int], tuple[str, int, int, str]] = {}
    for v in values:
        key = (v[1], v[2])
        if key not in places or (op_names.get(v[0]) and not op_names.get(places[key][0])):
            places[key] = v
    largest = sorted(places.values(), key=lambda v: -v[2])[:12]
    out = {
        "temp_allocation_bytes": size,
        "by_part": dict(sorted(by_part.items(), key=lambda kv: -kv[1])),
        "largest": [
            {"bytes": s, "shape": shape.split("{")[0], "part": part_of(op_names.get(n, "")),
             "op_name": op_names.get(n, "")[-160:]}
            for n, _, s, shape in largest
        ],  # fmt: skip
    }
    if temp_bytes is not None:
        out["unattributed_bytes"] = max(temp_bytes - size, 0)
    return out


def dump_options(folder: str) -> dict[str, str]:
    """Compile options that make XLA write the files ``read`` needs into ``folder``."""
    return {"xla_dump_to": folder}
