"""The calibration command on the smallest fitting run: from the committed compiled program
(docs/calibration/hlo) it reproduces the committed estimate / measured ratio, inside the band;
an estimator that leaves the band fails the check. No timing."""

import dataclasses
import gzip
import json
import shutil
import subprocess
import sys

import pytest

from emollm_jax.aot import calibrate, published, roofline
from tests.configs import REPO

DOCS = REPO / "docs" / "calibration"
SMALLEST = "llama3.1-8b-v6e-8"


@pytest.fixture
def one_run(tmp_path):
    """A calibration folder holding the committed row and HLO of the smallest fitting run."""
    rows = [json.loads(line) for line in (DOCS / "rows.jsonl").read_text().splitlines()]
    (tmp_path / "rows.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows if r["recipe"] == SMALLEST)
    )
    (tmp_path / "hlo").mkdir()
    shutil.copy(DOCS / "hlo" / f"{SMALLEST}.hlo.gz", tmp_path / "hlo")
    return tmp_path


def test_published_runs_name_their_source_and_keep_mistral_aside():
    fit = {r["name"] for r in published.runs("fit")}
    assert {"llama3.1-8b-v6e-8", "llama3.1-8b-v6e-64", "maxtext-16b-v5e-256"} <= fit
    assert [r["name"] for r in published.runs("held_out")] == ["mistral-7b-v6e-8"]
    for r in published.runs():
        assert len(r["source"]["commit"]) == 40 and r["source"]["repository"]
        assert published.flags_for(r).startswith("--xla_")


def test_the_smallest_fitting_run_reproduces_its_committed_ratio(one_run):
    r = subprocess.run(
        [sys.executable, "-m", "emollm_jax.aot.calibrate", "--runs", SMALLEST, "--out",
         str(one_run), "--check"],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (ours,) = json.loads((one_run / "calibration.json").read_text())["runs"]
    committed = json.loads((DOCS / "calibration.json").read_text())
    (theirs,) = [e for e in committed["runs"] if e["name"] == SMALLEST]
    assert ours["ratio"] == pytest.approx(theirs["ratio"], rel=1e-9)
    assert calibrate.BAND[0] <= ours["ratio"] <= calibrate.BAND[1]
    assert committed["constants"] == roofline.constants()
    assert (one_run / "chart.png").stat().st_size > 0
    with gzip.open(one_run / "hlo" / f"{SMALLEST}.hlo.gz", "rt") as f:
        assert "splash" in f.read()  # the program MaxText ran: splash attention


def test_an_estimate_outside_the_band_fails_the_check(one_run, monkeypatch):
    inside = calibrate.table(one_run, [SMALLEST])
    assert calibrate.outside_band(inside) == []
    slow = dataclasses.replace(roofline.CALIBRATED, mxu_efficiency=roofline.CALIBRATED.mxu_efficiency / 3)
    monkeypatch.setattr(roofline, "CALIBRATED", slow)
    outside = calibrate.table(one_run, [SMALLEST])
    assert outside[0]["ratio"] > calibrate.BAND[1]
    assert calibrate.outside_band(outside) == [SMALLEST]


def test_the_error_every_report_quotes_is_the_committed_calibrations():
    committed = json.loads((DOCS / "calibration.json").read_text())
    ratios = [e["ratio"] for e in committed["runs"] if e["role"] == "fit"]
    assert roofline.CALIBRATION_ERROR == dict(
        runs=len(ratios), low=round(min(ratios), 3), high=round(max(ratios), 3)
    )
    assert "6 published MaxText runs" in roofline.calibration_note()
