"""EmoBench records: the on-disk format, the LLaVA format, and the checks every record passes.

On disk, one JSON Lines file per split (``train.jsonl``, ``validation.jsonl``, ``test.jsonl``)
holds one record per line::

    {"id": "train-emotion_open-0001", "task": "emotion_open",
     "media": {"type": "image" | "video", "path": "media/train/x.png"},
     "conversations": [{"from": "human", "value": "<image>\\nName the emotion."},
                       {"from": "gpt", "value": "joy"}],
     "answer": "joy", "options": ["joy", "fear"], "rationale": "The mouth ..."}

``options`` and ``rationale`` are optional. Media paths are relative to the split file's folder
and must stay inside it. LLaVA's instruction JSON (a ``{split}.json`` list of ``{id, image,
conversations}``, or ``video`` instead of ``image``) is read unchanged when no ``.jsonl`` exists;
such records have no ``task``, so they train but are not scored.

Our extensions and choices: ``media`` may also be a list (several media items; one ``<image>``
placeholder each, in order; ``<video>`` is read as ``<image>``, so text written for the exported
PyTorch processor, which marks a video ``<video>``, reads the same) or absent (text-only). If
the text holds no placeholder, one is put at the front of the first human turn (as LLaVA does).
``answer`` defaults to the last gpt turn and is checked, case- and space-insensitively, against
``emollm_jax.tasks.labels_for``.

The normalised record every later stage sees (``media`` items carry ``path`` from JSONL, or
``bytes`` from the TFDS source)::

    {id, task | None, media: [{type, path | bytes}], conversations, answer | None,
     options | None, rationale | None}
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from emollm_jax.data import media as media_lib
from emollm_jax.data.bad_input import BadInputLog, BadRecord
from emollm_jax.paths import is_url
from emollm_jax.tasks import TASKS, labels_for

PLACEHOLDER = "<image>"
# Accepted in records for a video and read as PLACEHOLDER (the exported processor's spelling).
VIDEO_PLACEHOLDER = "<video>"
SPLITS = ("train", "validation", "test")
ROLES = ("human", "gpt", "system")


def _str_field(obj: dict, name: str, required: bool = False) -> str | None:
    value = obj.get(name)
    if value is None:
        if required:
            raise BadRecord("malformed_record", f"missing {name!r}")
        return None
    if not isinstance(value, str):
        raise BadRecord("malformed_record", f"{name!r} must be a string")
    return value


def _conversations(obj: dict) -> list[dict]:
    turns = obj.get("conversations")
    if turns is None:
        raise BadRecord("empty_conversation", "no 'conversations'")
    if not isinstance(turns, list):
        raise BadRecord("malformed_record", "'conversations' must be a list")
    out = []
    for turn in turns:
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise BadRecord("malformed_record", "a turn must be {from, value: str}")
        if turn.get("from") not in ROLES:
            raise BadRecord("malformed_record", f"turn role {turn.get('from')!r} not in {ROLES}")
        if not turn["value"].replace(PLACEHOLDER, "").strip():
            raise BadRecord("empty_conversation", "a turn is empty")
        value = turn["value"].replace(VIDEO_PLACEHOLDER, PLACEHOLDER)
        out.append({"from": turn["from"], "value": value})
    roles = {t["from"] for t in out}
    if "human" not in roles or "gpt" not in roles:
        raise BadRecord("empty_conversation", "needs at least one human and one gpt turn")
    return out


def _media_items(obj: dict) -> list[dict]:
    if "media" in obj:
        items = obj["media"]
        items = [] if items is None else items
        items = [items] if isinstance(items, dict) else items
    else:  # LLaVA: "image" (a path or a list of paths) or "video"
        items = []
        for kind in ("image", "video"):
            paths = obj.get(kind)
            paths = [paths] if isinstance(paths, str) else paths or []
            items += [{"type": kind, "path": p} for p in paths]
    if not isinstance(items, list):
        raise BadRecord("malformed_record", "'media' must be an object or a list")
    out = []
    for item in items:
        if not isinstance(item, dict) or item.get("type") not in media_lib.MEDIA_TYPES:
            raise BadRecord(
                "malformed_record", f"media type must be one of {media_lib.MEDIA_TYPES}"
            )
        if not isinstance(item.get("path"), str) and not isinstance(item.get("bytes"), bytes):
            raise BadRecord("malformed_record", "a media item needs a 'path'")
        out.append(dict(item))
    return out


def _placeholders(turns: list[dict], n_media: int) -> list[dict]:
    counts = [t["value"].count(PLACEHOLDER) for t in turns]
    if sum(counts) == 0 and n_media:
        first = next(i for i, t in enumerate(turns) if t["from"] == "human")
        turns[first] = {
            "from": "human",
            "value": (PLACEHOLDER + "\n") * n_media + turns[first]["value"],
        }
        return turns
    in_gpt = sum(c for c, t in zip(counts, turns) if t["from"] != "human")
    if sum(counts) != n_media or in_gpt:
        raise BadRecord(
            "placeholder_mismatch",
            f"{sum(counts)} placeholders ({in_gpt} outside human turns) for {n_media} media",
        )
    return turns


def resolve_media_path(root: Path, rel: str) -> Path:
    """``root/rel``, refusing absolute paths, URLs and anything that resolves outside ``root``."""
    if is_url(rel):
        raise BadRecord("path_escapes_root", f"URL {rel!r}: media must be files under data.dir")
    if os.path.isabs(rel):
        raise BadRecord("path_escapes_root", f"absolute path {rel!r}")
    root_real = os.path.realpath(root)
    full = os.path.realpath(os.path.join(root_real, rel))
    if os.path.commonpath([root_real, full]) != root_real:
        raise BadRecord("path_escapes_root", f"{rel!r} leaves {root}")
    return Path(full)


def normalise(obj, root: Path | None = None, max_pixels: int | None = None) -> dict:
    """Check one parsed record and bring it to the normalised form; raises ``BadRecord``.

    With ``root``, media paths are resolved under it and must exist; with ``max_pixels`` too,
    media headers are read (corrupt files, pixel limit).
    """
    if not isinstance(obj, dict):
        raise BadRecord("malformed_record", "a record must be a JSON object")
    rid = obj.get("id")
    if not isinstance(rid, (str, int)) or isinstance(rid, bool):
        raise BadRecord("malformed_record", "missing 'id'")
    task = _str_field(obj, "task") or None
    if task is not None and task not in TASKS:
        raise BadRecord("unknown_task", f"{task!r} not in {TASKS}")
    turns = _conversations(obj)
    items = _media_items(obj)
    turns = _placeholders(turns, len(items))
    options = obj.get("options") or None
    if options is not None and (
        not isinstance(options, list) or not all(isinstance(o, str) for o in options)
    ):
        raise BadRecord("malformed_record", "'options' must be a list of strings")
    answer = _str_field(obj, "answer")
    if answer is None:
        answer = next(t["value"] for t in reversed(turns) if t["from"] == "gpt")
    if task is not None:
        labels = {x.strip().lower() for x in labels_for(task, options)}
        if answer.strip().lower() not in labels:
            raise BadRecord("answer_not_in_labels", f"{answer!r} not in {sorted(labels)}")
    if root is not None:
        for item in items:
            if "path" in item:
                path = resolve_media_path(root, item["path"])
                if not path.is_file():
                    raise BadRecord("missing_media", str(item["path"]))
                if max_pixels is not None:
                    media_lib.check_header(item["type"], str(path), max_pixels)
                item["path"] = str(path)
    return {
        "id": str(rid),
        "task": task,
        "media": items,
        "conversations": turns,
        "answer": answer,
        "options": list(options) if options else None,
        "rationale": _str_field(obj, "rationale"),
    }


def split_file(data_dir: str | os.PathLike, split: str) -> Path:
    """``{split}.jsonl``, else LLaVA's ``{split}.json``."""
    for name in (f"{split}.jsonl", f"{split}.json"):
        path = Path(data_dir) / name
        if path.exists():
            return path
    raise FileNotFoundError(f"no {split}.jsonl or {split}.json in {data_dir}")


