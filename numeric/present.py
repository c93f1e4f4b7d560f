"""Results of ``numeric`` and ``check`` as text tables, JSON-ready data and arrays."""

from __future__ import annotations

import textwrap

import math

import numpy as np

from .check import INDEPENDENT, CheckRow
from derive.activations import ACTIVATIONS
from derive.regime import judge, measured

from derive.errors import InvalidValue
from derive.render import finite, regime_json

from .logmatrix import log10_norm
from .run import LAGS, LayerRun, NumericResult
from .weights import torch_names

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


def walkthrough(r: NumericResult) -> str:
    """Each step's input, gates and states for one setting, then the gradients."""
    p, cell = r.problem, r.problem.cell
    grads = {cell.display_name(n): (g[..., 0] if g.shape[-1] == 1 and g.ndim == 2 else g) for n, g in r.grads.items()}
    return "\n".join(_table(cell.label, cell.n, cell.m, p.steps, p.s0, p.inputs, list(r.quantities), r.trace,
                            r.jacobian.log10_norm(), grads, r.mode, cell.output,
                            loss_text(cell.output, r.every_step, r.truncate)))


def _power(log10: float) -> str:
    if math.isfinite(log10):
        return f"10^{log10:.3f}"
    return {-math.inf: "0", math.inf: "inf"}.get(log10, "not computed" if math.isnan(log10) else "nan")


def _regime(r: LayerRun):
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


def summary(r: LayerRun, steps_table: bool = True) -> str:
    """What a person reads for a layer of any size: norms, σ₁, the regime, lags; arrays elsewhere.
    A small layer's single sequence also gets its per-step table (``steps_table``)."""
    lay, res, T = r.layer, r.result, r.steps
    B = r.inputs.shape[0]
    out = lay.core.output
    lines = [f"{lay.label}, hidden size {lay.n}, input size {lay.m}, T = {T}, batch {B}; weights: {r.source}",
             f"{loss_text(out, r.every_step, r.truncate, batch=B > 1)} (mode {r.mode}: BPTT with the weights as matrices)"]
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
    else:
        lines.append(f"‖∂s_T/∂s_{{T−k}}‖₂: not computed for {len(lay.states) * lay.n} state elements "
                     "(more than 1024); the adjoint below is")
    adjoint = res.log10_adjoint[::-1]
    which = "sequence 0" if B == 1 else "median over the batch"
    lines.append(f"‖∂L/∂s_{{T−k}}‖₂ ({which}): "
                 + ", ".join(f"k={k}: {_power(float(np.median(adjoint[k])))}" for k in lags))
    if not table:
        final = res.states[out][-1, 0]
        shown = ", ".join(_fmt(v) for v in final[:8]) + (", …" if lay.n > 8 else "")
        lines.append(f"{out}_T (sequence 0): {shown}")
        lines.append("every array: numeric --json, or numeric --out FILE.npz")
    return "\n".join(lines)


def grid_summary(r: NumericResult) -> str:
    """One line per grid point (the first 25), then the spread."""
    norms = r.jacobian.log10_norm()
    grad_norm = _grad_log10_norm(r)
    names = [r.problem.cell.display_name(n) for n, _ in r.grid]
    lines = [f"{r.problem.cell.label}, T = {r.problem.steps}, {norms.size} settings; mode {r.mode}",
             "  ".join(f"{h:>12}" for h in [*names, "log10‖∂s_T/∂s_0‖", "log10‖∇L‖"])]
    for idx in list(np.ndindex(norms.shape))[:25]:
        values = [r.grid[i][1][j] for i, j in enumerate(idx)]
        lines.append("  ".join(f"{v:>12.6g}" for v in [*values, norms[idx], grad_norm[idx]]))
    if norms.size > 25:
        lines.append(f"... {norms.size - 25} more (use --out FILE.npz)")
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


def _grad_log10_norm(r: NumericResult) -> np.ndarray:
    """log10 ‖∇L‖₂ over every parameter element, per setting, without squares over- or underflowing."""
    if not r.grads:
        return np.full(r.jacobian.log10_scale.shape, np.nan)
    shape = r.jacobian.log10_scale.shape
    flat = np.concatenate([np.abs(g).reshape(shape + (-1,)) for g in r.grads.values()], axis=-1)
    return log10_norm(flat)


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


