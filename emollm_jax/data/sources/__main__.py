"""Command line: build an EmoBench-format folder from source data sets.

    emollm data sources build --source hateful_memes=PATH --source meld=PATH ... OUT
        [--seed N] [--media hardlink|copy] [--emotion-subtasks one|both] [--decode
        --video-frames N] [--max-pixels N] [--strict] [--overwrite] [--no-progress]

Source names: emoset, fer2013, meld, mintrec, hateful_memes, memotion, mustard, mmsd2 (each
reader's module docstring says which layout ``PATH`` must have). See ``builder.py``.
"""

from __future__ import annotations

import argparse
import sys

from emollm_jax.data.bad_input import BadRecordError
from emollm_jax.data.sources import builder
from emollm_jax.data.sources.registry import SOURCES


def _source(text: str) -> tuple[str, str]:
    name, sep, path = text.partition("=")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    if name not in SOURCES:
        raise argparse.ArgumentTypeError(f"unknown source {name!r}; one of {', '.join(SOURCES)}")
    return name, path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="emollm data sources")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build an EmoBench-format folder from source data sets")
    b.add_argument("--source", type=_source, action="append", required=True, metavar="NAME=PATH")
    b.add_argument("out", help="output folder (must not exist, unless --overwrite)")
    b.add_argument("--seed", type=int, default=0, help="draws instructions and sub-tasks")
    b.add_argument("--media", choices=builder.MEDIA_MODES, default="hardlink")
    b.add_argument("--emotion-subtasks", choices=builder.EMOTION_SUBTASKS, default="one",
                   help="one: each emotion row becomes a close-set or an open-set record "
                   "(drawn); both: one of each")  # fmt: skip
    b.add_argument("--decode", action="store_true",
                   help="decode every image and sample every clip (slower than header checks)")
    b.add_argument("--video-frames", type=int, default=8, help="frames sampled with --decode")
    b.add_argument("--max-pixels", type=int, default=16_000_000)
    b.add_argument("--strict", action="store_true", help="stop at the first bad row")
    b.add_argument("--overwrite", action="store_true", help="replace OUT when the build succeeds")
    b.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    names = [n for n, _ in args.source]
    if len(set(names)) != len(names):
        parser.error(f"a source is given twice: {names}")
    try:
        tally = builder.build(
            dict(args.source), args.out, seed=args.seed, media=args.media,
            emotion_subtasks=args.emotion_subtasks, max_pixels=args.max_pixels,
            decode_frames=args.video_frames if args.decode else None, strict=args.strict,
            overwrite=args.overwrite, progress=not args.no_progress,
        )  # fmt: skip
    except (BadRecordError, FileExistsError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{s} {n}" for s, n in sorted(tally.per_split().items()))
    skipped = sum(log.total for log in tally.bad.values())
    print(f"wrote {counts} records to {args.out} ({skipped} rows skipped; see summary.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
