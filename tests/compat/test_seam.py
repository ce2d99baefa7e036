"""Upstream private APIs are used only inside passk_plugin/compat/ (checked over the source)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "passk_plugin"
COMPAT = PACKAGE / "compat"
UPSTREAM = ("transformers", "lm_eval", "mergekit", "vllm")
# Private names of other libraries that passk may use anywhere (none of them is upstream's).
ALLOWED = {
    "_exit": "os._exit, the documented way to leave a forked child",
    "_buffers": "torch.nn.Module._buffers, to hand a buffer over without a copy",
}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _sources(root: Path) -> dict[Path, ast.Module]:
    return {p: ast.parse(p.read_text(encoding="utf-8")) for p in sorted(root.rglob("*.py"))}


def _own_names(trees: dict[Path, ast.Module]) -> set[str]:
    """Every private name passk itself defines: functions, classes, attributes, variables."""
    names: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names.add(node.target.id)
    return {n for n in names if _private(n)}


def _upstream(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in UPSTREAM


def violations(root: Path = PACKAGE, seam: Path = COMPAT) -> list[str]:
    trees = _sources(root)
    own = _own_names(trees)
    found = []
    for path, tree in trees.items():
        if seam in path.parents:
            continue
        where = path.relative_to(root.parent)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if _upstream(alias.name) and any(map(_private, alias.name.split("."))):
                        found.append(f"{where}:{node.lineno}: import {alias.name}")
            elif isinstance(node, ast.ImportFrom) and _upstream(node.module):
                module = node.module or ""
                if any(map(_private, module.split("."))):
                    found.append(f"{where}:{node.lineno}: from {module} import ...")
                for alias in node.names:
                    if _private(alias.name):
                        found.append(f"{where}:{node.lineno}: from {module} import {alias.name}")
            elif isinstance(node, ast.Attribute) and _private(node.attr):
                if node.attr not in own and node.attr not in ALLOWED:
                    found.append(f"{where}:{node.lineno}: .{node.attr}")
    return found


def test_no_upstream_private_names_outside_compat():
    assert violations() == []


def test_the_check_finds_private_uses(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "compat").mkdir(parents=True)
    (pkg / "compat" / "ok.py").write_text("from lm_eval._cli import HarnessCLI\nx = m._secret\n")
    (pkg / "own.py").write_text("class A:\n    def _mine(self):\n        return self._mine()\n")
    (pkg / "bad.py").write_text(
        "import vllm._custom_ops\n"
        "from lm_eval.tasks._index import TaskIndex\n"
        "from mergekit.merge import _model_out_config\n"
        "def f(model):\n"
        "    return model._prepare_generation_config(None)\n"
    )
    assert violations(pkg, pkg / "compat") == [
        "pkg/bad.py:1: import vllm._custom_ops",
        "pkg/bad.py:2: from lm_eval.tasks._index import ...",
        "pkg/bad.py:3: from mergekit.merge import _model_out_config",
        "pkg/bad.py:5: ._prepare_generation_config",
    ]
