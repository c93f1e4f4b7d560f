"""Each stage's rules, derived once on scalars: the vector-Jacobian product (BPTT), the
Jacobian-vector product (forward mode), and the stage ready for any printer (NumPy, C).

One definition, several printers: ``numeric.engine.stages`` lambdifies these rules and
``numeric.engine.native`` prints them as C.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp

from .activations import relu
from .core import Core, LinearMap, Stage, stages


def stage_inputs(core: Core, stage: Stage) -> tuple[sp.Symbol, ...]:
    """What an elementwise stage reads from outside itself, in a fixed order."""
    own = {core.current(name) for name, _ in stage.equations}
    free = set().union(*(e.free_symbols for _, e in stage.equations)) - own
    return tuple(sorted(free, key=str))


def stage_vjp(core: Core, stage: Stage) -> tuple[tuple[sp.Symbol, ...], tuple[sp.Expr, ...]]:
    """The vector-Jacobian product of an elementwise stage, unit by unit.

    Given the cotangents ā_q of the stage's quantities (one symbol each, named
    ``cot_q``), the cotangent of every input u is Σ_q ā_q dq/du, where the
    total derivative runs backwards through the stage's own equations.  Local
    partials are renamed back to the quantity they differentiate, so
    tanh'(a) reads 1 − h_t².  Returns (the cotangent symbols, one expression per
    ``stage_inputs``).
    """
    names = [name for name, _ in stage.equations]
    cot_in = tuple(sp.Symbol(f"cot_{name}", real=True) for name in names)
    total = {core.current(name): c for name, c in zip(names, cot_in)}
    inputs = stage_inputs(core, stage)
    result = {u: sp.Integer(0) for u in inputs}
    for name, expr in reversed(stage.equations):
        rename = {expr: core.current(name)}
        bar = total[core.current(name)]
        for u in expr.free_symbols:
            partial = sp.diff(expr, u).xreplace(rename)
            if u in result:
                result[u] += bar * partial
            else:
                total[u] = total[u] + bar * partial
    return cot_in, tuple(result[u] for u in inputs)


def stage_jvp(core: Core, stage: Stage) -> tuple[tuple[sp.Symbol, ...], tuple[sp.Expr, ...]]:
    """The Jacobian-vector product of an elementwise stage, unit by unit: q̇ = Σ_u (dq/du) u̇.

    Given a tangent u̇ for each ``stage_inputs`` (one symbol each, named ``dot_u``), the
    tangent of each quantity, the total derivative running forwards through the stage's own
    equations.  Local partials are renamed to the quantity they differentiate, as in
    ``stage_vjp``.  Returns (the tangent symbols, one expression per quantity).
    """
    inputs = stage_inputs(core, stage)
    dots = tuple(sp.Symbol(f"dot_{u}", real=True) for u in inputs)
    tangent = dict(zip(inputs, dots))
    out = []
    for name, expr in stage.equations:
        rename = {expr: core.current(name)}
        d = sum((sp.diff(expr, u).xreplace(rename) * tangent[u] for u in expr.free_symbols), sp.Integer(0))
        tangent[core.current(name)] = d
        out.append(d)
    return dots, tuple(out)


def operand_partials(m: LinearMap) -> tuple[tuple[sp.Symbol, sp.Expr], ...]:
    """∂v/∂u for each symbol u of a product's operand v (v = r_t h_{t-1}: h_{t-1}, r_t)."""
    return tuple((u, sp.diff(m.operand, u)) for u in sorted(m.operand.free_symbols, key=str))


#: Functions cheaper to recompute than to keep for the backward pass.
CHEAP = (sp.Heaviside, relu)


@dataclass(frozen=True)
class Elementwise:
    """An elementwise stage ready for any printer (NumPy's lambdify, C's ccode).

    ``forward``: the quantities, then the ``saved`` values, in the stage's ``inputs`` alone.
    ``vjp``: each input's cotangent Σ_q q̄ ∂q/∂u, in the inputs, the quantities, the saved
    values and the cotangents ``outside`` (of the quantities a later stage or step reads; the
    others' are 0).  What the VJP would recompute (tanh(c_t) in h_t = o_t tanh(c_t)) is saved
    by the forward pass instead, as autograd saves it.  (Forward mode's rules are
    ``stage_jvp``'s, derived only when asked for.)
    """

    quantities: tuple[sp.Symbol, ...]
    inputs: tuple[sp.Symbol, ...]
    forward: tuple[sp.Expr, ...]
    saved: tuple[sp.Symbol, ...]
    received: tuple[sp.Symbol, ...]  # the quantities read later, whose cotangents come from outside
    outside: tuple[sp.Symbol, ...]   # their cotangent symbols, cot_q
    vjp: tuple[sp.Expr, ...]


def _expanded(core: Core, stage: Stage) -> list[sp.Expr]:
    """The stage's equations in its inputs alone (a later one's use of an earlier one inlined)."""
    done: dict[sp.Symbol, sp.Expr] = {}
    for name, expr in stage.equations:
        done[core.current(name)] = expr.xreplace(done)
    return list(done.values())


def _read_later(core: Core, later: tuple[Stage, ...]) -> set:
    """Symbols read after a stage (the states, by the next step): their cotangents come from outside."""
    read = {core.current(s) for s in core.states}
    for stage in later:
        read |= {u for _, e in stage.equations for u in e.free_symbols}
        read |= {u for m in stage.maps for u in m.operand.free_symbols}
    return read


def _elementwise(core: Core, stage: Stage, read: set, first_saved: int) -> Elementwise:
    quantities = tuple(core.current(name) for name, _ in stage.equations)
    cot, exprs = stage_vjp(core, stage)
    received = tuple(q for q in quantities if q in read)
    outside = tuple(c for q, c in zip(quantities, cot) if q in read)
    exprs = [e.xreplace({c: 0 for c in cot if c not in outside}) for e in exprs]
    again = sorted({f for e in exprs for f in e.atoms(sp.Function) if not isinstance(f, CHEAP)}, key=str)
    saved = tuple(sp.Symbol(f"saved_{first_saved + i}", real=True) for i in range(len(again)))
    forward = _expanded(core, stage)
    expand = dict(zip(quantities, forward))
    return Elementwise(quantities, stage_inputs(core, stage), tuple(forward) + tuple(f.xreplace(expand) for f in again),
                       saved, received, outside, tuple(e.xreplace(dict(zip(again, saved))) for e in exprs))


@cache
def printable_stages(core: Core) -> tuple[tuple[LinearMap, ...] | Elementwise, ...]:
    """The core's step for a printer: each stage's products, or its elementwise rules.

    >>> from derive.cells import CELLS
    >>> from derive.core import make_core
    >>> steps = printable_stages(make_core(CELLS["rnn"], activation="tanh"))
    >>> [type(s).__name__ for s in steps], steps[1].vjp
    (['tuple', 'Elementwise'], (cot_h*(1 - h_t**2), cot_h*(1 - h_t**2), cot_h*(1 - h_t**2)))
    """
    all_stages, out, saved = stages(core), [], 0
    for index, stage in enumerate(all_stages):
        if stage.maps:
            out.append(stage.maps)
            continue
        out.append(_elementwise(core, stage, _read_later(core, all_stages[index + 1:]), saved))
        saved += len(out[-1].saved)
    return tuple(out)
