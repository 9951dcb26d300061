"""The layout's promises, read from the source: no import cycles (function-level
imports included), dependencies pointing one way, and no oversized module."""

from __future__ import annotations

import ast
from pathlib import Path

from strategies.tests.test_params import collector_held, parse_quietly

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("backtester", "prices", "strategies")
MAX_LINES = 500
# Apps below the project package: execution may import none of them.
APPS = (
    "backtester.runs",
    "backtester.sweeps",
    "backtester.portfolio",
    "backtester.library",
)
# The project's wiring: no app, and nothing below execution, imports it (the
# settings are read through django.conf).
WIRING = (
    "backtester.settings", "backtester.asgi", "backtester.routing",
    "backtester.urls", "backtester.health", "backtester.not_found",
)  # fmt: skip


def _is_source(path: Path) -> bool:
    return "tests" not in path.parts and "migrations" not in path.parts


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if not _is_source(path.relative_to(ROOT)):
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Return the lines of ``if TYPE_CHECKING:`` blocks (imports for hints only)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = getattr(test, "id", None) or getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.body:
                    lines.update(range(child.lineno, child.end_lineno + 1))
    return lines


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """Return the project modules ``module`` imports anywhere in its text (top
    level or inside functions), ``TYPE_CHECKING`` blocks aside."""
    tree = parse_quietly(path)
    hints = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in hints:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import mod`` imports the module pkg.mod when there is one.
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                for a in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            # Importing a module runs its parent packages' __init__ first: an
            # __init__ that imports its submodules is part of any ring they
            # close through it.
            while name:
                if name in known and name != module:
                    targets.add(name)
                name = name.rpartition(".")[0]
    return targets


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    with collector_held():  # one collection for all the files
        return {name: imports_of(name, path, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one import cycle as a list of modules (first repeated last)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_walker_sees_function_level_imports_and_finds_a_cycle(tmp_path):
    """The checks below can fail: a ring through a function-level import is seen,
    and an import under TYPE_CHECKING is not."""
    (tmp_path / "a.py").write_text("def f():\n    from b import g\n")
    (tmp_path / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import c\nimport a\n"
    )
    (tmp_path / "c.py").write_text("import b\n")
    known = {"a", "b", "c"}
    graph = {m: imports_of(m, tmp_path / f"{m}.py", known) for m in known}
    assert graph == {"a": {"b"}, "b": {"a"}, "c": {"b"}}
    assert find_cycle(graph) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"b"}}) is None
    # A package whose __init__ imports a submodule that imports a sibling:
    # the sibling's import runs the __init__ again, a ring through it.
    package = tmp_path / "p"
    package.mkdir()
    (package / "__init__.py").write_text("from p.x import f\n")
    (package / "x.py").write_text("from p import y\n")
    (package / "y.py").write_text("")
    known = {"p", "p.x", "p.y"}
    paths = {"p": package / "__init__.py", "p.x": package / "x.py",
             "p.y": package / "y.py"}  # fmt: skip
    graph = {m: imports_of(m, paths[m], known) for m in known}
    assert graph["p.x"] == {"p", "p.y"}
    assert find_cycle(graph) == ["p", "p.x", "p"]


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _offenders(graph, importer_prefixes, forbidden_prefixes) -> list[str]:
    def within(name: str, prefixes) -> bool:
        return any(name == p or name.startswith(p + ".") for p in prefixes)

    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if within(module, importer_prefixes)
        for target in targets
        if within(target, forbidden_prefixes)
    )


def test_dependencies_point_one_way():
    graph = import_graph()
    # strategies: numpy (and numba) only; prices: nothing of ours.
    assert _offenders(graph, ["strategies"], ["backtester", "prices"]) == []
    assert _offenders(graph, ["prices"], ["backtester", "strategies"]) == []
    # execution knows pieces of work, not the apps that define them.
    assert _offenders(graph, ["backtester.execution"], APPS) == []
    # No app and nothing below reaches up into the wiring.
    assert _offenders(graph, [*APPS, "backtester.execution"], WIRING) == []


def test_no_module_over_the_size_limit():
    long = {
        str(path.relative_to(ROOT)): n
        for path in _modules().values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"
