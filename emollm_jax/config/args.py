"""The config argument: typed ``key=value`` pairs after the file name, big_vision style.

``--config configs/emollm_7b.py:stage=1,backbone=qwen2`` calls that file's
``get_config("stage=1,backbone=qwen2")``, which parses the string with ``parse_arg`` against its
defaults: each value takes the type of its key's default (int, float, bool, str), and a key the
file does not take is refused, naming it and the keys it does take. A bare word is a shorthand:
a bool key alone sets it (``runlocal`` = ``runlocal=True``) and a name of the shorthand table
stands for its pairs (``stage1`` = ``stage=1``, ``mp`` = ``variant=mp``), so the plain forms
``configs/emollm_tiny.py:baseline`` and ``configs/llava_7b.py:stage1`` keep working and combine
with the rest (``configs/emollm_7b.py:stage1,mp``).
"""

from __future__ import annotations

from collections.abc import Mapping

_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


def _typed(key: str, text: str, default):
    """``text`` as the type of ``default``."""
    if isinstance(default, bool):  # before int: a bool is an int
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE
        raise ValueError(f"config argument {key}={text!r}: expected a bool (true or false)")
    for kind, name in ((int, "an int"), (float, "a float")):
        if isinstance(default, kind):
            try:
                return kind(text)
            except ValueError:
                raise ValueError(f"config argument {key}={text!r}: expected {name}") from None
    return text


def parse_arg(
    arg: str | None, shorthands: Mapping[str, Mapping] | None = None, **defaults
) -> dict:
    """``defaults`` updated by the ``key=value[,key=value...]`` pairs and shorthands of ``arg``
    (None or "" keeps every default). Only the shorthands whose keys are all in ``defaults``
    apply. A key given twice, directly or through a shorthand, is refused."""
    usable = {
        name: dict(pairs)
        for name, pairs in (shorthands or {}).items()
        if set(pairs) <= set(defaults)
    }
    keys = ", ".join(defaults)
    values = dict(defaults)
    given: set[str] = set()
    for token in (arg or "").split(","):
        token = token.strip()
        if not token:
            continue
        if "=" in token:
            key, text = (part.strip() for part in token.split("=", 1))
            if key not in defaults:
                raise ValueError(f"config argument {key!r} is not a key of this config ({keys})")
            pairs = {key: _typed(key, text, defaults[key])}
        elif isinstance(defaults.get(token), bool):
            pairs = {token: True}
        elif token in usable:
            pairs = usable[token]
        else:
            names = ", ".join(usable) or "none"
            raise ValueError(
                f"config argument {token!r} is not one of the shorthands ({names}) and not "
                f"key=value with a key of this config ({keys})"
            )
        twice = given & set(pairs)
        if twice:
            raise ValueError(f"config argument {arg!r} sets {sorted(twice)} twice")
        given |= set(pairs)
        values.update(pairs)
    return values
