"""Every ``ConfigError`` the package raises names its field as an argument of its own (the
field, then the problem), never inside one preformatted message: the field is then what
``error.field`` says, and no message can name a field that the error does not carry. Read from
the source (nothing is imported)."""

import ast
from pathlib import Path

import emollm_jax

PACKAGE_DIR = Path(emollm_jax.__file__).parent


def _config_error_classes(trees: dict[Path, ast.Module]) -> set[str]:
    """``ConfigError`` and the names of the classes that subclass it, at any depth."""
    names = {"ConfigError"}
    bases = {
        node.name: {getattr(b, "id", getattr(b, "attr", None)) for b in node.bases}
        for tree in trees.values()
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }
    grew = True
    while grew:
        found = {name for name, parents in bases.items() if parents & names}
        grew = not found <= names
        names |= found
    return names


def _whole_message_calls(trees: dict[Path, ast.Module], classes: set[str]) -> list[str]:
    """``path:line`` of each call of ``classes`` whose only argument is the whole message."""
    found = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name in classes and len(node.args) == 1 and not node.keywords:
                found.append(f"{path.relative_to(PACKAGE_DIR)}:{node.lineno}")
    return found


def test_every_config_error_names_its_field_apart():
    trees = {p: ast.parse(p.read_text(encoding="utf-8")) for p in PACKAGE_DIR.rglob("*.py")}
    classes = _config_error_classes(trees)
    assert {"ConfigError", "MeshError"} <= classes  # the scan sees the subclasses
    assert _whole_message_calls(trees, classes) == []


def test_the_scan_finds_a_whole_message():
    tree = ast.parse('raise MeshError(f"config.mesh.shape: bad {x}")\nraise MeshError("mesh", "ok")')
    assert _whole_message_calls({PACKAGE_DIR / "x.py": tree}, {"MeshError"}) == ["x.py:1"]
