"""``emollm config show``: every field of every config section, with its type, default and
meaning (``config.model``'s fields are ``emollm_jax/config/model.py``'s dataclasses, set by the
presets). Any field can be set on the command line of a config-taking job:
``--config.train.steps=200``."""

from __future__ import annotations

import argparse
import sys

from emollm_jax.config.sections import fields


def table() -> str:
    rows = [(f"config.{path}", kind, repr(default), meaning) for path, kind, default, meaning in
            fields()]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    lines = []
    for path, kind, default, meaning in rows:
        lines.append(f"{path:<{width}}  {kind:<5}  default {default}")
        lines.append(f"{'':<{width}}  {meaning}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="emollm config show", description=__doc__.splitlines()[0].strip("`")
    )
    parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
