"""A matrix-form derivation as text, LaTeX and JSON (``derive --hidden n`` for any n)."""

from __future__ import annotations

from .chain import path_only
from .core import Layer
from .printing import align
from .matrixform import MatrixForm, _latex_name, _rename, latex_names, matrix_form
from .matrixform import elementwise_text as _text
from .matrixform import latex as _latex


def _text_of(form: MatrixForm, e) -> str:
    return _text(_shown(form, e))


def _latex_of(form: MatrixForm, e) -> str:
    return _latex(_shown(form, e), latex_names(form.core))


def _shown(form: MatrixForm, e):
    """Product symbols W·v shown as W v."""
    return _rename(form.core, e) if hasattr(e, "xreplace") else e


def _deltas(form: MatrixForm) -> list[tuple[list[str], object]]:
    """Distinct cotangents δ_t with every parameter that has it (LSTM: W_hi, W_xi and b_i share one)."""
    groups: list[tuple[list[str], object]] = []
    for g in form.gradients:
        for names, expr in groups:
            if expr == g.cotangent:
                names.append(g.param)
                break
        else:
            groups.append(([g.param], g.cotangent))
    return groups


def _label(form: MatrixForm, param: str) -> str:
    """A cotangent's name: the recurrent weight that shares it (the carry names it so), else the first."""
    names = next(names for names, _ in _deltas(form) if param in names)
    x = form.core.x
    recurrent = [m.weight for m in form.core.maps if m.weight in names and m.operand.free_symbols - {x}]
    return recurrent[0] if recurrent else names[0]


def _carousels(form: MatrixForm) -> list:
    """Diagonal blocks of a declared carousel (the LSTM's c): their product over T is diag(∏ ·)."""
    return [b for b in form.blocks if b.of == b.wrt and b.of in form.core.definition.carousel]


def _carousel_latex(form: MatrixForm, b, steps: int) -> tuple[str, str]:
    """(left, right) of the carousel's path product in LaTeX."""
    name = path_only("", r"\frac{\partial %s_T}{\partial %s_0}" % (b.of, b.of), b.of)[1]
    return name, r"\operatorname{diag}\Big(\prod_{t=1}^{%d} %s\Big)" % (steps, _latex_of(form, b.expr.args[0]))


def _sum_text(form: MatrixForm, g, over: str = "Σ_t") -> str:
    delta = f"δ[{_label(form, g.param)}]_t"
    if g.operand is None:
        return f"{over} {delta} (summed over the batch)"
    v = _text_of(form, g.operand)
    return f"{over} {delta} {v if g.operand.is_Symbol else f'({v})'}ᵀ"


def matrix_text(layer: Layer, steps: int, truncate: int | None = None) -> str:
    """The derivation a person reads, the same length for n = 4 and n = 4096."""
    form = matrix_form(layer.core)
    core = form.core
    out = core.output
    lines = [f"Unrolled — {layer.label}, hidden size {layer.n}, input size {layer.m}, T = {steps} steps",
             "(matrix form, valid for every n: vectors have n elements, W v is a matrix product,",
             " ⊙, ², σ and tanh act element by element, diag(a) is the matrix with a on its diagonal)", "",
             "1. One step of the cell"]
    lines += [f"   {name}_t = {_text_of(form, e)}" for name, e in form.equations]
    lines += ["", "2. The step's Jacobian J_t = ∂s_t/∂s_{t-1}, block by block"]
    lines += [f"   ∂{b.of}_t/∂{b.wrt}_{{t-1}} = {_text_of(form, b.expr)}" for b in form.blocks]
    lines += ["", f"3. Unrolled over T = {steps} steps",
              f"   ∂s_T/∂s_0 = J_T J_(T-1) ⋯ J_1, a product of {steps} matrices of size "
              f"{len(core.states) * layer.n} (multiplied in the log domain: no overflow or underflow)"]
    for b in _carousels(form):
        inner = _text_of(form, b.expr.args[0])
        inner = inner if b.expr.args[0].is_Atom else f"({inner})"
        name = path_only(f"∂{b.of}_T/∂{b.of}_0", "", b.of)[0]
        lines.append(f"   along the {b.of} path alone (the other paths held fixed): {name} = diag(∏_{{t=1}}^T {inner})")
    lines += ["", f"4. Gradients through time (BPTT) of L = Σ_i {out}_T[i]",
              f"   s̄_t = ∂L/∂s_t; at T: {out}̄_T = 1 (every element)"
              + "".join(f", {s}̄_T = 0" for s in core.states if s != out)]
    for names, expr in _deltas(form):
        lines.append(f"   δ[{_label(form, names[0])}]_t = {_text_of(form, expr)}"
                     + (f"   (shared by {', '.join(names)})" if len(names) > 1 else ""))
    for s, e in form.carry:
        lines.append(f"   {s}̄_(t-1) = {_text_of(form, e)}")
    over = "Σ_t" if truncate is None else f"Σ_(t > T-{truncate})"
    if truncate is not None:
        lines.append(f"   truncated BPTT: the sums run over the last {truncate} steps only (t > T - {truncate})")
    lines += [f"   ∂L/∂{g.param} = {_sum_text(form, g, over)}" for g in form.gradients]
    return "\n".join(lines)


