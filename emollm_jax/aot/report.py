"""The sharding comparison report: ``report.json``, ``report.md`` and ``chart.png``.

One row per (strategy, remat policy, batch per chip) combination that ``aot.compare``
compiled ahead of time. ``write_report`` checks the rows, renders all three files and puts them
in place atomically: each is written to a temporary file in the output folder and moved over
its final name with ``os.replace`` only once all three have been rendered, ``report.json``
last, so a failed run never leaves a half-written report that looks valid.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pathlib
import re
import tempfile
from collections.abc import Iterable, Sequence

from emollm_jax.aot.roofline import calibration_note

REQUIRED_FIELDS: tuple[str, ...] = (
    "strategy",
    "remat",
    "batch_per_chip",
    "fits",
    "bytes_per_chip",
    "hbm_bytes",
    "flops",
    "est_step_s",
    "est_mfu",
    "collectives",
    "compile_s",
    "error",
)
MEMORY_PARTS: tuple[str, ...] = ("params", "opt_state", "batch", "temp", "output", "total")
_STACKED = (
    ("params", "params", "#4c72b0"),
    ("opt_state", "opt state", "#dd8452"),
    ("batch", "batch", "#55a868"),
    ("temp", "temp", "#c44e52"),
    ("output", "output", "#8172b3"),
)
_KIND_ABBREV = {
    "all-gather": "AG",
    "reduce-scatter": "RS",
    "all-reduce": "AR",
    "all-to-all": "A2A",
    "collective-permute": "CP",
}
_GiB = 2**30
_ERROR_CHARS = 120


def validate_row(row: dict) -> None:
    """Raise ``ValueError`` naming every required field (or memory part) ``row`` lacks."""
    if not isinstance(row, dict):
        raise ValueError(f"a report row must be a dict, got {type(row).__name__}")
    missing = [f for f in REQUIRED_FIELDS if f not in row]
    parts = row.get("bytes_per_chip")
    if isinstance(parts, dict):
        missing += [f"bytes_per_chip.{p}" for p in MEMORY_PARTS if p not in parts]
    elif parts is not None and "bytes_per_chip" not in missing:
        raise ValueError(f"row {label(row)}: bytes_per_chip must be a dict or None")
    if missing:
        raise ValueError(f"row {label(row)} is missing field(s): {', '.join(missing)}")


def label(row: dict) -> str:
    """``strategy/remat/b<batch>``, the name of a combination in the table and the chart."""
    return f"{row.get('strategy', '?')}/{row.get('remat', '?')}/b{row.get('batch_per_chip', '?')}"


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _ok(row: dict) -> bool:
    return bool(row.get("fits")) and row.get("error") is None


def best(rows: Iterable[dict]) -> dict | None:
    """The fastest fitting, error-free row: the most estimated tokens per second per chip
    (a smaller step time is not faster when it does less work); rows without a throughput
    compare by ``est_step_s``; a tie goes to the larger batch."""
    candidates = [r for r in rows if _ok(r) and _finite(r.get("est_step_s"))]
    if not candidates:
        return None

    def key(r):
        tokens = r.get("est_tokens_per_s_per_chip")
        speed = -tokens if _finite(tokens) else math.inf
        return (speed, r["est_step_s"], -(r.get("batch_per_chip") or 0))

    return min(candidates, key=key)


def largest_batch_that_fits(rows: Iterable[dict]) -> dict[str, int | None]:
    """Strategy -> the largest ``batch_per_chip`` that fits without error (None if none does)."""
    out: dict[str, int | None] = {}
    for row in rows:
        strategy = row.get("strategy")
        out.setdefault(strategy, None)
        batch = row.get("batch_per_chip")
        if _ok(row) and batch is not None and (out[strategy] is None or batch > out[strategy]):
            out[strategy] = batch
    return out


def read_rows(path) -> list[dict]:
    """The rows of a ``rows.jsonl`` that an earlier (interrupted) sweep or calibration
    appended; a torn line is ignored."""
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def _jsonable(value):
    """``value`` with non-finite floats as None and numpy scalars/arrays, paths as plain JSON."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, bool | str | int) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if hasattr(value, "tolist"):
        return _jsonable(value.tolist())
    if hasattr(value, "item"):
        return _jsonable(value.item())
    return str(value)


def _gib(nbytes) -> str:
    return "—" if not _finite(nbytes) else f"{nbytes / _GiB:.2f}"


