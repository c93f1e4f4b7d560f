"""A ``Derivation``, everything ``derive`` shows, and how it reads: as LaTeX and as JSON-ready data
(``derive.story`` tells it as a worked solution in text)."""

from __future__ import annotations

import math

import sympy as sp

from dataclasses import dataclass

from .cell import Cell
from .chain import BpttForm, ChainForm, path_only
from .logdomain import Magnitude
from .printing import align, latex, text
from .regime import Regime
from .symbols import T, k


@dataclass(frozen=True)
class Evaluation:
    """The derivative's value at one parameter setting (row-major ``entries``)."""

    settings: tuple[tuple[str, str], ...]
    shape: tuple[int, int]
    entries: tuple[Magnitude, ...]
    log10_norm: float
    method: str
    regime: Regime
    unevaluated: sp.Expr | None = None
    states: tuple[tuple[str, tuple[float, ...]], ...] = ()  # each state s_1..s_T of the forward pass (n = 1)


@dataclass(frozen=True)
class Derivation:
    """Everything ``derive`` shows, as SymPy objects and numbers."""

    cell: Cell
    steps: int
    wrt: str
    of: str
    step_equations: tuple[sp.Eq, ...]
    unrolled: tuple[sp.Eq, ...]
    unrolled_elided: bool
    nested: sp.Expr | None
    jacobian_step: sp.ImmutableMatrix
    local: sp.ImmutableMatrix
    chain: ChainForm | None
    bptt: BpttForm | None
    truncate: int | None
    evaluations: tuple[Evaluation, ...]
    regime: Regime
    notes: tuple[str, ...]

    def _repr_latex_(self) -> str:
        """Jupyter's rich display: the step, J_t, the chain rule and the closed form, as ``derive --format latex``."""
        return "\n".join(line for line in to_latex(self).splitlines() if not line.startswith("%"))


def _names(d: Derivation) -> tuple[str, str]:
    """The derivative's name in text and LaTeX: ∂h_T/∂h_k or ∂L/∂w."""
    if d.bptt is not None:
        shown = d.cell.display_name(d.wrt)
        return f"∂L/∂{shown}", r"\frac{\partial L}{\partial %s}" % latex(sp.Symbol(shown))
    return f"∂{d.of}_T/∂{d.wrt}_k", r"\frac{\partial %s_T}{\partial %s_k}" % (d.of, d.wrt)


def closed_name(d: Derivation) -> tuple[str, str]:
    """The closed form's left-hand side, in text and LaTeX, marked when it holds along one path only."""
    name, tex = _names(d)
    _, scope = closed_form(d)
    return (name, tex) if scope in ("exact", "none") else path_only(name, tex, d.of)


def chain_rule(d: Derivation) -> tuple[str, str]:
    """The chain rule over T steps, in text and LaTeX."""
    if d.bptt is not None:
        lower = text(d.bptt.lower)
        return (f"∂L/∂θ = Σ_{{k={lower}}}^{{T}} (∂L/∂s_T)(J_T J_(T-1) ⋯ J_(k+1))(∂⁺s_k/∂θ)",
                r"\frac{\partial L}{\partial\theta} = \sum_{k=%s}^{T} \frac{\partial L}{\partial s_T}"
                r"\Big(\prod_{t=k+1}^{T} J_t\Big) \frac{\partial^+ s_k}{\partial\theta}" % latex(d.bptt.lower))
    name, tex = _names(d)
    return (f"{name} = J_T J_(T-1) ⋯ J_(k+1), J_t = ∂s_t/∂s_(t-1) (block {d.of}{d.wrt})",
            tex + r" = J_T J_{T-1} \cdots J_{k+1}")


def closed_form(d: Derivation):
    """(expression, scope) of the closed form, or (None, reason)."""
    if d.bptt is not None:
        return (d.bptt.sum, "exact") if d.bptt.sum is not None else (None, "none")
    return d.chain.closed, d.chain.scope


def at_steps_label(expr, d: Derivation) -> str:
    """``T = 50, k = 0``, or ``T = 50`` where k is a sum's index rather than free."""
    return f"T = {d.steps}" + (", k = 0" if k in expr.free_symbols else "")


def _at_steps(expr, d: Derivation):
    """The general form at T = steps and k = 0 (k only where it is free, not a sum's index)."""
    values = {T: sp.Integer(d.steps)}
    if k in expr.free_symbols:
        values[k] = sp.Integer(0)
    return expr.xreplace(values)


