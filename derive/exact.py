"""Exact references: stepping through time in rational arithmetic, where the step allows it.

Linear cells (and any cell whose functions land on rationals) at rational settings have
exact derivatives: 25, not 25.000000000000007.  Each function returns None as soon as a value
is irrational or too long to carry (``derive.logdomain.EXACT_DIGITS``).
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from .activations import sigmoid
from .cell import Cell
from .chain import loss_gradient
from .compile import ordered_lambdify
from .graph import expanded, jacobian_step, param_jacobian
from .logdomain import EXACT_DIGITS, digits
from .reference import step_arguments


@cache
def compiled_exact(cell: Cell, name: str | None = None) -> tuple:
    """(step, Jacobian, partial for ``name``) over SymPy numbers: rationals in, rationals out where they can be."""
    modules = ["sympy"]
    quantities = list(expanded(cell))
    args = step_arguments(cell) + quantities
    step = ordered_lambdify([expanded(cell)[q] for q in quantities], step_arguments(cell), modules)
    jac = ordered_lambdify(list(jacobian_step(cell)), args, modules)
    partial = ordered_lambdify(list(param_jacobian(cell, name)), args, modules) if name else None
    return step, jac, partial


def _sympy_number(v):
    """What a SymPy-module kernel returns, as a SymPy object: constant entries come back as Python ints."""
    return v if isinstance(v, sp.Basic) else sp.Integer(v) if isinstance(v, int) else sp.Float(v)


def _rational(values) -> bool:
    return all(isinstance(v, sp.Rational) and digits(v) <= EXACT_DIGITS for v in values)


def rational_step(cell: Cell) -> bool:
    """Whether the step maps rationals to rationals (no tanh, σ, exp, log, sin, cos or roots)."""
    exprs = list(expanded(cell).values())
    transcendental = (sp.tanh, sp.exp, sp.log, sp.sin, sp.cos, sigmoid)
    return not any(e.atoms(*transcendental) or any(not p.exp.is_Integer for p in e.atoms(sp.Pow)) for e in exprs)


def _exact_frames(cell: Cell, values: dict, inputs, s0) -> list[list] | None:
    """Per step, the arguments of ``compiled_exact``'s functions as exact rationals; None once one is not.

    Linear cells (and any cell whose functions land on rationals) at rational
    settings have exact derivatives: 25, not 25.000000000000007.
    """
    if not rational_step(cell):
        return None
    step = compiled_exact(cell)[0]
    theta = [v for name, _ in cell.params for v in values[name]]
    index = [list(expanded(cell)).index(s) for s in cell.state_next()]
    state, frames = list(s0), []
    for x in inputs:
        head = [*state, *x, *theta]
        q = [_sympy_number(v) for v in step(*head)]
        if not _rational(q):
            return None
        frames.append(head + q)
        state = [q[i] for i in index]
    return frames


def _exact(function, frame: list, rows: int, cols: int) -> sp.Matrix | None:
    values = [_sympy_number(v) for v in function(*frame)]
    return sp.Matrix(rows, cols, values) if _rational(values) else None


def exact_state_jacobian(cell: Cell, values: dict, inputs, s0, k: int = 0) -> sp.Matrix | None:
    """∂s_T/∂s_k in exact rational arithmetic, or None when some value is irrational or too long."""
    frames = _exact_frames(cell, values, inputs, s0)
    if frames is None:
        return None
    size = len(cell.states) * cell.n
    product = sp.eye(size)
    for frame in frames[k:]:
        step = _exact(compiled_exact(cell)[1], frame, size, size)
        if step is None:
            return None
        product = step * product
        if not _rational(product):
            return None
    return product


def exact_bptt(cell: Cell, values: dict, inputs, s0, name: str, truncate: int | None = None) -> sp.Matrix | None:
    """∂L/∂θ (as ``bptt``) in exact rational arithmetic, or None as ``exact_state_jacobian``."""
    frames = _exact_frames(cell, values, inputs, s0)
    if frames is None:
        return None
    _, jac, partial = compiled_exact(cell, name)
    size, width = len(cell.states) * cell.n, len(cell.param(name))
    first = 0 if truncate is None else max(0, len(frames) - truncate)
    adjoint = sp.Matrix(loss_gradient(cell))
    total = sp.zeros(1, width)
    for frame in reversed(frames[first:]):
        local, step = _exact(partial, frame, size, width), _exact(jac, frame, size, size)
        if local is None or step is None:
            return None
        total += adjoint * local
        adjoint = adjoint * step
        if not _rational([*total, *adjoint]):
            return None
    return total
