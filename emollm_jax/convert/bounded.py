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
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor

# Defaults: threads, and bytes of the tasks in flight (a task counts its input and its output).
WORKERS = 4
IN_FLIGHT_BYTES = 512 * 2**20

Task = tuple[int, Callable[[], None]]  # (bytes it holds while it runs, the work)


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


def run_bounded(
    tasks: Iterable[Task], *, workers: int | None = None, in_flight: int | None = None
) -> None:
    """Run ``tasks`` (started in order) on ``workers`` threads within ``in_flight`` bytes
    (defaults: ``WORKERS``, ``IN_FLIGHT_BYTES``)."""
    _return_large_buffers()
    workers = workers or WORKERS
    budget = _Budget(in_flight or IN_FLIGHT_BYTES)
    failed = threading.Event()

    def run(nbytes: int, work: Callable[[], None]) -> None:
        try:
            if not failed.is_set():
                work()
        except BaseException:
            failed.set()
            raise
        finally:
            budget.release(nbytes)

    futures: list[Future] = []
    with ThreadPoolExecutor(workers, thread_name_prefix="convert") as pool:
        for nbytes, work in tasks:
            budget.acquire(nbytes)
            if failed.is_set():
                budget.release(nbytes)
                break
            futures.append(pool.submit(run, nbytes, work))
    for future in futures:
        future.result()  # the first error, in task order
