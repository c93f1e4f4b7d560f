"""How per-step quantities and parameters are named as SymPy symbols.

A quantity q (a state, a gate, the input) at step label ``t`` is the column of
symbols ``q_t`` (``q_{t}[i]`` when it has more than one element).  The labels
``"t"`` and ``"t-1"`` name the generic step; ``"0"``, ``"1"``, … name the
steps of an unrolled graph.  One naming function serves both, so moving an
expression from the generic step to step 7 is a plain symbol substitution.
"""

from __future__ import annotations

import sympy as sp

#: Integer symbols for general-T forms: the horizon, a source step and the step index.
T, k, t = sp.symbols("T k t", integer=True, positive=True)


def _subscript(label: str) -> str:
    return label if len(label) == 1 else "{%s}" % label


def quantity(name: str, label: str, size: int) -> sp.ImmutableMatrix:
    """The column vector of symbols for quantity ``name`` at step ``label``.

    >>> quantity("h", "t-1", 1)
    Matrix([[h_{t-1}]])
    >>> list(quantity("f", "3", 2))
    [f_3[0], f_3[1]]
    """
    base = f"{name}_{_subscript(label)}"
    if size == 1:
        return sp.ImmutableMatrix([sp.Symbol(base, real=True)])
    return sp.ImmutableMatrix([sp.Symbol(f"{base}[{i}]", real=True) for i in range(size)])


def parameter(name: str, rows: int, cols: int) -> sp.ImmutableMatrix:
    """The matrix of element symbols of a parameter; a 1×1 parameter is one plain symbol.

    >>> parameter("W_hh", 2, 2)
    Matrix([
    [W_hh[0,0], W_hh[0,1]],
    [W_hh[1,0], W_hh[1,1]]])
    """
    if rows == cols == 1:
        return sp.ImmutableMatrix([[sp.Symbol(name, real=True)]])
    if cols == 1:
        return sp.ImmutableMatrix([sp.Symbol(f"{name}[{i}]", real=True) for i in range(rows)])
    return sp.ImmutableMatrix(
        rows, cols, lambda i, j: sp.Symbol(f"{name}[{i},{j}]", real=True)
    )


def indexed(name: str) -> sp.IndexedBase:
    """The per-step sequence ``name[t]`` used in general-T forms."""
    return sp.IndexedBase(name, real=True)