def _number(m) -> object:
    """JSON for one magnitude: the exact value when held, else a float, else null."""
    if m.exact is not None and m.exact.is_Integer:
        return int(m.exact)
    if m.exact is not None:
        return str(m.exact)
    return m.float


def evaluation_json(e: Evaluation) -> dict:
    scalar = e.shape == (1, 1)
    entries = [_number(m) for m in e.entries]
    grid = [entries[r * e.shape[1] : (r + 1) * e.shape[1]] for r in range(e.shape[0])]
    first = e.entries[0]
    return {
        "settings": dict(e.settings),
        "value": entries[0] if scalar else grid,
        "float": first.float if scalar else None,
        "approx": first.approx if scalar else None,
        "log10_abs": finite(e.log10_norm),
        "sign": first.sign if scalar else None,
        "exact": first.exact is not None,
        "method": e.method,
        "states": {name: list(values) for name, values in e.states} or None,
        "regime": regime_json(e.regime),
    }


def finite(data):
    """``data`` with every float that is not finite replaced by None: strict JSON has no NaN or Infinity.

    >>> finite({"a": [1.0, float("nan")], "b": float("-inf"), "c": None})
    {'a': [1.0, None], 'b': None, 'c': None}
    """
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite(v) for v in data]
    if isinstance(data, float) and not math.isfinite(data):
        return None
    return data


def regime_json(r) -> dict:
    return {
        "verdict": r.verdict, "reason": r.reason,
        "gamma": str(r.gamma) if r.gamma is not None else None,
        "recurrent_weight": r.recurrent, "sigma1": r.sigma1,
        "bound_log10": finite(r.bound_log10), "measured_log10_rate": r.measured_log10_rate,
    }


def to_json(d: Derivation) -> dict:
    """The derivation as JSON-ready data; the keys are listed in the README."""
    closed, scope = closed_form(d)
    name, _ = _names(d)
    first = evaluation_json(d.evaluations[0]) if d.evaluations else {}
    return {
        "cell": d.cell.name, "variant": d.cell.variant,
        "activation": d.cell.activation.name if d.cell.activation else None,
        "hidden": d.cell.n, "input_size": d.cell.m, "steps": d.steps,
        "wrt": d.cell.display_name(d.wrt), "derivative": name,
        "parameters": [d.cell.display_name(p) for p in d.cell.param_names()],
        "step_equations": [text(e, d.cell) for e in d.step_equations],
        "unrolled": [text(e, d.cell) for e in d.unrolled], "unrolled_elided": d.unrolled_elided,
        "nested": text(d.nested, d.cell) if d.nested is not None else None,
        "jacobian_step": text(d.jacobian_step, d.cell), "local": text(d.local, d.cell),
        "chain_rule": chain_rule(d)[0],
        "closed_form": None if closed is None else {
            "name": closed_name(d)[0], "expr": text(closed, d.cell),
            "at_steps": text(_at_steps(closed, d), d.cell), "scope": scope},
        "latex": latex_parts(d),
        "value": first.get("value"), "float": first.get("float"), "approx": first.get("approx"),
        "log10_abs": first.get("log10_abs"), "sign": first.get("sign"),
        "evaluations": [evaluation_json(e) for e in d.evaluations],
        "regime": regime_json(d.regime), "notes": list(d.notes),
    }


def latex_parts(d: Derivation) -> dict:
    closed, _ = closed_form(d)
    tex = closed_name(d)[1]
    return {
        "step_equations": [latex(e, d.cell) for e in d.step_equations],
        "jacobian_step": r"J_t = " + latex(d.jacobian_step, d.cell),
        "chain_rule": chain_rule(d)[1],
        "closed_form": None if closed is None else f"{tex} = {latex(closed, d.cell)}",
    }


def to_latex(d: Derivation) -> str:
    """A LaTeX fragment (amsmath ``align*``) with the derivation's equations."""
    parts = latex_parts(d)
    lines = [*parts["step_equations"], parts["jacobian_step"], parts["chain_rule"]]
    if parts["closed_form"]:
        lines.append(parts["closed_form"])
    return f"% Unrolled: {d.cell.label}, T = {d.steps}\n" + align([line.replace("=", "&=", 1) for line in lines], "  ")