def _grid_json(r: NumericResult) -> dict:
    cell, q = r.problem.cell, r.quantities
    states = {s: r.trace[:, [q.index(f"{s}_t" if cell.n == 1 else f"{s}_t[{i}]") for i in range(cell.n)]].tolist()
              for s in cell.states}
    return {
        "cell": cell.name, "variant": cell.variant, "hidden": cell.n, "steps": r.problem.steps,
        "states": states,
        "quantities": {name: r.trace[:, i].tolist() for i, name in enumerate(q)},
        "grad": {n: (g[..., 0] if g.shape[-1] == 1 and g.shape[-2] > 1 else g).squeeze().tolist() if g.size > 1 else float(g.ravel()[0]) for n, g in r.grads.items()},
        **_jacobian_json(r.jacobian),
        "log10_norm_jacobian": float(r.jacobian.log10_norm()),
        "log10_norm_by_lag": _finite_or_none(r.by_lag),
        "mode": r.mode,
    }


def _unbatched(r: LayerRun, a: np.ndarray) -> np.ndarray:
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


def _layer_json(r: LayerRun) -> dict:
    lay, res = r.layer, r.result
    regime = _regime(r)
    omitted: dict[str, list[int]] = {}
    return {
        "cell": lay.name, "variant": lay.variant, "hidden": lay.n, "input_size": lay.m, "steps": r.steps,
        "batch": int(r.inputs.shape[0]), "mode": r.mode, "weights": r.source,
        "states": {s: _listed(_unbatched(r, v[1:].transpose(1, 0, 2)), f"states.{s}", omitted)
                   for s, v in res.states.items()},
        "quantities": {name: r.trace[:, i].tolist() for i, name in enumerate(r.quantities)} if r.trace is not None else None,
        "grad": {k: _listed(v, f"grad.{k}", omitted, scalar=True) for k, v in r.grads.items()},
        "grad_norm": {k: float(np.linalg.norm(v)) for k, v in r.grads.items()},
        "grad_initial_state": {f"{s}_0": _listed(_unbatched(r, res.grads[f"{s}_0"]), f"grad_initial_state.{s}_0",
                                                 omitted) for s in lay.states},
        **_jacobian_json(r.jacobian),
        "log10_norm_jacobian": float(r.by_lag[-1]) if r.by_lag is not None else None,
        "log10_norm_by_lag": _finite_or_none(r.by_lag) if r.by_lag is not None else None,
        "log10_adjoint": [_finite_or_none(row) for row in res.log10_adjoint.T] if r.batched
        else _finite_or_none(res.log10_adjoint[:, 0]),
        "recurrent_sigma1": dict(r.recurrent),
        "regime": regime_json(regime),
        "omitted": omitted,  # field -> shape of each array too large to list (null above)
    }


def to_json(r: NumericResult | LayerRun) -> dict:
    """One setting, or one layer's batch, as JSON-ready data (keys listed in the README)."""
    return _layer_json(r) if isinstance(r, LayerRun) else _grid_json(r)


def to_text(r: NumericResult | LayerRun) -> str:
    """What ``numeric`` prints for a person."""
    if isinstance(r, LayerRun):
        return summary(r)
    return grid_summary(r) if r.grid else walkthrough(r)


def arrays(r: NumericResult | LayerRun, torch_keys: bool = False) -> dict[str, np.ndarray]:
    """Everything computed, as arrays for ``np.savez``; gradients as ``grad_<name>`` in our
    names at every size, and with ``torch_keys`` under PyTorch's too (``grad_weight_ih_l0``)."""
    if isinstance(r, NumericResult):
        if torch_keys:
            raise InvalidValue("torch_names", "PyTorch's keys name one layer's weights; a grid has many")
        return _grid_arrays(r)
    res = r.result
    out = {f"grad_{k}": v for k, v in r.grads.items()}
    out.update({f"grad_{s}_0": _unbatched(r, res.grads[f"{s}_0"]) for s in r.layer.states})
    out.update({s: _unbatched(r, v.transpose(1, 0, 2)) for s, v in res.states.items()})
    out["inputs"] = _unbatched(r, r.inputs)
    out["log10_adjoint"] = _unbatched(r, res.log10_adjoint.T)
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


def _grid_arrays(r: NumericResult) -> dict[str, np.ndarray]:
    out = {f"grid_{name}": v for name, v in r.grid}
    out["log10_norm_jacobian"] = r.jacobian.log10_norm()
    out["jacobian_mantissa"] = r.jacobian.mantissa
    out["jacobian_log10_scale"] = r.jacobian.log10_scale
    out.update({f"grad_{name}": g for name, g in r.grads.items()})
    if r.trace is not None:
        out["quantities"] = r.trace
        out["log10_norm_by_lag"] = r.by_lag
    return out


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
