"""High-precision numbers by stepping through time in mpmath.

mpmath's floats have an unbounded exponent, so a product of 10^4 Jacobians
neither overflows nor underflows; at 30 digits this is the reference the fast
float64 paths are checked against.  Cost is linear in T, so it is capped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import mpmath
import sympy as sp

from .cell import Cell
from .chain import loss_gradient
from .compile import ordered_lambdify
from .errors import NonFinite
from .graph import expanded, jacobian_step, param_jacobian
from .logdomain import PRECISION

#: The longest horizon stepped through here; longer ones need a closed form.
REFERENCE_LIMIT = 10_000

#: exp of more than this (a value beyond 10^(4.3·10^6)) is refused: mpmath would hold it,
#: but an exp of *that* would take hours.
EXP_LIMIT = 10**7


class _Beyond(ArithmeticError):
    """A value too large for the reference to step on, raised inside a compiled step."""


def _exp(a):
    if a > EXP_LIMIT:
        raise _Beyond(f"beyond 10^(4.3·10^6) (exp of {mpmath.nstr(a, 3)})")
    return mpmath.exp(a)


MPMATH_FUNCTIONS = {
    "exp": _exp,
    "sigmoid": lambda a: 1 / (1 + _exp(-a)),
    "relu": lambda a: a if a > 0 else 0 * a,
    "Heaviside": lambda a, at_zero=0: 1 if a > 0 else (at_zero if a == 0 else 0),
}
MODULES = [MPMATH_FUNCTIONS, "mpmath"]


@dataclass(frozen=True)
class Compiled:
    """The step and its Jacobian as mpmath functions (a parameter's partial: ``compiled_partial``).

    ``step(s_{t-1}, x_t, θ)`` returns every quantity of the step in the order of
    ``quantities``; ``jacobian(s_{t-1}, x_t, θ, q_t)`` returns J_t = ∂s_t/∂s_{t-1}
    row by row, q_t being what ``step`` returned.
    """

    quantities: tuple[sp.Symbol, ...]
    step: object
    jacobian: object


def step_arguments(cell: Cell) -> list[sp.Symbol]:
    return [*cell.state_prev(), *cell.x, *(s for _, v in cell.params for s in v)]


@cache
def compiled(cell: Cell) -> Compiled:
    quantities = tuple(expanded(cell))
    step = ordered_lambdify([expanded(cell)[q] for q in quantities], step_arguments(cell), MODULES)
    jac = ordered_lambdify(list(jacobian_step(cell)), step_arguments(cell) + list(quantities), MODULES)
    return Compiled(quantities, step, jac)


@cache
def compiled_partial(cell: Cell, name: str):
    args = step_arguments(cell) + list(tuple(expanded(cell)))
    return ordered_lambdify(list(param_jacobian(cell, name)), args, MODULES)


def exact(value) -> sp.Rational:
    """A float (or any real) as the exact rational it denotes, for exact references."""
    return sp.Rational(value)


def _matrix(rows: int, cols: int, flat) -> mpmath.matrix:
    return mpmath.matrix([list(flat[r * cols : (r + 1) * cols]) for r in range(rows)])


def _mp(v) -> mpmath.mpf:
    """An exact rational (or an mpmath number) at the working precision."""
    return mpmath.mpf(v.p) / v.q if isinstance(v, sp.Rational) else mpmath.mpf(v)


def _flat_params(cell: Cell, values: dict) -> list:
    return [mpmath.mpf(e.p) / e.q for name, _ in cell.params for e in values[name]]


def forward(cell: Cell, values: dict, inputs, s0, theta: list | None = None) -> list[list]:
    """Per step 1..T: the arguments (s_{t-1}, x_t, θ, q_t) the compiled functions take.

    ``theta`` (flat, in the order of ``cell.params``) replaces ``values`` when given.
    """
    code = compiled(cell)
    theta = _flat_params(cell, values) if theta is None else list(theta)
    state = [_mp(v) for v in s0]
    index = [code.quantities.index(s) for s in cell.state_next()]
    frames = []
    for t, x in enumerate(inputs, 1):
        head = state + [mpmath.mpf(v.p) / v.q for v in x] + theta
        q = _finite(code.step, head, code.quantities, t)
        frames.append(head + q)
        state = [q[i] for i in index]
    return frames


def states(cell: Cell, values: dict, inputs, s0) -> list[dict[str, list]]:
    """Each step's states s_1..s_T at 30 digits: state name -> its n values."""
    names = [str(q) for q in compiled(cell).quantities]
    out = []
    for frame in forward(cell, values, inputs, s0):
        q = frame[-len(names):]
        out.append({s: [q[names.index(str(v))] for v in cell.current(s)] for s in cell.states})
    return out


def _finite(function, args: list, names, t: int) -> list:
    """``function(*args)``, each value checked to be a finite real; ``NonFinite`` names the first that is not."""
    try:
        values = function(*args)
    except (ZeroDivisionError, ValueError, _Beyond) as error:
        what = "a value of the step" if names is not None else f"J_{t} or ∂⁺s_{t}/∂θ"
        if isinstance(error, _Beyond):
            raise NonFinite(what, t, str(error)) from None
        cause = "a division by zero" if isinstance(error, ZeroDivisionError) else str(error)
        raise NonFinite(what, t, f"undefined ({cause})") from None
    values = [+mpmath.mpmathify(v) for v in values]  # unary + turns constants such as mpmath.pi into numbers
    for i, v in enumerate(values):
        if not isinstance(v, mpmath.mpf) or not mpmath.isfinite(v):
            what = re.sub(r"_t\b", f"_{t}", str(names[i])) if names is not None else f"J_{t}"
            raise NonFinite(what, t, mpmath.nstr(v, 5))
    return values


def directional_derivative(cell: Cell, values: dict, inputs, s0, direction, *, of_state: bool = False,
                           digits: int = 50):
    """d/ds L at s = 0, with θ + s v (or s_0 + s v when ``of_state``), L = Σ_i y_T[i].

    By ``mpmath.diff`` of the stepped forward pass: independent of every
    derivative derive builds, since only the step equations are used, run
    forward at ``digits`` digits, and mpmath differentiates at raised precision.
    """
    with mpmath.workdps(digits):
        theta = _flat_params(cell, values)
        start = [_mp(v) for v in s0]
        v = [mpmath.mpf(d) for d in direction]
        code = compiled(cell)
        index = [code.quantities.index(q) for q in cell.state_next()]
        weights = list(loss_gradient(cell))

        def moved(base, s):
            return [a + s * b for a, b in zip(base, v)]

        def loss(s):
            last = (forward(cell, values, inputs, moved(start, s)) if of_state
                    else forward(cell, values, inputs, start, moved(theta, s)))[-1]
            q = last[len(last) - len(code.quantities):]
            return mpmath.fsum(w * q[i] for w, i in zip(weights, index) if w)

        return mpmath.diff(loss, 0)


def state_jacobian(cell: Cell, values: dict, inputs, s0, k: int = 0, digits: int = PRECISION) -> mpmath.matrix:
    """∂s_T/∂s_k = J_T ⋯ J_{k+1} at ``digits`` decimal digits (30 by default)."""
    size = len(cell.states) * cell.n
    with mpmath.workdps(digits):
        code = compiled(cell)
        product = mpmath.eye(size)
        for t, frame in enumerate(forward(cell, values, inputs, s0)[k:], k + 1):
            product = _matrix(size, size, _finite(code.jacobian, frame, None, t)) * product
        return product


def bptt(cell: Cell, values: dict, inputs, s0, name: str, *, truncate: int | None = None,
         digits: int = PRECISION):
    """∂L/∂θ for L = Σ_i h_T[i], by reverse accumulation at ``digits`` digits (a row)."""
    return bptt_all(cell, values, inputs, s0, (name,), truncate=truncate, digits=digits)[name]


def bptt_all(cell: Cell, values: dict, inputs, s0, names, *, truncate: int | None = None,
             digits: int = PRECISION) -> dict:
    """``bptt`` for several parameters at once: one forward pass and one adjoint sweep serve them all.

    δ_T = ∂L/∂s_T, then for t = T..1: ∂L/∂θ += δ_t ∂⁺s_t/∂θ and δ_{t−1} = δ_t J_t.
    """
    size = len(cell.states) * cell.n
    with mpmath.workdps(digits):
        code = compiled(cell)
        partials = {name: compiled_partial(cell, name) for name in names}
        frames = forward(cell, values, inputs, s0)
        first = 0 if truncate is None else max(0, len(frames) - truncate)
        adjoint = mpmath.matrix([[int(v) for v in loss_gradient(cell)]])
        totals = {name: mpmath.zeros(1, len(cell.param(name))) for name in names}
        for t in range(len(frames), first, -1):
            frame = frames[t - 1]
            for name, partial in partials.items():
                totals[name] += adjoint * _matrix(size, len(cell.param(name)), _finite(partial, frame, None, t))
            adjoint = adjoint * _matrix(size, size, _finite(code.jacobian, frame, None, t))
        return totals


def matrix_power(values: sp.MatrixBase, exponent: int) -> mpmath.matrix:
    """values^exponent by repeated squaring at 30 digits: log2(T) products, for T up to 10^9."""
    with mpmath.workdps(PRECISION):
        base = mpmath.matrix([[mpmath.mpf(e.p) / e.q for e in row] for row in values.tolist()])
        result = mpmath.eye(base.rows)
        while exponent:
            if exponent & 1:
                result = result * base
            base = base * base
            exponent >>= 1
        return result


def log10_norm(matrix) -> float:
    """log10 of the spectral norm (largest singular value) of ``matrix`` (mpmath or exact SymPy)."""
    with mpmath.workdps(PRECISION):
        if isinstance(matrix, sp.MatrixBase):
            matrix = mpmath.matrix([[mpmath.mpf(v.p) / v.q for v in row] for row in matrix.tolist()])
        top = max(mpmath.svd_r(matrix, compute_uv=False)) if matrix.rows > 1 or matrix.cols > 1 else abs(matrix[0, 0])
        return float(mpmath.log10(top)) if top != 0 else float("-inf")
