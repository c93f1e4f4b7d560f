"""The core's stages compiled for NumPy: the products grouped by operand, each elementwise run
as one forward kernel and one vector-Jacobian product (VJP) kernel, and a tangent (JVP) kernel.

Everything here is derived once per core by SymPy on scalars (``derive.core``) and is the same
for every hidden size n and every batch shape: the kernels broadcast over (..., B, n).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Callable

import numpy as np
import sympy as sp

from derive.compile import ordered_lambdify
from derive.core import Core, LinearMap, stages
from derive.rules import Elementwise, operand_partials, printable_stages, stage_inputs, stage_jvp


def sigmoid(a):
    """σ(a) = 1 / (1 + e^{−a}) on one new array.

    NumPy's exp is vectorised and its tanh is not: this is about twice as fast as
    (1 + tanh(a/2)) / 2, and as exact (2.4e-16 relative, measured against mpmath over
    ±1e-300..±30).  e^{−a} = inf for a < −709 gives σ = 0, as it should; complex a
    (the complex-step check) works the same way.
    """
    out = np.negative(a)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    return out


MODULES = [{"sigmoid": sigmoid, "relu": lambda a: np.maximum(a, 0.0),
            "Heaviside": lambda a, at_zero=0.0: np.heaviside(a, at_zero)}, "numpy"]


def key(expr: sp.Expr) -> str:
    """A value's name in a step's values: its printed form.  The engine's dictionaries are keyed by
    these, not by SymPy objects, whose hashing costs a Python call on every lookup."""
    return str(expr)


@dataclass(frozen=True)
class Group:
    """Products sharing one operand v, computed as one matrix product with stacked weights.
    Every name here is a ``key``."""

    operand: sp.Expr
    key: str
    maps: tuple[LinearMap, ...]
    map_keys: tuple[str, ...]
    value: Callable | None  # v from the step's values, when v is not a plain symbol
    partials: tuple[tuple[str, Callable], ...]
    inputs: tuple[str, ...]
    of_x: bool  # v reads x alone: computed for all steps before the scan


@dataclass(frozen=True)
class Kernels:
    """One stage, compiled: products, or an elementwise forward kernel with its VJP and JVP."""

    groups: tuple[Group, ...] = ()
    received: tuple[str, ...] = ()  # the quantities whose cotangent comes from outside the stage
    computed: tuple[str, ...] = ()  # every quantity of the stage
    outputs: tuple[str, ...] = ()  # the quantities, then values saved for the VJP
    inputs: tuple[str, ...] = ()
    forward: Callable | None = None
    cotangents: tuple[tuple[str, int], ...] = ()  # (input, which VJP output), for nonzero ones
    expressions: tuple[tuple[sp.Symbol, sp.Expr], ...] = ()  # each input's cotangent, symbolically
    vjp: Callable | None = None
    x_vjp: Callable | None = None  # the same arguments -> x's cotangent, where x is read here directly
    # What every printer prints: (kernel, its arguments, its expressions) for forward, vjp and x_vjp.
    definitions: tuple[tuple[str, tuple[sp.Symbol, ...], tuple[sp.Expr, ...]], ...] = ()


def _group(core: Core, maps: tuple[LinearMap, ...]) -> tuple[Group, ...]:
    by_operand: dict[sp.Expr, list[LinearMap]] = {}
    for m in maps:
        by_operand.setdefault(m.operand, []).append(m)
    out = []
    for operand, members in by_operand.items():
        inputs = tuple(sorted(operand.free_symbols, key=str))
        value = None if operand.is_Symbol else ordered_lambdify([operand], inputs, MODULES)
        partials = tuple((key(u), ordered_lambdify([d], inputs, MODULES)) for u, d in operand_partials(members[0]))
        out.append(Group(operand, key(operand), tuple(members), tuple(key(m.symbol) for m in members), value,
                         partials, tuple(map(key, inputs)), of_x=operand.free_symbols <= {core.x}))
    return tuple(out)


def _elementwise(core: Core, rules: Elementwise) -> Kernels:
    """The stage's rules (``derive.rules``) lambdified: forward, VJP, x's cotangent, JVP."""
    nonzero = [(u, e) for u, e in zip(rules.inputs, rules.vjp) if e != 0]
    # x's cotangent is its own kernel: only ∂L/∂x asks for it (most runs would waste it every step).
    x_cot = [e for u, e in nonzero if u == core.x]
    nonzero = [(u, e) for u, e in nonzero if u != core.x]
    # W_xi x and W_hi h (and b_i) share one cotangent: computed once, one array for all three.
    distinct = tuple(dict.fromkeys(e for _, e in nonzero))
    vjp_args = rules.inputs + rules.quantities + rules.saved + rules.outside
    definitions = (("forward", rules.inputs, rules.forward), ("vjp", vjp_args, distinct),
                   *((("x_vjp", vjp_args, tuple(x_cot)),) if x_cot else ()))
    return Kernels(
        received=tuple(map(key, rules.received)), computed=tuple(map(key, rules.quantities)),
        outputs=tuple(map(key, rules.quantities + rules.saved)), inputs=tuple(map(key, rules.inputs)),
        cotangents=tuple((key(u), distinct.index(e)) for u, e in nonzero), expressions=tuple(nonzero),
        definitions=definitions,
        **{name: ordered_lambdify(list(exprs), args, MODULES) for name, args, exprs in definitions},
    )


@cache
def compile_jvps(core: Core) -> tuple[Callable | None, ...]:
    """Each stage's Jacobian-vector product, (inputs, quantities, the inputs' tangents) -> the
    quantities' tangents (None for products); compiled only when forward mode runs."""
    out = []
    for stage in stages(core):
        if stage.maps:
            out.append(None)
            continue
        dots, tangents = stage_jvp(core, stage)
        quantities = [core.current(name) for name, _ in stage.equations]
        out.append(ordered_lambdify(list(tangents), list(stage_inputs(core, stage)) + quantities + list(dots), MODULES))
    return tuple(out)


