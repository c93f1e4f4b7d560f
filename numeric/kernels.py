"""The symbolic cell compiled into fused, broadcasting NumPy kernels.

Every kernel is one ``lambdify`` of expressions derived in ``derive`` from the
cell's single symbolic step, with the step's quantities (gates, states)
expanded so that CSE shares them: one call evaluates a whole step for every
setting in the batch.  Products of Jacobians are then batched ``einsum``s.
"""

from __future__ import annotations

from functools import cache
from typing import Callable

import numpy as np
import sympy as sp

from derive.cell import Cell
from derive.compile import ordered_lambdify
from derive.graph import expand, expanded, jacobian_step, param_jacobian

NUMPY_FUNCTIONS = {
    # 0.5 (1 + tanh(a/2)) is σ(a) without exp overflow, and it accepts complex steps.
    "sigmoid": lambda a: 0.5 * (1.0 + np.tanh(0.5 * a)),
    "relu": lambda a: np.maximum(a, 0.0),
    "Heaviside": lambda a, at_zero=0.0: np.heaviside(a, at_zero),
}
MODULES = [NUMPY_FUNCTIONS, "numpy"]


def _arguments(cell: Cell) -> list[sp.Symbol]:
    return [*cell.state_prev(), *cell.x, *(s for _, v in cell.params for s in v)]


def _compile(cell: Cell, outputs) -> Callable:
    """One kernel: ``outputs`` with the step's quantities expanded, CSE over all of them."""
    return ordered_lambdify([expand(cell, e) for e in outputs], _arguments(cell), MODULES)


def adjoint_symbols(cell: Cell) -> sp.ImmutableMatrix:
    return sp.ImmutableMatrix([[sp.Symbol(f"adjoint[{i}]") for i in range(len(cell.states) * cell.n)]])


def all_params(cell: Cell) -> sp.ImmutableMatrix:
    """∂⁺s_t/∂θ for every parameter element, side by side (S × 0 for a cell with none)."""
    blocks = [param_jacobian(cell, name) for name in cell.param_names()]
    return sp.ImmutableMatrix.hstack(*blocks) if blocks else sp.ImmutableMatrix.zeros(len(cell.states) * cell.n, 0)


# Each kernel is compiled on first use, once per process: a sweep that needs only
# the state Jacobian never pays for the parameter partials (S × P entries).


@cache
def quantity_names(cell: Cell) -> tuple[str, ...]:
    """The step's quantities (gates, then states) in the order ``step_kernel`` returns them."""
    return tuple(str(s) for s in expanded(cell))


@cache
def state_index(cell: Cell) -> tuple[int, ...]:
    """Where each element of s_t stands among the quantities."""
    names = quantity_names(cell)
    return tuple(names.index(str(s)) for s in cell.state_next())


@cache
def step_kernel(cell: Cell) -> Callable:
    """(s_{t-1}, x_t, θ) -> every quantity of the step."""
    return _compile(cell, list(expanded(cell).values()))


@cache
def jacobian_kernel(cell: Cell) -> Callable:
    """(s_{t-1}, x_t, θ) -> J_t = ∂s_t/∂s_{t-1}, row-major (S×S)."""
    return _compile(cell, list(jacobian_step(cell)))


@cache
def partials_kernel(cell: Cell) -> Callable:
    """(s_{t-1}, x_t, θ) -> ∂⁺s_t/∂θ row-major (S×P), θ every parameter element in table order."""
    return _compile(cell, list(all_params(cell)))


@cache
def vjp_kernel(cell: Cell) -> Callable:
    """(s_{t-1}, x_t, θ, q_t, a) -> a·J_t (S values), then a·∂⁺s_t/∂θ (P values).

    One fused BPTT step that reuses the forward pass's quantities q_t, as a
    hand-written backward pass does.  ``factor_terms`` turns a0·u·x + a1·v·u·x
    into u·x·(a0 + a1·v): fewer passes over the arrays.
    """
    a = adjoint_symbols(cell)
    outputs = [sp.factor_terms(e) for e in (*(a * jacobian_step(cell)), *(a * all_params(cell)))]
    return ordered_lambdify(outputs, _arguments(cell) + list(expanded(cell)) + list(a), MODULES)
