"""The training stream's position across process counts (elastic resume).

``pipeline.train_dataset`` shuffles and repeats the records into one global stream and gives
process p of P the records p, p + P, p + 2P, ... of it. Without Grain worker processes and
without packing, a process's Grain iterator state is ``{"next_index": k}``: it has read the
first k records of its share (records that the encoder refused included), i.e. the global
records p + P*i for i < k.

So the states of P processes name a global position G: the first record of the stream that no
process has read. A run resumed on Q processes starts process q at the first record of its own
share at or after G. When every process read the same number of records (no refusals), the
records read are exactly the first G (G = steps x global batch) and nothing is skipped or read
twice; otherwise the records past G that some process had read already are read again, and
``records_read_past`` counts them.

With ``data.worker_count`` > 0 each worker batches its own slice of a process's share, and with
``data.pack`` the packer holds records across batches: neither state names a global position,
and a change of process count is refused (``unsupported``).
"""

from __future__ import annotations

from collections.abc import Mapping

STATE_KEYS = {"next_index"}


def unsupported(data_cfg) -> list[str]:
    """The ``data`` fields whose values give a state that names no global position."""
    fields = []
    if data_cfg.get("worker_count", 0) > 0:
        fields.append(f"data.worker_count={data_cfg.get('worker_count')}")
    if data_cfg.get("pack", False):
        fields.append("data.pack=True")
    return fields


def records_read(states: Mapping[int, dict]) -> dict[int, int]:
    """{process: records of its share read} from each process's Grain state; ``ValueError`` for a
    state that is not a plain ``{"next_index": k}``."""
    read = {}
    for process, state in states.items():
        if set(state) != STATE_KEYS or not isinstance(state["next_index"], int):
            raise ValueError(f"process {process}'s data state {state!r} names no record position")
        read[process] = state["next_index"]
    return read


def global_position(read: Mapping[int, int], count: int) -> int:
    """The first global record that none of the ``count`` processes has read."""
    if sorted(read) != list(range(count)):
        raise ValueError(f"data states of processes {sorted(read)}, expected 0..{count - 1}")
    return min(p + count * k for p, k in read.items())


def share_before(position: int, process: int, count: int) -> int:
    """How many records of ``process``'s share (of ``count``) come before global ``position``."""
    return max(0, -(-(position - process) // count))


def records_read_past(read: Mapping[int, int], count: int, position: int) -> int:
    """Records at or after ``position`` that some process had read (they will be read again)."""
    return sum(k - share_before(position, p, count) for p, k in read.items())


def state_for(position: int, process: int, count: int) -> dict:
    """The Grain state that starts ``process`` of ``count`` at global ``position``."""
    return {"next_index": share_before(position, process, count)}
