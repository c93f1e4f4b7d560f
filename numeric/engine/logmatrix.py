"""Products of many Jacobians in the log domain: mantissa × 10^scale, never over- or underflowing.

Each product step is followed by ``renormalise``; the one accumulator for every
path of the engine (``numeric.engine.jacobian``) and ``power`` below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np


@dataclass(frozen=True)
class LogMatrix:
    """A matrix as mantissa × 10^log10_scale (per batch element), so it never overflows."""

    mantissa: np.ndarray
    log10_scale: np.ndarray

    def log10_norm(self) -> np.ndarray:
        """log10 of the spectral norm, per batch element (nan where the product is not finite)."""
        finite = np.isfinite(self.mantissa).all(axis=(-2, -1)) & np.isfinite(self.log10_scale)
        mantissa = np.where(finite[..., None, None], self.mantissa, 0.0)
        with np.errstate(divide="ignore"):
            norm = np.log10(_spectral_norms(mantissa)) + self.log10_scale
        return np.where(finite, norm, np.nan)

    def to_float(self) -> np.ndarray:
        """The plain value where float64 holds it (inf or 0 where it would not)."""
        with np.errstate(over="ignore", under="ignore"):
            return self.mantissa * 10.0 ** self.log10_scale[..., None, None]


#: Up to this many rows one batched SVD is fastest; above, Lanczos on MᵀM per matrix (7 SVDs of
#: 512 × 512 took 0.22 s of a 1 s run at n = 256; Lanczos needs a few dozen products).
SVD_ROWS = 128


def _spectral_norms(mantissa: np.ndarray) -> np.ndarray:
    """‖M‖₂ of each matrix of a batch (…, S, S)."""
    if mantissa.shape[-1] <= SVD_ROWS:
        return np.linalg.norm(mantissa, 2, axis=(-2, -1))
    from .spectral import largest_singular_value

    flat = mantissa.reshape(-1, *mantissa.shape[-2:])
    return np.array([largest_singular_value(m, exact_up_to=SVD_ROWS) if m.any() else 0.0
                     for m in flat]).reshape(mantissa.shape[:-2])


def power(w: np.ndarray, exponent: int) -> LogMatrix:
    """W^exponent by repeated squaring, renormalised after every product: log2(T) products, so T = 10^12
    takes 40, and nothing over- or underflows.

    >>> float(power(np.array([[0.5]]), 10**12).log10_norm()) / 10**12  # doctest: +ELLIPSIS
    -0.30102999566398...
    """
    result = LogMatrix(np.eye(w.shape[-1]), np.zeros(()))
    base = LogMatrix(*renormalise(np.asarray(w, dtype=float), np.zeros(())))
    while exponent:
        if exponent & 1:
            result = LogMatrix(*renormalise(base.mantissa @ result.mantissa, base.log10_scale + result.log10_scale))
        exponent >>= 1
        if exponent:
            base = LogMatrix(*renormalise(base.mantissa @ base.mantissa, 2 * base.log10_scale))
    return result


def renormalise(m: np.ndarray, log_scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m / s, log_scale + log10 s) with s = max|m| per batch element: the same matrix, scaled to 1."""
    scale = np.max(np.abs(m), axis=(-2, -1))
    safe = np.where(scale > 0, scale, 1.0)
    return m / safe[..., None, None], log_scale + np.log10(safe)


def log10_norm(v: np.ndarray, axis=-1) -> np.ndarray:
    """log10 of the 2-norm over ``axis``, exact in magnitude for any float64 (no squares overflowing)."""
    peak = np.max(np.abs(v), axis=axis, keepdims=True)
    safe = np.where(peak > 0, peak, 1.0)
    with np.errstate(divide="ignore"):
        return np.log10(np.squeeze(safe, axis=axis)) + 0.5 * np.log10(np.sum(np.square(v / safe), axis=axis))


def log10_norms(products: Iterable[LogMatrix], chunk: int = 512) -> np.ndarray:
    """``log10_norm`` of each product in turn, shape (count,) + batch: one batched SVD per chunk of
    products rather than one call per step (per-call overhead dominates for small matrices)."""
    out, mantissas, scales = [], [], []

    def flush():
        if mantissas:
            out.append(LogMatrix(np.stack(mantissas), np.stack(scales)).log10_norm())
            mantissas.clear()
            scales.clear()

    for m in products:
        mantissas.append(m.mantissa)
        scales.append(np.asarray(m.log10_scale))
        if len(mantissas) == chunk:
            flush()
    flush()
    return np.concatenate(out) if out else np.empty((0,))
