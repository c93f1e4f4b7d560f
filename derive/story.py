"""The worked solution in words: what ``python cli.py derive`` prints."""

from __future__ import annotations

from .printing import text
from .render import _at_steps, _names, at_steps_label, chain_rule, closed_form, closed_name
from .render import Derivation, Evaluation


def _evaluation_lines(d: Derivation, e: Evaluation) -> list[str]:
    name, _ = _names(d)
    at = ", ".join(f"{k} = {v}" for k, v in e.settings) or "the cell's fixed weights"
    concrete = name.replace("_T", f"_{d.steps}").replace("_k", "_0")
    if e.shape != (1, 1):
        return [f"at {at}: log10 ‖{concrete}‖₂ = {e.log10_norm:.6g}   [{e.method}]",
                "  entries ≈ " + ", ".join(m.approx for m in e.entries)]
    m = e.entries[0]
    forms = [text(e.unevaluated)] if e.unevaluated is not None else []
    if m.exact is not None:
        forms.append(str(m.exact))
    if m.float is not None and (m.exact is None or not m.exact.is_Integer):
        forms.append(repr(m.float))
    lines = [f"at {at}:", f"  {concrete} " + "".join(f"= {form} " for form in forms) + f"≈ {m.approx}"]
    lines.append(f"  sign {'+' if m.sign > 0 else '-' if m.sign < 0 else '0'}, "
                 f"log10|value| = {m.log10_abs:.6g}   [{e.method}]")
    if m.exact is not None and m.exact.is_Integer and d.bptt is None and d.cell.n == 1:
        lines.append(f"  whatever enters at step 0 is multiplied by {m.exact} by step {d.steps}")
    return lines + _forward_lines(d, e)


def _forward_lines(d: Derivation, e: Evaluation) -> list[str]:
    """The forward pass behind the numbers: each state, step by step (the first and last few of a long run)."""
    if not e.states:
        return []
    T, out = d.steps, d.cell.output
    shown = list(range(1, T + 1)) if T <= 8 else [1, 2, 3, None, T - 1, T]
    lines = ["  forward pass:"]
    for s, values in e.states:
        lines.append("    " + ", ".join("⋯" if t is None else f"{s}_{t} = {values[t - 1]:.4g}" for t in shown))
    meaning = d.cell.definition.output_meaning.format(next=T + 1)
    if meaning:
        lines.append(f"  the output {out}_{T} = {dict(e.states)[out][-1]:.4f}: {meaning}")
    return lines


def story(d: Derivation) -> str:
    """The derivation as a worked solution, section by section."""
    c = d.cell
    out = [f"Unrolled — {c.label}, hidden size {c.n}, input size {c.m}, T = {d.steps} steps", ""]
    out += _step_and_unrolled(d)
    local = "∂⁺s_t/∂θ" if d.bptt is not None else f"∂{d.of}_t/∂{d.wrt}_(t-1)"
    out += ["", "3. The local Jacobian", f"   J_t = ∂s_t/∂s_(t-1) = {text(d.jacobian_step, c)}",
            f"   {local} = {text(d.local, c)}"]
    out += ["", "4. The chain rule over T steps", f"   {chain_rule(d)[0]}"]
    closed, scope = closed_form(d)
    out += ["", "5. Closed form"]
    if closed is None:
        out.append("   none: the product of Jacobians does not simplify; the numbers step through it")
    else:
        out.append(f"   {closed_name(d)[0]} = {text(closed, c)}")
        out.append(f"   at {at_steps_label(closed, d)}: {text(_at_steps(closed, d), c)}")
        if scope != "exact":
            out.append(f"   ({scope}: the constant error carousel)")
    out += ["", "6. Numbers"]
    for e in d.evaluations:
        out += [f"   {line}" for line in _evaluation_lines(d, e)]
    out += [f"   {note}" for note in d.notes]
    return "\n".join(out + ["", "7. Regime (Pascanu, Mikolov & Bengio 2013)", *_regime_lines(d)])


def _step_and_unrolled(d: Derivation) -> list[str]:
    """Sections 1 and 2: one step, its parameters, and the step unrolled over T."""
    c = d.cell
    out = ["1. One step of the cell", *(f"   {text(e, c)}" for e in d.step_equations)]
    if c.definition.sigmoid_as_exp:
        out.append("   (σ(x) = e^x/(e^x + 1), written out as the lecture does)")
    names = ", ".join(c.display_name(p) for p in c.param_names())
    out.append(f"   parameters (to set, or to differentiate by): {names or 'none, the weights are fixed'}")
    out += ["", f"2. Unrolled over T = {d.steps} steps (per-step symbols)"]
    shown = [f"   {text(e, c)}" for e in d.unrolled]
    if d.unrolled_elided:
        shown.insert(len(shown) - len(d.step_equations), "   ⋮")
    out += shown
    if d.nested is not None:
        out.append(f"   nested: {d.of}_{d.steps} = {text(d.nested, c)}")
    return out


def _regime_lines(d: Derivation) -> list[str]:
    c, r, out = d.cell, d.regime, []
    if r.gamma is not None:
        out.append(f"   γ = sup|φ'| = {r.gamma} ({c.activation.name}); ‖∂h_T/∂h_k‖ ≤ "
                   f"(γ σ₁({c.display_name(r.recurrent)}))^(T−k): vanishing guaranteed when "
                   "γσ₁ < 1, exploding possible when γσ₁ > 1")
    for e in d.evaluations or ():
        at = ", ".join(f"{k} = {v}" for k, v in e.settings) or "the fixed weights"
        bound = f"; bound 10^{e.regime.bound_log10:.4g}" if e.regime.bound_log10 is not None else ""
        out.append(f"   at {at}: {e.regime.verdict} ({e.regime.reason}{bound})")
    if not d.evaluations:
        out.append(f"   {r.verdict}: {r.reason}")
    return out
