"""Gradient clipping on a computed gradient (a dict of arrays with a common batch shape)."""

from __future__ import annotations

import numpy as np


def global_norm(grads: dict) -> np.ndarray:
    """‖g‖₂ over every parameter's elements, per batch element."""
    return np.sqrt(sum(np.sum(np.abs(g) ** 2, axis=(-2, -1)) for g in grads.values()))


def clip_by_norm(grads: dict, threshold: float) -> dict:
    """Pascanu, Mikolov & Bengio (2013), Algorithm 1: if ‖g‖ ≥ threshold, g ← (threshold/‖g‖) g.

    >>> clip_by_norm({"w": np.array([[3.0]]), "u": np.array([[4.0]])}, 1.0)["u"]
    array([[0.8]])
    """
    if not threshold > 0:
        raise ValueError("the threshold must be > 0")
    norm = global_norm(grads)
    scale = np.where(norm >= threshold, threshold / np.where(norm > 0, norm, 1.0), 1.0)
    return {name: g * scale[..., None, None] for name, g in grads.items()}


def clip_by_value(grads: dict, bound: float = 5.0) -> dict:
    """Elementwise clipping to [−bound, bound], as min-char-rnn clips to ±5.

    >>> clip_by_value({"w": np.array([[7.0, -0.5]])})["w"]
    array([[ 5. , -0.5]])
    """
    return {name: np.clip(g, -bound, bound) for name, g in grads.items()}
