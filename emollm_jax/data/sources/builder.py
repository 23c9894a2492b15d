"""Build an EmoBench-format folder from source data sets, streaming, written atomically.

``build({"hateful_memes": PATH, ...}, OUT)`` writes ``OUT/{train,validation,test}.jsonl``
(the record format of ``emollm_jax/data/records.py``; each source's official split kept), the
media under ``OUT/media/<source>/<split>/`` (hard-linked where the file system allows, else
copied; FER2013's pixels written as PNG), ``OUT/summary.md`` (``summary.py``) and
``OUT/dataset_info.json``.

Per source row: the label goes through the source's table (``source.py``); the media path is
resolved inside the source folder (``records.resolve_media_path``), must exist, and its header
must read (``media.check_header``: container, pixel limit); with ``decode=True`` images are
decoded and clips sampled through the pipeline's own PyAV path (``media.decode``, the
configured frame count). Every record is checked by ``records.normalise`` before it is
written. A bad row is skipped and counted by reason (``bad_input.BadInputLog``), or with
``strict`` stops the build naming the file and line.

Our choices: an emotion row becomes one record, close-set or open-set drawn by seed
(``emotion_subtasks="both"`` writes both); records of all sources are written in reading
order (the Grain pipeline shuffles); extra fields ``source`` and ``source_label`` keep the
origin. Nothing is held per record: the build streams with counters only. The folder is
written under a temporary name beside ``OUT`` and renamed at the end, so an interrupted build
never leaves ``OUT`` looking complete.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from emollm_jax.data import media as media_lib
from emollm_jax.data import records
from emollm_jax.data.bad_input import BadInputLog, BadRecord
from emollm_jax.data.sources import registry
from emollm_jax.data.sources.instructions import instruction, rng_for
from emollm_jax.data.sources.rows import BadRow, SourceRow
from emollm_jax.data.sources.source import EMOTION, Source
from emollm_jax.data.sources.summary import Tally, markdown
from emollm_jax.tasks import TASK_LABELS

MEDIA_MODES = ("hardlink", "copy")
EMOTION_SUBTASKS = ("one", "both")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _tasks(family: str, rng, emotion_subtasks: str) -> list[str]:
    if family != EMOTION:
        return [family]
    if emotion_subtasks == "both":
        return ["emotion_closed", "emotion_open"]
    return [rng.choice(("emotion_closed", "emotion_open"))]


def _options(source: Source, family: str, task: str, rng) -> list[str] | None:
    """What a record lists and is scored against: close-set lists the source's labels in a
    drawn order; other records carry the source's set only where it is not the default."""
    labels = list(source.label_set(family))
    if task == "emotion_closed" or task == "intent":
        rng.shuffle(labels)
        return labels
    return labels if tuple(labels) != TASK_LABELS[task] else None


class _Writer:
    """The split files and media folder of the build in progress."""

    def __init__(self, root: Path, media_mode: str):
        self.root = root
        self.media_mode = media_mode
        self._files: dict[str, object] = {}

    def media(self, source: str, row: SourceRow, src: Path | None) -> str:
        """Place the row's media in the build; returns its path relative to the build."""
        suffix = row.media_suffix if row.media_bytes is not None else src.suffix
        rel = f"media/{source}/{row.split}/{_UNSAFE.sub('_', row.source_id)}{suffix}"
        dest = self.root / rel
        if dest.exists():  # one media file, several records (Memotion: humor and sarcasm)
            return rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if row.media_bytes is not None:
            dest.write_bytes(row.media_bytes)
        elif self.media_mode == "hardlink":
            try:
                os.link(src, dest)
            except OSError:  # another file system, or links not allowed
                shutil.copyfile(src, dest)
        else:
            shutil.copyfile(src, dest)
        return rel

    def record(self, split: str, record: dict) -> None:
        if split not in self._files:
            self._files[split] = open(self.root / f"{split}.jsonl", "w", encoding="utf-8")
        self._files[split].write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        for f in self._files.values():
            f.close()


def _check_media(root: Path, row: SourceRow, max_pixels: int, decode_frames: int | None):
    """The row's media file, checked; raises ``BadRecord``."""
    if row.media_bytes is not None:
        data, path = row.media_bytes, None
    else:
        path = records.resolve_media_path(root, row.media_path)
        if not path.is_file():
            raise BadRecord("missing_media", row.media_path)
        media_lib.check_header(row.media_type, str(path), max_pixels)
        data = None
    if decode_frames is not None:
        if data is None:
            data = path.read_bytes()
        media_lib.decode(row.media_type, data, num_frames=decode_frames, max_pixels=max_pixels)
    elif path is None:
        media_lib.check_header(row.media_type, data, max_pixels)
    return path


