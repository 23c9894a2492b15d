"""Cost estimates for a compiled step, read from XLA's optimized HLO text (``compiled.as_text()``).

XLA's ``cost_analysis()`` counts a ``while`` body once, so a step with scanned layers looks 32x
cheaper than it is. ``analyze`` walks the call graph and multiplies every computation by the trip
counts of the loops around it (conditional branches all count once: an over-estimate).

The numbers are estimates for a roofline, not measurements:

- ``flops``: 2*M*N*K of ``dot`` and ``convolution`` ops only; elementwise work is ignored.
- ``bytes_accessed``: every op outside fused computations reads its operands from HBM and writes
  its result (logical sizes, no layout padding); caches are not modelled.
- ``collectives``: per kind, how many run and the bytes of the full buffer (all-gather output,
  reduce-scatter input, ...), plus ``groups``, the largest replica-group size seen (0: unknown).
  An async ``-start``/``-done`` pair counts once, at the ``-start``.
- ``parts``: the same flops, bytes and collective bytes split by model part, read from the
  ``jax.named_scope`` names (``PARTS``) in each op's metadata; the rest is ``other`` (the LLM's
  dense layers, embeddings, the step's glue).

Pallas kernels are opaque custom calls; their cost is modelled (``kernel_cost``):

- splash attention (``splash_{mha,mqa}_{fwd,dq,dkv}...``): queries ``[..., q_len, head_dim]``
  (every leading dimension counts as a head), keys ``[..., kv_len, head_dim]``. FLOPs are
  ``2 * heads * q_len * kv_len * head_dim`` per matmul: 2 in the forward kernel (QK^T, PV), 3 in
  the dq kernel (QK^T, dO V^T, dS K) and 4 in the dkv kernel (QK^T, dO V^T, P^T dO, dS^T Q).
  Causal block skipping is assumed everywhere but in the vision tower (the only bidirectional
  user), computing ``(n + 1) / 2n`` of the ``n x n`` blocks read from the block-mask operand's
  shape. HBM bytes: every float operand and result once, plus the side streamed again per block
  (keys and values once per query block in fwd/dq, queries and output gradients once per key
  block in dkv).

Bytes are those of device memory: values the compiler placed in an on-chip memory space (layout
``S(n)``: TPU VMEM / SMEM) are not HBM traffic, and dynamic-(update-)slices move their slice,
not the whole buffer (they run in place).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

COLLECTIVES = ("all-gather", "reduce-scatter", "all-reduce", "all-to-all", "collective-permute")
FREE_OPS = {
    "parameter", "constant", "tuple", "get-tuple-element", "bitcast", "while", "call",
    "conditional", "after-all", "partition-id", "replica-id", "opt-barrier", "copy-done",
    "add-dependency", "async-start", "async-update", "async-done",
}  # fmt: skip
CONTROL_ATTRS = {
    "body", "condition", "branch_computations", "true_computation", "false_computation",
}  # fmt: skip
BITS = {"pred": 8, "token": 0, "s4": 4, "u4": 4, "s2": 2, "u2": 2, "f4e2m1fn": 4}

_ARRAY = re.compile(r"\b([a-z][a-z0-9]*)\[([^\]]*)\]")
_ARRAY_LAYOUT = re.compile(r"\b([a-z][a-z0-9]*)\[([^\]]*)\](\{[^{}]*(?:\([^)]*\)[^{}]*)*\})?")
_HEADER = re.compile(r"^\s*(ENTRY\s+)?%?([^\s(=]+)\s*\(.*->.*\{\s*$")
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%?([^\s=]+)\s*=\s*(.*)$")
_CALLEE_ATTR = re.compile(r"\b(\w+)=(\{[^{}]*\}|%?[\w.\-]+)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


@dataclasses.dataclass
class HloStats:
    flops: float
    bytes_accessed: float
    collectives: dict[str, dict[str, float]]
    while_loops: list[tuple[str, int | None]]
    # Model part (a ``jax.named_scope`` in PARTS, else "other") -> flops, bytes, collective_bytes
    parts: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    # Every op of the program's schedule (outside fused computations), for a per-op roofline.
    ops: list[Op] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Op:
    """One scheduled op (a fusion counts with the dots inside it), per run of the step: it runs
    ``count`` times (loop trips multiplied out); ``flops``, ``bytes`` (HBM), ``host_bytes``
    (copies to or from host memory) and ``buffer`` (a collective's full buffer, as
    ``HloStats.collectives`` counts it) are per run. ``mxu_dims``: (M, N, K) of its largest
    dot. ``collective``: its kind ('' for none), ``group``: chips per replica group,
    ``is_async``: a ``-start`` op (it runs beside the compute stream until its ``-done``)."""

    name: str
    opcode: str
    part: str
    count: float
    flops: float
    bytes: float
    host_bytes: float = 0.0
    collective: str = ""
    group: int = 0
    buffer: float = 0.0
    is_async: bool = False
    kernel: bool = False
    mxu_dims: tuple[int, ...] = ()


# Named scopes the models and the step put around their parts (first match wins: attention
# inside the vision tower is the vision tower's).
PARTS = ("vision_tower", "projector", "attention", "lm_head", "loss", "optimizer")
_OP_NAME = re.compile(r'op_name="([^"]*)"')


def part_of(instr: _Instr) -> str:
    name = _OP_NAME.search(instr.attrs)
    if name:
        for part in PARTS:
            if re.search(rf"(^|[/(]){part}([/)]|$)", name.group(1)):
                return part
    return "other"


def _add_part(stats: HloStats, part: str, key: str, value: float) -> None:
    entry = stats.parts.setdefault(part, {"flops": 0.0, "bytes": 0.0, "collective_bytes": 0.0})
    entry[key] += value


@dataclasses.dataclass
class _Instr:
    name: str
    shape: str
    opcode: str
    operands: list[str]
    attrs: str


def element_bits(dtype: str) -> int:
    if dtype in BITS:
        return BITS[dtype]
    width = re.match(r"[a-z]+(\d+)", dtype)
    return int(width.group(1)) if width else 0


def parse_dims(dims: str) -> list[int]:
    return [int(d.strip().lstrip("<=")) for d in dims.split(",") if d.strip("<=? ")]


def array_dims(shape: str) -> list[int]:
    match = _ARRAY.search(shape)
    return parse_dims(match.group(2)) if match else []


def shape_bytes(shape: str) -> float:
    """Logical bytes of an array or (nested) tuple shape; layouts and tiling are ignored."""
    return sum(
        math.prod(parse_dims(dims)) * element_bits(dtype) / 8
        for dtype, dims in _ARRAY.findall(shape)
    )


def hbm_bytes(shape: str) -> float:
    """``shape_bytes`` of the arrays the compiler left in device memory: a layout with a memory
    space ``S(n)``, n not 0, is on-chip (TPU VMEM / SMEM) or in the host's memory (``S(5)``)
    and moves no HBM bytes."""
    total = 0.0
    for m in _ARRAY_LAYOUT.finditer(shape):
        space = re.search(r"S\((\d+)\)", m.group(3) or "")
        if space and space.group(1) != "0":
            continue
        total += math.prod(parse_dims(m.group(2))) * element_bits(m.group(1)) / 8
    return total


def split_top_level(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def matching_paren(text: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise ValueError("unbalanced parentheses")


def parse_instruction(line: str) -> _Instr | None:
    match = _INSTR.match(line)
    if not match:
        return None
    name, rest = match.groups()
    try:
        shape_end = matching_paren(rest, 0) + 1 if rest.startswith("(") else rest.index(" ")
        shape, rest = rest[:shape_end], rest[shape_end:].lstrip()
        opcode = re.match(r"[\w\-.]+", rest).group(0)
        close = matching_paren(rest, len(opcode))
    except (ValueError, AttributeError):
        return None
    operands = split_top_level(rest[len(opcode) + 1 : close])
    return _Instr(name.lstrip("%"), shape, opcode, operands, rest[close + 1 :])


def _open_brackets(line: str) -> int:
    """Brackets a line leaves open, outside quoted strings."""
    plain = _STRING.sub('""', line)
    return sum(plain.count(c) for c in "({[") - sum(plain.count(c) for c in ")}]")


def _joined_lines(text: str):
    """Lines, with an instruction that spans several (a Pallas kernel's multi-line
    ``kernel_metadata``) joined into one."""
    pending, depth = None, 0
    for line in text.splitlines():
        if pending is not None:
            pending += " " + line.strip()
            depth += _open_brackets(line)
            if depth <= 0:
                yield pending
                pending = None
            continue
        if _INSTR.match(line) and (depth := _open_brackets(line)) > 0:
            pending = line
            continue
        yield line
    if pending is not None:
        yield pending


def parse_module(text: str) -> tuple[dict[str, list[_Instr]], str | None]:
    computations: dict[str, list[_Instr]] = {}
    current, entry = None, None
    for line in _joined_lines(text):
        header = _HEADER.match(line)
        if header and " = " not in line.split("(", 1)[0]:
            current = header.group(2).lstrip("%")
            computations[current] = []
            entry = current if header.group(1) else entry
        elif line.strip().startswith("}"):
            current = None
        elif current is not None and (instr := parse_instruction(line)):
            computations[current].append(instr)
    return computations, entry or (next(reversed(computations)) if computations else None)


def operand_shape(operand: str, symbols: dict[str, str]) -> str:
    inline, _, name = operand.rpartition(" ")
    return inline if _ARRAY.search(inline) else symbols.get(name.lstrip("%"), "")


def callees(instr: _Instr) -> list[tuple[str, str]]:
    attrs = _STRING.sub('""', instr.attrs)
    found = []
    for attr, value in _CALLEE_ATTR.findall(attrs):
        if attr in CONTROL_ATTRS | {"calls", "to_apply", "select", "scatter"}:
            found += [(attr, name.strip().lstrip("%")) for name in value.strip("{}").split(",")]
    return [(attr, name) for attr, name in found if name]


def is_control_edge(instr: _Instr, attr: str) -> bool:
    return (
        attr in CONTROL_ATTRS
        or instr.opcode == "call"
        or (attr == "calls" and instr.opcode != "fusion")
    )


def _ref(operand: str) -> str:
    return operand.rpartition(" ")[2].lstrip("%")


def _int_constant(instr: _Instr | None) -> int | None:
    if instr is None or instr.opcode != "constant" or not instr.operands:
        return None
    return int(instr.operands[0]) if re.fullmatch(r"-?\d+", instr.operands[0]) else None


def _tuple_index(instr: _Instr | None) -> int | None:
    if instr is None or instr.opcode != "get-tuple-element":
        return None
    m = re.search(r"\bindex=(\d+)", instr.attrs)
    return int(m.group(1)) if m else None


def _through(instr: _Instr | None, names: dict[str, _Instr]) -> _Instr | None:
    """``instr`` with copies, bitcasts and converts looked through."""
    while instr is not None and instr.opcode in ("copy", "bitcast", "convert") and instr.operands:
        instr = names.get(_ref(instr.operands[0]))
    return instr


def counted_loop(instr: _Instr, computations: dict[str, list[_Instr]], caller: str) -> int | None:
    """Trips of a loop ``i = init; while i < limit: i += step`` read from its condition, body and
    initial tuple (XLA:TPU's windowed einsums step by 2 and carry no known_trip_count)."""
    calls = dict(callees(instr))
    cond, body = (
        computations.get(calls.get("condition", "")),
        computations.get(calls.get("body", "")),
    )
    if not cond or not body or cond[-1].opcode != "compare" or "direction=LT" not in cond[-1].attrs:
        return None
    names = {i.name: i for i in cond}
    lhs, rhs = (_through(names.get(_ref(o)), names) for o in cond[-1].operands[:2])
    index, limit = _tuple_index(lhs), _int_constant(rhs)
    root = body[-1]
    if index is None or limit is None or root.opcode != "tuple" or index >= len(root.operands):
        return None
    body_names = {i.name: i for i in body}
    update = _through(body_names.get(_ref(root.operands[index])), body_names)
    if update is None or update.opcode != "add":
        return None
    parts = [_through(body_names.get(_ref(o)), body_names) for o in update.operands[:2]]
    steps = [_int_constant(x) for x in parts if _tuple_index(x) != index]
    if len(steps) != 1 or not steps[0] or steps[0] < 0 or index not in map(_tuple_index, parts):
        return None
    caller_names = {i.name: i for i in computations.get(caller, [])}
    init_tuple = caller_names.get(_ref(instr.operands[0])) if instr.operands else None
    init = 0
    if init_tuple is not None and init_tuple.opcode == "tuple" and index < len(init_tuple.operands):
        start = _through(caller_names.get(_ref(init_tuple.operands[index])), caller_names)
        init = _int_constant(start) or 0
    return max(0, -(-(limit - init) // steps[0]))


def trip_count(
    instr: _Instr, computations: dict[str, list[_Instr]], caller: str = ""
) -> int | None:
    known = re.search(r'"known_trip_count"\s*:\s*\{\s*"n"\s*:\s*"(\d+)"', instr.attrs)
    if known:
        return int(known.group(1))
    # Anything but a plain counted loop stays unknown: guessing a step of 1 from the limit alone
    # doubled the FLOPs of every windowed einsum whose counter steps by 2.
    return counted_loop(instr, computations, caller)


def multipliers(
    computations: dict[str, list[_Instr]], entry: str, unknown_trip_count: int = 1
) -> tuple[dict[str, float], set[str], list[tuple[str, int | None]]]:
    """Times each computation runs per step, the non-fused ones, and the while loops seen."""
    edges: dict[str, list[tuple[str, float, bool]]] = {}
    loops: list[tuple[str, int | None]] = []
    for comp, instrs in computations.items():
        for instr in instrs:
            calls = callees(instr)
            factor = 1
            if instr.opcode == "while":
                trips = trip_count(instr, computations, comp)
                loops.append((dict(calls).get("body", ""), trips))
                factor = trips or unknown_trip_count
            for attr, callee in calls:
                if callee in computations:
                    edge = (callee, factor, is_control_edge(instr, attr))
                    edges.setdefault(comp, []).append(edge)
    order, seen = [], set()

    def visit(comp: str) -> None:
        seen.add(comp)
        for callee, _, _ in edges.get(comp, []):
            if callee not in seen:
                visit(callee)
        order.append(comp)

    visit(entry)
    mult = {comp: 0.0 for comp in computations} | {entry: 1.0}
    top_level = {entry}
    for comp in reversed(order):
        for callee, factor, control in edges.get(comp, []):
            mult[callee] += mult[comp] * factor
            if control and comp in top_level:
                top_level.add(callee)
    return mult, top_level, loops


def dot_flops(instr: _Instr, symbols: dict[str, str]) -> float:
    lhs = array_dims(operand_shape(instr.operands[0], symbols))
    contracting = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", instr.attrs)
    dims = [int(d) for d in contracting.group(1).split(",") if d] if contracting else []
    return 2.0 * math.prod(array_dims(instr.shape)) * math.prod(lhs[d] for d in dims)


def _window(attrs: str) -> dict[str, list[str]]:
    body = re.search(r"window=\{([^}]*)\}", attrs)
    return dict(re.findall(r"(\w+)=([^\s]+)", body.group(1))) if body else {}


def _valid_pairs(
    out: int, kernel: int, size: int, stride: int, pad_lo: int, lhs_dil: int, rhs_dil: int
) -> int:
    """(output position, kernel tap) pairs of one spatial dimension that read a real input
    element (not padding, not a hole of an lhs dilation)."""
    last = (size - 1) * lhs_dil
    pairs = 0
    for k in range(kernel):
        offset = k * rhs_dil - pad_lo
        if lhs_dil == 1:
            lo = (-offset + stride - 1) // stride if offset < 0 else 0
            hi = min(out - 1, (last - offset) // stride)
            pairs += max(0, hi - lo + 1)
        else:
            pairs += sum(
                1 for o in range(out) if 0 <= o * stride + offset <= last
                and (o * stride + offset) % lhs_dil == 0
            )  # fmt: skip
    return pairs


def convolution_flops(instr: _Instr, symbols: dict[str, str]) -> float:
    """2 x MACs that touch real inputs. XLA:TPU emits most matmuls as convolutions, some with
    padded windows standing for batch dimensions, so padding must not be counted."""
    lhs = array_dims(operand_shape(instr.operands[0], symbols))
    kernel = array_dims(operand_shape(instr.operands[1], symbols))
    out = array_dims(instr.shape)
    labels = re.search(r"dim_labels=(\w+)_(\w+)->(\w+)", instr.attrs)
    if not labels or not (len(labels.group(1)) == len(lhs) == len(out) == len(kernel)):
        return 0.0
    lhs_l, rhs_l, out_l = labels.groups()
    spatial = sorted(c for c in rhs_l if c.isdigit())
    window = _window(instr.attrs)

    def per_dim(key: str, default: int) -> list[int]:
        values = window.get(key)
        return [int(v) for v in values.split("x")] if values else [default] * len(spatial)

    strides, lhs_dil, rhs_dil = per_dim("stride", 1), per_dim("lhs_dilate", 1), per_dim(
        "rhs_dilate", 1)  # fmt: skip
    pads = [int(p.split("_")[0]) for p in window.get("pad", "").split("x") if p]
    pads = pads or [0] * len(spatial)
    macs_per_output_feature = kernel[rhs_l.index("i")]
    pairs = 1
    for j, d in enumerate(spatial):
        pairs *= _valid_pairs(
            out[out_l.index(d)], kernel[rhs_l.index(d)], lhs[lhs_l.index(d)], strides[j],
            pads[j], lhs_dil[j], rhs_dil[j],
        )  # fmt: skip
    batch_features = out[out_l.index("b")] * out[out_l.index("f")]
    return 2.0 * batch_features * macs_per_output_feature * pairs


def group_size(attrs: str, num_devices: int) -> int:
    if explicit := re.search(r"replica_groups=\{\{([\d,]*)\}", attrs):
        return len([d for d in explicit.group(1).split(",") if d])
    if iota := re.search(r"replica_groups=\[([\d,]+)\]<=", attrs):
        return int(iota.group(1).split(",")[-1])
    if mesh := re.search(r"replica_groups=mesh\[([^\]]*)\]\s*\{([^}]*)\}", attrs):
        sizes = dict(re.findall(r"'(\w+)'=(\d+)", mesh.group(1)))
        return math.prod(int(sizes.get(axis, 1)) for axis in re.findall(r"'(\w+)'", mesh.group(2)))
    return num_devices if re.search(r"replica_groups=\{\}", attrs) else 0


def result_bytes(instr: _Instr) -> float:
    if instr.opcode.endswith("-start") and instr.shape.startswith("("):
        return max(map(shape_bytes, split_top_level(instr.shape[1:-1])), default=0.0)
    return shape_bytes(instr.shape)


def add_collective(stats: HloStats, instr: _Instr, operand_bytes: float, m: float, n: int) -> None:
    kind = instr.opcode.removesuffix("-start")
    moved = operand_bytes if kind == "reduce-scatter" else result_bytes(instr)
    entry = stats.collectives.setdefault(kind, {"count": 0.0, "bytes": 0.0, "groups": 0})
    entry["count"] += m
    entry["bytes"] += moved * m
    entry["groups"] = max(entry["groups"], group_size(instr.attrs, n))


def _sliced_root(instr: _Instr, computations: dict[str, list[_Instr]]) -> _Instr | None:
    """The dynamic-(update-)slice that ``instr`` is, or that its fused computation ends in."""
    if instr.opcode in ("dynamic-slice", "dynamic-update-slice"):
        return instr
    if instr.opcode == "fusion":
        body = computations.get(dict(callees(instr)).get("calls", ""))
        if body and body[-1].opcode in ("dynamic-slice", "dynamic-update-slice"):
            return body[-1]
    return None


def _slice_bytes(instr, root, operand_bytes, symbols, computations) -> float | None:
    """In place: a dynamic-update-slice writes its update into the buffer it is given (read and
    write the update only), a dynamic-slice reads only what it returns."""
    fused = computations.get(dict(callees(instr)).get("calls", ""), []) if root is not instr else []
    inner = {i.name: i.shape for i in fused} if fused else symbols
    if root.opcode == "dynamic-update-slice":
        buffer = hbm_bytes(operand_shape(root.operands[0], inner))
        update = hbm_bytes(operand_shape(root.operands[1], inner))
        return max(operand_bytes - buffer, 0.0) + update
    out = hbm_bytes(root.shape)
    source = hbm_bytes(operand_shape(root.operands[0], inner))
    return max(operand_bytes - source, 0.0) + 2 * out


# Pallas kernels (see the module docstring).
_SPLASH = re.compile(r"splash_(mha|mqa)_(fwd|dq|dkv)")
_MATMULS = {"fwd": 2, "dq": 3, "dkv": 4}
_FLOATS = ("bf16", "f16", "f32")


def _constraints(attrs: str) -> list[tuple[str, list[int]]]:
    start = attrs.find("operand_layout_constraints={")
    if start < 0:
        return []
    depth, i = 0, start + len("operand_layout_constraints=")
    for j in range(i, len(attrs)):
        depth += {"{": 1, "}": -1}.get(attrs[j], 0)
        if depth == 0:
            return [(t, parse_dims(d)) for t, d in _ARRAY.findall(attrs[i : j + 1])]
    return []


def _bytes(dtype: str, dims: list[int]) -> float:
    return math.prod(dims) * element_bits(dtype) / 8


def kernel_cost(instr: _Instr, part: str) -> tuple[float, float] | None:
    """(flops, HBM bytes) of one splash attention kernel call, or None if it is not one."""
    if instr.opcode != "custom-call":
        return None
    attrs = instr.attrs
    kind = _SPLASH.search(instr.name) or _SPLASH.search(attrs.split("backend_config", 1)[0])
    if kind is None:
        return None
    phase = kind.group(2)
    arrays = _constraints(attrs)
    floats = [(t, d) for t, d in arrays if t in _FLOATS and len(d) >= 3]
    masks = [d for t, d in arrays if t == "s8" and len(d) == 3]
    if len(floats) < 2:
        return None
    (q_type, q), (k_type, k) = floats[0], floats[1]
    heads, q_len, head_dim, kv_len = math.prod(q[:-2]), q[-2], q[-1], k[-2]
    n_q, n_kv = (masks[0][-2], masks[0][-1]) if masks else (1, 1)
    causal = part != "vision_tower" and n_q == n_kv
    fraction = (n_q + 1) / (2 * n_q) if causal else 1.0
    flops = _MATMULS[phase] * 2.0 * heads * q_len * kv_len * head_dim * fraction
    once = sum(_bytes(t, d) for t, d in floats) + shape_bytes(instr.shape)
    if phase == "dkv":
        again = 2 * _bytes(q_type, q) * max(n_kv * fraction - 1, 0)
    else:
        again = 2 * _bytes(k_type, k) * max(n_q * fraction - 1, 0)
    return flops, once + again


def instruction_bytes(
    instr: _Instr, operand_bytes: float, symbols=None, computations=None
) -> float:
    if instr.opcode in FREE_OPS or instr.opcode.endswith("-done"):
        return 0.0
    if instr.opcode == "copy-start":
        return 2 * operand_bytes
    if instr.opcode in ("dynamic-update-slice-start", "dynamic-slice-start"):
        # In place, like their synchronous forms: the slice is read or written once on HBM.
        return _async_slice_bytes(instr, symbols or {})
    if instr.opcode.endswith("-start"):
        return operand_bytes + result_bytes(instr)
    root = _sliced_root(instr, computations or {})
    if root is not None and len(root.operands) >= 2:
        return _slice_bytes(instr, root, operand_bytes, symbols or {}, computations or {})
    return operand_bytes + hbm_bytes(instr.shape)


def _async_slice_bytes(instr: _Instr, symbols: dict[str, str]) -> float:
    """HBM bytes of an asynchronous dynamic-(update-)slice: the slice, on whichever side is HBM
    (host offload moves it between HBM and host memory)."""
    if instr.opcode == "dynamic-update-slice-start":
        update = operand_shape(instr.operands[1], symbols) if len(instr.operands) > 1 else ""
        return hbm_bytes(update)
    return hbm_bytes(_async_result(instr))


def module_devices(text: str) -> int:
    header = re.search(r"^\s*HloModule\b.*$", text, re.MULTILINE)
    keys = ("num_partitions", "replica_count")
    counts = [re.search(rf"\b{key}=(\d+)", header.group(0)) if header else None for key in keys]
    return math.prod(int(c.group(1)) for c in counts if c)


def analyze(hlo_text: str, unknown_trip_count: int = 1) -> HloStats:
    """Flops, HBM bytes and collectives of one run of the module (see the module docstring).
    A while loop whose trip count cannot be read runs ``unknown_trip_count`` times (a decoding
    loop that may stop early: its upper bound)."""
    computations, entry = parse_module(hlo_text)
    if entry is None:
        return HloStats(0.0, 0.0, {}, [])
    mult, top_level, loops = multipliers(computations, entry, unknown_trip_count)
    stats = HloStats(0.0, 0.0, {}, loops)
    num_devices = module_devices(hlo_text)
    inner = _fused_costs(computations)
    inner_collectives = _fused_collectives(computations, num_devices)
    for comp, instrs in computations.items():
        m = mult[comp]
        if m == 0:
            continue
        symbols = {instr.name: instr.shape for instr in instrs}
        for instr in instrs:
            if instr.opcode == "constant":
                continue
            part = part_of(instr)
            operand_bytes = sum(shape_bytes(operand_shape(o, symbols)) for o in instr.operands)
            kernel = kernel_cost(instr, part)
            try:
                if kernel is not None:
                    flops = kernel[0] * m
                elif instr.opcode == "dot":
                    flops = dot_flops(instr, symbols) * m
                elif instr.opcode == "convolution":
                    flops = convolution_flops(instr, symbols) * m
                else:
                    flops = 0.0
            except (IndexError, ValueError):
                flops = 0.0
            if flops:
                stats.flops += flops
                _add_part(stats, part, "flops", flops)
            if instr.opcode.removesuffix("-start") in COLLECTIVES:
                before = sum(c["bytes"] for c in stats.collectives.values())
                add_collective(stats, instr, operand_bytes, m, num_devices)
                moved = sum(c["bytes"] for c in stats.collectives.values()) - before
                _add_part(stats, part, "collective_bytes", moved)
            if comp in top_level:
                operand_bytes = sum(hbm_bytes(operand_shape(o, symbols)) for o in instr.operands)
                if kernel is not None:
                    moved = kernel[1] * m
                else:
                    moved = instruction_bytes(instr, operand_bytes, symbols, computations) * m
                host = host_transfer_bytes(instr, symbols) * m
                moved -= min(host, moved)
                stats.bytes_accessed += moved
                if moved:
                    _add_part(stats, part, "bytes", moved)
                stats.ops.append(
                    _op(instr, part, m, flops, moved, host, inner, symbols, num_devices,
                        inner_collectives)  # fmt: skip
                )
    return stats


_HOST = "S(5)"


def host_transfer_bytes(instr: _Instr, symbols: dict[str, str]) -> float:
    """Bytes an op moves between HBM and host memory (layout ``S(5)`` on one side): a copy, or
    the asynchronous slice ops that host offload of remat residuals compiles to (a layer's
    slice written into a stack in host memory, and read back)."""
    if not instr.operands:
        return 0.0
    first = operand_shape(instr.operands[0], symbols)
    if instr.opcode in ("copy-start", "copy"):
        return shape_bytes(first) if _HOST in first or _HOST in instr.shape.split("}")[0] else 0.0
    if instr.opcode == "dynamic-update-slice-start" and len(instr.operands) > 1:
        return shape_bytes(operand_shape(instr.operands[1], symbols)) if _HOST in first else 0.0
    if instr.opcode == "dynamic-slice-start" and _HOST in first:
        return shape_bytes(_async_result(instr))
    return 0.0


def _async_result(instr: _Instr) -> str:
    """The result of an async op's ``-start``: ``((operands...), result, context)``."""
    inner = split_top_level(instr.shape[1:-1]) if instr.shape.startswith("(") else [instr.shape]
    return inner[1] if len(inner) > 1 else ""


def _fused_costs(computations: dict[str, list[_Instr]]) -> dict[str, tuple[float, tuple]]:
    """Per computation: the flops of the dots and convolutions in it and in the computations it
    calls (a fusion's body), and the dimensions of its largest dot (``dot_dims``)."""
    cache: dict[str, tuple[float, tuple]] = {}

    def cost(comp: str, stack=()) -> tuple[float, tuple]:
        if comp in cache or comp in stack:
            return cache.get(comp, (0.0, ()))
        instrs = computations.get(comp, [])
        symbols = {i.name: i.shape for i in instrs}
        total, dims, best = 0.0, (), 0.0
        for instr in instrs:
            f, d = 0.0, ()
            try:
                if instr.opcode == "dot":
                    f, d = dot_flops(instr, symbols), dot_dims(instr, symbols)
                elif instr.opcode == "convolution":
                    f = convolution_flops(instr, symbols)
                    d = conv_dims(instr, f)
            except (IndexError, ValueError):
                f = 0.0
            for attr, callee in callees(instr):
                if attr in ("calls", "to_apply"):
                    cf, cd = cost(callee, (*stack, comp))
                    f, d = f + cf, d or cd
            total += f
            if f > best:
                best, dims = f, d
        cache[comp] = (total, dims)
        return cache[comp]

    for comp in computations:
        cost(comp)
    return cache


def dot_dims(instr: _Instr, symbols: dict[str, str]) -> tuple[int, ...]:
    """(M, N, K) of a dot: rows and columns of its result (batch dimensions folded into M) and
    its contracted size."""
    lhs = array_dims(operand_shape(instr.operands[0], symbols))
    rhs = array_dims(operand_shape(instr.operands[1], symbols))
    lc = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", instr.attrs)
    rc = re.search(r"rhs_contracting_dims=\{([\d,]*)\}", instr.attrs)
    rb = re.search(r"rhs_batch_dims=\{([\d,]*)\}", instr.attrs)
    lcd = [int(d) for d in lc.group(1).split(",") if d] if lc else []
    rcd = [int(d) for d in rc.group(1).split(",") if d] if rc else []
    rbd = [int(d) for d in rb.group(1).split(",") if d] if rb else []
    k = math.prod(lhs[d] for d in lcd)
    n = math.prod(x for i, x in enumerate(rhs) if i not in rcd and i not in rbd)
    m = math.prod(array_dims(instr.shape)) // max(n, 1)
    return (m, n, k)


def conv_dims(instr: _Instr, flops: float) -> tuple[int, ...]:
    """(M, N, K) of a convolution used as a matmul (how XLA:TPU writes most dots): N the
    result's output-feature dimension, M the rest of the result, K from the flops."""
    out = array_dims(instr.shape)
    labels = re.search(r"dim_labels=\S*->(\w+)", instr.attrs)
    if not out or not labels or "f" not in labels.group(1):
        return ()
    n = out[labels.group(1).index("f")]
    m = math.prod(out) // max(n, 1)
    return (m, n, int(flops / max(2 * m * n, 1)))


def _fused_collectives(
    computations: dict[str, list[_Instr]], num_devices: int
) -> dict[str, tuple[str, float, int]]:
    """Per computation: the collectives in it (XLA:TPU's async collective fusions hold their
    all-gather or all-reduce inside a fusion): (the kind with the most bytes, the bytes of them
    all, the largest replica group)."""
    out = {}
    for comp, instrs in computations.items():
        symbols = {i.name: i.shape for i in instrs}
        by_kind: dict[str, float] = {}
        group = 0
        for instr in instrs:
            kind = instr.opcode.removesuffix("-start")
            if kind not in COLLECTIVES:
                continue
            operands = sum(shape_bytes(operand_shape(o, symbols)) for o in instr.operands)
            moved = operands if kind == "reduce-scatter" else result_bytes(instr)
            by_kind[kind] = by_kind.get(kind, 0.0) + moved
            group = max(group, group_size(instr.attrs, num_devices))
        if by_kind:
            out[comp] = (max(by_kind, key=by_kind.__getitem__), sum(by_kind.values()), group)
    return out


def _op(instr, part, m, flops, moved, host, inner, symbols, num_devices, collectives) -> Op:
    kind = instr.opcode.removesuffix("-start")
    fused_flops, dims = 0.0, ()
    for attr, callee in callees(instr):
        if attr == "calls" and instr.opcode != "custom-call":
            fused_flops, dims = inner.get(callee, (0.0, ()))
    if instr.opcode == "dot":
        dims = dot_dims(instr, symbols)
    total_flops = flops if flops else fused_flops * m
    op = Op(instr.name, instr.opcode, part, m, total_flops, moved, host,
            kernel=kernel_cost(instr, part) is not None, mxu_dims=tuple(dims))  # fmt: skip
    if kind in COLLECTIVES:
        operand_bytes = sum(shape_bytes(operand_shape(o, symbols)) for o in instr.operands)
        buffer = (operand_bytes if kind == "reduce-scatter" else result_bytes(instr)) * m
        op = dataclasses.replace(op, collective=kind, group=group_size(instr.attrs, num_devices),
                                 buffer=buffer, is_async=instr.opcode.endswith("-start"))  # fmt: skip
    elif instr.opcode == "fusion" and dict(callees(instr)).get("calls") in collectives:
        kind, buffer, group = collectives[dict(callees(instr))["calls"]]
        # XLA:TPU names the fusions it schedules asynchronously "async-collective-start".
        op = dataclasses.replace(op, collective=kind, group=group, buffer=buffer * m,
                                 is_async=instr.name.startswith("async-collective"))  # fmt: skip
    elif instr.opcode == "copy-start":
        op = dataclasses.replace(op, is_async=True)
    return op


def collectives_summary(stats: HloStats) -> dict[str, dict[str, float]]:
    """Per collective kind: ``count``, ``bytes`` and ``groups`` (a copy, safe to modify)."""
    return json.loads(json.dumps(stats.collectives))
