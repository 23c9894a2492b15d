"""MELD (Poria et al., ACL 2019): emotion of an utterance in a Friends clip, video.

Layout read (``PATH`` is the unpacked ``MELD.Raw`` folder)::

    train_sent_emo.csv  dev_sent_emo.csv  test_sent_emo.csv
        columns Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID, Utterance_ID, ...
    train_splits/dia{Dialogue_ID}_utt{Utterance_ID}.mp4
    dev_splits_complete/dia{D}_utt{U}.mp4
    output_repeated_splits_test/dia{D}_utt{U}.mp4

The CSV names, columns and the seven emotions are as declare-lab/MELD README.md states them
(its data/MELD/ folder holds the CSVs). The clip folder names are not in that README: they are
the ones the MELD.Raw archives unpack to as third-party loaders found by the search tool use
them (unconfirmed at the source). The clip name pattern dia{D}_utt{U}.mp4 is likewise from
those loaders.

Splits: train -> train, dev -> validation, test -> test. MELD's seven emotions are EmoBench's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from emollm_jax.data.sources.rows import (
    TEST,
    TRAIN,
    VALIDATION,
    BadRow,
    SourceRow,
    require_any,
    table_rows,
)
from emollm_jax.data.sources.source import EMOTION, Source
from emollm_jax.tasks import EMOTIONS

SPLITS = {
    TRAIN: ("train_sent_emo.csv", "train_splits"),
    VALIDATION: ("dev_sent_emo.csv", "dev_splits_complete"),
    TEST: ("test_sent_emo.csv", "output_repeated_splits_test"),
}
COLUMNS = ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID")


def read(root: Path) -> Iterator[SourceRow | BadRow]:
    found = {s: (root / csv_name, clips) for s, (csv_name, clips) in SPLITS.items()}
    found = {s: v for s, v in found.items() if v[0].exists()}
    require_any(root, [v[0] for v in found.values()], "MELD *_sent_emo.csv")
    for split, (path, clips) in found.items():
        for item in table_rows(path, COLUMNS):
            if isinstance(item, BadRow):
                yield item
                continue
            where, row = item
            clip = f"dia{row['Dialogue_ID']}_utt{row['Utterance_ID']}"
            yield SourceRow(
                split, clip, where, EMOTION, row["Emotion"], "video", f"{clips}/{clip}.mp4",
                text=row["Utterance"], speaker=row["Speaker"],
            )  # fmt: skip


SOURCE = Source(name="meld", read=read, labels={EMOTION: {e: e for e in EMOTIONS}})
