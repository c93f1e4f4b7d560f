"""What a trained answer depends on: the loss's sensitivity to each input step.

For a sequence b and its own loss ℓ_b, ‖∂ℓ_b/∂x_{b,t}‖₂ at every step t (after
Madsen, "Visualizing memorization in RNNs", Distill 2019).  A model that carries
"Dhaval eats samosa" to the question is sensitive to the food word 50 steps back;
one that cannot is sensitive to the last few fillers only.  The one BPTT computes it
(``numeric.engine.grad.bptt`` with ``wrt_inputs``): ∂L/∂x_t = Σ_g W_xgᵀ δ_{g,t}.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, fields

import numpy as np

from derive.core import Layer
from derive.errors import InvalidValue

from . import tasks
from ..io.arrayfiles import read_metadata, read_tensors
from ..engine.shapes import MEMORY_LIMIT, memory_bytes
from .train import HELD_OUT, Settings, _core, loss_and_grad, loss_function, readout_shapes, resolve, score


@dataclass(frozen=True)
class Sensitivity:
    """‖∂ℓ_b/∂x_{b,t}‖₂ over held-out sequences, and which steps carry each answer."""

    settings: Settings
    norms: np.ndarray   # (B, T)
    key: np.ndarray     # (B, T) bool: the steps the answer is read from (the food word; the marked values)
    loss: float
    score: float

    @property
    def mean(self) -> np.ndarray:
        """Mean over sequences of ‖∂ℓ_b/∂x_t‖₂, per step t = 1..T."""
        return self.norms.mean(axis=0)

    @property
    def share(self) -> np.ndarray:
        """Mean over sequences of step t's share of Σ_t ‖∂ℓ_b/∂x_t‖₂ (sums to 1)."""
        return (self.norms / _total(self.norms)).mean(axis=0)

    @property
    def key_share(self) -> float:
        """The share that falls on the steps that carry the answer: 1 if the model reads only them."""
        return float(((self.norms * self.key).sum(axis=1, keepdims=True) / _total(self.norms)).mean())

    @property
    def key_ratio(self) -> float:
        """Median over sequences of the key steps' mean ‖∂ℓ/∂x_t‖ over the median other step's."""
        key = np.where(self.key, self.norms, np.nan)
        other = np.where(self.key, np.nan, self.norms)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # no other step (adding at lag 2): not defined
            ratios = np.nanmean(key, axis=1) / np.nanmedian(other, axis=1)
            return float(np.nanmedian(ratios)) if np.isfinite(ratios).any() else float("nan")


def _total(norms: np.ndarray) -> np.ndarray:
    total = norms.sum(axis=1, keepdims=True)
    return np.where(total > 0, total, 1.0)


def sensitivity(s: Settings, params, sequences: int = HELD_OUT, seed: int | None = None) -> Sensitivity:
    """The sensitivity of a model trained with ``s`` on ``sequences`` held-out sequences: by default
    those its training scored (``default_rng([s.seed, 3])``), else those of ``seed``.

    ℓ_b depends on x_b alone, so ∂ℓ_b/∂x_b = B ∂L/∂x_b for the batch mean L.
    """
    s = resolve(s)
    steps, m = tasks.steps(s.task, s.lag), tasks.task(s.task).input_size
    if isinstance(sequences, bool) or not isinstance(sequences, int) or sequences < 1 or \
            memory_bytes(_core(s), s.hidden, m, sequences, steps) > MEMORY_LIMIT:
        raise InvalidValue("sequences", f"must be a whole number >= 1 whose run fits {MEMORY_LIMIT / 2**30:.0f} GiB "
                           f"(hidden {s.hidden}, {steps} steps), got {sequences}")
    x, target = tasks.draw(s.task, s.lag, sequences, np.random.default_rng([s.seed if seed is None else seed, 3]))
    value, y, grads, _ = loss_and_grad(_core(s), params, x, target, loss_function(s.task), wrt_inputs=True)
    norms = sequences * np.linalg.norm(grads["x"], axis=-1)
    return Sensitivity(s, norms, tasks.key_steps(s.task, x), value, score(s.task, y, target))


def saved_model(path: str, field: str = "model") -> tuple[Settings, dict[str, np.ndarray]]:
    """(settings, parameters) of a model ``train --out`` saved: its weights under our names, and the
    settings it stored beside them (cell, task, lag, initialisation, ...)."""
    metadata = read_metadata(path, field)
    stored = metadata.get("settings") if metadata.get("written_by") == "unrolled train" else None
    known = {f.name for f in fields(Settings)}
    if not isinstance(stored, dict) or not set(stored) <= known:
        raise InvalidValue(field, f"{path} holds no training settings; allowed: a model file that training "
                                  "saved (it records the cell, task and lag the sensitivity needs)")
    try:
        s = resolve(Settings(**stored))
    except TypeError:
        raise InvalidValue(field, f"{path}: its training settings are malformed") from None
    tensors = read_tensors(path, field)
    layer = Layer(_core(s), s.hidden, tasks.task(s.task).input_size)
    shapes = {**layer.shapes(), **readout_shapes(s)}
    for name, shape in shapes.items():
        if name not in tensors or tensors[name].shape != shape:
            got = tensors[name].shape if name in tensors else "missing"
            raise InvalidValue(field, f"{path}: {name} is {got}; the settings it records need {shape}")
    return s, {name: tensors[name] for name in shapes}
