"""Ordered, checked ``lambdify``: the argument order is the numeric API (as PyDy does).

``lambdify`` prints any symbol it does not know as a bare name into code it
executes, so every free symbol must be an argument; a missing one is an error
that names it.
"""

from __future__ import annotations

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
    """
    exprs = list(exprs)
    check_arguments(exprs, args)
    # dummify: a parameter named like a function the code calls (sign, Heaviside) must not shadow it
    return sp.lambdify(list(args), exprs, modules=modules, cse=True, docstring_limit=0, dummify=True)
