"""One step as a small computation graph, and its unrolling over T steps.

A cell's equations form a DAG: each quantity of step t (a gate, a state) is an
expression in s_{t-1}, x_t, θ and the quantities defined before it.  Derivatives
are pushed through that DAG in order, as micrograd pushes them through its
graph, so a Jacobian comes out in the gates' own names (f_t, h_t) instead of
their expanded formulas.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from .cell import Cell
from .symbols import indexed, quantity, t as t_index

#: The largest T for which the fully nested expression of s_T is built (display, tests).
NESTED_LIMIT = 8


@cache
def expanded(cell: Cell) -> dict[sp.Symbol, sp.Expr]:
    """Each step-t quantity symbol -> its expression in s_{t-1}, x_t and θ alone."""
    full: dict[sp.Symbol, sp.Expr] = {}
    for name, expr in cell.equations:
        for sym, e in zip(cell.current(name), expr):
            full[sym] = e.xreplace(full)
    return full


def expand(cell: Cell, expr):
    """Replace every step-t quantity in ``expr`` by its expression in s_{t-1}, x_t, θ."""
    return expr.xreplace(expanded(cell))


def total_derivative(cell: Cell, wrt: sp.ImmutableMatrix) -> dict[str, sp.ImmutableMatrix]:
    """d q_t / d wrt for every quantity q of the step, by the chain rule over the DAG.

    d q = ∂q/∂wrt + Σ_r ∂q/∂r · d r over the quantities r defined before q.  In
    each local partial the quantity's own expression is renamed back to its
    symbol, so tanh'(a) = 1 − tanh(a)² reads 1 − h_t².
    """
    done: dict[str, sp.ImmutableMatrix] = {}
    for name, expr in cell.equations:
        rename = dict(zip(expr, cell.current(name)))
        total = expr.jacobian(wrt)
        for earlier, d_earlier in done.items():
            total += expr.jacobian(cell.current(earlier)) * d_earlier
        done[name] = sp.ImmutableMatrix(total.xreplace(rename))
    return done


@cache
def jacobian_step(cell: Cell) -> sp.ImmutableMatrix:
    """J_t = ∂s_t/∂s_{t-1}, in the step's own quantities.

    >>> from derive.cells import CELLS
    >>> from derive.cell import make_cell
    >>> jacobian_step(make_cell(CELLS["rnn"], activation="tanh"))
    Matrix([[w*(1 - h_t**2)]])
    """
    d = total_derivative(cell, cell.state_prev())
    return sp.ImmutableMatrix.vstack(*(d[s] for s in cell.states))


@cache
def param_jacobian(cell: Cell, name: str) -> sp.ImmutableMatrix:
    """∂⁺s_t/∂θ: the immediate partial of one step, θ's elements flattened row-major."""
    theta = sp.ImmutableMatrix(list(cell.param(name)))
    d = total_derivative(cell, theta)
    return sp.ImmutableMatrix.vstack(*(d[s] for s in cell.states))


def quantity_names(cell: Cell) -> tuple[str, ...]:
    return tuple(name for name, _ in cell.equations)


def _renaming(cell: Cell, label_prev, label_now, make) -> dict:
    """Map the generic step's symbols (labels t-1 and t) to those of another step."""
    mapping = {}
    for name, prev in cell.prev:
        mapping.update(zip(prev, make(name, label_prev)))
    for name in quantity_names(cell) + ("x",):
        size = cell.m if name == "x" else cell.n
        mapping.update(zip(quantity(name, "t", size), make(name, label_now, size)))
    return mapping


def at_step(cell: Cell, expr, step: int):
    """``expr`` of the generic step moved to step ``step`` (h_{t-1} -> h_{step-1}, …)."""

    def make(name, label, size=cell.n):
        return quantity(name, str(label), size)

    return expr.xreplace(_renaming(cell, step - 1, step, make))


def at_index(cell: Cell, expr, index=t_index):
    """``expr`` of the generic step in indexed form, h_{t-1} -> h[index - 1], for general T."""

    def make(name, offset, size=cell.n):
        base = indexed(name)
        return [base[offset]] if size == 1 else [base[offset, i] for i in range(size)]

    return expr.xreplace(_renaming(cell, index - 1, index, make))


def generic_equations(cell: Cell) -> tuple[sp.Eq, ...]:
    """The equations of the generic step t, one per element of each quantity."""
    return tuple(
        sp.Eq(sym, e) for name, expr in cell.equations for sym, e in zip(cell.current(name), expr)
    )


def step_equations(cell: Cell, steps) -> tuple[sp.Eq, ...]:
    """The unrolled graph: the equations of each listed step, in per-step symbols."""
    return tuple(
        sp.Eq(sym, e)
        for step in steps
        for name, expr in cell.equations
        for sym, e in zip(at_step(cell, cell.current(name), step), at_step(cell, expr, step))
    )


def nested(cell: Cell, T: int) -> tuple[dict[sp.Symbol, sp.Expr], ...]:
    """Per step 1..T, every quantity as a fully nested expression of s_0, x_1..x_t and θ.

    The expression doubles in size each step, so this is for display and for
    checking the composed forms at small T only.
    """
    if T > NESTED_LIMIT:
        raise ValueError(f"the nested expression is built only for T <= {NESTED_LIMIT}")
    known: dict[sp.Symbol, sp.Expr] = {}
    steps = []
    for step in range(1, T + 1):
        values = {}
        for name, expr in cell.equations:
            for sym, e in zip(at_step(cell, cell.current(name), step), at_step(cell, expr, step)):
                values[sym] = e.xreplace(values).xreplace(known)
        known.update(values)
        steps.append(values)
    return tuple(steps)


def substitute_nested(cell: Cell, expr, T: int):
    """Replace every per-step quantity in ``expr`` by its nested expression."""
    values = {}
    for step in nested(cell, T):
        values.update(step)
    return expr.xreplace(values)
