"""Vanishing or exploding, after Pascanu, Mikolov & Bengio (2013).

For h_t = φ(W_hh h_{t-1} + …), J_t = diag(φ'(a_t)) W_hh, so
‖∂h_T/∂h_k‖ ≤ (γ σ₁)^(T−k) with γ = sup|φ'| and σ₁ the largest singular value
of W_hh: vanishing is guaranteed when γσ₁ < 1 and exploding possible when
γσ₁ > 1.  Wherever the derivative was measured, the verdict is the measured
rate's (tanh saturates: γσ₁ > 1 may still vanish) and the bound is its context;
gated cells have only the measured rate.  The measured derivative is the whole
state's, ∂s_T/∂s_0, in ``derive``, ``numeric`` and the report alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath
import sympy as sp

from .cell import Cell
from .graph import jacobian_step
from .logdomain import PRECISION


@dataclass(frozen=True)
class Regime:
    """The verdict and the numbers behind it; ``None`` where a number is not known."""

    verdict: str
    reason: str
    gamma: sp.Rational | None = None
    recurrent: str | None = None
    sigma1: float | None = None
    bound_log10: float | None = None
    measured_log10_rate: float | None = None


def recurrent_weight(cell: Cell) -> str | None:
    """The one n×n weight in J_t of a single-state cell with an activation, if there is one."""
    if cell.activation is None or len(cell.states) != 1:
        return None
    used = jacobian_step(cell).free_symbols
    square = [
        name for name, v in cell.params if v.shape == (cell.n, cell.n) and set(v) & used
    ]
    return square[0] if len(square) == 1 else None


def largest_singular_value(matrix: sp.MatrixBase) -> float:
    if matrix.shape == (1, 1):
        return abs(float(matrix[0]))
    with mpmath.workdps(PRECISION):
        rows = [[mpmath.mpf(e.p) / e.q for e in row] for row in matrix.tolist()]
        return float(max(mpmath.svd_r(mpmath.matrix(rows), compute_uv=False)))


def _measured(log10_value: float | None, lags: int) -> float | None:
    if log10_value is None or lags < 1 or not math.isfinite(log10_value):
        return None
    return log10_value / lags


def regime(cell: Cell, lags: int, values: dict, log10_value: float | None = None) -> Regime:
    """The regime of ∂h_T/∂h_k over ``lags`` = T − k steps at parameter ``values``.

    >>> from derive.cells import CELLS
    >>> from derive.cell import make_cell
    >>> r = regime(make_cell(CELLS["rnn"]), 50, {"W_hh": sp.ImmutableMatrix([[2]])})
    >>> r.verdict, round(r.bound_log10, 3)
    ('exploding possible', 15.051)
    """
    rate = _measured(log10_value, lags)
    weight = recurrent_weight(cell)
    if weight is None:
        if rate is None:
            missing = [cell.display_name(n) for n in cell.param_names() if n not in values]
            how = (f"set {', '.join(missing)} to measure this cell's rate" if missing else
                   "the rate is measured on a state's derivative (∂s_T/∂s_0) stepped through up to T = 10,000 "
                   "steps, not on a parameter's gradient")
            return Regime("unknown", f"Pascanu's bound covers h_t = φ(W_hh h_{{t-1}} + …) only; {how}")
        return measured(log10_value, lags)
    gamma = cell.activation.gamma
    if weight not in values:
        return Regime("unknown", f"set {cell.display_name(weight)} to decide: vanishing is "
                      f"guaranteed when γσ₁ < 1 (γ = {gamma})", gamma, weight)
    return judge(weight, gamma, largest_singular_value(values[weight]), lags, rate)


def judge(weight: str, gamma: sp.Rational, sigma1: float, lags: int, rate: float | None = None) -> Regime:
    """Pascanu's bound from γ = sup|φ'| and σ₁ of the recurrent weight over ``lags`` steps, and the
    verdict: the measured ``rate`` (log10 of the derivative's size per step) wherever there is one, the
    bound's only where nothing was measured.

    >>> judge("W_hh", sp.Integer(1), 0.5, 50).verdict
    'vanishing'
    >>> r = judge("W_hh", sp.Integer(1), 2.0, 50, rate=-1.66)  # tanh at w = 2, saturated
    >>> r.verdict, r.reason
    ('vanishing (measured)', 'log10 of the derivative changes by -1.66 per step; the bound (γσ₁ = 2 > 1) allows growth, but φ saturates')
    """
    product = float(gamma) * sigma1
    bound = lags * math.log10(product) if product > 0 else -math.inf
    if rate is not None:
        verdict = _measured_verdict(rate, lags)
        allows = ("guarantees vanishing" if product < 1 else "allows growth" if product > 1 else "is flat")
        why = f"log10 of the derivative changes by {rate:.4g} per step; the bound (γσ₁ = {product:.4g} " \
              f"{'<' if product < 1 else '>' if product > 1 else '='} 1) {allows}"
        if product > 1 and rate < 0:
            why += ", but φ saturates"
        return Regime(verdict, why, gamma, weight, sigma1, bound, rate)
    if product < 1:
        verdict, why = "vanishing", "γσ₁ < 1: the bound (γσ₁)^(T−k) shrinks geometrically"
    elif product > 1:
        verdict, why = "exploding possible", "γσ₁ > 1: the bound grows, so gradients may explode"
    else:
        verdict, why = "neutral", "γσ₁ = 1: the bound neither grows nor shrinks"
    return Regime(verdict, why, gamma, weight, sigma1, bound, rate)


#: Over the whole horizon, a derivative within this many decades of 1 is neither vanishing nor exploding.
NEUTRAL_DECADES = 0.1


def _measured_verdict(rate: float, lags: int) -> str:
    if abs(rate * lags) < NEUTRAL_DECADES:
        return "neutral (measured)"
    return "vanishing (measured)" if rate < 0 else "exploding (measured)"


def measured(log10_value: float | None, lags: int) -> Regime:
    """The verdict of a cell without Pascanu's bound (gated cells), from the measured size of the
    derivative over ``lags`` steps."""
    rate = _measured(log10_value, lags)
    if rate is None:
        return Regime("unknown", "the derivative's size could not be measured")
    return Regime(_measured_verdict(rate, lags), f"log10 of the derivative changes by {rate:.4g} per step",
                  measured_log10_rate=rate)
