"""``Run``: one request's answer, a layer's or a grid's (what ``numeric.present`` shows)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from derive.core import Layer

from .engine.logmatrix import LogMatrix


@dataclass(frozen=True)
class Run:
    """One request's answer.  A layer: weights shared by a batch of B sequences; ``states``
    (T+1, B, n), ``trace`` (every quantity of sequence 0), ``jacobian`` (∂s_T/∂s_0 of sequence 0
    of a small layer) and ``by_lag`` (log10‖∂s_T/∂s_{T−k}‖₂ of sequence 0).  A grid: ``grid``
    names its axes, every setting its own weights; ``grads`` and ``jacobian`` carry the grid's
    shape in front, and what is per step is not kept."""

    layer: Layer
    params: dict[str, np.ndarray]
    inputs: np.ndarray  # (B, T, m)
    batched: bool       # the inputs came as a batch (B, T, m), not one sequence (T, m)
    s0: np.ndarray      # (S,), states stacked in order
    grads: dict[str, np.ndarray]
    source: str
    mode: str
    grid: tuple[tuple[str, np.ndarray], ...] = ()
    states: dict[str, np.ndarray] | None = None
    initial_grads: dict[str, np.ndarray] | None = None  # ∂L/∂s_0 per state, (B, n)
    log10_adjoint: np.ndarray | None = None              # log10‖∂L/∂s_t‖₂, (T+1, B)
    quantities: tuple[str, ...] = ()
    trace: np.ndarray | None = None
    jacobian: LogMatrix | None = None
    by_lag: np.ndarray | None = None
    recurrent: tuple[tuple[str, float], ...] = ()
    layer_index: int = 0
    every_step: bool = False
    truncate: int | None = None
    dtype: str = "float64"
    norm_note: str = ""  # how ‖∂s_T/∂s_0‖ was found, when not by pushing the identity

    @property
    def steps(self) -> int:
        return self.inputs.shape[1]

    def _repr_html_(self) -> str:
        """Jupyter's rich display: the run in a short table."""
        return _html_table(self)


def _html_table(r: Run) -> str:
    """Jupyter's rich display of a run: a short two-column table, escaped."""
    from html import escape

    if r.grid:
        norms = r.jacobian.log10_norm()
        shown = norms[np.isfinite(norms)]
        spread = f"{shown.min():.4g} … {shown.max():.4g}" if shown.size else "none finite"
        rows = [("cell", r.layer.label), ("steps", str(r.steps)), ("settings", str(norms.size)), ("mode", r.mode),
                ("log10 ‖∂s_T/∂s_0‖₂", spread)]
    else:
        norm = float(r.by_lag[-1]) if r.by_lag is not None else float("nan")
        rows = [("cell", r.layer.label), ("hidden, input", f"{r.layer.n}, {r.layer.m}"),
                ("steps, batch", f"{r.steps}, {r.inputs.shape[0]}"), ("weights", r.source),
                ("log10 ‖∂s_T/∂s_0‖₂ (sequence 0)", f"{norm:.4g}"),
                *((f"‖∂L/∂{k}‖", f"{float(np.linalg.norm(v)):.4g}") for k, v in r.grads.items())]
    body = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th><td style='text-align:left'>{escape(v)}</td></tr>"
                   for k, v in rows)
    return f"<table>{body}</table>"
