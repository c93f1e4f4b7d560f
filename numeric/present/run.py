"""Results of ``numeric`` and ``check`` as text tables, JSON-ready data and arrays."""

from __future__ import annotations

import textwrap

import math

import numpy as np

from ..check import INDEPENDENT, CheckRow
from derive.activations import ACTIVATIONS
from derive.regime import judge, measured

from derive.errors import InvalidValue
from derive.render import finite, regime_json

from ..engine.logmatrix import log10_norm
from ..run import LAGS, Run
from ..io.weights import torch_names

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


def _table(label, n, m, steps, s0, inputs, names, trace, log10_jacobian, grads, mode, output, loss) -> list[str]:
    """Each step's input, gates and states for one sequence, then ∂L/∂θ."""
    heads = ["t", *(f"x[{j}]" for j in range(m)), *names]
    lines = [f"{label}, hidden size {n}, T = {steps}, s_0 = {list(map(float, s0))}; parameters: "
             f"{', '.join(grads) or 'none (fixed weights)'}",
             "  ".join(f"{h:>10}" for h in heads)]
    for t in range(steps):
        row = [str(t + 1), *(_fmt(v) for v in inputs[t]), *(_fmt(v) for v in trace[t])]
        lines.append("  ".join(f"{v:>10}" for v in row))
    last = trace[-1][[names.index(q) for q in names if q.split("_t")[0] == output]]
    lines.append(f"prediction for step {steps + 1} ({output}_T): {', '.join(_fmt(v) for v in last)}")
    if n == 1 and len({q.split('_')[0] for q in names}) > 2:
        lines.append(f"  ({', '.join(f'{q.split(chr(95))[0]} = {_label(q)}' for q in names)})")
    lines.append(f"log10 ‖∂s_T/∂s_0‖₂ = {float(log10_jacobian):.6g}")
    if grads:
        lines.append(f"∂L/∂θ ({loss}; mode {mode}):")
        for name, g in grads.items():
            lines.append(f"  {name:>6} = {np.array2string(np.squeeze(g) if g.size == 1 else g, precision=6)}")
    return lines


def _power(log10: float) -> str:
    if math.isfinite(log10):
        return f"10^{log10:.3f}"
    return {-math.inf: "0", math.inf: "inf"}.get(log10, "not computed" if math.isnan(log10) else "nan")


def _regime(r: Run):
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
             f"{loss_text(out, r.every_step, r.truncate, batch=B > 1)} (mode {r.mode}: {MODE_WORDS[r.mode]})"]
    table = steps_table and r.trace is not None and B == 1 and T <= TABLE_STEPS
    if table:
        lines = _table(lay.label, lay.n, lay.m, T, r.s0, r.inputs[0], list(r.quantities), r.trace, r.by_lag[-1],
                       {lay.display_name(k): v for k, v in r.grads.items()}, r.mode, out,
                       loss_text(out, r.every_step, r.truncate))
        lines.insert(1, f"weights: {r.source}")  # where they came from (a file, a draw; the activation assumed)
    elif r.grads:
        lines.append("‖∂L/∂θ‖ (Frobenius norm of each parameter's gradient):")
        norms = [(lay.display_name(k), float(np.linalg.norm(v))) for k, v in r.grads.items()]
        for i in range(0, len(norms), 4):
            lines.append("  " + "   ".join(f"{k:>5} {v:.4e}" for k, v in norms[i:i + 4]))
    if r.recurrent:
        lines.append("σ₁ of the recurrent weights: " + ", ".join(f"{k} {v:.4g}" for k, v in r.recurrent))
    regime = _regime(r)
    lines.append(f"regime: {regime.verdict} ({regime.reason})")
    lags = [k for k in LAGS if k < T] + [T]
    if r.by_lag is not None:
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
    if not table and r.states is not None:
        final = r.states[out][-1, 0]
        shown = ", ".join(_fmt(v) for v in final[:8]) + (", …" if lay.n > 8 else "")
        lines.append(f"{out}_T (sequence 0): {shown}")
    return "\n".join(lines)


