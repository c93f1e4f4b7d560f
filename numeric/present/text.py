"""A run as a person reads it: the step-by-step table of a small layer, the summary of a large
one, a grid's settings one per line, and the W^T closed form of ``derive``'s matrix form."""

from __future__ import annotations

import math

import numpy as np

from derive.activations import ACTIVATIONS
from derive.regime import judge, measured

from ..engine.logmatrix import log10_norm
from ..result import Run
from ..run import LAGS


GATE_NAMES = {"i": "input gate", "f": "forget gate", "g": "potential memory", "o": "output gate",
              "c": "long-term memory c", "h": "short-term memory h", "r": "reset gate",
              "z": "update gate", "n": "candidate"}


def _label(quantity: str) -> str:
    name = quantity.split("_")[0]
    return GATE_NAMES.get(name, name) if name in "ifgocrzn" or name == "h" else name


def _fmt(x: float) -> str:
    return f"{x:.4f}" if abs(x) >= 1e-3 or x == 0 else f"{x:.3e}"


def loss_text(output: str, every_step: bool, truncate: int | None, batch: bool = False) -> str:
    """The loss a gradient is of, as the user reads it: L = Σ_i h_T[i], Σ_t …, truncated …"""
    b = "Σ_b " if batch else ""
    index = "[b, i]" if batch else "[i]"
    text = f"L = {b}Σ_t Σ_i {output}_t{index}" if every_step else f"L = {b}Σ_i {output}_T{index}"
    return text + (f", BPTT truncated to the last {truncate} steps" if truncate else "")


def _table(r: Run) -> list[str]:
    """Each step's input, gates and states for sequence 0 of a small layer, then ∂L/∂θ."""
    lay, names, output = r.layer, list(r.quantities), r.layer.core.output
    grads = {lay.display_name(k): v for k, v in r.grads.items()}
    heads = ["t", *(f"x[{j}]" for j in range(lay.m)), *names]
    lines = [f"{lay.label}, hidden size {lay.n}, T = {r.steps}, s_0 = {list(map(float, r.s0))}; parameters: "
             f"{', '.join(grads) or 'none (fixed weights)'}",
             f"weights: {r.source}",  # where they came from (a file, a draw; the activation assumed)
             "  ".join(f"{h:>10}" for h in heads)]
    for t in range(r.steps):
        row = [str(t + 1), *(_fmt(v) for v in r.inputs[0, t]), *(_fmt(v) for v in r.trace[t])]
        lines.append("  ".join(f"{v:>10}" for v in row))
    last = r.trace[-1][[names.index(q) for q in names if q.split("_t")[0] == output]]
    lines.append(f"prediction for step {r.steps + 1} ({output}_T): {', '.join(_fmt(v) for v in last)}")
    if lay.n == 1 and len({q.split('_')[0] for q in names}) > 2:
        lines.append(f"  ({', '.join(f'{q.split(chr(95))[0]} = {_label(q)}' for q in names)})")
    lines.append(f"log10 ‖∂s_T/∂s_0‖₂ = {float(r.by_lag[-1]):.6g}")
    if grads:
        lines.append(f"∂L/∂θ ({loss_text(output, r.every_step, r.truncate)}; mode {r.mode}: {_how(r)}):")
        for name, g in grads.items():
            lines.append(f"  {name:>6} = {np.array2string(np.squeeze(g) if g.size == 1 else g, precision=6)}")
    return lines


def _power(log10: float) -> str:
    if math.isfinite(log10):
        return f"10^{log10:.3f}"
    return {-math.inf: "0", math.inf: "inf"}.get(log10, "not computed" if math.isnan(log10) else "nan")


def regime(r: Run):
    """The verdict from the measured ‖∂s_T/∂s_0‖ of sequence 0, with Pascanu's bound where it applies."""
    core = r.layer.core
    log10 = float(r.by_lag[-1]) if r.by_lag is not None else None
    if core.activation is not None and len(core.states) == 1 and len(r.recurrent) == 1:
        name, sigma1 = r.recurrent[0]
        rate = log10 / r.steps if log10 is not None and math.isfinite(log10) else None
        return judge(name, ACTIVATIONS[core.activation].gamma, sigma1, r.steps, rate)
    return measured(log10, r.steps)


#: The per-step table is printed up to this many steps; longer runs get the summary alone.
TABLE_STEPS = 200


def summary(r: Run, steps_table: bool = True) -> str:
    """What a person reads for a layer of any size: norms, σ₁, the regime, lags; arrays elsewhere.
    A small layer's single sequence also gets its per-step table (``steps_table``)."""
    lay, T = r.layer, r.steps
    B = r.inputs.shape[0]
    out = lay.core.output
    lines = [f"{lay.label}, hidden size {lay.n}, input size {lay.m}, T = {T}, batch {B}; weights: {r.source}",
             f"{loss_text(out, r.every_step, r.truncate, batch=B > 1)} (mode {r.mode}: {_how(r)})"]
    table = steps_table and r.trace is not None and r.by_lag is not None and B == 1 and T <= TABLE_STEPS
    if table:
        lines = _table(r)
    elif r.grads:
        lines.append("‖∂L/∂θ‖ (Frobenius norm of each parameter's gradient):")
        norms = [(lay.display_name(k), float(np.linalg.norm(v))) for k, v in r.grads.items()]
        for i in range(0, len(norms), 4):
            lines.append("  " + "   ".join(f"{k:>5} {v:.4e}" for k, v in norms[i:i + 4]))
    if r.recurrent:
        lines.append("σ₁ of the recurrent weights: " + ", ".join(f"{k} {v:.4g}" for k, v in r.recurrent))
    verdict = regime(r)
    lines.append(f"regime: {verdict.verdict} ({verdict.reason})")
    lines += _norms(r)
    if not table and r.states is not None:
        final = r.states[out][-1, 0]
        shown = ", ".join(_fmt(v) for v in final[:8]) + (", …" if lay.n > 8 else "")
        lines.append(f"{out}_T (sequence 0): {shown}")
    return "\n".join(lines)


