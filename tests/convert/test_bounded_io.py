"""The pieces that let a conversion work on several tensors at once: transposes that keep every
bit, a task runner that keeps the bytes in flight within its budget and passes errors on, and
shard files written in any order from several threads."""

import threading
import time

import ml_dtypes
import numpy as np
import pytest

from emollm_jax.convert import bounded, transforms
from emollm_jax.convert.safetensors_io import ShardWriter, TensorSource


@pytest.mark.parametrize("with_torch", [True, False])
@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float32, np.float16])
def test_transpose_keeps_every_bit(monkeypatch, with_torch, dtype):
    if not with_torch:
        monkeypatch.setattr(transforms, "_torch", lambda: None)
    bits = np.random.default_rng(0).integers(0, 2**16, (300, 517), np.uint16)
    x = bits.astype(np.uint32).view(np.float32) if dtype is np.float32 else bits.view(dtype)
    out = transforms.transpose2d(x)
    assert out.dtype == x.dtype and out.flags.c_contiguous
    assert np.array_equal(out.view(f"u{x.itemsize}"), x.view(f"u{x.itemsize}").T)


def test_run_bounded_keeps_within_its_budget_and_raises_the_first_error():
    held, peak, lock = [0], [0], threading.Lock()

    def work(n):
        with lock:
            held[0] += n
            peak[0] = max(peak[0], held[0])
        time.sleep(0.01)
        with lock:
            held[0] -= n

    tasks = [(n, lambda n=n: work(n)) for n in [40, 30, 30, 90, 10, 10, 20] * 3]
    bounded.run_bounded(tasks, workers=4, in_flight=100)
    assert 0 < peak[0] <= 100  # a 90 and anything over 10 never ran together

    ran = []

    def fail():
        raise OSError("disk on fire")

    tasks = [(1, lambda: ran.append(1))] * 3 + [(1, fail)] + [(1, lambda: ran.append(2))] * 50
    with pytest.raises(OSError, match="disk on fire"):
        bounded.run_bounded(tasks, workers=2, in_flight=2)
    assert len(ran) < 53  # submission stopped


def test_shard_writer_takes_tensors_in_any_order_from_threads(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {f"t{i}": rng.standard_normal((i + 1, 7)).astype(np.float32) for i in range(12)}
    plan = [(n, t.shape, t.dtype) for n, t in tensors.items()]
    with ShardWriter(tmp_path, plan, max_shard_bytes=400) as writer:
        names = list(tensors)[::-1]
        threads = [threading.Thread(target=writer.write, args=(n, tensors[n])) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with pytest.raises(ValueError, match="written twice"):
            writer.write("t0", tensors["t0"])
    back = TensorSource(tmp_path)
    assert len({back._entries[n].file for n in tensors}) > 3  # several shards
    assert all(np.array_equal(back.get(n), t) for n, t in tensors.items())
    with pytest.raises(ValueError, match="1 planned tensor"):
        (tmp_path / "partial").mkdir()
        with ShardWriter(tmp_path / "partial", plan[:2], 10**6) as partial:
            partial.write("t0", tensors["t0"])
