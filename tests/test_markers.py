"""Test modules carry the markers of what they need, so that ``-m "not torch"`` or ``-m "not
libtpu"`` leaves out exactly the tests a machine cannot run: a module that imports torch or the
PyTorch test models at its top carries ``torch``; one that skips itself without libtpu carries
``libtpu``. Read from the source (nothing is imported)."""

import ast
import tomllib

import pytest

from tests.configs import REPO

TESTS = sorted((REPO / "tests").rglob("test_*.py"))


def _module_marks(tree: ast.Module) -> set[str]:
    """The marker names of a module's ``pytestmark = ...`` (one mark or a list)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            return {n.attr for n in ast.walk(node.value) if isinstance(n, ast.Attribute)} - {
                "mark"
            }
    return set()


def _top_imports(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_the_markers_are_registered():
    ini = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    names = {m.split(":")[0] for m in ini["markers"]}
    assert {"slow", "libtpu", "multiprocess", "torch"} <= names


@pytest.mark.parametrize("path", TESTS, ids=lambda p: str(p.relative_to(REPO / "tests")))
def test_modules_needing_torch_or_libtpu_say_so(path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    marks, imports = _module_marks(tree), _top_imports(tree)
    if "torch" in imports or "tests.hf_models" in imports:
        assert "torch" in marks, f"{path.name} imports torch at its top: pytestmark torch"
    if 'importorskip("libtpu"' in source and "pytest.importorskip" in source.split("\ndef ")[0]:
        assert "libtpu" in marks, f"{path.name} needs libtpu: pytestmark libtpu"
