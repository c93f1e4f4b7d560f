"""A cell's elementwise core: its step with every weight matrix kept whole.

Every cell is linear maps followed by an elementwise function: the LSTM's gates
are σ(W_xi x_t + W_hi h_{t-1} + b_i), …, and everything after the products is
per unit.  The core is found, not written: the cell's own ``step`` runs on one
scalar symbol per state, per quantity and per parameter, so that a product
W·v in the result *is* the matrix product W v of the real cell.  Each one is cut
out and named (``W_hi·h_{t-1}``), and what remains is elementwise, the same
size for every hidden size n.  SymPy differentiates that once; the matrices
are left to BLAS.

A product whose operand is itself elementwise (Cho's GRU applies W_hn to
r ⊙ h_{t-1}) is kept as such: the operand is computed per unit first.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cache

import sympy as sp

from .cell import CellDef, Resolved, StepInputs, display_name, label, variant_and_activation
from .symbols import quantity


@dataclass(frozen=True)
class LinearMap:
    """P = W v: weight matrix ``weight`` applied to the elementwise ``operand`` v."""

    symbol: sp.Symbol
    weight: str
    operand: sp.Expr


@dataclass(frozen=True)
class Core(Resolved):
    """The elementwise core of a cell at one variant and activation.

    ``equations`` are scalar: each quantity of step t in terms of s_{t-1}
    (``prev``), x_t, the elementwise parameters (biases, peepholes), the
    products ``maps`` and the quantities before it.  They hold for every unit
    i of every hidden size, with W v read as (W v)_i.
    """

    definition: CellDef
    variant: str
    activation: str | None
    prev: tuple[tuple[str, sp.Symbol], ...]
    x: sp.Symbol
    params: tuple[tuple[str, sp.Symbol], ...]
    weights: tuple[str, ...]
    maps: tuple[LinearMap, ...]
    equations: tuple[tuple[str, sp.Expr], ...]

    def current(self, name: str) -> sp.Symbol:
        """The scalar symbol of quantity ``name`` at step t (h_t)."""
        return _current(name)

    def param_table(self):
        """(name, rows, cols) of every free parameter, rows and cols ``"n"``, ``"m"`` or ``"1"``."""
        return tuple((p.name, p.rows, p.cols) for p in self.definition.params[self.variant]
                     if p.name not in self.definition.fixed)

    def shapes(self, n: int, m: int) -> dict[str, tuple[int, ...]]:
        """Each parameter's array shape at hidden size n, input size m (vectors as (n,))."""
        size = {"n": n, "m": m, "1": 1}
        return {name: (size[r], size[c]) if c != "1" else (size[r],) for name, r, c in self.param_table()}


@cache
def _current(name: str) -> sp.Symbol:
    return quantity(name, "t", 1)[0]


@dataclass(frozen=True)
class Layer:
    """A core at hidden size n and input size m: one recurrent layer, as PyTorch has it."""

    core: Core
    n: int
    m: int

    @property
    def name(self) -> str:
        return self.core.name

    @property
    def variant(self) -> str:
        return self.core.variant

    @property
    def states(self) -> tuple[str, ...]:
        return self.core.states

    @property
    def label(self) -> str:
        return label(self.core.definition, self.core.variant, self.core.activation)

    def param_names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.core.param_table())

    def display_name(self, param_name: str) -> str:
        return display_name(self.core.definition, param_name, self.n, self.m)

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return self.core.shapes(self.n, self.m)


@dataclass(frozen=True)
class Stage:
    """A run of work of one kind: products (``maps``) or elementwise ``equations``."""

    maps: tuple[LinearMap, ...] = ()
    equations: tuple[tuple[str, sp.Expr], ...] = ()


def _scalar_inputs(definition: CellDef, variant: str, activation) -> tuple[StepInputs, dict]:
    symbols = {}
    for p in definition.params[variant]:
        if p.name in definition.fixed:
            symbols[p.name] = sp.Rational(Fraction(definition.fixed[p.name]))
        else:
            symbols[p.name] = sp.Symbol(p.name, real=True)
    inputs = StepInputs(
        prev={s: quantity(s, "t-1", 1) for s in definition.states},
        x=quantity("x", "t", 1),
        p={name: sp.ImmutableMatrix([[v]]) for name, v in symbols.items()},
        q=lambda name: quantity(name, "t", 1), activation=activation, variant=variant,
    )
    return inputs, symbols


def _map_symbol(weight: str, operand: sp.Expr) -> sp.Symbol:
    shown = str(operand) if operand.is_Symbol else f"({operand})"
    return sp.Symbol(f"{weight}·{shown}", real=True)


