"""The source data sets by the names the command line takes (``--source NAME=PATH``)."""

from __future__ import annotations

from emollm_jax.data.sources import (
    emoset,
    fer2013,
    hateful_memes,
    meld,
    memotion,
    mintrec,
    mmsd2,
    mustard,
)
from emollm_jax.data.sources.source import Source

SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        emoset.SOURCE,
        fer2013.SOURCE,
        meld.SOURCE,
        mintrec.SOURCE,
        hateful_memes.SOURCE,
        memotion.SOURCE,
        mustard.SOURCE,
        mmsd2.SOURCE,
    )
}


def get(name: str) -> Source:
    if name not in SOURCES:
        raise ValueError(f"unknown source {name!r}; expected one of {', '.join(SOURCES)}")
    return SOURCES[name]
