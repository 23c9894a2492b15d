"""What a source reader yields, and the file readers they share (JSON, JSON Lines, CSV/TSV).

A reader walks its data set's own files in order and yields, per row, either a ``SourceRow``
(the row as the source states it: split, id, task family, label in the source's own words,
where its media lie, its text) or a ``BadRow`` (the row could not be parsed: the reason and
``file:line``). Readers never open media and never map labels: the builder does both, so that
every source is checked the same way. Nothing is read ahead: a reader is a generator over rows.

Our choice for CSV/TSV text: bytes that are not UTF-8 are replaced (U+FFFD) rather than losing
the row, since a stray byte in an utterance does not make the label wrong; JSON and JSON Lines
are strict (a line that is not UTF-8 or not JSON is a ``BadRow``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from emollm_jax.data.bad_input import BadRecord

# The split names of our record format (records.SPLITS) that a source's split files map onto.
TRAIN, VALIDATION, TEST = "train", "validation", "test"


@dataclasses.dataclass(frozen=True)
class SourceRow:
    """One labelled item of a source, before label mapping and media checks."""

    split: str  # train | validation | test
    source_id: str  # the source's own id (unique within the source and split)
    where: str  # "file:line" (or "file[index]") for messages
    task: str  # a key of the source's label table: "emotion", "intent", "hate", ...
    label: str  # the label as the source writes it
    media_type: str  # "image" | "video"
    media_path: str | None = None  # relative to the source folder
    media_bytes: bytes | None = None  # encoded media, for sources that store pixels (FER2013)
    media_suffix: str = ""  # file suffix for media_bytes (".png")
    text: str | None = None  # the meme's text or the spoken utterance
    speaker: str | None = None


@dataclasses.dataclass(frozen=True)
class BadRow:
    """A row the reader could not parse."""

    where: str
    error: BadRecord


def first_existing(root: Path, names: Sequence[str]) -> Path | None:
    """The first of ``names`` that exists under ``root``."""
    for name in names:
        if (root / name).exists():
            return root / name
    return None


def require_any(root: Path, paths: Sequence[Path | None], what: str) -> None:
    """A source folder without any of its split files is an error, not a data set of nothing."""
    if not any(p is not None for p in paths):
        raise FileNotFoundError(f"{root}: no {what} found (is this the {what} folder?)")


def jsonl_lines(path: Path) -> Iterator[tuple[str, object] | BadRow]:
    """(``file:line``, parsed object) per non-empty line, or a ``BadRow``."""
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, 1):
            where = f"{path.name}:{lineno}"
            if not line.strip():
                continue
            try:
                yield where, json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as e:
                yield BadRow(where, BadRecord("invalid_utf8", str(e)))
            except ValueError as e:
                yield BadRow(where, BadRecord("invalid_json", str(e)))


def json_document(path: Path, kind: type) -> object | BadRow:
    """A whole JSON file (a list or a dict, as ``kind`` says), or one ``BadRow`` for the file."""
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        return BadRow(path.name, BadRecord("invalid_utf8", str(e)))
    except ValueError as e:
        return BadRow(path.name, BadRecord("invalid_json", str(e)))
    if not isinstance(doc, kind):
        return BadRow(path.name, BadRecord("malformed_record", f"expected a JSON {kind.__name__}"))
    return doc


def json_list_items(path: Path) -> Iterator[tuple[str, object] | BadRow]:
    """(``file[index]``, item) per item of a file holding one JSON list, or one ``BadRow``."""
    doc = json_document(path, list)
    if isinstance(doc, BadRow):
        yield doc
        return
    yield from ((f"{path.name}[{i}]", item) for i, item in enumerate(doc))


def table_rows(
    path: Path, columns: Sequence[str], delimiter: str = ","
) -> Iterator[tuple[str, dict[str, str]] | BadRow]:
    """(``file:line``, row by header name) per row of a CSV/TSV file with a header line.

    A row lacking one of ``columns`` (short row, empty cell) is a ``BadRow``; a header lacking
    one raises, since then every row would be bad.
    """
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in columns if c not in header]
        if missing:
            raise ValueError(f"{path}: header lacks column(s) {missing}; found {header}")
        reader.fieldnames = header
        for row in reader:
            where = f"{path.name}:{reader.line_num}"
            empty = [c for c in columns if not (row.get(c) or "").strip()]
            if empty:
                yield BadRow(where, BadRecord("malformed_record", f"empty or missing {empty}"))
                continue
            yield where, {k: (v or "").strip() for k, v in row.items() if k is not None}


def positional_rows(
    path: Path, n: int, delimiter: str = "\t"
) -> Iterator[tuple[str, list[str]] | BadRow]:
    """(``file:line``, first ``n`` cells) per row after the header line, for files read by
    column position; a row with fewer than ``n`` non-empty cells is a ``BadRow``."""
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter)
        next(reader, None)
        for row in reader:
            where = f"{path.name}:{reader.line_num}"
            cells = [c.strip() for c in row[:n]]
            if len(cells) < n or not all(cells):
                yield BadRow(where, BadRecord("malformed_record", f"needs {n} non-empty cells"))
                continue
            yield where, cells


def field(obj: object, name: str, where: str) -> object:
    """``obj[name]``; raises ``BadRecord`` naming the field when ``obj`` lacks it."""
    if not isinstance(obj, dict) or obj.get(name) is None:
        raise BadRecord("malformed_record", f"{where}: missing {name!r}")
    return obj[name]
