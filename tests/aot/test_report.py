"""The comparison report from synthetic rows: files, JSON, the picks, the text, atomicity."""

from __future__ import annotations

import copy
import json
import math

import pytest

from emollm_jax.aot import report
from emollm_jax.aot.report import (
    REQUIRED_FIELDS,
    best,
    largest_batch_that_fits,
    validate_row,
    write_report,
)

GiB = 2**30
HBM = 16 * GiB
COMMAND = "python -m emollm_jax.aot.compare --topology v5e:4x4 --config configs/x.yaml"
OOM = (
    "XlaRuntimeError: RESOURCE_EXHAUSTED: Ran out of memory in memory space hbm while "
    "allocating the temporaries of the step; used 23.1G of 15.75G hbm, exceeded by 7.35G"
)


def _row(strategy, remat, batch, *, step, mfu, total_gib, error=None, **extra):
    parts = {"params": 1.0, "opt_state": 2.0, "batch": 0.5, "temp": total_gib - 4.0, "output": 0.5}
    row = {
        "strategy": strategy,
        "remat": remat,
        "batch_per_chip": batch,
        "fits": error is None and total_gib * GiB <= HBM,
        "bytes_per_chip": {k: v * GiB for k, v in parts.items()} | {"total": total_gib * GiB},
        "hbm_bytes": HBM,
        "flops": 3.2e13 * batch,
        "est_step_s": step,
        "est_mfu": mfu,
        "collectives": {
            "all-gather": {"count": 64, "bytes": 12.3 * GiB},
            "reduce-scatter": {"count": 32.0, "bytes": 3.0 * GiB, "groups": 16},
        },
        "compile_s": 12.5,
        "error": error,
    }
    row.update(extra)
    return row


def _rows():
    fast = _row(
        "fsdp",
        "full",
        4,
        step=1.0,
        mfu=0.5,
        total_gib=10.0,
        roofline={
            "compute_s": 0.8,
            "hbm_s": 0.3,
            "collective_s": 0.2,
            "step_s": 1.0,
            "step_s_overlapped": 0.8,
            "bound": "compute",
        },
        mesh={"data": 1, "fsdp": 16, "tensor": 1},
        est_tokens_per_s_per_chip=8192.0,
        extra_field={"kept": True},
    )
    slower = _row("fsdp", "full", 8, step=1.5, mfu=0.6, total_gib=14.0)
    # Same time as `fast` but a smaller batch: the tie goes to the larger batch.
    tie = _row("dp", "none", 2, step=1.0, mfu=0.4, total_gib=8.0)
    # Fastest of all but over HBM by 4 GiB.
    too_big = _row("tp", "none", 16, step=0.5, mfu=0.9, total_gib=20.0)
    failed = _row("tp", "full", 4, step=None, mfu=None, total_gib=10.0, error=OOM + "\nline two")
    failed.update({"bytes_per_chip": None, "flops": None, "collectives": None, "compile_s": 3.0})
    odd = _row("dp", "full", 4, step=2.0, mfu=math.nan, total_gib=9.0)
    return [fast, slower, tie, too_big, failed, odd]


def test_best_and_largest_batch():
    rows = _rows()
    assert best(rows) is rows[0]
    assert best(rows[1:]) is rows[2]  # dp/none/b2 at 1.0 s beats fsdp/full/b8 at 1.5 s
    assert best([rows[3], rows[4]]) is None
    assert best([]) is None
    assert largest_batch_that_fits(rows) == {"fsdp": 8, "dp": 4, "tp": None}


def test_write_report(tmp_path):
    rows = _rows()
    original = copy.deepcopy(rows)
    paths = write_report(
        tmp_path / "out",
        topology="v5e:4x4",
        num_slices=1,
        config="configs/x.yaml",
        command=COMMAND,
        rows=rows,
        notes=["a note about the sweep"],
    )
    assert repr(rows) == repr(original)  # the caller's rows are not changed
    assert set(paths) == {"json", "md", "chart"}
    for path in paths.values():
        assert path.is_file() and path.parent == tmp_path / "out"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "chart.png",
        "report.json",
        "report.md",
    ]

    text = paths["json"].read_text()
    assert "NaN" not in text  # strict JSON: nan becomes null
    doc = json.loads(text)
    assert doc["topology"] == "v5e:4x4" and doc["num_slices"] == 1
    assert doc["config"] == "configs/x.yaml" and doc["command"] == COMMAND
    assert len(doc["rows"]) == len(rows)
    for row in doc["rows"]:
        assert all(field in row for field in REQUIRED_FIELDS)
    assert doc["rows"][0]["extra_field"] == {"kept": True}
    assert doc["rows"][0]["roofline"]["step_s_overlapped"] == 0.8
    assert doc["rows"][5]["est_mfu"] is None
    assert doc["best"]["strategy"] == "fsdp" and doc["best"]["batch_per_chip"] == 4
    assert doc["largest_batch_that_fits"] == {"fsdp": 8, "dp": 4, "tp": None}

    md = paths["md"].read_text()
    assert "v5e:4x4" in md and "configs/x.yaml" in md
    assert f"```sh\n{COMMAND}\n```" in md
    assert "estimate" in md.lower() and "ESTIMATE" in md and "not a measurement" in md
    assert "memory_analysis()" in md
    assert "a note about the sweep" in md
    assert OOM[:100] in md and "line two" not in md and OOM not in md  # first line, truncated
    assert "no (+4.00 GiB over)" in md
    assert "AG 64 (12.3 GiB), RS 32 (3.0 GiB)" in md
    assert "(0.8)" not in md  # the older whole-program bounds stay in the JSON only
    assert "published MaxText runs, estimate / measured" in md  # the calibration's error
    assert "fsdp=16" in md and "8,192" in md
    assert "Fastest that fits: `fsdp/full/b4`" in md
    assert "Largest batch per chip that fits, per strategy: fsdp: 8, dp: 4, tp: none." in md
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + len(rows)  # header + one line per combination
    assert len({line.count(" | ") for line in table}) == 1  # every line has the same columns

    png = paths["chart"].read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) > 10_000


