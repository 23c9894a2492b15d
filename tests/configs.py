"""Config loading for tests and test subprocesses (no side effects on import: subprocesses
import this without the test-session set-up of conftest.py)."""

import importlib.util
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[1]


def load_config(name: str = "llava_tiny", arg: str | None = None):
    """``configs/<name>.py``'s ``get_config(arg)``, as ``--config configs/<name>.py:<arg>``."""
    spec = importlib.util.spec_from_file_location(name, REPO / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)
