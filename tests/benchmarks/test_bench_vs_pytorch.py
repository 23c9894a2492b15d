"""``benchmarks/bench_vs_pytorch.py`` at a tiny size: every row is printed with its ratio, and
both sides generate the same tokens (no timing is asserted)."""

import importlib.util
import re
import sys

import pytest

from tests.configs import REPO

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


@pytest.mark.slow
def test_prints_every_row_with_ratio_and_mfu():
    bench = _bench()
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
    assert re.search(r"memory bound \d+\.\d", table[2])


def test_rejects_an_unknown_row():
    with pytest.raises(SystemExit):
        _bench().parse_args(["--rows", "train,nonsense"])
