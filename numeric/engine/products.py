"""The products W v of a step: for a layer, one BLAS product; for a grid, one product per map.

A layer's weights of one operand are stacked by rows (the LSTM's four gates: one (n, 4n)
product a step, as PyTorch and cuDNN stack them).  A grid gives each setting its own
weights, and its products are mostly tiny (every scalar cell's are 1 × 1): there each map
is its own broadcast product, so that what the elementwise kernels read is contiguous
(slices of a stacked product run them 4 times slower, measured with 10^5 settings).

Both layouts answer the same questions: the products of v, where map j's cotangent is
stored, v̄ = Σ_j P̄_j W_j, and W̄_j = Σ_t Σ_b P̄_j,t,b ⊗ v_t,b.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def times(v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """v Wᵀ for v (..., B, cols) and wᵀ given as (cols, k) or (*lead, cols, k)."""
    if w.ndim == 2:
        return (v.reshape(-1, v.shape[-1]) @ w).reshape(v.shape[:-1] + w.shape[-1:])
    if w.shape[-2] == 1:
        return v * w
    return np.matmul(v, w)


def times_transposed(bar: np.ndarray, w: np.ndarray) -> np.ndarray:
    """P̄ W for P̄ (..., B, k) and wᵀ given as (cols, k) or (*lead, cols, k): (..., B, cols)."""
    if w.ndim == 2:
        return (bar.reshape(-1, bar.shape[-1]) @ w.T).reshape(bar.shape[:-1] + w.shape[:1])
    if w.shape[-1] == 1:
        return bar * np.swapaxes(w, -1, -2)
    if w.shape[-2] == 1:
        return np.sum(bar * w, axis=-1, keepdims=True)
    return np.matmul(bar, np.swapaxes(w, -1, -2))


def outer_sum(bar: np.ndarray, v: np.ndarray, lead: int) -> np.ndarray:
    """Σ_t Σ_b P̄_t,b ⊗ v_t,b for P̄ (T, *lead, B, k) and v (T, [1…,] B, cols): (*lead, k, cols),
    one matrix product over all steps."""
    if not lead:
        return bar.reshape(-1, bar.shape[-1]).T @ v.reshape(-1, v.shape[-1])
    v = np.broadcast_to(v, bar.shape[:-1] + v.shape[-1:])
    if v.shape[-1] == 1:
        return np.sum(bar * v, axis=(0, -2))[..., None]
    # (T, *lead, B, ·) -> (*lead, T·B, ·): the sum over steps and sequences is one product per setting
    bar, v = (np.moveaxis(a, 0, -3).reshape(a.shape[1:-2] + (-1, a.shape[-1])) for a in (bar, v))
    return np.matmul(np.swapaxes(bar, -1, -2), v)


@dataclass(frozen=True)
class Stacked:
    """A layer's products of one operand: the weights stacked by rows, W (k·n, cols), used as Wᵀ
    without a copy (BLAS reads it transposed); cotangents stored (…, k·n)."""

    w: np.ndarray
    n: int

    def apply(self, v: np.ndarray) -> list[np.ndarray]:
        product = (v.reshape(-1, v.shape[-1]) @ self.w.T).reshape(v.shape[:-1] + self.w.shape[:1])
        return [product[..., j * self.n:(j + 1) * self.n] for j in range(self.w.shape[0] // self.n)]

    def storage(self, steps: int, shape: tuple[int, ...], dtype) -> np.ndarray:
        return np.zeros((steps, *shape[:-1], self.w.shape[0]), dtype)

    def at(self, bars: np.ndarray, t: int) -> np.ndarray:
        return bars[t]

    def window(self, bars: np.ndarray, start: int, stop: int | None = None) -> np.ndarray:
        """The stored cotangents of steps start+1..stop (all from ``start`` without ``stop``)."""
        return bars[start:stop]

    def block(self, bar: np.ndarray, j: int) -> np.ndarray:
        return bar[..., j * self.n:(j + 1) * self.n]

    def pull(self, bar: np.ndarray) -> np.ndarray:
        return (bar.reshape(-1, bar.shape[-1]) @ self.w).reshape(bar.shape[:-1] + self.w.shape[1:])

    def weight_grads(self, bars: np.ndarray, v: np.ndarray, lead: int) -> list[np.ndarray]:
        total = outer_sum(bars, v, lead)
        return [total[..., j * self.n:(j + 1) * self.n, :] for j in range(self.w.shape[0] // self.n)]


@dataclass(frozen=True)
class Separate:
    """A grid's products of one operand: each map's wᵀ, (*lead, cols, n); cotangents (k, …)."""

    ws: tuple[np.ndarray, ...]

    def apply(self, v: np.ndarray) -> list[np.ndarray]:
        return [times(v, w) for w in self.ws]

    def storage(self, steps: int, shape: tuple[int, ...], dtype) -> np.ndarray:
        return np.zeros((len(self.ws), steps, *shape), dtype)

    def at(self, bars: np.ndarray, t: int) -> np.ndarray:
        return bars[:, t]

    def window(self, bars: np.ndarray, start: int, stop: int | None = None) -> np.ndarray:
        return bars[:, start:stop]

    def block(self, bar: np.ndarray, j: int) -> np.ndarray:
        return bar[j]

    def pull(self, bar: np.ndarray) -> np.ndarray:
        out = times_transposed(bar[0], self.ws[0])
        for j in range(1, len(self.ws)):
            out = out + times_transposed(bar[j], self.ws[j])
        return out

    def weight_grads(self, bars: np.ndarray, v: np.ndarray, lead: int) -> list[np.ndarray]:
        return [outer_sum(bars[j], v, lead) for j in range(len(self.ws))]


def arrange(weights: list[np.ndarray], n: int, grid: bool) -> Stacked | Separate:
    """A group's weights (each (*lead, n, cols) or (n, cols)) in the layout of a layer or a grid."""
    if not grid:  # a grid keeps one layout for every group: W_xi x and W_hi h share their cotangents
        return Stacked(weights[0] if len(weights) == 1 else np.concatenate(weights, axis=0), n)
    return Separate(tuple(np.ascontiguousarray(np.swapaxes(w, -1, -2)) for w in weights))
