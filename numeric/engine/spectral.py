"""σ₁, the largest singular value of a recurrent weight: Pascanu's bound is (γσ₁)^T."""

from __future__ import annotations

import numpy as np

from derive.core import Layer
from derive.errors import UnrolledError


def recurrent_norms(layer: Layer, params) -> tuple[tuple[str, float], ...]:
    """σ₁ (the largest singular value) of every weight applied to a previous state."""
    prev = {sym for _, sym in layer.core.prev}
    names = [m.weight for m in layer.core.maps if m.operand.free_symbols & prev]
    return tuple((name, largest_singular_value(np.asarray(params[name], dtype=float))) for name in names)


#: σ₁ above ``EXACT_SVD`` rows is iterated until σ₁² is known to this relative error (a residual bound).
SIGMA_TOLERANCE = 1e-12
EXACT_SVD = 512


def largest_singular_value(w: np.ndarray, max_steps: int = 400, exact_up_to: int = EXACT_SVD) -> float:
    """σ₁ = ‖W‖₂: by SVD up to ``exact_up_to`` rows (512), above by Lanczos on WᵀW to ``SIGMA_TOLERANCE``.

    After k steps the largest Ritz value θ of the tridiagonal T_k is within the residual
    |β_k y_k| of an eigenvalue of WᵀW (y the Ritz vector's last entry); the iteration stops
    when that bound is below ``SIGMA_TOLERANCE`` θ, so σ₁ = √θ is good to about half of it.

    >>> w = np.random.default_rng(1).standard_normal((700, 700)) / np.sqrt(700)
    >>> bool(abs(largest_singular_value(w) / np.linalg.norm(w, 2) - 1) < 1e-12)
    True
    """
    w = np.asarray(w, dtype=float)
    if max(w.shape) <= exact_up_to:
        return float(np.linalg.norm(w, 2))
    n = w.shape[1]
    basis = np.zeros((min(max_steps, n) + 1, n))
    start = np.random.default_rng(0).standard_normal(n)
    basis[0] = start / np.linalg.norm(start)
    alphas, betas = [], []
    for k in range(min(max_steps, n)):
        u = w.T @ (w @ basis[k])
        alphas.append(float(basis[k] @ u))
        u -= basis[:k + 1].T @ (basis[:k + 1] @ u)  # full reorthogonalisation: the Ritz values stay honest
        u -= basis[:k + 1].T @ (basis[:k + 1] @ u)
        beta = float(np.linalg.norm(u))
        theta, vectors = np.linalg.eigh(np.diag(alphas) + np.diag(betas, 1) + np.diag(betas, -1))
        if beta * abs(vectors[-1, -1]) <= SIGMA_TOLERANCE * theta[-1] or beta == 0:
            return float(np.sqrt(theta[-1]))
        betas.append(beta)
        basis[k + 1] = u / beta
    raise UnrolledError(f"σ₁ of a {w.shape[0]} × {n} weight did not settle to {SIGMA_TOLERANCE:g} in {max_steps} "
                        "Lanczos steps")
