"""``python -m emollm_jax.aot.calibrate --out docs/calibration [--runs NAME,...] [--check]``.

Compiles the program of every published run (``aot/published_runs.json``: its model, chips,
batch, sequence, remat, attention and compiler flags) ahead of time for its TPU topology, and
sets our step-time ESTIMATE (``aot.roofline``, calibrated) beside the measured step time:
``DIR/calibration.md`` (the table), ``DIR/calibration.json`` and ``DIR/chart.png`` (estimate
against measurement, the y = x line and the 0.85-1.20 band).

Each run's report row and optimized HLO are kept in ``DIR/rows.jsonl`` and ``DIR/hlo/`` as they
finish: an interrupted run resumes, and a change to the estimator is re-applied to the saved
HLO without compiling again (what ``--reestimate`` does; a new row is compiled only when
missing). ``--check`` exits 1 when a fitting run's ratio (estimate / measured) leaves the band.
Only runs whose ``role`` is ``fit`` were used to choose the estimator's constants; the
``held_out`` ones are shown apart.
"""

from __future__ import annotations

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")

import gzip  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import pathlib  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import sys  # noqa: E402

from absl import flags  # noqa: E402



def define_flags() -> None:
    """The command's flags, defined when it runs (``compare`` has an ``--out`` of its own: both
    modules are imported in one process by the tests)."""
    flags.DEFINE_string("out", "docs/calibration", "Report folder.")
    flags.DEFINE_list("runs", [], "Published runs to include (default: all).")
    flags.DEFINE_bool("check", False, "Exit 1 when a fitting run leaves the band.")
    flags.DEFINE_bool(
        "fit", False, "Search the estimator's fitted constants on the runs of role 'fit' only "
        "and print them (they are then written into aot/roofline.py's CALIBRATED by hand)."
    )

BAND = (0.85, 1.20)
GiB = 2**30


def maxtext_2023_tflops_per_device(params: float, r: dict, text) -> float:
    """MaxText's training TFLOPs per device per step as its Dec-2023 ``train.py`` counted them
    (the definition its v5e table's TFLOP/s used): 6 x parameters x tokens plus causal
    attention, 12 x heads x layers x head_dim x seq^2 x rows / 2."""
    tokens = r["batch_per_chip"] * r["seq_len"]
    weights = 6 * params * tokens
    attention = 12 * text.num_heads * text.num_layers * text.resolved_head_dim
    attention *= r["seq_len"] ** 2 * r["batch_per_chip"] / 2
    return (weights + attention) / 1e12


def measured_step_s(r: dict, model_cfg, params: float) -> float:
    """The run's measured step time: published, or its published TFLOP/s/device turned into a
    step time by the publisher's own FLOP count."""
    if r.get("measured_step_s"):
        return float(r["measured_step_s"])
    tflops = maxtext_2023_tflops_per_device(params, r, model_cfg.text)
    return tflops / r["reported"]["tflops_per_device"]


def _hlo_path(out: pathlib.Path, name: str) -> pathlib.Path:
    return out / "hlo" / f"{name}.hlo.gz"


def _load_rows(out: pathlib.Path) -> dict[str, dict]:
    """The compiled runs' rows, by run name (the last row of a name wins)."""
    from emollm_jax.aot.report import read_rows

    return {row["recipe"]: row for row in read_rows(out / "rows.jsonl")}


def compile_run(r: dict, out: pathlib.Path) -> dict:
    """Compile one published run's program and keep its row and HLO under ``out``."""
    from emollm_jax.aot import analysis, published, topology
    from emollm_jax.aot.report import _jsonable

    devices = topology.devices(topology.parse(r["topology"]))
    row = analysis.train_row(
        published.config_for(r), devices, batch_per_chip=r["batch_per_chip"],
        seq_len=r["seq_len"], frames=0, flags=published.flags_for(r), breakdown=True,
    )  # fmt: skip
    row.pop("traceback", None)
    row["recipe"], row["topology"] = r["name"], r["topology"]
    hlo = row.pop("hlo", None)
    if hlo:
        path = _hlo_path(out, r["name"])
        path.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(path, "wt") as f:
            f.write(hlo)
    with (out / "rows.jsonl").open("a") as f:
        f.write(json.dumps(_jsonable(row)) + "\n")
    import jax

    jax.clear_caches()  # one full-size program at a time in host memory
    return row


def estimate_row(row: dict, out: pathlib.Path) -> dict:
    """The row's estimate redone from its saved HLO with the current estimator."""
    from emollm_jax.aot import analysis
    from emollm_jax.aot import chips

    path = _hlo_path(out, row["recipe"])
    if row.get("error") is None and path.exists():
        with gzip.open(path, "rt") as f:
            analysis.estimate(row, f.read(), chips.CHIPS[row["chip"]])
    return row


