"""Paths that are a local folder or a cloud storage URL (``gs://``, ``s3://``, ``az://``, ``hf://``).

``pathlib.Path("gs://bucket/run")`` silently becomes ``gs:/bucket/run``, a local folder. Every
path the project takes from a user (workdir, checkpoints, data, media, tokenizer, convert and
evaluate folders) goes through ``as_path``: a local path stays a ``pathlib.Path`` (behaviour
unchanged), a URL becomes an ``etils.epath.Path`` (the library Orbax and Grain use; ``gs://``
through ``gcsfs``, ``s3://`` through ``s3fs``), and both share the pathlib methods the code uses
(``/``, ``exists``, ``is_dir``, ``iterdir``, ``mkdir``, ``open``, ``read_text``, ``write_text``,
``unlink``...).

Object stores differ from a filesystem in two ways the code must respect, and the helpers
below do:

- there is no atomic rename of a folder (a "rename" copies every object then deletes them);
  a single object, though, appears whole or not at all. ``write_text_atomic`` writes a file
  in place on a URL (atomic there) and through a temporary file and ``os.replace`` locally;
  ``move_folder`` copies then deletes on a URL (not atomic: see its docstring);
- there is no append: a growing file (the metrics log) is rewritten whole (``metrics_log``).

Orbax writes checkpoints to a URL itself (TensorStore's own GCS or S3 client, then a
``commit_success.txt`` marker in place of the local temporary-folder rename), so a checkpoint
without its marker is unfinished and never listed; see ``checkpoint/manager.py`` and, for
``s3://``, ``checkpoint/s3_arrays.py``.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import posixpath
import re
import shutil
import tempfile
from typing import Union

from etils import epath

# The schemes etils.epath serves (gs through gcsfs, s3 through s3fs; az and hf through their
# fsspec packages, untested).
URL_SCHEMES = ("gs", "s3", "az", "hf")
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

AnyPath = Union[pathlib.Path, epath.Path]
# The object Orbax writes last into a checkpoint step on cloud storage: without it the step is
# unfinished (no folder rename there to make it appear whole).
COMMIT_MARK = "commit_success.txt"


def url_scheme(path) -> str | None:
    """``"gs"`` for ``gs://bucket/x``, None for a local path."""
    if isinstance(path, pathlib.Path):  # a local pathlib path is never a URL
        return None
    found = _URL.match(os.fspath(path))
    return found.group(1).lower() if found else None


def is_url(path) -> bool:
    return url_scheme(path) is not None


def is_local(path) -> bool:
    return not is_url(path)


def as_path(path: str | os.PathLike) -> AnyPath:
    """A ``pathlib.Path`` for a local path, an ``epath.Path`` for a URL (``gs://bucket/run``).
    A URL of a scheme epath cannot open is refused here, naming the ones it can."""
    if isinstance(path, (pathlib.Path, epath.Path)):
        return path
    scheme = url_scheme(path)
    if scheme is None:
        return pathlib.Path(path)
    if scheme not in URL_SCHEMES:
        raise ValueError(
            f"{os.fspath(path)}: the {scheme}:// scheme is not supported; use a local path or "
            f"one of {', '.join(s + '://' for s in URL_SCHEMES)}"
        )
    return epath.Path(os.fspath(path))


def absolute(path: str | os.PathLike) -> AnyPath:
    """The absolute form (Orbax refuses relative paths); a URL is absolute already."""
    p = as_path(path)
    return p if is_url(p) else p.absolute()


def resolved(path: str | os.PathLike) -> AnyPath:
    """Local: ``Path.resolve()`` (symlinks and ``..`` followed); URL: ``..`` and ``.`` folded."""
    p = as_path(path)
    if not is_url(p):
        return p.resolve()
    scheme, rest = os.fspath(p).split("://", 1)
    return epath.Path(f"{scheme}://{posixpath.normpath(rest).lstrip('/')}")


def rmtree(path: str | os.PathLike) -> None:
    """Remove a folder and everything under it; a missing one is fine."""
    p = as_path(path)
    if not is_url(p):
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists():
        p.rmtree()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Readers see the old content or the new one, never a torn file: locally through a
    temporary file and ``os.replace``; on a URL by one object write (atomic there)."""
    p = as_path(path)
    if is_url(p):
        p.write_text(text, encoding="utf-8")
        return
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)


def files_under(folder: AnyPath) -> list[AnyPath]:
    """Every file below ``folder`` (epath refuses ``rglob`` on cloud storage; ``walk`` lists)."""
    if not is_url(folder):
        return [f for f in folder.rglob("*") if not f.is_dir()]
    if url_scheme(folder) == "s3":  # epath's walk passes s3fs an argument it refuses (max_depth)
        import fsspec

        fs, key = fsspec.core.url_to_fs(os.fspath(folder))
        key = key.rstrip("/")
        return [folder / posixpath.relpath(name, key) for name in fs.find(key)]
    base = os.fspath(folder).split("://", 1)[1].rstrip("/")  # walk's tops lack the scheme
    return [
        folder / posixpath.relpath(os.fspath(top).split("://", 1)[-1], base) / name
        for top, _, names in folder.walk()
        for name in names
    ]


def move_folder(src: str | os.PathLike, dst: str | os.PathLike, *, marker: str | None = None):
    """Move folder ``src`` to ``dst`` (which must not exist). Locally one atomic ``os.replace``.
    On a URL (no folder rename in an object store) the objects are copied, then ``marker``
    (a file whose presence says ``src`` is complete, e.g. Orbax's ``commit_success.txt``) is
    deleted first, then the rest: an interrupted move leaves ``src`` whole, or ``src`` without
    its marker (so it reads as unfinished, never as complete with files missing), and ``dst``
    may be a partial copy."""
    s, d = as_path(src), as_path(dst)
    if not (is_url(s) or is_url(d)):
        os.replace(s, d)
        return
    for file in sorted(files_under(s)):
        target = d / os.fspath(file)[len(os.fspath(s)) :].lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.read_bytes())
    if marker is not None and (s / marker).exists():
        (s / marker).unlink()
    rmtree(s)


@contextlib.contextmanager
def local_folder(path: str | os.PathLike):
    """A local folder holding ``path``'s files, for a library that reads only local files
    (PyTorch's ``from_pretrained``): ``path`` itself when local, else a temporary copy."""
    p = as_path(path)
    if not is_url(p):
        yield p
        return
    with tempfile.TemporaryDirectory(prefix="emollm-download-") as tmp:
        for file in files_under(p):
            target = pathlib.Path(tmp, os.fspath(file)[len(os.fspath(p)) :].lstrip("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(file.read_bytes())
        yield pathlib.Path(tmp)


__all__ = [
    "files_under",
    "local_folder",
    "URL_SCHEMES",
    "COMMIT_MARK",
    "AnyPath",
    "absolute",
    "as_path",
    "is_local",
    "is_url",
    "move_folder",
    "resolved",
    "rmtree",
    "url_scheme",
    "write_text_atomic",
]