def _raw_records(path: Path, bad: BadInputLog):
    """(id for messages, parsed object) per record; undecodable lines are skipped here."""
    if path.suffix == ".json":  # one document: a failure loses the whole file
        try:
            items = json.loads(path.read_bytes().decode("utf-8-sig"))
            if not isinstance(items, list):
                raise BadRecord("malformed_record", "a LLaVA .json file must hold a list")
        except UnicodeDecodeError as e:
            bad.skip(path.name, BadRecord("invalid_utf8", str(e)))
        except ValueError as e:
            bad.skip(path.name, BadRecord("invalid_json", str(e)))
        except BadRecord as e:
            bad.skip(path.name, e)
        else:
            yield from ((f"{path.name}[{i}]", obj) for i, obj in enumerate(items))
        return
    for lineno, line in enumerate(path.read_bytes().splitlines(), 1):
        where = f"{path.name}:{lineno}"
        if not line.strip():
            continue
        try:
            yield where, json.loads(line.decode("utf-8-sig"))  # a BOM is no record
        except UnicodeDecodeError as e:
            bad.skip(where, BadRecord("invalid_utf8", str(e)))
        except ValueError as e:
            bad.skip(where, BadRecord("invalid_json", str(e)))


def read_split(
    data_dir: str | os.PathLike,
    split: str,
    *,
    max_pixels: int,
    strict: bool = False,
    bad: BadInputLog | None = None,
) -> tuple[list[dict], BadInputLog]:
    """All good records of a split (normalised, media paths absolute) and the skip counts."""
    path = split_file(data_dir, split)
    bad = bad or BadInputLog(str(path), strict=strict)
    records = []
    for where, obj in _raw_records(path, bad):
        rid = obj.get("id") if isinstance(obj, dict) else None
        try:
            records.append(normalise(obj, root=path.parent, max_pixels=max_pixels))
        except BadRecord as e:
            bad.skip(str(rid) if rid is not None else where, e)
    bad.log_counts()
    return records, bad
