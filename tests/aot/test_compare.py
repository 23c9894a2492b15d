"""The sharding comparison: a sweep compiled for a small TPU topology writes the report files,
resumes from its rows, and re-estimates from saved HLO without compiling."""

import json
import subprocess
import sys

import pytest

from emollm_jax.aot.compare import preset_shape
from emollm_jax.aot.report import REQUIRED_FIELDS
from tests.configs import REPO, load_config

pytestmark = pytest.mark.libtpu

pytest.importorskip("libtpu", reason="TPU topologies need libtpu (requirements-tpu.txt)")

MEMORY_PARTS = ("params", "opt_state", "batch", "temp", "output", "total")


def test_preset_shapes_fit_heads_and_chips():
    from emollm_jax.config.model import from_config_dict

    tiny = from_config_dict(load_config("llava_tiny").model)  # 4 heads, 2 kv heads
    assert preset_shape("tp", tiny, 8) == {"data": -1, "tensor": 2}
    assert preset_shape("hsdp", tiny, 8) == {"data": -1, "fsdp": 8}
    seven = from_config_dict(load_config("emollm_7b").model)  # 32 heads, vision 16
    assert preset_shape("tp", seven, 32) == {"data": -1, "tensor": 8}
    assert preset_shape("fsdp_tp", seven, 256) == {"fsdp": -1, "tensor": 4}
    assert preset_shape("hsdp", seven, 256) == {"data": -1, "fsdp": 16}


def _compare(out, *extra):
    cmd = [sys.executable, "-m", "emollm_jax.aot.compare", "--config",
           "configs/llava_tiny.py", "--topology", "v5e-8", "--strategies", "dp,fsdp",
           "--batch_per_chip", "1,2", "--seq_len", "128", "--out", str(out), *extra]  # fmt: skip
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_compare_writes_the_report_and_resumes(tmp_path):
    out = tmp_path / "report"
    r = _compare(out)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["topology"] == "v5e-8" and report["num_slices"] == 1
    assert report["config"] == "configs/llava_tiny.py"
    rows = report["rows"]
    assert [(r["strategy"], r["batch_per_chip"]) for r in rows] == [
        (s, b) for s in ("dp", "fsdp") for b in (1, 2)
    ]
    for row in rows:
        assert set(REQUIRED_FIELDS) <= set(row), set(REQUIRED_FIELDS) - set(row)
        assert row["error"] is None and row["fits"]
        assert set(MEMORY_PARTS) <= set(row["bytes_per_chip"])
        assert row["compile_s"] > 0 and row["est_step_s"] > 0 and row["flops"] > 0
    assert report["best"] is not None
    assert report["largest_batch_that_fits"] == {"dp": 2, "fsdp": 2}
    md = (out / "report.md").read_text()
    assert "estimate" in md.lower() and "compare --config configs/llava_tiny.py" in md
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "100%" in r.stderr  # the progress bar ran to the end

    # A second run compiles nothing: every row comes from rows.jsonl (and --reestimate redoes
    # the estimates from the saved HLO, to the same figures under the same cost model).
    before = (out / "rows.jsonl").read_text()
    again = _compare(out, "--reestimate")
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = json.loads((out / "report.json").read_text())["rows"]
    assert [r["compile_s"] for r in rerun] == [r["compile_s"] for r in rows]
    assert [r["est_step_s"] for r in rerun] == pytest.approx([r["est_step_s"] for r in rows])
    assert len((out / "rows.jsonl").read_text().splitlines()) == len(before.splitlines())


def test_flags_may_be_spelled_with_hyphens():
    from emollm_jax.aot.cli import underscore_flags

    argv = ["prog", "--num-slices=2", "--batch-per-chip", "1,2", "--config.mesh.shape.fsdp=-1"]
    assert underscore_flags(argv) == [
        "prog", "--num_slices=2", "--batch_per_chip", "1,2", "--config.mesh.shape.fsdp=-1"
    ]  # fmt: skip
