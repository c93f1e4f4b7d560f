"""Builders for the checks: random points and per-step symbols of an unrolled graph."""

from __future__ import annotations

import random

import sympy as sp

from derive.cell import Cell
from derive.symbols import quantity


def random_point(cell: Cell, T: int, seed: int = 0) -> dict:
    """Random exact values for θ, s_0 and x_1..x_T (small, so nothing saturates)."""
    rng = random.Random(seed)

    def draw():
        # 40-digit floats: SymPy evaluates as it substitutes, so nothing grows.
        return sp.Float(rng.uniform(-0.6, 0.6), 40)

    symbols = [s for _, v in cell.params for s in v]
    symbols += [s for name in cell.states for s in quantity(name, "0", cell.n)]
    symbols += [s for t in range(1, T + 1) for s in quantity("x", str(t), cell.m)]
    return {s: draw() for s in symbols}


def initial_state(cell: Cell) -> sp.ImmutableMatrix:
    return sp.ImmutableMatrix.vstack(*(quantity(name, "0", cell.n) for name in cell.states))


def at_point(expr, point: dict, keep=()):
    """``expr`` with every symbol of ``point`` but those in ``keep`` substituted."""
    return expr.xreplace({s: v for s, v in point.items() if s not in set(keep)})


def close(a, b, rel: float = 1e-20) -> bool:
    a, b = complex(sp.N(a, 40)), complex(sp.N(b, 40))
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))
