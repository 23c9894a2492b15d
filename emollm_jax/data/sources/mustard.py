"""MUStARD (Castro et al., ACL 2019): is an utterance in a TV clip sarcastic, video.

Layout read (``PATH`` is the repository's ``data/`` folder with the clips unpacked into it)::

    sarcasm_data.json                 {id: {utterance, speaker, context, context_speakers,
                                            show, sarcasm}}
    videos/utterances_final/{id}.mp4

The JSON keys are as soujanyaporia/MUStARD README.md lists them (``show`` is read by its
data_loader.py); the clip folder is the one its visual/README.md and visual/save_frames.sh
use (``data/videos/utterances_final``). Context utterances are not put in the instruction
(ours: keeps prompts short).

Splits: MUStARD has no train/test files; we use the authors' speaker-independent split
(data_loader.py ``speaker_independent_split``): show FRIENDS -> test, every other show ->
train. sarcasm true -> yes, false -> no.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from emollm_jax.data.bad_input import BadRecord
from emollm_jax.data.sources.rows import (
    TEST,
    TRAIN,
    BadRow,
    SourceRow,
    field,
    json_document,
    require_any,
)
from emollm_jax.data.sources.source import Source

TEST_SHOW = "FRIENDS"


def read(root: Path) -> Iterator[SourceRow | BadRow]:
    path = root / "sarcasm_data.json"
    require_any(root, [path if path.exists() else None], "MUStARD sarcasm_data.json")
    doc = json_document(path, dict)
    if isinstance(doc, BadRow):
        yield doc
        return
    for rid, obj in doc.items():
        where = f"{path.name}[{rid!r}]"
        try:
            utterance, show = field(obj, "utterance", where), field(obj, "show", where)
            label = field(obj, "sarcasm", where)
        except BadRecord as e:
            yield BadRow(where, e)
            continue
        split = TEST if show == TEST_SHOW else TRAIN
        yield SourceRow(
            split, rid, where, "sarcasm", str(label), "video",
            f"videos/utterances_final/{rid}.mp4", text=str(utterance),
            speaker=obj.get("speaker"),
        )  # fmt: skip


SOURCE = Source(name="mustard", read=read, labels={"sarcasm": {"True": "yes", "False": "no"}})
