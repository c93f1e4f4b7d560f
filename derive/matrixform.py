"""Derivations in matrix form, the same size for every hidden size n.

From a cell's core (``derive.core``): the step as vector equations, each block
of J_t = ∂s_t/∂s_{t−1} as Σ diag(·) W + diag(·), and BPTT as the backward
recursion it is, ∂L/∂W = Σ_t δ_t v_tᵀ with δ_t the cotangent of the product W v.

The blocks come from pushing ∂/∂r_{t−1} forward through the core: a product
P = W v has ∂P = W ∂v, an elementwise quantity q = f(u, …) has
∂q = Σ_u diag(∂f/∂u) ∂u.  Weights are noncommutative symbols, so products keep
their order, and neighbouring diagonals merge, diag(a) diag(b) = diag(a ⊙ b).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from .core import Core, stages
from .rules import stage_inputs, stage_vjp


class diag(sp.Function):
    """diag(a): the n × n matrix with the vector a on its diagonal (a noncommutative factor)."""

    is_commutative = False

    @classmethod
    def eval(cls, arg):
        if arg == 0:
            return sp.S.Zero
        if arg == 1:
            return sp.S.One

    def _latex(self, printer, exp=None):
        return r"\operatorname{diag}\left(%s\right)" % printer._print(self.args[0])

    def _sympystr(self, printer):
        return f"diag({printer._print(self.args[0])})"


@dataclass(frozen=True)
class Block:
    """∂(of)_t/∂(wrt)_{t−1} as a sum of terms diag(·) W diag(·) …, in order."""

    of: str
    wrt: str
    expr: sp.Expr


@dataclass(frozen=True)
class Gradient:
    """∂L/∂θ = Σ_t (cotangent)_t (operand)_tᵀ for a weight, Σ_t (cotangent)_t for a vector."""

    param: str
    cotangent: sp.Expr          # δ_t, elementwise in the step's values and the state cotangents
    operand: sp.Expr | None     # v_t for a weight applied to v_t; None for an elementwise parameter


@dataclass(frozen=True)
class MatrixForm:
    """A cell's step, Jacobian blocks and BPTT, valid for every n."""

    core: Core
    equations: tuple[tuple[str, sp.Expr], ...]
    blocks: tuple[Block, ...]
    carry: tuple[tuple[str, sp.Expr], ...]   # s̄_{t−1} in terms of s̄_t: the backward recursion
    gradients: tuple[Gradient, ...]


def weight_symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, commutative=False)


def cotangent(name: str, label: str = "t") -> sp.Symbol:
    """s̄_t = ∂L/∂s_t, shown with a bar."""
    return sp.Symbol(f"{name}\u0304_{label}", real=True)


def _latex_name(name: str) -> str:
    head, _, rest = name.partition("_")
    return f"{head}_{{{rest}}}" if rest else head


def product_symbol(m) -> sp.Symbol:
    """W v as one symbol for display: ``W_hh h_{t-1}``, ``W_hn (h_{t-1} ⊙ r_t)``."""
    operand = elementwise_text(m.operand)
    return sp.Symbol(f"{m.weight} {operand if m.operand.is_Symbol else f'({operand})'}", real=True)


def back_symbol(m) -> sp.Symbol:
    """Wᵀ δ_t: what a product sends back to its operand."""
    return sp.Symbol(f"{m.weight}ᵀ δ[{m.weight}]_t", real=True)


def latex_names(core: Core) -> dict[sp.Symbol, str]:
    """How the display symbols of ``core``'s matrix form print in LaTeX."""
    names = {cotangent(s): r"\bar{%s}_{t}" % s for s in core.states}
    for m in core.maps:
        operand = latex(m.operand)
        operand = operand if m.operand.is_Symbol else r"\left(%s\right)" % operand
        names[product_symbol(m)] = f"{_latex_name(m.weight)} {operand}"
        names[back_symbol(m)] = r"%s^{\top} \delta^{%s}_{t}" % (_latex_name(m.weight), _latex_name(m.weight))
    return names


class _Text(StrPrinter):
    """⊙ between vectors, a space before a matrix, ² for squares, σ for the sigmoid."""

    def _print_Mul(self, expr):
        scalar = [f for f in expr.args if f.is_commutative]
        matrices = [f for f in expr.args if not f.is_commutative]
        coeff, rest = sp.Mul(*scalar).as_coeff_Mul()
        parts = [] if rest == 1 else [self.parenthesize(f, PRECEDENCE["Mul"]) for f in sp.Mul.make_args(rest)]
        text = " ⊙ ".join(parts)
        if coeff == -1:
            text = "-" + text if text else "-1"
        elif coeff != 1 or not text and not matrices:
            text = f"{self._print(coeff)} " + text if text else self._print(coeff)
        return " ".join([text] * bool(text) + [self._print(f) for f in matrices]) if matrices else text

    def _print_Pow(self, expr):
        if expr.exp == 2:
            return self.parenthesize(expr.base, PRECEDENCE["Pow"]) + "²"
        return super()._print_Pow(expr)

    def _print_Function(self, expr):
        if type(expr).__name__ == "sigmoid":
            return f"σ({self._print(expr.args[0])})"
        return super()._print_Function(expr)


class _Latex(LatexPrinter):
    """⊙ between vectors, juxtaposition before a matrix."""

    def _print_Mul(self, expr):
        matrices = [f for f in expr.args if not f.is_commutative]
        if not matrices:
            return super()._print_Mul(expr)
        scalar = sp.Mul(*(f for f in expr.args if f.is_commutative))
        head = "" if scalar == 1 else self.parenthesize(scalar, PRECEDENCE["Mul"]) + " \\odot "
        return head + " ".join(self._print(f) for f in matrices)


