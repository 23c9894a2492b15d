"""The modules of emollm_jax import each other without a cycle, and so do its packages, which
import downward only, in the order of ``LAYERS``.

The graph is read from the source (nothing is imported): every ``import`` and ``from ... import``
statement, at module level or inside a function, except those under ``if TYPE_CHECKING:``.
Relative imports are resolved; ``from pkg import name`` is an edge to ``pkg`` (its
``__init__`` runs) and, when ``pkg.name`` is a module, to ``pkg.name`` too. A cycle fails the
test, named module by module. The package graph folds each subpackage of emollm_jax (and each
top-level module, and the root ``__init__``) into one node; an edge between two nodes names the
module-level edges behind it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import emollm_jax

PACKAGE_DIR = Path(emollm_jax.__file__).parent


def _modules(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``root`` (a package folder)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = (package, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    """Every import statement of ``tree``, skipping the bodies of ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]))
        else:
            yield from _imports(node)


def imported(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> every dotted name its import statements name (in-tree or not)."""
    found: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
                continue
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            targets.add(base)
            targets |= {f"{base}.{alias.name}" for alias in node.names}
        found[name] = targets
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ``modules`` it imports."""
    return {
        name: {t for t in targets if t in modules and t != name}
        for name, targets in imported(modules).items()
    }


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


# The layers of emollm_jax, bottom to top: a unit (a subpackage, a top-level module, or
# "emollm_jax" for the root __init__) imports only units of its own layer or the layers below.
# Within a layer the package graph has no cycle either.
LAYERS = (
    # leaves: user errors, paths, task names, logging, destinations, folder locks, error path
    ("errors", "paths", "tasks", "logs", "destinations", "folder_lock", "cli_errors"),
    ("config",),  # the config schemas
    ("sharding",),  # mesh, rule tables, the active mesh (runtime)
    ("models",),
    # what runs on models: data, prompts, generation, scoring (no JAX), checkpoints, conversion
    ("data", "emoprompt", "generate", "eval", "export", "checkpoint", "convert"),
    ("emollm_jax",),  # the root's load_hf / save_hf, over convert
    ("train", "inference"),
    ("aot", "ablate", "ablate_probes", "compile", "evaluate", "goodput", "main_job"),  # the jobs
    ("cli",),  # the `emollm` front door
)


def unit(module: str, package: str = "emollm_jax") -> str:
    """The package-graph node of ``module``: its subpackage or top-level module under
    ``package``, or ``package`` itself for the root ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else package


def package_graph(
    graph: dict[str, set[str]], package: str = "emollm_jax"
) -> tuple[dict[str, set[str]], dict[tuple[str, str], list[tuple[str, str]]]]:
    """Unit -> the units it imports, and (unit, unit) -> the module edges behind that edge."""
    units: dict[str, set[str]] = {}
    behind: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for module, targets in graph.items():
        a = unit(module, package)
        units.setdefault(a, set())
        for target in sorted(targets):
            b = unit(target, package)
            if a != b:
                units[a].add(b)
                behind.setdefault((a, b), []).append((module, target))
    return units, behind


def test_emollm_jax_packages_form_a_dag():
    units, behind = package_graph(import_graph(_modules(PACKAGE_DIR, "emollm_jax")))
    assert {"config", "models", "train", "cli", "emollm_jax", "errors"} <= set(units)
    cycle = find_cycle(units)
    assert cycle is None, "package cycle: " + "; ".join(
        f"{a} -> {b} ({behind[a, b][0][0]} imports {behind[a, b][0][1]})"
        for a, b in zip(cycle, cycle[1:])
    )


def test_emollm_jax_packages_import_downward_only():
    units, behind = package_graph(import_graph(_modules(PACKAGE_DIR, "emollm_jax")))
    rank = {name: i for i, layer in enumerate(LAYERS) for name in layer}
    assert len(rank) == sum(map(len, LAYERS)), "a unit is in two layers"
    unplaced = sorted(set(units) - set(rank))
    assert not unplaced, f"units in no layer of LAYERS (place them): {unplaced}"
    upward = [
        f"{module} imports {target}"
        for (a, b), edges in sorted(behind.items())
        if rank[a] < rank[b]
        for module, target in edges
    ]
    assert not upward, "imports up the layers: " + "; ".join(upward)


def test_a_package_cycle_is_found_where_modules_have_none(tmp_path):
    pkg = tmp_path / "pkg"
    for sub in ("a", "b"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("from pkg.b import y\n")
    (pkg / "b" / "y.py").write_text("X = 1\n")
    (pkg / "b" / "z.py").write_text("import pkg.a.w\n")
    (pkg / "a" / "w.py").write_text("X = 2\n")
    graph = import_graph(_modules(pkg, "pkg"))
    assert find_cycle(graph) is None
    units, behind = package_graph(graph, "pkg")
    assert units == {"pkg": set(), "a": {"b"}, "b": {"a"}}
    assert behind["b", "a"] == [("pkg.b.z", "pkg.a.w")]
    assert find_cycle(units) == ["a", "b", "a"]


def test_emollm_jax_imports_form_a_dag():
    graph = import_graph(_modules(PACKAGE_DIR, "emollm_jax"))
    assert len(graph) > 100  # the whole package was read
    assert "emollm_jax.eval.answers" in graph["emollm_jax.inference.run"]  # an edge read
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_eval_is_a_scoring_library_apart_from_emoprompt():
    """emollm_jax.eval imports no JAX, not even through the modules it imports, and neither
    eval nor emoprompt imports the other."""
    modules = _modules(PACKAGE_DIR, "emollm_jax")
    names, graph = imported(modules), import_graph(modules)
    scoring = [m for m in graph if _within(m, "emollm_jax.eval")]
    assert "emollm_jax.eval.metrics" in scoring
    for module in scoring:
        for used in _reachable(graph, module):
            heavy = {n for n in names[used] if n.split(".")[0] in ("jax", "flax", "optax")}
            assert not heavy, f"{module} imports {used}, which imports {sorted(heavy)}"
    for a, b in (("eval", "emoprompt"), ("emoprompt", "eval")):
        edges = [
            (m, t)
            for m, targets in graph.items()
            if _within(m, f"emollm_jax.{a}")
            for t in targets
            if _within(t, f"emollm_jax.{b}")
        ]
        assert not edges, f"emollm_jax.{a} imports emollm_jax.{b}: {edges}"


def test_a_cycle_is_found_and_named(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    # relative, and inside a function: still an edge
    (pkg / "sub" / "b.py").write_text("def f():\n    from .. import a\n")
    (pkg / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import d\n"
    )
    (pkg / "d.py").write_text("import pkg.c\n")
    graph = import_graph(_modules(pkg, "pkg"))
    assert graph["pkg.sub.b"] == {"pkg", "pkg.a"}
    assert graph["pkg.c"] == set()  # under TYPE_CHECKING: not an edge
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.a"]
    (pkg / "sub" / "b.py").write_text("X = 1\n")
    assert find_cycle(import_graph(_modules(pkg, "pkg"))) is None