def _norms(r: Run) -> list[str]:
    """‖∂s_T/∂s_{T−k}‖₂ and ‖∂L/∂s_{T−k}‖₂ at the summary's lags, or why they are not there."""
    lay, T, B, lines = r.layer, r.steps, r.inputs.shape[0], []
    lags = [k for k in LAGS if k < T] + [T]
    if r.by_lag is not None and r.norm_note:
        lines.append(f"‖∂s_T/∂s_0‖₂ (sequence 0): {_power(r.by_lag[-1])}, {r.norm_note}")
    elif r.by_lag is not None:
        lines.append("‖∂s_T/∂s_{T−k}‖₂ (sequence 0): " + ", ".join(f"k={k}: {_power(r.by_lag[k])}" for k in lags))
    elif r.jacobian is not None:
        lines.append(f"‖∂s_T/∂s_0‖₂ (sequence 0): {_power(float(r.jacobian.log10_norm()))}")
    else:
        lines.append(f"‖∂s_T/∂s_{{T−k}}‖₂: not computed for {len(lay.states) * lay.n} state elements "
                     "(more than 1024); the adjoint below is")
    if r.log10_adjoint is not None:
        adjoint = r.log10_adjoint[::-1]
        which = "sequence 0" if B == 1 else "median over the batch"
        lines.append(f"‖∂L/∂s_{{T−k}}‖₂ ({which}): "
                     + ", ".join(f"k={k}: {_power(float(np.median(adjoint[k])))}" for k in lags))
    return lines


def grid_summary(r: Run) -> str:
    """One line per grid point (the first 25), then the spread."""
    norms = r.jacobian.log10_norm()
    grad_norm = _grad_log10_norm(r)
    names = [r.layer.display_name(n) for n, _ in r.grid]
    lines = [f"{r.layer.label}, hidden size {r.layer.n}, T = {r.steps}, {norms.size} settings; weights: {r.source}",
             f"{loss_text(r.layer.core.output, r.every_step, r.truncate)} (mode {r.mode}: {_how(r)})",
             "  ".join(f"{h:>12}" for h in [*names, "log10‖∂s_T/∂s_0‖", "log10‖∇L‖"])]
    for idx in list(np.ndindex(norms.shape))[:25]:
        values = [r.grid[i][1][j] for i, j in enumerate(idx)]
        lines.append("  ".join(f"{v:>12.6g}" for v in [*values, norms[idx], grad_norm[idx]]))
    if norms.size > 25:
        lines.append(f"... {norms.size - 25} more (every setting is in the arrays)")
    finite = norms[np.isfinite(norms)]
    if finite.size:
        lines.append(f"log10‖∂s_T/∂s_0‖: min {finite.min():.4g}, median {np.median(finite):.4g}, max {finite.max():.4g}")
    lost = ~np.isfinite(grad_norm) & ~np.isneginf(grad_norm)
    if lost.any():
        first = tuple(int(i) for i in np.argwhere(lost)[0])
        at = ", ".join(f"{name} = {r.grid[i][1][j]:.6g}" for i, (name, j) in enumerate(zip(names, first)))
        lines.append(f"{int(lost.sum())} of {lost.size} settings leave float64 (overflow, a log or sqrt of a "
                     f"negative number, or a division by zero; the first at {at}): their gradients are nan or inf")
    return "\n".join(lines)


def _grad_log10_norm(r: Run) -> np.ndarray:
    """log10 ‖∇L‖₂ over every parameter element, per setting, without squares over- or underflowing."""
    if not r.grads:
        return np.full(r.jacobian.log10_scale.shape, np.nan)
    shape = r.jacobian.log10_scale.shape
    flat = np.concatenate([np.abs(g).reshape(shape + (-1,)) for g in r.grads.values()], axis=-1)
    return log10_norm(flat)


#: How each mode computes ∂L/∂θ, in the words of the summary's second line.
MODE_WORDS = {"reverse": "BPTT", "forward": "forward (tangent) mode", "native": "BPTT as compiled C"}


def _how(r: Run) -> str:
    """How ∂L/∂θ was computed, and in float32 when it was."""
    return MODE_WORDS[r.mode] + ("" if r.dtype == "float64" else f", in {r.dtype}")


def to_text(r: Run) -> str:
    """What ``numeric`` prints for a person."""
    return grid_summary(r) if r.grid else summary(r)


def power_text(p) -> str:
    """``numeric.explain.Power`` as the lines a person reads: the value, the bound, the verdict."""
    rate = p.log10_norm / p.steps if math.isfinite(p.log10_norm) else None
    regime = judge(p.weight, 1, p.sigma1, p.steps, rate)
    return (f"∂h_T/∂h_0 = {p.weight}^T at every input (J_t = {p.weight} at every step): "
            f"log10 ‖{p.weight}^{p.steps}‖₂ = {p.log10_norm:.6g}\n"
            f"σ₁({p.weight}) = {p.sigma1:.6g}; regime: {regime.verdict} ({regime.reason})")
