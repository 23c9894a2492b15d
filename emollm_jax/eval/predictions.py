"""An append-only ``predictions.jsonl`` that survives crashes and lets an evaluation resume.

One JSON object per line: ``{id, task, prompt, output, parsed, gold}`` (extra keys are kept).
Our choices:

- Durability: ``append`` writes a whole batch with one ``write``, then flushes and fsyncs, so
  once it returns those rows are on disk; a crash can lose at most the batch being written.
- Identity: a row is keyed by ``(task, id)`` (ids compared as strings), so ids need only be
  unique within a sub-task. Appending a key already stored is an error; callers pass
  ``pending(records)`` to generation so a rerun skips the records already done.
- Crash repair: opening the store reads every line. A last line that is not a complete JSON
  object (a crash mid-write) is dropped, reported on ``truncated_bytes`` and in the log, and cut
  off the file so that the next append starts on a clean line; the records it held are simply
  pending again. A complete last row missing only its newline is kept and the newline added.
  A bad line anywhere else is not a crash artefact and raises, naming the line.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from emollm_jax.paths import as_path, is_url

log = logging.getLogger(__name__)

FIELDS = ("id", "task", "prompt", "output", "parsed", "gold")


def row_key(row: Mapping[str, Any]) -> tuple[str, str]:
    """The identity of a record or prediction row: ``(task, str(id))``."""
    return row["task"], str(row["id"])


class PredictionStore:
    """Rows of one ``predictions.jsonl``; loading it on construction repairs a torn last line."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = as_path(path)
        self._rows: list[dict[str, Any]] = []
        self._keys: set[tuple[str, str]] = set()
        self.truncated_bytes = 0  # size of the torn last line dropped on load, 0 if none
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        good_end = 0  # byte offset just past the last good line
        for number, line in enumerate(lines, start=1):
            is_last = number == len(lines)
            if line.strip():
                try:
                    row = json.loads(line.decode("utf-8"))
                except ValueError as err:  # JSONDecodeError and UnicodeDecodeError included
                    if is_last:
                        self._drop_torn_tail(good_end, len(data) - good_end)
                        return
                    raise ValueError(
                        f"{self.path}:{number}: corrupt prediction row: {err}"
                    ) from err
                if not isinstance(row, dict):
                    raise ValueError(f"{self.path}:{number}: prediction row is not a JSON object")
                self._add(row, where=f"{self.path}:{number}")
            good_end += len(line) + (0 if is_last else 1)
        if data and not data.endswith(b"\n"):
            if is_url(self.path):  # an object cannot be appended to: rewrite it
                self.path.write_bytes(data + b"\n")
                return
            with open(self.path, "ab") as f:  # a complete row whose newline was lost
                f.write(b"\n")
                f.flush()
                os.fsync(f.fileno())

    def _drop_torn_tail(self, keep: int, dropped: int) -> None:
        if is_url(self.path):
            self.path.write_bytes(self.path.read_bytes()[:keep])
        else:
            with open(self.path, "r+b") as f:
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())
        self.truncated_bytes = dropped
        log.warning(
            "%s: dropped a truncated last line (%d bytes) left by an interrupted run; "
            "its records will be evaluated again",
            self.path,
            dropped,
        )

    def _add(self, row: dict[str, Any], where: str) -> None:
        missing = [field for field in FIELDS if field not in row]
        if missing:
            raise ValueError(f"{where}: prediction row lacks {', '.join(missing)}")
        key = row_key(row)
        if key in self._keys:
            raise ValueError(f"{where}: task {key[0]!r} id {key[1]!r} is already stored")
        self._keys.add(key)
        self._rows.append(row)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """All stored rows, in file order."""
        return list(self._rows)

    @property
    def done(self) -> frozenset[tuple[str, str]]:
        """Keys ``(task, id)`` of the rows already stored."""
        return frozenset(self._keys)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, record: Mapping[str, Any]) -> bool:
        return row_key(record) in self._keys

    def pending(self, records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The records (mappings with ``id`` and ``task``) that have no stored row yet."""
        return [record for record in records if row_key(record) not in self._keys]

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Store a batch of rows durably (one write, flush, fsync); rejects keys already stored."""
        batch = [dict(row) for row in rows]
        if not batch:
            return
        before = len(self._rows)
        try:
            for i, row in enumerate(batch):
                self._add(row, where=f"append row {i}")
        except ValueError:
            for row in self._rows[before:]:
                self._keys.discard(row_key(row))
            del self._rows[before:]
            raise
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in batch)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if is_url(self.path):  # no append on an object store: one atomic rewrite of the whole
            old = self.path.read_bytes() if self.path.exists() else b""
            self.path.write_bytes(old + text.encode("utf-8"))
            return
        with open(self.path, "ab") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())

    def summary(self) -> str:
        """One line for the console: rows found and any repair made."""
        text = f"{self.path}: {len(self)} predictions already stored"
        if self.truncated_bytes:
            text += f"; dropped a truncated last line ({self.truncated_bytes} bytes)"
        return text
