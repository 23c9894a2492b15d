"""The errors a user's mistake raises (a leaf module: it imports nothing from the package, so
every layer can raise them and every command's error path catches them): a bad config field
(``ConfigError``; errors of one field in a particular part, such as ``MeshError``, subclass it)
and a checkpoint that cannot be used as asked (``CheckpointChoiceError``).

``ConfigError`` carries the field (its dotted path under ``config``: ``model.text.num_kv_heads``),
the value found and what was expected, and its message names the field first:
``config.<field>: <problem>``. The command-line entry points print that message alone and exit
with status 2 (``emollm_jax/cli_errors.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ConfigError(ValueError):
    """A config field is missing, unknown or holds a bad value.

    ``ConfigError("train.steps", value=0, expected="positive")`` reads
    ``config.train.steps: must be positive, got 0``; pass ``problem`` for any other sentence
    (it follows ``config.<field>: ``). A whole message ``ConfigError("config.<field>: <problem>")``
    is also accepted, split into its field and problem (the package itself always passes the
    field apart: ``tests/test_errors.py``).
    """

    def __init__(
        self,
        field: str,
        problem: str | None = None,
        *,
        value: Any = None,
        expected: str | None = None,
    ):
        if problem is None and expected is None and field.startswith("config.") and ": " in field:
            field, problem = field.removeprefix("config.").split(": ", 1)
        if problem is None:
            if expected is None:
                raise TypeError("ConfigError needs a problem or what was expected")
            problem = f"must be {expected}, got {value!r}"
        self.field = field
        self.problem = problem
        self.value = value
        self.expected = expected
        super().__init__(f"config.{field}: {problem}")

    @classmethod
    def not_one_of(cls, field: str, value: Any, choices: Iterable[Any]) -> ConfigError:
        """``config.<field>: <value!r> is not one of <choices>``."""
        choices = tuple(choices)
        return cls(
            field, f"{value!r} is not one of {choices}", value=value, expected=f"one of {choices}"
        )

    def __reduce__(self):
        # Rebuilt from its parts (the default would pass the whole message as ``field``), so it
        # crosses a process boundary (data workers) unchanged.
        state = {"value": self.value, "expected": self.expected}
        return type(self), (self.field, self.problem), state


class CheckpointChoiceError(ValueError):
    """The checkpoint asked for cannot be used: it cannot be read, it is not there, or it was
    made with another model config. The message names the checkpoint (step and folder), the
    file or every differing field, and what to pick instead."""
