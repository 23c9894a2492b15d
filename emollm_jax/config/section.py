"""What every typed config section shares: a field with its one-line meaning, the build of a
section from its ``ConfigDict`` (an unknown key, a value of the wrong type or a bad value raises
``ConfigError`` naming ``config.<section>.<field>``), and the listing of every field.

A section is a frozen dataclass whose fields are declared with ``option(default, meaning,
check)``; the value's type is its default's (a float field takes an int too, a tuple field a
list). ``config/base.py`` builds the ``ConfigDict`` the command line overrides from the
sections' defaults; ``config/sections.py`` builds and checks every section at load.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from emollm_jax.errors import ConfigError

Check = Callable[[str, Any], None]  # (dotted field, value) -> None, or raises ConfigError


def option(default: Any, meaning: str, check: Check | None = None) -> Any:
    """A section field: its default, one line saying what it means, and an optional check."""
    metadata = {"meaning": meaning, "check": check}
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def positive(field: str, value: Any) -> None:
    if value <= 0:
        raise ConfigError(field, value=value, expected="positive")


def positive_int(field: str, value: Any) -> None:
    if value <= 0:
        raise ConfigError(field, value=value, expected="a positive int")


def at_least_zero(field: str, value: Any) -> None:
    if value < 0:
        raise ConfigError(field, value=value, expected=">= 0")


def fraction(field: str, value: Any) -> None:
    if not 0 <= value <= 1:
        raise ConfigError(field, value=value, expected="between 0 and 1")


def positive_fraction(field: str, value: Any) -> None:
    if not 0 < value <= 1:
        raise ConfigError(field, value=value, expected="above 0 and at most 1")


def one_of(*choices: Any) -> Check:
    def check(field: str, value: Any) -> None:
        if value not in choices:
            raise ConfigError.not_one_of(field, value, choices)

    return check


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _typed(field: str, value: Any, default: Any) -> Any:
    """``value`` as the type of ``default``, or a ``ConfigError`` naming ``field``."""
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "a bool"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "an int"
    elif isinstance(default, float):
        ok, kind = isinstance(value, int | float) and not isinstance(value, bool), "a number"
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok, kind = isinstance(value, str), "a string"
    elif isinstance(default, tuple):
        ok, kind = isinstance(value, list | tuple), "a list"
        value = tuple(value) if ok else value
    elif isinstance(default, dict) or default is None:
        ok, kind = value is None or isinstance(value, Mapping), "a dict"
        value = dict(value) if isinstance(value, Mapping) else value
    else:
        ok, kind = True, ""
    if not ok:
        raise ConfigError(field, value=value, expected=kind)
    return value


def build(cls: type, section: str, values: Mapping[str, Any] | None) -> Any:
    """The section ``cls`` from ``values`` (``config.<section>``; missing keys take their
    defaults), each field typed and checked."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {} if values is None else dict(values)
    for key in values:
        if key not in fields:
            near = difflib.get_close_matches(key, fields, n=1)
            hint = f" (did you mean {near[0]}?)" if near else f" (fields: {', '.join(fields)})"
            raise ConfigError(f"{section}.{key}", f"no such field{hint}")
    kwargs = {}
    for name, f in fields.items():
        field = f"{section}.{name}"
        default = _default(f)
        if name not in values:
            kwargs[name] = default
            continue
        value = values[name]
        if dataclasses.is_dataclass(default):
            value = build(type(default), field, value)
        else:
            value = _typed(field, value, default)
            if f.metadata.get("check") is not None:
                f.metadata["check"](field, value)
        kwargs[name] = value
    return cls(**kwargs)


def defaults(cls: type) -> dict[str, Any]:
    """The section's defaults as plain values (nested sections as dicts)."""
    out = {}
    for f in dataclasses.fields(cls):
        default = _default(f)
        out[f.name] = defaults(type(default)) if dataclasses.is_dataclass(default) else default
    return out


def describe(cls: type, section: str) -> Iterator[tuple[str, str, Any, str]]:
    """(dotted field, type name, default, meaning) of every field, nested sections flattened."""
    for f in dataclasses.fields(cls):
        default = _default(f)
        if dataclasses.is_dataclass(default):
            yield from describe(type(default), f"{section}.{f.name}")
        else:
            kind = "dict" if default is None else type(default).__name__
            yield f"{section}.{f.name}", kind, default, f.metadata.get("meaning", "")
