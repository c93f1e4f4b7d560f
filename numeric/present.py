"""Results of ``numeric`` and ``check`` as text tables, JSON-ready data and arrays."""

from __future__ import annotations

import math

import numpy as np

from .check import CheckRow
from .run import NumericResult

GATE_NAMES = {"i": "input gate", "f": "forget gate", "g": "potential memory", "o": "output gate",
              "c": "long-term memory c", "h": "short-term memory h", "r": "reset gate",
              "z": "update gate", "n": "candidate"}


def _label(quantity: str) -> str:
    name = quantity.split("_")[0]
    return GATE_NAMES.get(name, name) if name in "ifgocrzn" or name == "h" else name


def _fmt(x: float) -> str:
    return f"{x:.4f}" if abs(x) >= 1e-3 or x == 0 else f"{x:.3e}"


def walkthrough(r: NumericResult) -> str:
    """Each step's input, gates and states for one setting, then the gradients."""
    p, cell = r.problem, r.problem.cell
    heads = ["t", *(f"x[{j}]" for j in range(cell.m)), *r.quantities]
    names = ", ".join(cell.display_name(n) for n in cell.param_names()) or "none (fixed weights)"
    lines = [f"{cell.label}, hidden size {cell.n}, T = {p.steps}, s_0 = {p.s0.tolist()}; parameters: {names}",
             "  ".join(f"{h:>10}" for h in heads)]
    for t in range(p.steps):
        row = [str(t + 1), *(_fmt(v) for v in p.inputs[t]), *(_fmt(v) for v in r.trace[t])]
        lines.append("  ".join(f"{v:>10}" for v in row))
    h_last = r.trace[-1][[r.quantities.index(q) for q in r.quantities if q.startswith("h_t")]]
    lines.append(f"prediction for step {p.steps + 1} (h_T): {', '.join(_fmt(v) for v in h_last)}")
    if cell.n == 1 and len(cell.states) == 2:
        gates = ", ".join(f"{q.split('_')[0]} = {_label(q)}" for q in r.quantities)
        lines.append(f"  ({gates})")
    lines.append(f"log10 ‖∂s_T/∂s_0‖₂ = {float(r.jacobian.log10_norm()):.6g}")
    if r.grads:
        lines.append(f"∂L/∂θ (L = Σ h_T, mode {r.mode}):")
        for name, g in r.grads.items():
            lines.append(f"  {cell.display_name(name):>6} = {np.array2string(np.squeeze(g, axis=-1) if g.shape[-1] == 1 else g, precision=6)}")
    return "\n".join(lines)


def grid_summary(r: NumericResult) -> str:
    """One line per grid point (the first 25), then the spread."""
    norms = r.jacobian.log10_norm()
    grad_norm = _grad_log10_norm(r)
    names = [r.problem.cell.display_name(n) for n, _ in r.grid]
    lines = [f"{r.problem.cell.label}, T = {r.problem.steps}, {norms.size} settings",
             "  ".join(f"{h:>12}" for h in [*names, "log10‖∂s_T/∂s_0‖", "log10‖∇L‖"])]
    for idx in list(np.ndindex(norms.shape))[:25]:
        values = [r.grid[i][1][j] for i, j in enumerate(idx)]
        lines.append("  ".join(f"{v:>12.6g}" for v in [*values, norms[idx], grad_norm[idx]]))
    if norms.size > 25:
        lines.append(f"... {norms.size - 25} more (use --out FILE.npz)")
    finite = norms[np.isfinite(norms)]
    if finite.size:
        lines.append(f"log10‖∂s_T/∂s_0‖: min {finite.min():.4g}, median {np.median(finite):.4g}, max {finite.max():.4g}")
    return "\n".join(lines)


def _grad_log10_norm(r: NumericResult) -> np.ndarray:
    if not r.grads:
        return np.full(r.jacobian.log10_scale.shape, np.nan)
    squares = sum(np.sum(np.abs(g) ** 2, axis=(-2, -1)) for g in r.grads.values())
    with np.errstate(divide="ignore"):
        return 0.5 * np.log10(squares)


def _finite_or_none(values):
    return [v if math.isfinite(v) else None for v in np.ravel(values).tolist()]


def to_json(r: NumericResult) -> dict:
    """One setting as JSON-ready data (keys listed in the README)."""
    cell, q = r.problem.cell, r.quantities
    states = {s: r.trace[:, [q.index(f"{s}_t" if cell.n == 1 else f"{s}_t[{i}]") for i in range(cell.n)]].tolist()
              for s in cell.states}
    jac = r.jacobian.to_float()
    return {
        "cell": cell.name, "variant": cell.variant, "hidden": cell.n, "steps": r.problem.steps,
        "states": states,
        "quantities": {name: r.trace[:, i].tolist() for i, name in enumerate(q)},
        "grad": {cell.display_name(n): (g[..., 0] if g.shape[-1] == 1 and g.shape[-2] > 1 else g).squeeze().tolist() if g.size > 1 else float(g.ravel()[0]) for n, g in r.grads.items()},
        "jacobian": [_finite_or_none(row) for row in jac] if np.all(np.isfinite(jac)) else None,
        "log10_norm_jacobian": float(r.jacobian.log10_norm()),
        "log10_norm_by_lag": _finite_or_none(r.by_lag),
        "mode": r.mode,
    }


def arrays(r: NumericResult) -> dict[str, np.ndarray]:
    """Everything computed, as arrays for ``np.savez``."""
    out = {f"grid_{r.problem.cell.display_name(n)}": v for n, v in r.grid}
    out["log10_norm_jacobian"] = r.jacobian.log10_norm()
    out["jacobian_mantissa"] = r.jacobian.mantissa
    out["jacobian_log10_scale"] = r.jacobian.log10_scale
    out.update({f"grad_{r.problem.cell.display_name(n)}": g for n, g in r.grads.items()})
    if r.trace is not None:
        out["quantities"] = r.trace
        out["log10_norm_by_lag"] = r.by_lag
    return out


def check_table(rows: tuple[CheckRow, ...], laws) -> str:
    """The ``check`` table: one row per cell, size, horizon and reference."""
    head = f"{'cell':<10}{'variant':<10}{'n':>3}{'T':>5}  {'reference':<20}{'max rel. error':>15}{'tolerance':>11}  result"
    lines = [head]
    for r in rows:
        lines.append(f"{r.cell:<10}{r.variant:<10}{r.hidden:>3}{r.steps:>5}  {r.reference:<20}"
                     f"{r.error:>15.2e}{r.tolerance:>11.0e}  {'pass' if r.passed else 'FAIL'}")
    lines += ["", "law: slope of log10|∂h_T/∂h_0| against T equals log10|w| (linear RNN)"]
    for w, slope, expected in laws:
        ok = abs(slope - expected) <= 1e-9
        lines.append(f"  w = {w:<5} fitted slope {slope:.12f}  log10|w| {expected:.12f}  {'pass' if ok else 'FAIL'}")
    return "\n".join(lines)


def law_passed(laws) -> bool:
    return all(abs(slope - expected) <= 1e-9 for _, slope, expected in laws)
