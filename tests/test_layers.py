"""Imports point one way: derive (sympy, stdlib) <- numeric (numpy) <- reports (matplotlib) <- cli."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "derive": {"sympy", "mpmath", "derive"},
    # safetensors and torch: optional readers of weight files, imported only when asked for
    "numeric": {"sympy", "mpmath", "numpy", "derive", "numeric", "safetensors", "torch"},
    "reports": {"sympy", "mpmath", "numpy", "matplotlib", "derive", "numeric", "reports"},
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_point_one_way(layer):
    files = sorted((ROOT / layer).glob("*.py"))
    assert files, layer
    for path in files:
        outside = imported_roots(path) - ALLOWED[layer] - set(sys.stdlib_module_names)
        assert not outside, f"{path.relative_to(ROOT)} imports {sorted(outside)}"


def test_only_the_cli_prints():
    for layer in ALLOWED:
        for path in (ROOT / layer).glob("*.py"):
            calls = [n for n in ast.walk(ast.parse(path.read_text()))
                     if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"]
            assert not calls, f"{path.relative_to(ROOT)} prints"
