"""passk_plugin's import graph (imports inside functions included) has no cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import passk_plugin

PACKAGE = Path(passk_plugin.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """passk_plugin modules `path` imports anywhere in its body, resolved to known modules."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from pkg import mod` imports pkg.mod when that is a module.
            targets = [f"{stem}.{a.name}" for a in node.names] + [stem]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {name: imports_of(path, modules) for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path [a, b, ..., a], or None (iterative DFS with colours)."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    for root in sorted(graph):
        if state.get(root):
            continue
        stack = [(root, iter(sorted(graph[root])))]
        path = [root]
        state[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child) :] + [child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph.get(child, ())))))
    return None


def test_the_graph_is_read_from_every_module():
    graph = import_graph()
    assert "passk_plugin.sweep.run" in graph and "passk_plugin.executors.ray" in graph
    # Imports inside functions count: run_sweep builds the report lazily.
    assert "passk_plugin.report" in graph["passk_plugin.sweep.run"]
    assert "passk_plugin.executors.ray" in graph["passk_plugin.sweep.run"]


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_layers():
    """Evaluation does not reach into reporting; data does not reach into graders."""
    graph = import_graph()
    for module in ("sweep.point", "sweep.evaluation", "sweep.resident", "executors.local"):
        assert not any(m.startswith("passk_plugin.report") for m in graph[f"passk_plugin.{module}"])
    assert not any(m.startswith("passk_plugin.graders") for m in graph["passk_plugin.data"])
    assert "passk_plugin.data" not in graph["passk_plugin.graders.humaneval"]
