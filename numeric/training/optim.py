"""Optimisers as pure functions: (parameters, gradients, state) -> (parameters, state).

Both follow PyTorch's update rules exactly (``torch.optim.SGD`` and ``Adam``), so
a model trained here and there moves the same way from the same start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from derive.errors import InvalidValue

Params = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class SGDState:
    """The momentum buffers b (PyTorch: b ← μ b + g, θ ← θ − η b; b₁ = g)."""

    buffers: Mapping[str, np.ndarray] | None = None


@dataclass(frozen=True)
class AdamState:
    """First and second moments and the step count t (Kingma & Ba 2015, Algorithm 1)."""

    m: Mapping[str, np.ndarray] | None = None
    v: Mapping[str, np.ndarray] | None = None
    t: int = 0


def sgd(params: Params, grads: Params, state: SGDState, lr: float, momentum: float = 0.9):
    """θ ← θ − η b, b ← μ b + g (the first step takes b = g, as PyTorch does)."""
    old = state.buffers
    buffers = {k: grads[k] if old is None else momentum * old[k] + grads[k] for k in params}
    return {k: params[k] - lr * buffers[k] for k in params}, SGDState(buffers)


def adam(params: Params, grads: Params, state: AdamState, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
    """θ ← θ − η m̂ / (√v̂ + ε), m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ)."""
    b1, b2 = betas
    t = state.t + 1
    m = {k: (1 - b1) * grads[k] + (0 if state.m is None else b1 * state.m[k]) for k in params}
    v = {k: (1 - b2) * grads[k] ** 2 + (0 if state.v is None else b2 * state.v[k]) for k in params}
    step = lr / (1 - b1**t)
    root = 1 - b2**t
    new = {k: params[k] - step * m[k] / (np.sqrt(v[k] / root) + eps) for k in params}
    return new, AdamState(m, v, t)


OPTIMISERS = {"adam": (adam, AdamState), "sgd": (sgd, SGDState)}


def optimiser(name: str):
    """(update function, its initial state) for ``name``."""
    if name not in OPTIMISERS:
        raise InvalidValue("optimiser", f"unknown optimiser {name!r}; allowed: {', '.join(OPTIMISERS)}")
    update, state = OPTIMISERS[name]
    return update, state()