@cache
def compile_stages(core: Core) -> tuple[Kernels, ...]:
    """Every stage's kernels, compiled once per core (the same for every n)."""
    return tuple(Kernels(groups=_group(core, rules)) if isinstance(rules, tuple) else _elementwise(core, rules)
                 for rules in printable_stages(core))


def groups(core: Core) -> tuple[Group, ...]:
    """Every product group of the step, in stage order."""
    return tuple(g for k in compile_stages(core) for g in k.groups)


@dataclass(frozen=True)
class Sharing:
    """Cotangents BPTT need not store twice: a group of input products whose every map has
    the cotangent of a recurrent group's map (W_xi x and W_hi h), and parameters whose
    cotangent is a stored product's (b_i), summed from the stored array once at the end."""

    same_bar: tuple[tuple[str, str], ...]        # (input group's operand, recurrent one's)
    from_bar: tuple[tuple[str, str, int], ...]   # (parameter, group operand, block)


@cache
def sharing(core: Core) -> Sharing:
    kernels = compile_stages(core)
    expr = {key(u): e for k in kernels for u, e in k.expressions}
    all_groups = groups(core)
    recurrent = [g for g in all_groups if not g.of_x]

    def same(a, b):
        return expr.get(a) is not None and expr.get(a) == expr.get(b)

    pairs = tuple((g.key, h.key) for g in all_groups if g.of_x for h in recurrent[:1]
                  if len(g.maps) == len(h.maps) and all(same(a, b) for a, b in zip(g.map_keys, h.map_keys)))
    stored = [(g.key, j, m) for g in all_groups for j, m in enumerate(g.map_keys)]
    from_bar = {}
    for _, sym in core.params:
        for operand, j, m in stored:
            if same(key(sym), m):
                from_bar.setdefault(key(sym), (key(sym), operand, j))
    return Sharing(pairs, tuple(from_bar.values()))


@dataclass(frozen=True)
class Plan:
    """What every step of a core reads, looked up once (a cache lookup hashes the whole core)."""

    kernels: tuple[Kernels, ...]
    backwards: tuple[Kernels, ...]  # the stages in reverse, for BPTT
    groups: tuple[Group, ...]
    sharing: Sharing
    aliased: dict            # an input group's operand -> the recurrent group's, whose cotangents it shares
    summed_later: frozenset  # parameters whose cotangents are summed from a stored product's at the end
    params: tuple[tuple[str, str], ...]  # (parameter, its key)
    now: tuple[tuple[str, str], ...]     # (state, its key at step t)
    prev: tuple[tuple[str, str], ...]    # (state, its key at step t − 1)
    x: str


@cache
def plan(core: Core) -> Plan:
    kernels, share = compile_stages(core), sharing(core)
    return Plan(kernels, kernels[::-1], groups(core), share, dict(share.same_bar),
                frozenset(name for name, _, _ in share.from_bar), tuple((name, key(sym)) for name, sym in core.params),
                tuple((s, key(core.current(s))) for s in core.states), tuple((s, key(sym)) for s, sym in core.prev),
                key(core.x))