def elementwise_text(expr) -> str:
    """An elementwise expression as text: ⊙ for products, ² for squares, W v for matrix products."""
    return _Text().doprint(expr)


def latex(expr, names: dict | None = None) -> str:
    """LaTeX with ⊙ between vectors; ``names`` gives display symbols their LaTeX (``latex_names``)."""
    return _Latex({"symbol_names": names or {}, "mul_symbol": r" \odot "}).doprint(expr)


def _merge(expr: sp.Expr) -> sp.Expr:
    """diag(a) diag(b) -> diag(a b) within each product of an expanded sum."""
    def merge_mul(term):
        if not term.is_Mul:
            return term
        scalar, factors = [], []
        for f in term.args:
            if f.is_commutative:
                scalar.append(f)
            elif factors and isinstance(f, diag) and isinstance(factors[-1], diag):
                factors[-1] = diag(sp.factor_terms(factors[-1].args[0] * f.args[0]))
            else:
                factors.append(f)
        if scalar and factors and isinstance(factors[0], diag):
            factors[0] = diag(sp.factor_terms(sp.Mul(*scalar) * factors[0].args[0]))
            scalar = []
        return sp.Mul(*scalar, *factors)
    return sp.Add(*(merge_mul(t) for t in sp.Add.make_args(sp.expand(expr))))


def _collect(expr: sp.Expr) -> sp.Expr:
    """Terms with the same matrix tail (… W) summed into one diagonal in front."""
    groups: dict = {}
    for term in sp.Add.make_args(expr):
        factors = list(term.args) if term.is_Mul else [term]
        head = factors[0].args[0] if factors and isinstance(factors[0], diag) else None
        tail = sp.Mul(*(factors[1:] if head is not None else factors))
        if head is None:
            head, tail = (sp.Integer(1), tail) if not tail.is_commutative else (tail, sp.Integer(1))
        groups[tail] = groups.get(tail, 0) + head
    return sp.Add(*(diag(sp.factor_terms(h)) * tail if tail != 1 else diag(sp.factor_terms(h))
                    for tail, h in groups.items()))


def _rename(core: Core, expr: sp.Expr) -> sp.Expr:
    """Product symbols ``W_hi·h_{t-1}`` as the display symbols ``W_hi h_{t-1}``."""
    return expr.xreplace({m.symbol: product_symbol(m) for m in core.maps})


def jacobian_blocks(core: Core) -> tuple[Block, ...]:
    """Every block ∂s_t/∂r_{t−1} in matrix form."""
    out = []
    for wrt, prev in core.prev:
        d: dict[sp.Symbol, sp.Expr] = {p: (sp.S.One if p == prev else sp.S.Zero) for _, p in core.prev}
        for stage in stages(core):
            for m in stage.maps:
                inner = sum((diag(sp.diff(m.operand, u)) * d.get(u, 0) for u in m.operand.free_symbols), sp.S.Zero)
                d[m.symbol] = weight_symbol(m.weight) * inner
            for name, expr in stage.equations:
                rename = {expr: core.current(name)}
                d[core.current(name)] = sum(
                    (diag(sp.diff(expr, u).xreplace(rename)) * d[u] for u in expr.free_symbols if d.get(u, 0) != 0),
                    sp.S.Zero)
        for s in core.states:
            out.append(Block(s, wrt, _collect(_merge(d[core.current(s)]))))
    return tuple(out)


def constant_jacobian(core: Core) -> str | None:
    """The weight W when the step's Jacobian is W itself at every step (one state, no elementwise
    factor, as in the linear RNN): then ∂s_T/∂s_0 = W^T, whatever the inputs and the other weights.

    >>> from derive.cells import CELLS
    >>> from derive.core import make_core
    >>> constant_jacobian(make_core(CELLS["rnn"])), constant_jacobian(make_core(CELLS["rnn"], None, "tanh"))
    ('W_hh', None)
    """
    blocks = jacobian_blocks(core)
    if len(blocks) == 1 and isinstance(blocks[0].expr, sp.Symbol) and not blocks[0].expr.is_commutative:
        return blocks[0].expr.name
    return None


def _backward(core: Core) -> dict:
    """Cotangents of every product and parameter at step t, and of s_{t−1}, in terms of s̄_t."""
    cot: dict[sp.Symbol, sp.Expr] = {core.current(s): cotangent(s) for s in core.states}
    for stage in reversed(stages(core)):
        if stage.equations:
            bars, exprs = stage_vjp(core, stage)
            outside = {b: cot.get(core.current(name), sp.S.Zero) for b, (name, _) in zip(bars, stage.equations)}
            for u, e in zip(stage_inputs(core, stage), exprs):
                cot[u] = cot.get(u, sp.S.Zero) + sp.factor_terms(e.xreplace(outside))
        for m in stage.maps:
            back = back_symbol(m)
            for u in m.operand.free_symbols:
                cot[u] = cot.get(u, sp.S.Zero) + sp.diff(m.operand, u) * back
    return cot


@cache
def matrix_form(core: Core) -> MatrixForm:
    """The step, J_t's blocks and BPTT of ``core`` in matrix form."""
    cot = _backward(core)
    gradients = [Gradient(m.weight, sp.factor_terms(cot.get(m.symbol, 0)), m.operand) for m in core.maps]
    gradients += [Gradient(name, sp.factor_terms(cot.get(sym, 0)), None) for name, sym in core.params]
    carry = tuple((s, cot.get(prev, sp.S.Zero)) for s, prev in core.prev)
    return MatrixForm(
        core=core,
        equations=tuple((name, _rename(core, e)) for name, e in core.equations),
        blocks=jacobian_blocks(core), carry=carry, gradients=tuple(gradients),
    )