def test_chart_with_many_combinations(tmp_path):
    rows = [
        _row(s, r, b, step=0.1 * b, mfu=0.05 * (i % 10), total_gib=4.5 + b)
        for i, (s, r, b) in enumerate(
            (s, r, b)
            for s in ("dp", "fsdp", "tp", "fsdp_tp")
            for r in ("none", "full")
            for b in (1, 2, 4, 8, 16)
        )
    ]
    assert len(rows) == 40
    paths = write_report(
        tmp_path, topology="v5p:2x2x4", num_slices=2, config="c", command="cmd", rows=rows
    )
    assert paths["chart"].read_bytes().startswith(b"\x89PNG")
    assert "(2 slices)" in paths["md"].read_text()


def test_validate_row_names_missing_fields():
    row = _rows()[0]
    validate_row(row)
    del row["fits"], row["compile_s"]
    with pytest.raises(ValueError, match="fits, compile_s"):
        validate_row(row)
    row = _rows()[0]
    del row["bytes_per_chip"]["temp"]
    with pytest.raises(ValueError, match=r"bytes_per_chip\.temp"):
        validate_row(row)


def test_invalid_row_writes_nothing(tmp_path):
    rows = _rows()
    del rows[2]["est_mfu"]
    with pytest.raises(ValueError, match="est_mfu"):
        write_report(tmp_path, topology="t", num_slices=1, config="c", command="x", rows=rows)
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_leaves_no_report(tmp_path, monkeypatch):
    def broken_chart(rows, path):
        path.write_bytes(b"\x89PNG half a chart")
        raise RuntimeError("chart exploded")

    monkeypatch.setattr(report, "render_chart", broken_chart)
    with pytest.raises(RuntimeError, match="chart exploded"):
        write_report(tmp_path, topology="t", num_slices=1, config="c", command="x", rows=_rows())
    assert not (tmp_path / "report.json").exists()
    assert list(tmp_path.iterdir()) == []  # no temporary files left behind either


def test_failure_keeps_the_previous_report(tmp_path, monkeypatch):
    kwargs = dict(topology="t", num_slices=1, config="c", command="first", rows=_rows())
    write_report(tmp_path, **kwargs)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken_markdown(**_):
        raise OSError("disk full")

    monkeypatch.setattr(report, "render_markdown", broken_markdown)
    with pytest.raises(OSError, match="disk full"):
        write_report(tmp_path, **(kwargs | {"command": "second"}))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_winners_table_names_each_topologys_fastest_fit():
    from emollm_jax.aot.report import winners_table

    table = winners_table(
        [{"topology": "v5p-64", "rows": _rows()}, {"topology": "v5e-8", "rows": _rows()[3:5]}]
    )
    lines = table.splitlines()
    assert len(lines) == 4
    assert "| v5p-64 | `fsdp/full/b4` | data=1 fsdp=16 tensor=1 |" in lines[2]
    assert "| 8192 | 50.0% | compute | fsdp 8, dp 4, tp - |" in lines[2]
    assert lines[3].startswith("| v5e-8 | none fits |")


def test_best_is_the_highest_throughput_not_the_shortest_step():
    small = _row("fsdp", "full", 1, step=0.4, mfu=0.48, total_gib=7.0)
    large = _row("fsdp", "full", 8, step=2.5, mfu=0.60, total_gib=12.0)
    small["est_tokens_per_s_per_chip"] = 1 * 2048 / 0.4
    large["est_tokens_per_s_per_chip"] = 8 * 2048 / 2.5
    assert best([small, large]) is large


def test_variants_table_puts_kernel_variants_side_by_side():
    from emollm_jax.aot.report import variant_of, variants_table

    plain = {
        "rows": [
            _row("hsdp", "full", 2, step=2.0, mfu=0.4, total_gib=20, seq_len=8192),
            _row("hsdp", "full", 1, step=1.0, mfu=0.4, total_gib=10, seq_len=8192),
        ],
    }
    kernels = {
        "rows": [
            _row("hsdp", "full", b, step=b, mfu=0.5, total_gib=4 + 2 * b, seq_len=8192,
                 attention="splash", loss_chunk=512)
            for b in (1, 2, 4)
        ],
    }  # fmt: skip
    # Rows predating the fields were compiled with the defaults of the time.
    assert variant_of(plain["rows"][0]) == "attention=xla, loss_chunk=0"
    assert variant_of(kernels["rows"][0]) == "attention=splash, loss_chunk=512"
    command = "compare --config.model.attention=splash --config.train.loss_chunk=256"
    assert variant_of(plain["rows"][0], command) == "attention=splash, loss_chunk=256"
    lines = variants_table([kernels, plain]).splitlines()
    assert len(lines) == 2 + 5
    assert lines[2].startswith("| attention=splash, loss_chunk=512 | hsdp | 8192 | 1 |")
    assert lines[2].endswith("| 4 |")  # its largest batch that fits
    assert lines[5].startswith("| attention=xla, loss_chunk=0 | hsdp | 8192 | 1 |")  # in order
    assert "| no (+" in lines[6] and lines[6].endswith("| 1 |")
    assert len(variants_table([kernels, plain], strategy="fsdp").splitlines()) == 2
