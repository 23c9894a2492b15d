"""``benchmarks/bench_vs_pytorch.py`` at a tiny size: every row is printed with its ratio and
its decode-only notes, both sides generate the same tokens, and over ``--torch-bf16-limit-s``
PyTorch's bfloat16 side is not run and shown as an estimate (no timing is asserted)."""

import importlib.util
import re
import sys
import types

import pytest

from tests.configs import REPO

pytestmark = pytest.mark.torch

TINY = (
    "--hidden 32 --heads 4 --kv-heads 2 --layers 2 --vocab 128 --train-batch 2 --train-seq 16 "
    "--prompt 8 --new-tokens 4 --gen-batches 1,2 --vision-hidden 32 --vision-layers 1 "
    "--image-size 32 --patch 8 --llava-batch 1 --repeats 1 --warmup 0 --peak-size 64 "
    "--copy-mib 4"
).split()


def _bench():
    spec = importlib.util.spec_from_file_location(
        "bench_vs_pytorch", REPO / "benchmarks" / "bench_vs_pytorch.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _spy_on_torch(bench, monkeypatch) -> dict:
    """Counts of the calls that set up PyTorch's side of a row (its train step, its generate)."""
    calls = {"train": 0, "generate": 0}

    def spy(key, fn):
        def wrapped(*a, **k):
            calls[key] += 1
            return fn(*a, **k)

        return wrapped

    monkeypatch.setattr(bench, "torch_train_step", spy("train", bench.torch_train_step))
    monkeypatch.setattr(bench, "torch_generate", spy("generate", bench.torch_generate))
    return calls


@pytest.mark.slow
def test_prints_every_row_with_ratio_and_mfu(monkeypatch):
    bench = _bench()
    calls = _spy_on_torch(bench, monkeypatch)
    lines = []
    rows = bench.main(TINY, out=lines.append)
    text = "\n".join(lines)
    works = [r.work for r in rows]
    assert len(works) == 7, works  # train x2, generation at batch 1 and 2, bf16, LLaVA x2
    for needle in ("float32", "bfloat16 compute", "batch 1", "batch 2", "bfloat16 weights",
                   "LLaVA train", "LLaVA greedy"):
        assert any(needle in w for w in works), (needle, works)
    table = [ln for ln in lines if ln.startswith("| ") and " s | " in ln]
    assert len(table) == 7, text
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        theirs, ours, ratio = (float(c.rstrip("sx ")) for c in cells[1:4])
        assert ratio == pytest.approx(theirs / ours, rel=0.02, abs=0.006), line
        assert all(re.fullmatch(r"\d+\.\d%", c) for c in cells[6:8]), line
    for dtype in ("float32", "bfloat16"):
        for lib in ("pytorch", "jax"):
            assert re.search(rf"matmul peak 64x64 {dtype} +{lib} +: \d", text), text
    assert re.search(r"numpy copy of 4 MiB: \d+\.\d GB/s", text)
    # Greedy decoding of the same weights: float32 tokens agree with transformers'.
    assert "same tokens as PyTorch: 100%" in table[2] and "same tokens as PyTorch: 100%" in table[3]
    assert re.search(r"memory bound \d+\.\d ms \(-?\d+\.\d\dx the bound\)", table[2])
    # XLA's matrix-vector speed, measured for both weight dtypes, is set against batch 1.
    for kind, dtype in (("matrix-vector, 1 row", "float32"), ("matrix-vector, 1 row", "bfloat16"),
                        ("2-row matmul", "float32")):
        assert re.search(rf"XLA {kind}, {dtype} weights .*: \d+\.\d GB/s", text), text
    # batch 1 with float32, batch 2, batch 1 with bfloat16 weights
    for kind, line in zip(("matrix-vector", "2-row matmul", "matrix-vector"), table[2:5]):
        assert re.search(rf"XLA {kind} time of these weights \d+\.\d ms \(-?\d+\.\d\dx it", line)
    # PyTorch ran every row: 3 train steps, and 4 generation rows of (new tokens, 1 token) each.
    assert calls == {"train": 3, "generate": 8}
    # Every generation row notes both sides' decode-only ms/token and prefill + 1 seconds.
    gen_rows = [(r, ln) for r, ln in zip(rows, table) if "generation" in r.work]
    assert len(gen_rows) == 4
    for row, line in gen_rows:
        g = row.gen
        assert g.new_tokens == 4 and not row.theirs_estimated
        assert (g.theirs_s, g.ours_s) == (row.theirs_s, row.ours_s)
        ours_ms = 1e3 * (g.ours_s - g.ours_one_s) / 3
        theirs_ms = 1e3 * (g.theirs_s - g.theirs_one_s) / 3
        assert f"decode: ours {ours_ms:.1f} ms/token, PyTorch {theirs_ms:.1f};" in line, line
        assert f"prefill + 1: ours {g.ours_one_s:.3f} s, PyTorch {g.theirs_one_s:.3f} s" in line
        assert "~" not in line and "est." not in line, line


def test_generation_note_decode_arithmetic():
    """Decode per token = (t(N) - t(1)) / (N - 1), and the memory bound is set against it."""
    bench = _bench()
    g = bench.GenTiming(3.0, 2.0, 0.8, 0.4, new_tokens=9, same=1.0)
    assert g.decode_s() == pytest.approx((0.275, 0.2))
    assert bench.generation_note(g, bound_s=0.1) == (
        "same tokens as PyTorch: 100%; decode: ours 200.0 ms/token, PyTorch 275.0; "
        "prefill + 1: ours 0.400 s, PyTorch 0.800 s; memory bound 100.0 ms (2.00x the bound)"
    )
    assert bench.generation_note(g, matvec=(0.1, False, 8)).endswith(
        "; XLA 8-row matmul time of these weights 100.0 ms (2.00x it)"
    )
    assert bench.generation_note(g, bound_s=0.1, matvec=(0.16, True, 1)).endswith(
        "(2.00x the bound); XLA matrix-vector time of these weights 160.0 ms (1.25x it; XLA "
        "converts bfloat16 weights to float32 before the loop)"
    )
    est = bench.GenTiming(3.0, 2.0, 0.8, 0.4, new_tokens=9, same=None, theirs_estimated=True)
    assert bench.generation_note(est) == (
        "same-tokens check skipped (PyTorch not run); decode: ours 200.0 ms/token, PyTorch "
        "~275.0 (est.); prefill + 1: ours 0.400 s, PyTorch ~0.800 s (est.)"
    )


def test_rejects_fewer_than_two_new_tokens(capsys):
    with pytest.raises(SystemExit):
        _bench().parse_args(["--new-tokens", "1"])
    assert "--new-tokens must be at least 2" in capsys.readouterr().err


def _fake_clock(bench, monkeypatch, step: float) -> list:
    """``time.perf_counter`` in the benchmark advances ``step`` seconds a call; returns the list
    of its readings."""
    readings = []

    def perf_counter():
        readings.append(step * len(readings))
        return readings[-1]

    monkeypatch.setattr(bench, "time", types.SimpleNamespace(perf_counter=perf_counter))
    return readings


def test_a_slow_run_is_not_repeated(monkeypatch):
    bench = _bench()
    for step, runs in ((3.0, 1), (1.0, 5)):  # a run takes one step; over 2 s: not repeated
        calls = []
        _fake_clock(bench, monkeypatch, step)
        assert bench.best_of(lambda: calls.append(1), 5, 0, slow_s=2.0) == step
        assert len(calls) == runs, step


def test_matmul_peaks_time_a_slow_run_once(monkeypatch):
    bench = _bench()
    readings = _fake_clock(bench, monkeypatch, 3.0)  # every timed run takes 3 s
    peaks = bench.matmul_peaks(8)
    assert len(readings) == 2 * 4  # one timed run for each library and dtype
    assert peaks == {k: pytest.approx(2 * 8**3 / 3.0) for k in peaks} and len(peaks) == 4


@pytest.mark.slow
def test_bf16_rows_over_the_limit_show_pytorch_as_an_estimate(monkeypatch):
    bench = _bench()
    calls = _spy_on_torch(bench, monkeypatch)
    measured = {}

    def peaks(n):
        measured.update(matmul_peaks(n))
        return measured

    matmul_peaks = bench.matmul_peaks
    monkeypatch.setattr(bench, "matmul_peaks", peaks)
    lines = []
    argv = TINY + ["--rows", "train_bf16,generate_bf16", "--torch-bf16-limit-s", "0"]
    rows = bench.main(argv, out=lines.append)
    assert calls == {"train": 0, "generate": 0}  # PyTorch's side never set up, let alone run
    table = [ln for ln in lines if ln.startswith("| ") and " s | " in ln]
    assert len(rows) == len(table) == 2
    for row, line in zip(rows, table):
        assert row.theirs_estimated
        assert row.theirs_s == pytest.approx(row.flops / measured["pytorch", "bfloat16"])
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert re.fullmatch(
            r"~\S+ s \(estimate: FLOPs / PyTorch's bfloat16 matmul peak; not run\)", cells[1]
        ), line
        assert re.fullmatch(r"\d+\.\d{3} s", cells[2]), line  # ours: measured
        assert re.fullmatch(r"~\d+\.\d\dx \(est\.\)", cells[3]), line
        assert re.fullmatch(r"~\d+\.\d \(est\.\)", cells[4]), line
        assert cells[6] == "not run" and re.fullmatch(r"\d+\.\d%", cells[7]), line
        assert "PyTorch not run" in cells[8] and "--torch-bf16-limit-s 0" in cells[8], line
    gen = rows[1].gen
    assert gen.same is None and gen.theirs_estimated
    assert 0 < gen.theirs_one_s < gen.theirs_s  # the prefill + 1 estimate: fewer FLOPs
    assert "same-tokens check skipped (PyTorch not run)" in table[1]
    assert "same tokens as PyTorch" not in table[1]
    assert re.search(r"PyTorch ~-?\d+\.\d \(est\.\);", table[1]), table[1]


def test_rejects_an_unknown_row():
    with pytest.raises(SystemExit):
        _bench().parse_args(["--rows", "train,nonsense"])


def test_matvec_rates_time_both_weight_dtypes():
    """XLA's one-row matrix-vector speed for float32 and bfloat16 weights; float32 weights are
    read as they are (no conversion before the loop)."""
    rates = _bench().matvec_rates(hidden=32, intermediate=64, layers=2)
    assert set(rates) == {"float32", "bfloat16"}
    assert all(rate > 0 for rate, _ in rates.values())
    assert rates["float32"][1] is False
    eight = _bench().matvec_rates(hidden=32, intermediate=64, layers=2, rows=8, dtypes=("float32",))
    assert set(eight) == {"float32"} and eight["float32"][0] > 0