def _records_for(source: Source, row: SourceRow, seed: int, emotion_subtasks: str):
    """(task, record without media) per record the row becomes; raises ``BadRecord``."""
    answer = source.answer(row.task, row.label)
    base_id = f"{source.name}-{row.split}-{row.source_id}"
    for task in _tasks(row.task, rng_for(seed, base_id), emotion_subtasks):
        rid = f"{source.name}-{task}-{row.split}-{row.source_id}"
        rng = rng_for(seed, rid)
        options = _options(source, row.task, task, rng)
        text = instruction(rng, task, row, options or [])
        record = {
            "id": rid,
            "task": task,
            "conversations": [
                {"from": "human", "value": records.PLACEHOLDER + "\n" + text},
                {"from": "gpt", "value": answer},
            ],
            "answer": answer,
            "source": source.name,
            "source_label": row.label,
        }
        if options is not None:
            record["options"] = options
        yield task, record


def _progress(enabled: bool) -> Callable:
    from tqdm import tqdm

    return lambda desc: tqdm(desc=desc, unit=" rows", disable=not enabled, dynamic_ncols=True)


def _convert(source, root, writer, tally, *, seed, emotion_subtasks, max_pixels, decode_frames,
             strict, bar) -> None:  # fmt: skip
    bad = tally.bad[source.name] = BadInputLog(f"{source.name} ({root})", strict=strict)
    for row in source.read(root):
        bar.update()
        tally.rows[source.name] += 1
        if isinstance(row, BadRow):
            bad.skip(row.where, row.error)
            continue
        try:
            made = list(_records_for(source, row, seed, emotion_subtasks))
            src = _check_media(root, row, max_pixels, decode_frames)
            rel = writer.media(source.name, row, src)
            for task, record in made:
                record["media"] = {"type": row.media_type, "path": rel}
                records.normalise(record)  # the format's own checks, before it is written
                writer.record(row.split, record)
                tally.add(source.name, task, row.split, record["answer"])
        except BadRecord as e:
            bad.skip(f"{row.where} ({row.source_id})", e)
    bad.log_counts()


def build(
    sources: Mapping[str, str | os.PathLike],
    out: str | os.PathLike,
    *,
    seed: int = 0,
    media: str = "hardlink",
    emotion_subtasks: str = "one",
    max_pixels: int = 16_000_000,
    decode_frames: int | None = None,
    strict: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> Tally:
    """Build ``out`` from ``{source name: folder}``; returns the counts (``summary.md``'s)."""
    if media not in MEDIA_MODES:
        raise ValueError(f"media={media!r} is not one of {MEDIA_MODES}")
    if emotion_subtasks not in EMOTION_SUBTASKS:
        raise ValueError(f"emotion_subtasks={emotion_subtasks!r} is not one of {EMOTION_SUBTASKS}")
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists (pass overwrite=True / --overwrite to replace it)")
    resolved = {}
    for name, folder in sources.items():
        source, folder = registry.get(name), Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"source {name}: {folder} is not a folder")
        resolved[name] = (source, folder)
    if not resolved:
        raise ValueError("no source given")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    tally = Tally(paths={n: str(f) for n, (_, f) in resolved.items()})
    writer = _Writer(tmp, media)
    try:
        with contextlib.closing(writer):
            for name, (source, folder) in resolved.items():
                with _progress(progress)(name) as bar:
                    _convert(
                        source, folder, writer, tally, seed=seed,
                        emotion_subtasks=emotion_subtasks, max_pixels=max_pixels,
                        decode_frames=decode_frames, strict=strict, bar=bar,
                    )  # fmt: skip
        if not tally.records:
            raise ValueError(f"no usable record in {', '.join(resolved)}: see the skip counts")
        (tmp / "summary.md").write_text(markdown(tally, seed), encoding="utf-8")
        info = {
            "name": "emobench_from_sources",
            "seed": seed,
            "sources": tally.paths,
            "records": tally.per_split(),
            "emotion_subtasks": emotion_subtasks,
        }
        (tmp / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n")
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tally


def _replace(tmp: Path, out: Path) -> None:
    """Rename the finished build into place (an old ``out`` moves aside first, then goes)."""
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / "old")
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
