"""The chain rule through time: ∂s_T/∂s_k = J_T ⋯ J_{k+1}, and BPTT.

Two forms of each quantity.  The *general-T* form keeps T and k as symbols
and the per-step quantities indexed (h[t]); its cost does not depend on T, and
it is where closed forms come from.  The *composed* form multiplies the
per-step Jacobians of a concrete small T in per-step symbols; tests check it
against SymPy's derivative of the nested expression.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from .cell import Cell
from .graph import at_index, at_step, jacobian_step, param_jacobian
from .symbols import T, k, t


@dataclass(frozen=True)
class ChainForm:
    """∂(of)_T/∂(wrt)_k for a block of the state, in general-T form.

    ``factor`` is the block's one-step Jacobian J_t.  ``product`` is
    ∏_{t=k+1}^{T} J_t as a SymPy ``Product`` where the block is 1×1 (None for a
    matrix block, whose product is ordered).  ``closed`` is a closed form when
    one exists, and ``scope`` says whether it is the whole derivative
    (``"exact"``) or the product along one path only.
    """

    of: str
    wrt: str
    factor: sp.ImmutableMatrix
    product: sp.Expr | None
    closed: sp.Expr | sp.MatrixExpr | None
    scope: str


@dataclass(frozen=True)
class BpttForm:
    """∂L/∂θ = Σ_{k=T-τ+1}^{T} (∂L/∂s_T)(J_T ⋯ J_{k+1})(∂⁺s_k/∂θ), in general-T form.

    ``loss_grad`` is ∂L/∂s_T for L = Σ_i h_T[i]; ``partial`` is ∂⁺s_t/∂θ of one
    step; ``sum`` is the whole sum as a SymPy ``Sum`` for scalar single-state
    cells, with the product in closed form where one exists (None otherwise).
    """

    param: str
    loss_grad: sp.ImmutableMatrix
    partial: sp.ImmutableMatrix
    lower: sp.Expr
    sum: sp.Expr | None


def path_only(name: str, tex: str, path: str) -> tuple[str, str]:
    """A derivative's name marked as taken along one path: (∂c_T/∂c_k)|_(c path only).

    Every rendering of a path-only form carries the mark in the formula itself,
    so it cannot be read as the whole derivative.
    """
    return (f"({name})|_({path} path only)",
            r"\left.%s\right|_{%s\text{ path only}}" % (tex, path))


def block(cell: Cell, matrix: sp.MatrixBase, of: str, wrt: str) -> sp.ImmutableMatrix:
    """The rows of state ``of`` and the columns of state ``wrt`` of a state Jacobian."""
    n, states = cell.n, cell.states
    r, c = states.index(of) * n, states.index(wrt) * n
    return sp.ImmutableMatrix(matrix[r : r + n, c : c + n])


def _step_symbols(cell: Cell) -> set[sp.Symbol]:
    """Every per-step symbol of the generic step (states, gates, input)."""
    return set(cell.state_prev()) | set(cell.x) | set(cell.state_next()) | {
        s for name, _ in cell.equations for s in cell.current(name)
    }


def _scalar_product(cell: Cell, factor: sp.Expr) -> tuple[sp.Expr, sp.Expr | None]:
    """∏_{t=k+1}^{T} J_t, and c^(T−k) ∏ J'_t with every t-free factor c pulled out.

    The closed form is None when no factor is free of t (nothing to pull out).
    """
    term = at_index(cell, factor)
    product = sp.Product(term, (t, k + 1, T))
    constant, varying = term.as_independent(t, as_Add=False)
    if constant == 1:
        return product, None
    power = sp.Pow(constant, T - k)
    return product, power if varying == 1 else power * sp.Product(varying, (t, k + 1, T))


def _matrix_power(cell: Cell, factor: sp.ImmutableMatrix) -> sp.MatrixExpr:
    """J^(T−k) for a constant J, naming J when it is a parameter (W_hh^(T−k))."""
    for name, value in cell.params:
        if value == factor:
            return sp.MatPow(sp.MatrixSymbol(cell.display_name(name), cell.n, cell.n), T - k)
    return sp.MatPow(factor, T - k)


def state_chain(cell: Cell, of: str, wrt: str) -> ChainForm:
    """∂(of)_T/∂(wrt)_k in general-T form, with its closed form where one exists.

    >>> from derive.cells import CELLS
    >>> from derive.cell import make_cell
    >>> state_chain(make_cell(CELLS["rnn"], activation="tanh"), "h", "h").closed
    w**(T - k)*Product(1 - h[t]**2, (t, k + 1, T))
    """
    full = jacobian_step(cell)
    factor = block(cell, full, of, wrt)
    exact = len(cell.states) == 1
    if cell.n == 1 and exact:
        product, closed = _scalar_product(cell, factor[0])
        return ChainForm(of, wrt, factor, product, closed, "exact")
    if exact and not (set(factor.free_symbols) & _step_symbols(cell)):
        return ChainForm(of, wrt, factor, None, _matrix_power(cell, factor), "exact")
    if of == wrt and of in cell.definition.carousel:
        if not factor.is_diagonal():
            raise ValueError(f"cell {cell.name}: the {of} path is declared a carousel but is not elementwise")
        diagonal = [_scalar_product(cell, factor[i, i]) for i in range(cell.n)]
        products = [closed if closed is not None else product for product, closed in diagonal]
        closed = products[0] if cell.n == 1 else sp.diag(*products)
        scope = f"along the {of} path alone (the other paths held fixed)"
        product = diagonal[0][0] if cell.n == 1 else None
        return ChainForm(of, wrt, factor, product, closed, scope)
    return ChainForm(of, wrt, factor, None, None, "none")


def loss_gradient(cell: Cell) -> sp.ImmutableMatrix:
    """∂L/∂s_T for L = Σ_i y_T[i], y the cell's output state: ones on y, zeros elsewhere (a row).

    The one definition of the loss; every numeric path takes it from here.
    """
    return sp.ImmutableMatrix(
        [[1 if s == cell.output else 0 for s in cell.states for _ in range(cell.n)]]
    )


def bptt_form(cell: Cell, param: str, truncate: int | None = None) -> BpttForm:
    """∂L/∂θ through time for L = Σ_i h_T[i], truncated to the last τ steps if given.

    >>> from derive.cells import CELLS
    >>> from derive.cell import make_cell
    >>> bptt_form(make_cell(CELLS["rnn"]), "W_hh").sum
    Sum(w**(T - k)*h[k - 1], (k, 1, T))
    """
    lower = sp.Integer(1) if truncate is None else sp.Max(1, T - truncate + 1)
    partial = param_jacobian(cell, param)
    total = None
    if cell.n == 1 and len(cell.states) == 1 and partial.shape == (1, 1):
        chain = state_chain(cell, cell.output, cell.output)
        product = chain.closed if chain.closed is not None else chain.product
        total = sp.Sum(product * at_index(cell, partial[0], k), (k, lower, T))
    return BpttForm(param, loss_gradient(cell), partial, lower, total)


def compose_state_jacobian(cell: Cell, T: int, k: int = 0) -> sp.ImmutableMatrix:
    """J_T J_{T−1} ⋯ J_{k+1} for a concrete T, in per-step symbols (nothing expanded)."""
    result = sp.eye(len(cell.states) * cell.n)
    for step in range(k + 1, T + 1):
        result = at_step(cell, jacobian_step(cell), step) * result
    return sp.ImmutableMatrix(result)


def compose_bptt(cell: Cell, T: int, param: str, truncate: int | None = None) -> sp.ImmutableMatrix:
    """Σ_k (∂L/∂s_T)(J_T ⋯ J_{k+1})(∂⁺s_k/∂θ) for a concrete T, as a row over θ's elements.

    Accumulated backwards, as BPTT does: one vector-Jacobian product per step.
    """
    first = 1 if truncate is None else max(1, T - truncate + 1)
    adjoint = loss_gradient(cell)
    total = sp.zeros(1, param_jacobian(cell, param).shape[1])
    for step in range(T, first - 1, -1):
        total += adjoint * at_step(cell, param_jacobian(cell, param), step)
        adjoint = adjoint * at_step(cell, jacobian_step(cell), step)
    return sp.ImmutableMatrix(total)