def _size(nbytes) -> str:
    if not _finite(nbytes):
        return "?"
    for unit, scale in (("GiB", _GiB), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(nbytes) >= 0.1 * scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{int(nbytes)} B"


def _num(value, fmt: str, scale: float = 1.0) -> str:
    return "—" if not _finite(value) else format(value * scale, fmt)


def _percent(fraction) -> str:
    return "—" if not _finite(fraction) else f"{fraction * 100:.1f}%"


def _error_line(error) -> str:
    lines = str(error).strip().splitlines()
    text = lines[0].strip() if lines else "(empty error)"
    if len(text) > _ERROR_CHARS:
        text = text[: _ERROR_CHARS - 1] + "…"
    return text


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summarize_collectives(collectives) -> str:
    """``AG 64 (12.3 GiB), RS 32 (1.0 GiB)``: count and total bytes per kind."""
    if not collectives:
        return "none"
    order = list(_KIND_ABBREV) + sorted(set(collectives) - set(_KIND_ABBREV))
    parts = []
    for kind in order:
        stats = collectives.get(kind)
        if not stats or not stats.get("count"):
            continue
        count = stats["count"]
        if isinstance(count, float) and count.is_integer():
            count = int(count)
        parts.append(f"{_KIND_ABBREV.get(kind, kind)} {count} ({_size(stats.get('bytes'))})")
    return ", ".join(parts) or "none"


def _fits_cell(row: dict) -> str:
    if row.get("error") is not None:
        return f"error: {_error_line(row['error'])}"
    if row.get("fits"):
        return "yes"
    total = (row.get("bytes_per_chip") or {}).get("total")
    hbm = row.get("hbm_bytes")
    if _finite(total) and _finite(hbm):
        return f"no (+{(total - hbm) / _GiB:.2f} GiB over)"
    return "no"


def _mesh_cell(mesh) -> str:
    if not mesh:
        return "—"
    return " ".join(f"{axis}={size}" for axis, size in mesh.items())


def _bound(row: dict) -> str:
    """What the step-time estimate is bound by (the op-level model's; else the older bounds')."""
    estimate, bounds = row.get("estimate") or {}, row.get("roofline") or {}
    return estimate.get("bound") or bounds.get("bound") or "—"


def _row_cells(row: dict, *, show_mesh: bool, show_tokens: bool) -> list[str]:
    parts = row.get("bytes_per_chip") or {}
    step = _num(row.get("est_step_s"), ".3g")
    total = _gib(parts.get("total"))
    hbm = _gib(row.get("hbm_bytes"))
    cells = [row.get("strategy"), row.get("remat"), row.get("batch_per_chip")]
    if show_mesh:
        cells.append(_mesh_cell(row.get("mesh")))
    cells += [
        _fits_cell(row),
        _gib(parts.get("params")),
        _gib(parts.get("opt_state")),
        _gib(parts.get("batch")),
        _gib(parts.get("temp")),
        f"{total} / {hbm}",
        _num(row.get("flops"), ".3g", 1e-12),
        step,
        _num(row.get("est_mfu"), ".1f", 100.0),
    ]
    if show_tokens:
        cells.append(_num(row.get("est_tokens_per_s_per_chip"), ",.0f"))
    cells += [
        _bound(row),
        summarize_collectives(row.get("collectives")) if row.get("error") is None else "—",
        _num(row.get("compile_s"), ".1f"),
    ]
    return [_cell("—" if c is None else c) for c in cells]


def render_markdown(
    *,
    topology: str,
    num_slices: int,
    config: str,
    command: str,
    rows: Sequence[dict],
    notes: Sequence[str] = (),
) -> str:
    """The text of ``report.md``."""
    show_mesh = any(r.get("mesh") for r in rows)
    show_tokens = any("est_tokens_per_s_per_chip" in r for r in rows)
    header = ["strategy", "remat", "batch/chip"]
    if show_mesh:
        header.append("mesh")
    header += [
        "fits",
        "params GiB",
        "opt state GiB",
        "batch GiB",
        "temp GiB",
        "total / HBM GiB",
        "model TFLOP/chip",
        "est. step s",
        "est. MFU %",
    ]
    if show_tokens:
        header.append("est. tokens/s/chip")
    header += ["bound", "collectives (count, bytes/chip)", "compile s"]

    slices = f"{num_slices} slice" + ("" if num_slices == 1 else "s")
    lines = [
        f"# Sharding comparison: {topology} ({slices}), config `{config}`",
        "",
        "Produced by:",
        "",
        "```sh",
        command,
        "```",
        "",
        "Every time, tokens/s and MFU figure here is an ESTIMATE from ahead-of-time compilation "
        "for the target topology, not a measurement: the step was compiled, never run. The "
        f"estimate is the op-level model of `emollm_jax/aot/roofline.py`, {calibration_note()}. "
        "Memory figures are the compiler's own `memory_analysis()` of the compiled step, per "
        "chip. `bound`: what the estimate's step time is bound by.",
        "",
    ]
    if notes:
        lines += [f"- {note}" for note in notes] + [""]
    lines += [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += [
        "| " + " | ".join(_row_cells(r, show_mesh=show_mesh, show_tokens=show_tokens)) + " |"
        for r in rows
    ]
    fastest = best(rows)
    if fastest is None:
        fastest_text = "none (no combination compiled and fits)."
    else:
        fastest_text = (
            f"`{label(fastest)}`: est. {fastest['est_step_s']:.3g} s/step, est. MFU "
            f"{_num(fastest.get('est_mfu'), '.1f', 100.0)} %."
        )
    largest = largest_batch_that_fits(rows)
    largest_text = (
        ", ".join(f"{s}: {'none' if b is None else b}" for s, b in largest.items()) or "none"
    )
    lines += [
        "",
        f"Fastest that fits: {fastest_text}",
        "",
        f"Largest batch per chip that fits, per strategy: {largest_text}.",
        "",
    ]
    if fastest is not None and fastest.get("parts"):
        lines += render_parts(fastest)
    return "\n".join(lines)


def render_parts(row: dict) -> list[str]:
    """Where ``row``'s estimated step time goes, by model part (named scopes in the compiled
    program): each part's compute, HBM and collective seconds at the chip's rates."""
    parts = row["parts"]
    total = {k: sum(p[k] for p in parts.values()) for k in ("compute_s", "hbm_s", "collective_s")}

    def share(value, key):
        return f"{value:.3g} ({100 * value / total[key]:.0f}%)" if total[key] else f"{value:.3g}"

    lines = [
        f"### Where the work goes: `{label(row)}` (by model part)",
        "",
        "Each part's FLOPs at peak, HBM bytes at the HBM bandwidth and collective bytes at the "
        "ICI bandwidth (seconds, share of the column): the uncalibrated bounds of each part, "
        "to compare parts, not the step-time estimate. `other` is the LLM's dense layers, "
        "embeddings and the step's glue; `attention` is the LLM's attention core (scores, "
        "softmax, weighted values), `vision_tower` the whole ViT, `lm_head` the vocabulary "
        "projection, `loss` the cross-entropy, `optimizer` the AdamW update.",
        "",
        "| part | TFLOP | compute s | HBM GB | HBM s | collective GB | collective s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    order = sorted(parts, key=lambda n: -(parts[n]["compute_s"] + parts[n]["hbm_s"]))
    for name in order:
        p = parts[name]
        lines.append(
            f"| {name} | {p['flops'] / 1e12:.3g} | {share(p['compute_s'], 'compute_s')} | "
            f"{p['bytes'] / 1e9:.3g} | {share(p['hbm_s'], 'hbm_s')} | "
            f"{p['collective_bytes'] / 1e9:.3g} | {share(p['collective_s'], 'collective_s')} |"
        )
    return [*lines, ""]


def _part_bytes(row: dict, key: str) -> float:
    value = (row.get("bytes_per_chip") or {}).get(key)
    return float(value) if row.get("error") is None and _finite(value) else 0.0


def render_chart(rows: Sequence[dict], path: str | os.PathLike) -> None:
    """Write ``chart.png`` to ``path``: per-chip memory by part (left) and est. MFU (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    n = max(len(rows), 1)
    x = np.arange(len(rows))
    names = [label(r) for r in rows]
    many = n > 16
    label_size = 7 if many else 9
    fig = Figure(figsize=(2 * max(5.0, 0.22 * n + 1.5), 7.0 if many else 5.5), layout="constrained")
    mem_ax, mfu_ax = fig.subplots(1, 2)
    failed = [r.get("error") is not None for r in rows]

    bottom = np.zeros(len(rows))
    for key, name, color in _STACKED:
        values = np.array([_part_bytes(r, key) for r in rows], dtype=float) / _GiB
        mem_ax.bar(x, values, bottom=bottom, color=color, label=name, width=0.8)
        bottom += values
    hbm = [r.get("hbm_bytes") for r in rows]
    finite_hbm = [h for h in hbm if _finite(h)]
    if finite_hbm and len(set(finite_hbm)) == 1:
        mem_ax.axhline(finite_hbm[0] / _GiB, color="black", linestyle="--", label="HBM")
    elif finite_hbm:
        for i, h in enumerate(hbm):
            if _finite(h):
                mem_ax.hlines(h / _GiB, i - 0.45, i + 0.45, color="black", linestyle="--")
        mem_ax.plot([], [], color="black", linestyle="--", label="HBM")
    mem_top = max([float(bottom.max()) if len(bottom) else 0.0] + [h / _GiB for h in finite_hbm])
    mem_ax.set_ylim(0, max(mem_top, 1e-3) * (1.25 if many else 1.35))
    mem_ax.set_ylabel("GiB per chip (compiler memory_analysis)")
    mem_ax.set_title("Memory per chip")
    mem_ax.legend(fontsize=8, loc="upper left", ncol=6 if many else 3)

    mfu = np.array(
        [
            100.0 * r["est_mfu"] if _finite(r.get("est_mfu")) and not bad else 0.0
            for r, bad in zip(rows, failed)
        ]
    )
    fits = [bool(r.get("fits")) and not bad for r, bad in zip(rows, failed)]
    bars = mfu_ax.bar(x, mfu, width=0.8, color=["#4c72b0" if f else "#bbbbbb" for f in fits])
    for bar, f in zip(bars, fits):
        if not f:
            bar.set_hatch("//")
            bar.set_edgecolor("#555555")
    mfu_ax.set_ylim(0, max(float(mfu.max()) if len(mfu) else 0.0, 1.0) * 1.25)
    mfu_ax.set_ylabel("est. MFU % (roofline estimate)")
    mfu_ax.set_title("Estimated MFU (not measured)")
    mfu_ax.legend(
        handles=[
            Patch(color="#4c72b0", label="fits"),
            Patch(facecolor="#bbbbbb", edgecolor="#555555", hatch="//", label="does not fit"),
        ],
        fontsize=8,
        loc="upper left",
        ncol=2,
    )

    for ax in (mem_ax, mfu_ax):
        ax.set_xticks(x)
        ax.set_xticklabels(
            names,
            rotation=90 if many else 60,
            ha="center" if many else "right",
            fontsize=label_size,
        )
        ax.set_xlim(-0.6, len(rows) - 0.4)
        ax.grid(axis="y", alpha=0.3)
    for i, row in enumerate(rows):
        if failed[i]:
            marks = ((mem_ax, "error"), (mfu_ax, "error"))
        elif not _finite(row.get("est_mfu")):
            marks = ((mfu_ax, "n/a"),)
        else:
            continue
        for ax, text in marks:
            ax.annotate(
                text,
                (i, 0),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                rotation=90,
                fontsize=label_size,
                color="#c44e52",
            )
    fig.savefig(path, format="png", dpi=100)


def _temp_path(out_dir: pathlib.Path, name: str) -> pathlib.Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
    os.close(fd)
    os.chmod(tmp, 0o644)
    return pathlib.Path(tmp)


def _write_text(path: pathlib.Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_report(
    out_dir: str | os.PathLike,
    *,
    topology: str,
    num_slices: int,
    config: str,
    command: str,
    rows: list[dict],
    notes: Sequence[str] = (),
) -> dict[str, pathlib.Path]:
    """Write ``report.json``, ``report.md``, ``chart.png`` under ``out_dir``; returns their paths
    (keys ``json``, ``md``, ``chart``). Rows are checked first; nothing is replaced unless all
    three files rendered."""
    rows = list(rows)
    for row in rows:
        validate_row(row)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    notes = list(notes)
    fastest = best(rows)
    document = {
        "topology": topology,
        "num_slices": num_slices,
        "config": config,
        "command": command,
        "notes": notes,
        "rows": rows,
        "best": fastest,
        "largest_batch_that_fits": largest_batch_that_fits(rows),
    }
    final = {
        "chart": out / "chart.png",
        "md": out / "report.md",
        "json": out / "report.json",
    }
    temps: dict[str, pathlib.Path] = {}
    try:
        temps["chart"] = _temp_path(out, "chart.png")
        render_chart(rows, temps["chart"])
        temps["md"] = _temp_path(out, "report.md")
        _write_text(
            temps["md"],
            render_markdown(
                topology=topology,
                num_slices=num_slices,
                config=config,
                command=command,
                rows=rows,
                notes=notes,
            ),
        )
        temps["json"] = _temp_path(out, "report.json")
        _write_text(
            temps["json"], json.dumps(_jsonable(document), indent=2, allow_nan=False) + "\n"
        )
        for key in ("chart", "md", "json"):
            os.replace(temps.pop(key), final[key])
    finally:
        for tmp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return final


def winners_table(reports: Sequence[dict]) -> str:
    """A Markdown table of each report's fastest fitting combination (the README quotes it):
    ``python -m emollm_jax.aot.report docs/sharding/*/report.json``."""
    lines = [
        "| topology | fastest that fits | mesh | memory / HBM per chip (GiB) | est. step s | "
        "est. tokens/s/chip | est. MFU | bound | largest batch per chip that fits |",
        "|---|---|---|---|---:|---:|---:|---|---|",
    ]
    for report in reports:
        row = best(report["rows"])
        largest = ", ".join(
            f"{s} {'-' if b is None else b}"
            for s, b in largest_batch_that_fits(report["rows"]).items()
        )
        if row is None:
            lines.append(f"| {report['topology']} | none fits | | | | | | | {largest} |")
            continue
        total = row["bytes_per_chip"]["total"]
        lines.append(
            f"| {report['topology']} | `{label(row)}` | {_mesh_cell(row.get('mesh'))} | "
            f"{_gib(total)} / {_gib(row['hbm_bytes'])} | {row['est_step_s']:.3g} | "
            f"{_num(row.get('est_tokens_per_s_per_chip'), '.0f')} | "
            f"{_num(row.get('est_mfu'), '.1f', 100.0)}% | "
            f"{_bound(row)} | {largest} |"
        )
    return "\n".join(lines)


def variant_of(row: dict, command: str = "") -> str:
    """``attention=splash, loss_chunk=512``: the attention implementation and loss chunking a
    row was compiled with; a row without those fields takes them from its report's command
    line, else the defaults of the time (``xla``, 0)."""

    def field(name: str, section: str, default):
        if name in row:
            return row[name]
        given = re.search(rf"--config\.{section}\.{name}=(\S+)", command)
        return given.group(1) if given else default

    attention, chunk = field("attention", "model", "xla"), field("loss_chunk", "train", 0)
    return f"attention={attention}, loss_chunk={chunk}"


def variants_table(reports: Sequence[dict], strategy: str | None = None) -> str:
    """Every row (of ``strategy`` only, if given) of several reports (the same model compiled
    with different config overrides, e.g. attention kernels and loss chunking), side by side by
    sequence length and batch:
    ``python -m emollm_jax.aot.report --variants [--strategy=S] DIR/*/report.json``."""
    lines = [
        "| variant | strategy | tokens/row | batch/chip | temp / total / HBM per chip (GiB) | "
        "fits | est. step s | est. tokens/s/chip | est. MFU | largest batch that fits |",
        "|---|---|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    def order(report):
        row = report["rows"][0] if report["rows"] else {}
        return row.get("seq_len", 0), variant_of(row, report.get("command", ""))

    for report in sorted(reports, key=order):
        largest = largest_batch_that_fits(report["rows"])
        rows = [r for r in report["rows"] if strategy in (None, r.get("strategy"))]
        for row in sorted(rows, key=lambda r: r.get("batch_per_chip") or 0):
            memory = row.get("bytes_per_chip") or {}
            lines.append(
                f"| {variant_of(row, report.get('command', ''))} | {row.get('strategy')} | "
                f"{row.get('seq_len')} | "
                f"{row.get('batch_per_chip')} | {_gib(memory.get('temp'))} / "
                f"{_gib(memory.get('total'))} / {_gib(row.get('hbm_bytes'))} | "
                f"{_fits_cell(row)} | {_num(row.get('est_step_s'), '.3g')} | "
                f"{_num(row.get('est_tokens_per_s_per_chip'), '.0f')} | "
                f"{_percent(row.get('est_mfu'))} | {largest.get(row.get('strategy')) or '-'} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    flags = [a for a in argv if a.startswith("--")]
    paths = [pathlib.Path(a) for a in argv if not a.startswith("--")]
    strategy = next((f.split("=", 1)[1] for f in flags if f.startswith("--strategy=")), None)
    if not paths or set(flags) - {"--variants", f"--strategy={strategy}"}:
        raise SystemExit(
            "usage: python -m emollm_jax.aot.report [--variants [--strategy=S]] "
            "REPORT.json [...]"
        )
    reports = [json.loads(p.read_text()) for p in paths]
    print(variants_table(reports, strategy) if "--variants" in flags else winners_table(reports))


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
