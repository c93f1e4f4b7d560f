"""Gradient clipping on a computed gradient (a dict of arrays, a grid's settings in front)."""

from __future__ import annotations

import numpy as np


def global_norm(grads: dict, batch_ndim: int = 0) -> np.ndarray:
    """‖g‖₂ over every parameter's elements, per setting: the first ``batch_ndim`` axes are a
    grid's settings and the rest the parameter (0: one model)."""
    def squares(g):
        return np.sum(np.abs(g) ** 2, axis=tuple(range(batch_ndim, np.ndim(g))))

    return np.sqrt(sum(squares(g) for g in grads.values()))


def clip_by_norm(grads: dict, threshold: float, batch_ndim: int = 0) -> dict:
    """Pascanu, Mikolov & Bengio (2013), Algorithm 1: if ‖g‖ ≥ threshold, g ← (threshold/‖g‖) g.

    >>> clip_by_norm({"w": np.array([[3.0]]), "u": np.array([[4.0]])}, 1.0)["u"]
    array([[0.8]])
    """
    if not threshold > 0:
        raise ValueError("the threshold must be > 0")
    norm = global_norm(grads, batch_ndim)
    scale = np.where(norm >= threshold, threshold / np.where(norm > 0, norm, 1.0), 1.0)
    return {name: g * scale.reshape(scale.shape + (1,) * (np.ndim(g) - batch_ndim)) for name, g in grads.items()}


def clip_by_value(grads: dict, bound: float = 5.0) -> dict:
    """Elementwise clipping to [−bound, bound], as min-char-rnn clips to ±5.

    >>> clip_by_value({"w": np.array([[7.0, -0.5]])})["w"]
    array([[ 5. , -0.5]])
    """
    return {name: np.clip(g, -bound, bound) for name, g in grads.items()}