def matrix_latex_sections(layer: Layer, steps: int) -> dict[str, list[str]]:
    """The LaTeX rows (``lhs &= rhs``) of each part: ``step``, ``jacobian`` (the blocks and the
    path-only products), ``cotangents`` (δ and the carries s̄) and ``gradients``."""
    form = matrix_form(layer.core)
    jacobian = [r"\frac{\partial %s_t}{\partial %s_{t-1}} &= %s" % (b.of, b.wrt, _latex_of(form, b.expr))
                for b in form.blocks]
    jacobian += ["%s &= %s" % _carousel_latex(form, b, steps) for b in _carousels(form)]
    cotangents = [r"\delta^{%s}_t &= %s" % (_latex_name(_label(form, names[0])), _latex_of(form, expr))
                  for names, expr in _deltas(form)]
    cotangents += [r"\bar{%s}_{t-1} &= %s" % (s, _latex_of(form, e)) for s, e in form.carry]
    gradients = []
    for g in form.gradients:
        label = _latex_name(_label(form, g.param))
        tail = r"\, %s^{\top}" % _latex_of(form, g.operand) if g.operand is not None else ""
        gradients.append(r"\frac{\partial L}{\partial %s} &= \sum_{t=1}^{%d} \delta^{%s}_t%s"
                         % (_latex_name(g.param), steps, label, tail))
    return {"step": [r"%s_t &= %s" % (name, _latex_of(form, e)) for name, e in form.equations],
            "jacobian": jacobian, "cotangents": cotangents, "gradients": gradients}


def matrix_latex(layer: Layer, steps: int) -> str:
    """The same derivation as one LaTeX ``align*`` block."""
    return align([row for rows in matrix_latex_sections(layer, steps).values() for row in rows])


def matrix_json(layer: Layer, steps: int) -> dict:
    """The derivation as data: every formula as text and LaTeX."""
    form = matrix_form(layer.core)

    def both(e):
        return {"text": _text_of(form, e), "latex": _latex_of(form, e)}

    return {
        "cell": layer.name, "variant": layer.variant, "hidden": layer.n, "input_size": layer.m, "steps": steps,
        "form": "matrix",
        "step": {name: both(e) for name, e in form.equations},
        "jacobian_blocks": [{"of": b.of, "wrt": b.wrt, **both(b.expr)} for b in form.blocks],
        "path_products": [{"of": b.of, "wrt": b.wrt, "scope": f"along the {b.of} path alone (the other paths held fixed)",
                           "name": path_only(f"∂{b.of}_T/∂{b.of}_0", "", b.of)[0],
                           "text": f"diag(∏_{{t=1}}^{steps} {_text_of(form, b.expr.args[0])})",
                           "latex": _carousel_latex(form, b, steps)[1]}
                          for b in _carousels(form)],
        "cotangents": [{"name": _label(form, names[0]), "params": names, **both(expr)}
                       for names, expr in _deltas(form)],
        "carry": {s: both(e) for s, e in form.carry},
        "gradients": {g.param: {"delta": _label(form, g.param),
                                "operand": str(g.operand) if g.operand is not None else None}
                      for g in form.gradients},
    }
