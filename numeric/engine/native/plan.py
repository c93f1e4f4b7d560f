"""What the C printer needs of a core beside its stages' rules: what a step keeps, and C names.

The rules (forward values, VJP, saved values) are ``derive.rules.printable_stages``, the
same the NumPy engine lambdifies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp

from derive.core import Core, LinearMap
from derive.rules import Elementwise, operand_partials, printable_stages


@dataclass(frozen=True)
class Plan:
    """The stages in order (an ``Elementwise`` stage, or the products of one), and a step's frame."""

    steps: tuple[Elementwise | tuple[LinearMap, ...], ...]
    operands: tuple[sp.Expr, ...]  # operands that are not a plain symbol (r_t h_{t-1}), computed per unit
    stored: tuple[sp.Symbol, ...]  # kept per unit at every step: the states first, then what BPTT reads


def _stored(core: Core, runs: list[Elementwise], operands: tuple[sp.Expr, ...]) -> tuple[sp.Symbol, ...]:
    """The states, then every quantity, product and saved value the backward pass reads."""
    partials = [d for m in core.maps for _, d in operand_partials(m)]
    needed = set().union(*(e.free_symbols for r in runs for e in r.vjp),
                         *(e.free_symbols for e in (*operands, *partials)))
    states = [core.current(s) for s in core.states]
    quantities = [core.current(name) for name, _ in core.equations]
    return tuple(states + [q for q in quantities if q in needed and q not in states]
                 + [m.symbol for m in core.maps if m.symbol in needed] + [s for r in runs for s in r.saved])


@cache
def plan(core: Core) -> Plan:
    """The core's stages ready to print (the same for every n and m).

    >>> from derive.cells import CELLS
    >>> from derive.core import make_core
    >>> p = plan(make_core(CELLS["rnn"], activation="tanh"))
    >>> [type(s).__name__ for s in p.steps], p.stored
    (['tuple', 'Elementwise'], (h_t,))
    >>> p.steps[1].vjp
    (cot_h*(1 - h_t**2), cot_h*(1 - h_t**2), cot_h*(1 - h_t**2))
    """
    steps = printable_stages(core)
    runs = [step for step in steps if isinstance(step, Elementwise)]
    operands = tuple(dict.fromkeys(m.operand for m in core.maps if not m.operand.is_Symbol))
    return Plan(steps, operands, _stored(core, runs, operands))


@dataclass(frozen=True)
class Names:
    """The C variable of every value of a step at a unit (or column), and of its cotangent.

    s_k (state k at t−1), q_k (quantity k), P_k (product k), f_k (saved), v_k (operand k),
    each suffixed by the unit; x_c; p_e and g_e for element e of the flattened parameters
    (a weight's element (r, c) is e = offset + r·cols + c), shared with the output array.
    """

    core: Core
    n: int
    m: int
    table: dict  # symbol or operand -> (prefix, k)
    offsets: dict[str, int]  # parameter -> its first element

    def value(self, sym, r: int) -> str:
        if sym == self.core.x:
            return f"x{r}"
        kind, k = self.table[sym]
        if kind == "p":
            size = self.core.shapes(self.n, self.m)[k][0]
            return f"p{self.offsets[k] + (r if size > 1 else 0)}"
        return f"{kind}{k}_{r}"

    def cot(self, sym, r: int) -> str | None:
        """The C variable holding ū at unit r (None for x, which is not differentiated)."""
        if sym == self.core.x:
            return None
        name = self.value(sym, r)
        return "g" + name[1:] if name.startswith("p") else "d" + name

    def unit(self, r: int, column: bool = False) -> dict:
        """Every symbol of the step at unit r as its C symbol, the cot_q symbols included.

        x is x_r when m = n and x_0 when m = 1 (broadcast), except for a product's operand,
        where r is the column (``column``).
        """
        x = r if column or self.m == self.n else 0
        out = {sym: sp.Symbol(self.value(sym, r)) for sym in self.table if isinstance(sym, sp.Symbol)}
        out[self.core.x] = sp.Symbol(f"x{x}")
        for name, _ in self.core.equations:
            out[sp.Symbol(f"cot_{name}", real=True)] = sp.Symbol(self.cot(self.core.current(name), r))
        return out

    def element(self, weight: str, r: int, c: int) -> int:
        return self.offsets[weight] + r * self.core.shapes(self.n, self.m)[weight][1] + c


def names(core: Core, n: int, m: int) -> Names:
    """The C names of ``core`` at hidden size n and input size m."""
    if m not in (1, n) and any(core.x in e.free_symbols for _, e in core.equations):
        raise ValueError(f"cell {core.name}: x_t enters an equation unit by unit, so the input size must be "
                         f"1 or the hidden size {n}, not {m}")
    p = plan(core)
    table: dict = {sym: ("s", k) for k, (_, sym) in enumerate(core.prev)}
    table.update({core.current(name): ("q", k) for k, (name, _) in enumerate(core.equations)})
    table.update({mp.symbol: ("P", k) for k, mp in enumerate(core.maps)})
    table.update({s: ("f", k) for k, s in enumerate(s for r in p.steps if isinstance(r, Elementwise) for s in r.saved)})
    table.update({v: ("v", k) for k, v in enumerate(p.operands)})
    table.update({sym: ("p", name) for name, sym in core.params})
    offsets, total = {}, 0
    for name, shape in core.shapes(n, m).items():
        offsets[name], total = total, total + int(sp.prod(shape))
    return Names(core, n, m, table, offsets)
