"""One process at a time per run folder: an exclusive lock file naming its holder.

A training workdir and an evaluation output folder each get ``<folder>/.lock`` (JSON: host,
pid, start time, command line), created with ``O_EXCL`` so that exactly one process wins. A
second process is refused with ``FolderLockedError`` naming the holder. A lock left by a
process that died (same host, pid no longer running) is stale: it is logged and taken over.
A lock held from another host cannot be checked from here; the message says to delete the
file if that process is gone. Multi-host runs take the lock on JAX process 0 only.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"


class FolderLockedError(RuntimeError):
    """Another live process holds the folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class FolderLock:
    """``with FolderLock(folder, "training workdir"):`` or ``acquire()`` / ``release()``."""

    def __init__(self, folder: str | os.PathLike, what: str = "folder"):
        self.path = Path(folder) / LOCK_NAME
        self.what = what
        self.holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join(sys.argv),
        }
        self.held = False

    def _read(self) -> dict | None:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:  # torn write by a process killed while creating it
            return {}

    def _age(self) -> float:
        try:
            return time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def acquire(self) -> FolderLock:
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.holder, f)
            self.held = True
            return self
        raise FolderLockedError(f"{self.what} {self.path.parent}: could not take {self.path}")

    def _take_over_if_stale(self) -> None:
        other = self._read()
        if other is None:
            return  # released meanwhile: try again
        same_host = other.get("host") == self.holder["host"]
        pid = other.get("pid")
        if same_host and isinstance(pid, int) and not _alive(pid):
            log.warning("%s: removing a stale lock of pid %d (no longer running)", self.path, pid)
        elif other == {} and self._age() > 10:  # younger: its writer may be mid-write
            log.warning("%s: removing an unreadable lock file", self.path)
        else:
            where = "this host" if same_host else f"host {other.get('host')}"
            raise FolderLockedError(
                f"{self.what} {self.path.parent} is in use by pid {pid} on {where} (since "
                f"{other.get('started')}: {other.get('command')}); two processes in one folder "
                f"would overwrite each other's files. Wait for it, use another folder, or delete "
                f"{self.path} if that process is gone."
            )
        try:
            if self._read() == other:  # not already replaced by another process
                self.path.unlink()
        except FileNotFoundError:
            pass

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        if self._read() == self.holder:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> bool:
        self.release()
        return False