def table(out: pathlib.Path, names: list[str]) -> list[dict]:
    """One entry per run: the published figures beside our compiled program's."""
    from emollm_jax.aot import published
    from emollm_jax.config.model import from_config_dict
    from emollm_jax.models.build import abstract_model

    rows = _load_rows(out)
    entries = []
    for name in names:
        r = published.run(name)
        cfg = from_config_dict(published.config_for(r).model)
        params = _count_params(abstract_model(cfg))
        row = estimate_row(rows[name], out) if name in rows else None
        measured = measured_step_s(r, cfg, params)
        est = row.get("est_step_s") if row else None
        entries.append(
            dict(
                name=name, role=r["role"], model=r["model"], topology=r["topology"],
                batch_per_chip=r["batch_per_chip"], seq_len=r["seq_len"], remat=r["remat"],
                measured_step_s=measured, est_step_s=est,
                ratio=(est / measured) if est else None,
                bytes_per_chip=(row or {}).get("bytes_per_chip", {}).get("total"),
                hbm_bytes=(row or {}).get("hbm_bytes"), fits=(row or {}).get("fits"),
                roofline=(row or {}).get("roofline"), error=(row or {}).get("error"),
                source=r["source"],
            )
        )  # fmt: skip
    return entries


# The constants the fit searches, each over a range its physical effect allows; the others
# keep CALIBRATED's values.
FIT_GRID = {
    "mxu_efficiency": [x / 100 for x in range(50, 101, 2)],
    "attention_efficiency": [x / 100 for x in range(30, 101, 5)],
    # 4-32 GB/s: from a PCIe 4.0 x16 link shared by 8 chips to one per chip.
    "host_bandwidth": [x * 1e9 for x in (4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32)],
}


def fit(out: pathlib.Path, names: list[str]) -> tuple[dict, float]:
    """The grid point of ``FIT_GRID`` whose worst fitting run is closest to its measurement
    (the largest |log(estimate / measured)| smallest), from the saved HLO of the ``fit`` runs
    among ``names`` only."""
    import dataclasses
    import itertools
    import math

    from emollm_jax.aot import chips, hlo_stats, roofline

    rows = _load_rows(out)
    points = []
    for e in table(out, names):
        if e["role"] != "fit" or e["name"] not in rows or rows[e["name"]].get("error"):
            continue
        with gzip.open(_hlo_path(out, e["name"]), "rt") as f:
            ops = hlo_stats.analyze(f.read()).ops
        chip = chips.CHIPS[rows[e["name"]]["chip"]]
        points.append((ops, chip, e["measured_step_s"], rows[e["name"]].get("cross_slice_bytes", 0)))
    best, best_err = None, math.inf
    keys = list(FIT_GRID)
    for values in itertools.product(*(FIT_GRID[k] for k in keys)):
        c = dataclasses.replace(roofline.CALIBRATED, **dict(zip(keys, values)))
        err = max(
            abs(math.log(roofline.estimate_ops(ops, chip, c, cross).step_s / measured))
            for ops, chip, measured, cross in points
        )
        if err < best_err:
            best, best_err = dict(zip(keys, values)), err
    return best, best_err


def _count_params(model) -> float:
    import jax
    from flax import nnx

    return float(sum(x.size for x in jax.tree.leaves(nnx.state(model))))


def outside_band(entries: list[dict]) -> list[str]:
    """The fitting runs whose estimate / measured ratio is missing or outside ``BAND``."""
    return [e["name"] for e in entries if e["role"] == "fit"
            and not (e["ratio"] and BAND[0] <= e["ratio"] <= BAND[1])]  # fmt: skip


