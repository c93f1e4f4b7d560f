"""Imports point one way: derive (sympy, stdlib) <- numeric (numpy) <- reports (matplotlib) <- cli;
inside numeric, engine <- io, init <- training <- the requests (run, grid, explain, ...) <- present."""

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
#: numeric's floors: a module may import its own floor and those below it, never one above.
FLOORS = {"numeric.engine": 0, "numeric.init": 1, "numeric.io": 1, "numeric.training": 2, "numeric.present": 4,
          "numeric": 5}
REQUESTS = 3  # numeric's own modules (run, grid, explain, check, studies, derivation)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_only(tree) -> set[int]:
    """Line numbers of imports under ``if TYPE_CHECKING:`` (never run)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            lines |= {n.lineno for child in node.body for n in ast.walk(child) if hasattr(n, "lineno")}
    return lines


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved to absolute names."""
    tree = ast.parse(path.read_text())
    skip, package = _type_checking_only(tree), module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            out |= {f"{module}.{a.name}" for a in node.names} if not node.module else {module}
    return out


def floor(module: str) -> int:
    for prefix, level in sorted(FLOORS.items(), key=lambda item: -len(item[0])):
        if module == prefix or module.startswith(prefix + "."):
            return level if prefix != "numeric" or module == "numeric" else REQUESTS
    raise AssertionError(module)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_point_one_way(layer):
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files, layer
    for path in files:
        roots = {name.split(".")[0] for name in imports(path)}
        outside = roots - ALLOWED[layer] - set(sys.stdlib_module_names)
        assert not outside, f"{path.relative_to(ROOT)} imports {sorted(outside)}"


def test_numeric_floors_point_down():
    """engine never imports io, training or present; training never a request; nothing imports present
    but present, the package's entry point and the CLI."""
    checked = 0
    for path in sorted((ROOT / "numeric").rglob("*.py")):
        own = floor(module_name(path))
        for name in imports(path):
            if name.startswith("numeric.") and name != "numeric":
                assert floor(name) <= own, f"{path.relative_to(ROOT)} (floor {own}) imports {name} (floor {floor(name)})"
                checked += 1
    assert checked > 50


def test_only_the_cli_prints():
    for layer in ALLOWED:
        for path in (ROOT / layer).rglob("*.py"):
            calls = [n for n in ast.walk(ast.parse(path.read_text()))
                     if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "print"]
            assert not calls, f"{path.relative_to(ROOT)} prints"
