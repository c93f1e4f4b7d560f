"""Ordered, checked ``lambdify``: the argument order is the numeric API (as PyDy does).

``lambdify`` prints any symbol it does not know as a bare name into code it
executes, so every free symbol must be an argument; a missing one is an error
that names it.
"""

from __future__ import annotations

import builtins
import importlib
import keyword
import unicodedata
from collections import Counter
from typing import Callable, Sequence

import sympy as sp


def check_arguments(exprs, args: Sequence[sp.Symbol]) -> None:
    """Raise ``ValueError`` naming the first free symbol that is not an argument."""
    known = set(args)
    if len(known) != len(args):
        raise ValueError("an argument appears twice in the argument sequence")
    free = set().union(*(e.free_symbols for e in exprs))
    missing = sorted(map(str, free - known))
    if missing:
        raise ValueError(f"{missing[0]} is missing from the argument sequence")


def ordered_lambdify(exprs: Sequence[sp.Expr], args: Sequence[sp.Symbol], modules) -> Callable:
    """f(*args) -> list of the values of ``exprs``, compiled once with CSE.

    >>> a, b = sp.symbols("a b")
    >>> ordered_lambdify([a + b, a * b], [a, b], "math")(2, 3)
    [5, 6]
    >>> ordered_lambdify([a + b], [a], "math")
    Traceback (most recent call last):
    ValueError: b is missing from the argument sequence

    Arguments named like what the code calls, or not named as identifiers, are renamed:

    >>> sign, taken, h = sp.Symbol("sign"), sp.Symbol("_arg0"), sp.Symbol("h[0]")
    >>> [float(v) for v in ordered_lambdify([sp.sign(h) * sign + taken], [sign, taken, h], "numpy")(2.0, 3.0, -1.0)]
    [1.0]
    >>> x, x_real = sp.Symbol("x"), sp.Symbol("x", real=True)
    >>> ordered_lambdify([x + 10 * x_real], [x, x_real], "math")(1, 2)
    [21]
    """
    exprs = list(exprs)
    check_arguments(exprs, args)
    # An argument whose name is not a plain identifier (h_{t-1}[0]) or that names something the
    # generated code calls (a parameter called sign) is renamed, all in one substitution: lambdify
    # would otherwise walk every expression once per such argument (20 s for the n = 8 LSTM).
    namespace = _namespace(modules)
    printed = Counter(unicodedata.normalize("NFKC", str(a)) for a in args)
    unsafe = [a for a in args if str(a) in namespace or not str(a).isidentifier() or isinstance(a, sp.Dummy)
              or printed[unicodedata.normalize("NFKC", str(a))] > 1]  # x and x(real), µ and μ: one name
    if unsafe:
        in_use = namespace | set(printed)
        renamed = {a: sp.Symbol(_fresh(f"_arg{i}", in_use), **a.assumptions0) for i, a in enumerate(unsafe)}
        exprs = [e.xreplace(renamed) for e in exprs]
        args = [renamed.get(a, a) for a in args]
    return sp.lambdify(list(args), exprs, modules=modules, cse=True, docstring_limit=0)


def _namespace(modules) -> frozenset[str]:
    """Every name the generated code might mean as something other than an argument."""
    names = set(dir(builtins)) | set(keyword.kwlist) | {"numpy", "math", "mpmath", "scipy", "sympy"}
    for module in modules if isinstance(modules, (list, tuple)) else [modules]:
        if isinstance(module, str):
            module = importlib.import_module(module)
        names |= set(module) if isinstance(module, dict) else set(dir(module))
    return frozenset(names)


def _fresh(name: str, in_use: set[str]) -> str:
    while name in in_use:
        name += "_"
    return name