def markdown(entries: list[dict], command: str, constants: dict) -> str:
    head = (
        "| run | role | model | chips | batch x seq | remat | measured s/step | estimate | "
        "ratio | memory per chip / HBM | fits |\n|---|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for e in entries:
        est = f"{e['est_step_s']:.3f}" if e["est_step_s"] else e["error"] or "not compiled"
        ratio = f"{e['ratio']:.3f}" if e["ratio"] else "-"
        mem = (
            f"{e['bytes_per_chip'] / GiB:.1f} / {e['hbm_bytes'] / GiB:.0f} GiB"
            if e["bytes_per_chip"] else "-"
        )  # fmt: skip
        lines.append(
            f"| {e['name']} | {e['role']} | {e['model']} | {e['topology']} | "
            f"{e['batch_per_chip']} x {e['seq_len']} | {e['remat']} | {e['measured_step_s']:.3f} "
            f"| {est} | {ratio} | {mem} | {e['fits']} |"
        )
    from emollm_jax.aot import published

    shown = {e["name"] for e in entries}
    left = [r["name"] for r in published.runs() if r["name"] not in shown]
    fit = [e["ratio"] for e in entries if e["role"] == "fit" and e["ratio"]]
    summary = (
        f"Fitting runs: {len(fit)}, ratio estimate / measured from {min(fit):.3f} to "
        f"{max(fit):.3f} (band {BAND[0]}-{BAND[1]})." if fit else "No fitting run compiled."
    )  # fmt: skip
    if left:
        summary += f" Published runs not in this table (not compiled for it): {', '.join(left)}."
    consts = "\n".join(f"- `{k}` = {v}" for k, v in constants.items())
    return (
        "# Step-time estimate against published measurements\n\n"
        "Every estimate is an ESTIMATE from ahead-of-time compilation on a CPU host (no TPU "
        "was used); every measurement is the publisher's (source per run in "
        "`calibration.json`). Only the runs of role `fit` chose the estimator's constants; "
        "`held_out` runs were never fitted on.\n\n"
        f"{chr(10).join(lines)}\n\n{summary}\n\n![estimate against measurement](chart.png)"
        f"\n\nMeasured step times: the publisher's log line for the LLaMA and Mistral runs; "
        f"for MaxText's 16B and 32B, its published TFLOP/s per chip turned into a step time by "
        f"MaxText's own FLOP count of the time (6 x parameters x tokens plus causal attention; "
        f"`maxtext_2023_tflops_per_device`). Our MFU figures elsewhere count full (not causal) "
        f"attention, as MaxText did before mid-2025. Memory per chip is the compiler's for our "
        f"program of each run (`emollm compile --recipe NAME`).\n\nThe estimator's constants "
        f"(`emollm_jax/aot/roofline.py` says what each stands for and what it is fitted "
        f"on):\n\n{consts}\n\nMade by `{command}`, on an "
        f"{_machine()}.\n"
    )


def _machine() -> str:
    """This host, as the docs name machines: its CPU model and core count."""
    model = ""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model or platform.machine()} host ({os.cpu_count()} cores, no accelerator)"


def chart(entries: list[dict], path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    done = [e for e in entries if e["ratio"]]
    top = max([e["measured_step_s"] for e in done] + [e["est_step_s"] for e in done] + [1.0])
    ax.plot([0, top * 1.1], [0, top * 1.1], color="black", lw=1, label="y = x")
    ax.fill_between([0, top * 1.1], [0, BAND[0] * top * 1.1], [0, BAND[1] * top * 1.1],
                    color="0.9", label=f"{BAND[0]}-{BAND[1]} band")  # fmt: skip
    for role, marker in (("fit", "o"), ("held_out", "s")):
        pts = [e for e in done if e["role"] == role]
        ax.scatter([e["measured_step_s"] for e in pts], [e["est_step_s"] for e in pts],
                   marker=marker, label=role.replace("_", " "))  # fmt: skip
        for e in pts:
            ax.annotate(e["name"], (e["measured_step_s"], e["est_step_s"]), fontsize=6)
    ax.set_xlabel("measured step time (s), published")
    ax.set_ylabel("our estimate (s), ahead-of-time compile")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv) -> int:
    del argv
    from emollm_jax import logs
    from emollm_jax.aot import published, roofline
    from emollm_jax.aot.report import _jsonable

    logs.setup()
    out = pathlib.Path(flags.FLAGS.out)
    out.mkdir(parents=True, exist_ok=True)
    names = flags.FLAGS.runs or [r["name"] for r in published.runs()]
    for name in names:
        published.run(name)  # an unknown name is the user's mistake
    done = _load_rows(out)
    for name in names:
        if name not in done:
            print(f"compiling {name} ...", flush=True)
            compile_run(published.run(name), out)
    if flags.FLAGS.fit:
        best, err = fit(out, names)
        print(f"best fit on the 'fit' runs: {best} (worst ratio within x{math.exp(err):.3f})")
        return 0
    entries = table(out, names)
    command = "python -m emollm_jax.aot.calibrate " + shlex.join(sys.argv[1:])
    constants = roofline.constants()
    (out / "calibration.json").write_text(
        json.dumps(_jsonable(dict(band=BAND, constants=constants, runs=entries)), indent=1) + "\n"
    )
    (out / "calibration.md").write_text(markdown(entries, command, constants))
    chart(entries, out / "chart.png")
    for e in entries:
        ratio = f"{e['ratio']:.3f}" if e["ratio"] else "-"
        print(f"{e['name']:24} {e['role']:8} measured {e['measured_step_s']:.3f} s  "
              f"estimate {e['est_step_s'] or float('nan'):.3f} s  ratio {ratio}")  # fmt: skip
    outside = outside_band(entries)
    if flags.FLAGS.check and outside:
        print(f"outside the band {BAND}: {', '.join(outside)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from emollm_jax.cli_errors import run_absl

    define_flags()
    run_absl(main)
