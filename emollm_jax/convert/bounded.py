"""Several tensors converted at once, with a bound on the bytes in flight.

The converters cut their work into tasks (read a tensor or a layer slice, transform it, write
it) and hand them here in order. Tasks run on a small thread pool: file reads and writes,
TensorStore's reads and writes and numpy's copies release the GIL, so reading one tensor,
transposing another and writing a third overlap. A task is started only when the bytes of
the tasks in flight, its own included, stay within the budget (a task larger than the budget
runs alone), so memory holds at most about the budget, whatever the checkpoint's size. The
first error stops the submission of further tasks and is raised once the running ones end.

Freed buffers must go back to the system for the budget to bound the resident size: glibc's
malloc raises its mmap threshold after each large free, so buffers freed by one thread were
kept in that thread's arena (``benchmarks/bench_convert.py`` on a 2.2 GB checkpoint: peak
resident size net of imports 0.59x and 0.51x of the checkpoint without the fix, 0.17x and
0.14x with it, for hf-to-orbax and orbax-to-hf). ``run_bounded`` therefore
fixes the threshold at 1 MiB (``mallopt``, where the C library is glibc), so that every large
buffer is mapped for itself and unmapped when freed.

Mapping and unmapping each tensor's buffers is itself costly, though: the kernel zeroes every
fresh page and pays a fault for it, and an unmap interrupts the other threads' CPUs. The
converters make most tensors straight in their output files (``file_maps``); the buffers they
still need come from ``scratch``, a pool that the run keeps within the same budget and reuses
from task to task (the buffers a task took go back to the pool when it ends).
"""

from __future__ import annotations

import ctypes
import functools
import math
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

# Defaults: threads, and bytes of the tasks in flight (a task counts its input and its output).
WORKERS = 4
IN_FLIGHT_BYTES = 512 * 2**20

Task = tuple[int, Callable[[], None]]  # (bytes it holds while it runs, the work)
Alloc = Callable[[tuple[int, ...], np.dtype], np.ndarray]  # (shape, dtype) -> a new array


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


@functools.cache
def _return_large_buffers() -> None:
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 2**20)
    except (OSError, AttributeError):  # not glibc: its own policy stands
        pass


class _Budget:
    def __init__(self, limit: int):
        self.limit, self.used = limit, 0
        self._cond = threading.Condition()

    def acquire(self, n: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self.used == 0 or self.used + n <= self.limit)
            self.used += n

    def release(self, n: int) -> None:
        with self._cond:
            self.used -= n
            self._cond.notify_all()


class _Pool:
    """Large byte buffers kept for reuse, all of them (free or taken) within ``limit`` bytes
    unless the buffers taken need more."""

    def __init__(self, limit: int):
        self.limit, self.held = limit, 0
        self.free: list[np.ndarray] = []
        self._lock = threading.Lock()

    def take(self, nbytes: int) -> np.ndarray:
        with self._lock:
            fits = [i for i, b in enumerate(self.free) if nbytes <= b.nbytes <= 2 * nbytes]
            if fits:
                return self.free.pop(min(fits, key=lambda i: self.free[i].nbytes))
            self.free.sort(key=lambda b: b.nbytes)
            while self.free and self.held + nbytes > self.limit:
                self.held -= self.free.pop().nbytes  # the largest first
            self.held += nbytes
        return np.empty(nbytes, np.uint8)

    def give(self, buffers: list[np.ndarray]) -> None:
        with self._lock:
            self.free += buffers


SMALL = 2**20  # buffers below this come from malloc, which keeps them for reuse itself
_task = threading.local()  # .pool and .taken while a task of run_bounded runs in this thread


def scratch(shape, dtype) -> np.ndarray:
    """An uninitialised array that the running task may use until it ends (taken from the
    run's pool); outside a task of ``run_bounded``, or when small, a new array."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    pool = getattr(_task, "pool", None)
    if pool is None or nbytes < SMALL:
        return np.empty(shape, dtype)
    buffer = pool.take(nbytes)
    _task.taken.append(buffer)
    return buffer[:nbytes].view(dtype).reshape(shape)


def run_bounded(
    tasks: Iterable[Task], *, workers: int | None = None, in_flight: int | None = None
) -> None:
    """Run ``tasks`` (started in order) on ``workers`` threads within ``in_flight`` bytes
    (defaults: ``WORKERS``, ``IN_FLIGHT_BYTES``)."""
    _return_large_buffers()
    workers = workers or WORKERS
    budget = _Budget(in_flight or IN_FLIGHT_BYTES)
    pool = _Pool(budget.limit)
    failed = threading.Event()

    def run(nbytes: int, work: Callable[[], None]) -> None:
        _task.pool, _task.taken = pool, []
        try:
            if not failed.is_set():
                work()
        except BaseException:
            failed.set()
            raise
        finally:
            pool.give(_task.taken)
            _task.pool, _task.taken = None, []
            budget.release(nbytes)

    futures: list[Future] = []
    with ThreadPoolExecutor(workers, thread_name_prefix="convert") as executor:
        for nbytes, work in tasks:
            budget.acquire(nbytes)
            if failed.is_set():
                budget.release(nbytes)
                break
            futures.append(executor.submit(run, nbytes, work))
    for future in futures:
        future.result()  # the first error, in task order