def grid_summary(r: Run) -> str:
    """One line per grid point (the first 25), then the spread."""
    norms = r.jacobian.log10_norm()
    grad_norm = _grad_log10_norm(r)
    names = [r.layer.display_name(n) for n, _ in r.grid]
    lines = [f"{r.layer.label}, hidden size {r.layer.n}, T = {r.steps}, {norms.size} settings; weights: {r.source}",
             f"{loss_text(r.layer.core.output, r.every_step, r.truncate)} (mode {r.mode}: {MODE_WORDS[r.mode]})",
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


def _jacobian_json(m) -> dict:
    """∂s_T/∂s_0 as mantissa × 10^scale always, and as plain numbers only where float64 holds
    every entry: an entry that under- or overflows makes ``jacobian`` null, never a silent 0.0."""
    if m is None:
        return {"jacobian": None, "jacobian_mantissa": None, "jacobian_log10_scale": None}
    plain = m.to_float()
    lost = ~np.isfinite(plain) | ((plain == 0) & (m.mantissa != 0))
    return {"jacobian": None if lost.any() else [_finite_or_none(row) for row in plain],
            "jacobian_mantissa": [_finite_or_none(row) for row in m.mantissa],
            "jacobian_log10_scale": float(m.log10_scale)}


def _finite_or_none(values):
    return finite(np.ravel(values).tolist())


def _unbatched(r: Run, a: np.ndarray) -> np.ndarray:
    """An array with the batch axis first, without it when the inputs were one sequence."""
    return a if r.batched else a[0]


#: JSON lists arrays of at most this many numbers; larger ones are named with their shape under
#: ``omitted`` (an .npz holds them): a 4096-unit layer's gradients would be gigabytes of text.
JSON_ARRAY_LIMIT = 100_000


def _listed(a: np.ndarray, name: str, omitted: dict, scalar: bool = False):
    a = np.asarray(a)
    if a.size > JSON_ARRAY_LIMIT:
        omitted[name] = list(a.shape)
        return None
    return float(a.ravel()[0]) if scalar and a.size == 1 else a.tolist()


def _per_sequence(r: Run, a: np.ndarray | None, name: str, omitted: dict):
    return None if a is None else _listed(_unbatched(r, a), name, omitted)


def _grad_norms(r: Run, omitted: dict) -> dict:
    """‖∂L/∂θ‖ (Frobenius) per parameter, per setting of a grid."""
    shapes = r.layer.shapes()
    return {k: _listed(np.sqrt(np.sum(np.square(v), axis=tuple(range(v.ndim - len(shapes[k]), v.ndim)))),
                       f"grad_norm.{k}", omitted, scalar=True) for k, v in r.grads.items()}


def to_json(r: Run) -> dict:
    """A run as JSON-ready data (keys listed in docs/numeric.md); a grid's settings with their
    gradients and norms, and every array of a layer that is small enough to list."""
    lay, omitted = r.layer, {}
    out = {
        "cell": lay.name, "variant": lay.variant, "hidden": lay.n, "input_size": lay.m, "steps": r.steps,
        "batch": int(r.inputs.shape[0]), "mode": r.mode, "weights": r.source,
        "grad": {k: _listed(v, f"grad.{k}", omitted, scalar=True) for k, v in r.grads.items()},
        "grad_norm": _grad_norms(r, omitted),
    }
    if r.grid:
        out["grid"] = {name: values.tolist() for name, values in r.grid}
        out["log10_norm_jacobian"] = _listed(np.where(np.isfinite(r.jacobian.log10_norm()), r.jacobian.log10_norm(),
                                                      np.nan), "log10_norm_jacobian", omitted)
        out["omitted"] = omitted
        return out
    out.update({
        "states": None if r.states is None else
        {s: _listed(_unbatched(r, v[1:].transpose(1, 0, 2)), f"states.{s}", omitted) for s, v in r.states.items()},
        "quantities": {name: r.trace[:, i].tolist() for i, name in enumerate(r.quantities)} if r.trace is not None else None,
        "grad_initial_state": None if r.initial_grads is None else
        {f"{s}_0": _per_sequence(r, v, f"grad_initial_state.{s}_0", omitted) for s, v in r.initial_grads.items()},
        **_jacobian_json(r.jacobian),
        "log10_norm_jacobian": float(r.by_lag[-1]) if r.by_lag is not None else (
            float(r.jacobian.log10_norm()) if r.jacobian is not None else None),
        "log10_norm_by_lag": _finite_or_none(r.by_lag) if r.by_lag is not None else None,
        "log10_adjoint": None if r.log10_adjoint is None else (
            [_finite_or_none(row) for row in r.log10_adjoint.T] if r.batched else _finite_or_none(r.log10_adjoint[:, 0])),
        "recurrent_sigma1": dict(r.recurrent),
        "regime": regime_json(_regime(r)),
        "omitted": omitted,  # field -> shape of each array too large to list (null above)
    })
    return out


def to_text(r: Run) -> str:
    """What ``numeric`` prints for a person."""
    return grid_summary(r) if r.grid else summary(r)


def arrays(r: Run, torch_keys: bool = False) -> dict[str, np.ndarray]:
    """Everything computed, as arrays for ``np.savez``; gradients as ``grad_<name>`` in our
    names at every size, and with ``torch_keys`` under PyTorch's too (``grad_weight_ih_l0``)."""
    if r.grid and torch_keys:
        raise InvalidValue("torch_names", "PyTorch's keys name one layer's weights; a grid has many")
    out = {f"grad_{k}": v for k, v in r.grads.items()}
    out.update({f"grid_{name}": v for name, v in r.grid})
    if r.grid:
        out["log10_norm_jacobian"] = r.jacobian.log10_norm()
    else:
        out["inputs"] = _unbatched(r, r.inputs)
    if r.initial_grads is not None:
        out.update({f"grad_{s}_0": _unbatched(r, v) for s, v in r.initial_grads.items()})
    if r.states is not None:
        out.update({s: _unbatched(r, v.transpose(1, 0, 2)) for s, v in r.states.items()})
    if r.log10_adjoint is not None:
        out["log10_adjoint"] = _unbatched(r, r.log10_adjoint.T)
    if r.by_lag is not None:
        out["log10_norm_by_lag"] = r.by_lag
    if r.jacobian is not None:
        out["jacobian_mantissa"], out["jacobian_log10_scale"] = r.jacobian.mantissa, r.jacobian.log10_scale
    if r.trace is not None:
        out["quantities"] = r.trace
    if torch_keys:
        named = torch_names(r.layer.name, r.layer.variant, r.grads, r.layer_index)
        out.update({f"grad_{k}": v for k, v in named.items()})
    return out


def html_table(r: Run) -> str:
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


#: The check table's columns: (reference, short heading), derive's own Jacobians first.
CHECK_COLUMNS = (("forward mode", "forward"), ("mpmath 50 digits", "mpmath J"),
                 ("finite differences", "fin. diff."), ("complex step", "complex"), ("mpmath.diff", "mp.diff"))


def check_cases(rows: tuple[CheckRow, ...]) -> list[tuple[str, list[str], bool]]:
    """One entry per cell, size and horizon: (label, error per column or '—', all passed)."""
    cases: dict[tuple, dict] = {}
    for r in rows:
        cell = r.cell if r.activation is None else f"{r.cell} {r.activation}"
        cases.setdefault((cell, r.variant, r.hidden, r.steps), {})[r.reference] = r
    out = []
    for (cell, variant, n, steps), by_ref in cases.items():
        errors = [f"{by_ref[ref].error:.1e}" + ("" if by_ref[ref].passed else "!") if ref in by_ref else "—"
                  for ref, _ in CHECK_COLUMNS]
        out.append((f"{cell:<12}{variant:<9}{n:>2}{steps:>4}", errors, all(r.passed for r in by_ref.values())))
    return out


def check_legend(rows: tuple[CheckRow, ...]) -> list[str]:
    """What each column compares against, which share derive's derivatives, and the tolerances."""
    tolerance = {r.reference: r.tolerance for r in rows}
    # no-break spaces keep a column's name on one line when the legend is wrapped
    shared = [short.replace(" ", "\u00a0") for ref, short in CHECK_COLUMNS if ref not in INDEPENDENT]
    own = [short.replace(" ", "\u00a0") for ref, short in CHECK_COLUMNS if ref in INDEPENDENT]
    return [
        "Largest relative error of the compiled reverse-mode gradient against each reference "
        "('!' above tolerance, '—' not run).",
        f"Sharing derive's Jacobians (they check the code, not the derivatives): {', '.join(shared)}.",
        f"Independent of derive (they differentiate the forward pass themselves): {', '.join(own)}; "
        "mp.diff is mpmath.diff of the stepped forward pass at 50 digits along random directions.",
        "Tolerances: " + ", ".join(f"{short} {tolerance[ref]:.0e}".replace(" ", "\u00a0")
                                   for ref, short in CHECK_COLUMNS if ref in tolerance) + ".",
    ]


def check_lines(rows: tuple[CheckRow, ...], verdict: tuple[str, str, str] = ("result", "pass", "FAIL")) -> list[str]:
    """The header and one line per case: errors in the columns of ``CHECK_COLUMNS``, then the verdict."""
    head, good, bad = verdict
    return [f"{'cell':<12}{'variant':<9}{'n':>2}{'T':>4}" + "".join(f"{short:>11}" for _, short in CHECK_COLUMNS)
            + f"  {head}",
            *(label + "".join(f"{e:>11}" for e in errors) + f"  {good if passed else bad}"
              for label, errors, passed in check_cases(rows))]


def check_table(rows: tuple[CheckRow, ...], laws) -> str:
    """The ``check`` table: one row per cell, size and horizon, one column per reference."""
    lines = check_lines(rows)
    lines += ["", *(line for item in check_legend(rows) for line in textwrap.wrap(item, 100))]
    lines += ["", "law: slope of log10|∂h_T/∂h_0| against T equals log10|w| (linear RNN)"]
    for w, slope, expected in laws:
        ok = abs(slope - expected) <= 1e-9
        lines.append(f"  w = {w:<5} fitted slope {slope:.12f}  log10|w| {expected:.12f}  {'pass' if ok else 'FAIL'}")
    return "\n".join(lines)


def law_passed(laws) -> bool:
    return all(abs(slope - expected) <= 1e-9 for _, slope, expected in laws)


def power_text(p) -> str:
    """``numeric.explain.Power`` as the lines a person reads: the value, the bound, the verdict."""
    rate = p.log10_norm / p.steps if math.isfinite(p.log10_norm) else None
    regime = judge(p.weight, 1, p.sigma1, p.steps, rate)
    return (f"∂h_T/∂h_0 = {p.weight}^T at every input (J_t = {p.weight} at every step): "
            f"log10 ‖{p.weight}^{p.steps}‖₂ = {p.log10_norm:.6g}\n"
            f"σ₁({p.weight}) = {p.sigma1:.6g}; regime: {regime.verdict} ({regime.reason})")


def power_json(p) -> dict:
    rate = p.log10_norm / p.steps if math.isfinite(p.log10_norm) else None
    return {"weight": p.weight, "steps": p.steps, "log10_norm": finite(p.log10_norm), "sigma1": p.sigma1,
            "regime": regime_json(judge(p.weight, 1, p.sigma1, p.steps, rate))}
