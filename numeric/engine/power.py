"""‖∂s_T/∂s_0‖₂ of a layer too wide to push the identity through: power iteration on JᵀJ.

With J = ∂s_T/∂s_0 and a unit vector v, ‖J v‖² = vᵀJᵀJ v is the Rayleigh quotient θ of JᵀJ;
iterating v ← JᵀJ v / ‖JᵀJ v‖ raises it towards σ₁(J)².  J v is one tangent pushed forwards
(``tangent.push_forward``), Jᵀ w one row pulled back (``bptt.pullback``): two passes a step of
one sequence, each renormalised every step so nothing over- or underflows.  It stops when the
residual ‖JᵀJ v − θ v‖ is below ``tolerance`` θ: some eigenvalue of JᵀJ then lies within
θ(1 ± tolerance), and from a random start it is the largest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .bptt import pullback
from .scan import scan
from .shapes import Unroll, join_states, split_states
from .tangent import directions, push_forward


@dataclass(frozen=True)
class PowerNorm:
    """log10‖∂s_T/∂s_0‖₂, the iterations it took and the relative residual it stopped at."""

    log10: float
    iterations: int
    residual: float


def _rescaled(u: Unroll, scale: list):
    """An ``on_step`` that divides the carried vector by its largest entry, the scale kept as log10."""
    def rescale(t, carried):
        v = join_states(u.core.states, carried)
        peak = float(np.max(np.abs(v)))
        if peak > 0:
            scale[0] += np.log10(peak)
            v = v / peak
        return split_states(u.core.states, u.n, v)
    return rescale


def _forward(u: Unroll, v: np.ndarray) -> tuple[np.ndarray, float]:
    """J v as (mantissa, log10 scale) for v of shape (S,)."""
    scale, out = [0.0], {}

    def keep(t, sdot):
        carried = _rescaled(u, scale)(t, sdot)
        out.update(carried)
        return carried

    push_forward(u, directions(u, split_states(u.core.states, u.n, v.reshape(1, 1, -1)), 1, False), keep)
    return join_states(u.core.states, out).ravel(), scale[0]


def _backward(u: Unroll, tape, w: np.ndarray) -> tuple[np.ndarray, float]:
    """Jᵀ w as (mantissa, log10 scale) for w of shape (S,)."""
    scale = [0.0]
    carry = pullback(u, tape, split_states(u.core.states, u.n, w.reshape(1, -1)), _rescaled(u, scale))
    return join_states(u.core.states, carry).ravel(), scale[0]


def power_norm(u: Unroll, tolerance: float = 1e-6, max_iterations: int = 100, seed: int = 0) -> PowerNorm:
    """log10‖∂s_T/∂s_0‖₂ of a one-sequence unrolling (B = 1) by power iteration on JᵀJ."""
    tape = scan(u)
    v = np.random.default_rng(seed).standard_normal(len(u.core.states) * u.n)
    v /= np.linalg.norm(v)
    log10_theta, residual = -np.inf, np.inf
    for k in range(1, max_iterations + 1):
        jv, a = _forward(u, v)
        norm = np.linalg.norm(jv)
        if norm == 0:
            return PowerNorm(-np.inf, k, 0.0)
        log10_theta = 2 * (a + np.log10(norm))  # θ = ‖J v‖²
        back, b = _backward(u, tape, jv / norm)
        # JᵀJ v = back · 10^b · ‖J v‖ = back · 10^(b + a) · norm; divided by θ to compare with v
        ratio = back * 10.0 ** (b + a - log10_theta) * norm
        residual = float(np.linalg.norm(ratio - v))
        v = back / np.linalg.norm(back)
        if residual < tolerance:
            break
    return PowerNorm(float(log10_theta / 2), k, residual)