def _cut_products(cell: str, expr: sp.Expr, weights: dict, x: sp.Symbol, found: dict) -> sp.Expr:
    """``expr`` with each product W·v replaced by the symbol of the map W v."""

    def is_product(e):
        return e.is_Mul and any(a in weights for a in e.args)

    def cut(e):
        ws = [a for a in e.args if a in weights]
        if len(ws) != 1:
            raise ValueError(f"cell {cell}: {e} multiplies weight matrices elementwise")
        w = ws[0]
        coeff, operand = sp.Mul(*(a for a in e.args if a != w)).as_coeff_Mul()
        cols = weights[w]
        if cols == "m" and operand.free_symbols - {x} or cols == "n" and x in operand.free_symbols:
            raise ValueError(f"cell {cell}: {w} is applied to {operand}, which is not a vector of its size")
        key = (str(w), operand)
        if key not in found:
            found[key] = LinearMap(_map_symbol(str(w), operand), str(w), operand)
        return coeff * found[key].symbol

    out = expr.replace(is_product, cut)
    left = out.free_symbols & set(weights)
    if left:
        raise ValueError(f"cell {cell}: {sorted(map(str, left))[0]} is used outside a product W·v")
    return out


@cache
def make_core(definition: CellDef, variant: str | None = None, activation: str | None = None) -> Core:
    """The core of ``definition``: its step on scalars, the matrix products cut out.

    >>> from derive.cells import CELLS
    >>> core = make_core(CELLS["rnn"], activation="tanh")
    >>> name, h = core.equations[0]
    >>> name, sorted(map(str, h.free_symbols))
    ('h', ['W_hh·h_{t-1}', 'W_xh·x_t', 'b_h'])
    >>> [(m.weight, m.operand) for m in core.maps]
    [('W_hh', h_{t-1}), ('W_xh', x_t)]
    """
    variant, act = variant_and_activation(definition, variant, activation)
    inputs, symbols = _scalar_inputs(definition, variant, act)
    weights = {symbols[p.name]: p.cols for p in definition.params[variant]
               if p.cols in ("n", "m") and p.name not in definition.fixed}
    found: dict = {}
    equations = tuple(
        (name, _cut_products(definition.name, expr[0], weights, inputs.x[0], found))
        for name, expr in definition.step(inputs)
    )
    params = tuple((p.name, symbols[p.name]) for p in definition.params[variant]
                   if p.name not in definition.fixed and symbols[p.name] not in weights)
    return Core(
        definition, variant, act.name if act else None,
        prev=tuple((s, v[0]) for s, v in inputs.prev.items()), x=inputs.x[0], params=params,
        weights=tuple(str(w) for w in weights), maps=tuple(found.values()), equations=equations,
    )


@cache
def scalar_core(core: Core) -> Core:
    """The core at n = m = 1, where every product W v is the scalar w·v: its maps multiplied out
    and its weights elementwise parameters, so that a step is one elementwise stage.

    >>> from derive.cells import CELLS
    >>> fused = scalar_core(make_core(CELLS["rnn"], activation="tanh"))
    >>> fused.maps, [name for name, _ in fused.params], fused.equations[0][1]
    ((), ['W_xh', 'W_hh', 'b_h'], tanh(W_hh*h_{t-1} + W_xh*x_t + b_h))
    """
    weight = {name: sp.Symbol(name, real=True) for name in core.weights}
    product = {m.symbol: weight[m.weight] * m.operand for m in core.maps}
    order = [p.name for p in core.definition.params[core.variant] if p.name not in core.definition.fixed]
    symbols = {**dict(core.params), **weight}
    return Core(core.definition, core.variant, core.activation, core.prev, core.x,
                params=tuple((name, symbols[name]) for name in order), weights=(), maps=(),
                equations=tuple((name, expr.xreplace(product)) for name, expr in core.equations))


def stages(core: Core) -> tuple[Stage, ...]:
    """The step as alternating runs of products and elementwise equations, in an order
    where everything is computed after what it reads (LSTM: one run of each)."""
    known = {core.x, *(v for _, v in core.prev), *(v for _, v in core.params)}
    pending_maps, pending_eqs, out = list(core.maps), list(core.equations), []
    while pending_maps or pending_eqs:
        ready = tuple(m for m in pending_maps if m.operand.free_symbols <= known)
        if ready:
            out.append(Stage(maps=ready))
            known |= {m.symbol for m in ready}
            pending_maps = [m for m in pending_maps if m not in ready]
        run = []
        while pending_eqs and pending_eqs[0][1].free_symbols <= known:
            name, expr = pending_eqs.pop(0)
            run.append((name, expr))
            known.add(core.current(name))
        if run:
            out.append(Stage(equations=tuple(run)))
        elif not ready:
            raise ValueError(f"cell {core.name}: {pending_eqs[0][0]} reads something never defined")
    return tuple(out)
