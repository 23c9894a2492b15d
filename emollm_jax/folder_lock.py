"""One process at a time per run folder: an exclusive lock file naming its holder.

A training workdir and an evaluation output folder each get ``<folder>/.lock`` (JSON: host,
pid, start time, command line), created with ``O_EXCL`` so that exactly one process wins. A
second process is refused with ``FolderLockedError`` naming the holder. A lock left by a
process that died (same host, pid no longer running) is stale: it is logged and taken over.
A lock held from another host cannot be checked from here; the message says to delete the
file if that process is gone. Multi-host runs take the lock on JAX process 0 only.

On a cloud storage folder (``gs://...``, ``s3://...``) there is no ``O_EXCL``: the lock object is
written with a "create only if absent" precondition (GCS's ``ifGenerationMatch=0`` through gcsfs,
S3's ``If-None-Match: *`` through s3fs, which fail when another writer won), then read back and
taken only if it names this process (a store or emulator that ignores the precondition is still
caught when the other write landed first). Stale locks are detected as above (same host, dead
pid).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time

from emollm_jax.paths import as_path, is_url

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
        self.path = as_path(folder) / LOCK_NAME
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
            stat = self.path.stat()
        except FileNotFoundError:
            return 0.0
        return time.time() - getattr(stat, "st_mtime", getattr(stat, "mtime", time.time()))

    def _create(self) -> None:
        """Write the lock file if none exists (``FileExistsError`` if one does)."""
        if not is_url(self.path):
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.holder, f)
            return
        import fsspec

        if self._read() is not None:
            raise FileExistsError(os.fspath(self.path))
        fs, key = fsspec.core.url_to_fs(os.fspath(self.path))
        fs.pipe_file(key, json.dumps(self.holder).encode(), mode="create")
        fs.invalidate_cache()
        if self._read() != self.holder:  # another writer's object replaced ours
            raise FileExistsError(os.fspath(self.path))

    def acquire(self) -> FolderLock:
        for _ in range(5):
            try:
                self._create()
            except FileExistsError:
                self._take_over_if_stale()
                continue
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
