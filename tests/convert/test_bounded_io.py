"""The pieces that let a conversion work on several tensors at once: transposes that keep every
bit, a task runner that keeps the bytes in flight within its budget and passes errors on,
shard files written in any order from several threads, tensors made straight in their files,
and converted chunks read as TensorStore reads them."""

import os
import threading
import time

import ml_dtypes
import numpy as np
import pytest

from emollm_jax.convert import bounded, file_maps, transforms, zarr_chunks
from emollm_jax.convert.orbax_stream import ParamsReader
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


@pytest.mark.parametrize("mappable", [True, False])
def test_a_tensor_made_in_its_file_or_written_leaves_the_same_bytes(tmp_path, mappable):
    x = np.random.default_rng(0).standard_normal((300, 517)).astype(ml_dtypes.bfloat16)
    places = []

    def make(alloc):
        def counted(shape, dtype):
            places.append(shape)
            return alloc(shape, dtype)

        return transforms.transpose2d(x, alloc=counted)

    path = tmp_path / "f"
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        offset = 4096 + 8  # not on a page boundary
        if mappable:
            assert file_maps.preallocate(fd, offset + x.nbytes)
        else:
            os.ftruncate(fd, offset + x.nbytes)
        file_maps.fill(fd, offset, (517, 300), x.dtype, make, mappable)
        file_maps.fill(fd, 0, (2,), np.uint32, lambda alloc: np.array([7, 9], np.uint32), mappable)
    finally:
        os.close(fd)
    data = path.read_bytes()
    assert places == [(517, 300)]
    assert data[offset:] == np.ascontiguousarray(x.T).tobytes()
    assert data[:8] == np.array([7, 9], "<u4").tobytes()
    back = file_maps.mapped(path, offset, (517, 300), x.dtype)
    assert np.array_equal(back.view(np.uint16), x.T.view(np.uint16))


@pytest.mark.torch
def test_converted_chunks_read_as_tensorstore_reads_them(tmp_path, monkeypatch):
    from tests import hf_models
    from emollm_jax.convert.hf_to_orbax import hf_to_orbax

    src = hf_models.save(hf_models.llama(), tmp_path / "src")
    hf_to_orbax(src, tmp_path / "orbax")
    reader = ParamsReader(tmp_path / "orbax")
    keys = [
        (path, index)
        for path, leaf in reader.leaves.items()
        for index in (range(leaf.shape[0]) if leaf.chunk_rows == 1 else [None])
    ]
    assert all(zarr_chunks.PlainChunks.of(reader._store(p)) is not None for p in reader.leaves)
    direct = {key: np.array(reader.read(*key)) for key in keys}
    monkeypatch.setattr(zarr_chunks.PlainChunks, "of", classmethod(lambda cls, store: None))
    through_tensorstore = ParamsReader(tmp_path / "orbax")
    for key in keys:
        b = through_tensorstore.read(*key)
        assert direct[key].dtype == b.dtype and np.array_equal(direct[key], b), key
