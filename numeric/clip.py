"""Gradient clipping on a computed gradient (a dict of arrays with a common batch shape)."""

from __future__ import annotations

import numpy as np


def global_norm(grads: dict, batch_ndim: int | None = None) -> np.ndarray:
    """‖g‖₂ over every parameter's elements, per batch element.

    A grid's parameters are matrices behind the batch axes (the default); with
    ``batch_ndim`` the first that many axes are the batch and the rest the parameter
    (0: one model, biases as vectors).
    """
    def squares(g):
        axes = (-2, -1) if batch_ndim is None else tuple(range(batch_ndim, np.ndim(g)))
        return np.sum(np.abs(g) ** 2, axis=axes)

    return np.sqrt(sum(squares(g) for g in grads.values()))


def clip_by_norm(grads: dict, threshold: float, batch_ndim: int | None = None) -> dict:
    """Pascanu, Mikolov & Bengio (2013), Algorithm 1: if ‖g‖ ≥ threshold, g ← (threshold/‖g‖) g.

    >>> clip_by_norm({"w": np.array([[3.0]]), "u": np.array([[4.0]])}, 1.0)["u"]
    array([[0.8]])
    """
    if not threshold > 0:
        raise ValueError("the threshold must be > 0")
    norm = global_norm(grads, batch_ndim)
    scale = np.where(norm >= threshold, threshold / np.where(norm > 0, norm, 1.0), 1.0)
    if batch_ndim is None:
        return {name: g * scale[..., None, None] for name, g in grads.items()}
    return {name: g * scale.reshape(scale.shape + (1,) * (np.ndim(g) - batch_ndim)) for name, g in grads.items()}


def clip_by_value(grads: dict, bound: float = 5.0) -> dict:
    """Elementwise clipping to [−bound, bound], as min-char-rnn clips to ±5.

    >>> clip_by_value({"w": np.array([[7.0, -0.5]])})["w"]
    array([[ 5. , -0.5]])
    """
    return {name: np.clip(g, -bound, bound) for name, g in grads.items()}
