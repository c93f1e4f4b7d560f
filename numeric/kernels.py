"""The symbolic cell compiled into fused, broadcasting NumPy kernels.

Every kernel is one ``lambdify`` of expressions derived in ``derive`` from the
cell's single symbolic step, with the step's quantities (gates, states)
expanded so that CSE shares them: one call evaluates a whole step for every
setting in the batch.  Products of Jacobians are then batched ``einsum``s.
"""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Kernels:
    """Compiled kernels of one cell; each takes (s_{t-1}, x_t, θ) flattened, in order.

    ``step`` -> every quantity of the step (gates, then states), in ``quantities`` order;
    ``jacobian`` -> J_t = ∂s_t/∂s_{t-1} row-major (S×S);
    ``partials`` -> ∂⁺s_t/∂θ row-major (S×P), θ all parameters' elements in table order;
    ``vjp`` takes, after θ, the step's quantities q_t (from ``step``) and an adjoint a
    (S values) -> a·J_t (S values), then a·∂⁺s_t/∂θ (P): one fused BPTT step that
    reuses the forward pass's gates, as a hand-written backward pass does.
    """

    quantities: tuple[str, ...]
    state_index: tuple[int, ...]
    sizes: tuple[int, ...]
    step: Callable
    jacobian: Callable
    partials: Callable
    vjp: Callable


def _arguments(cell: Cell) -> list[sp.Symbol]:
    return [*cell.state_prev(), *cell.x, *(s for _, v in cell.params for s in v)]


def _compile(cell: Cell, outputs, extra=()) -> Callable:
    """One kernel: ``outputs`` with the step's quantities expanded, CSE over all of them."""
    return ordered_lambdify([expand(cell, e) for e in outputs], _arguments(cell) + list(extra), MODULES)


def adjoint_symbols(cell: Cell) -> sp.ImmutableMatrix:
    return sp.ImmutableMatrix([[sp.Symbol(f"adjoint[{i}]") for i in range(len(cell.states) * cell.n)]])


def all_params(cell: Cell) -> sp.ImmutableMatrix:
    """∂⁺s_t/∂θ for every parameter element, side by side (S × 0 for a cell with none)."""
    blocks = [param_jacobian(cell, name) for name in cell.param_names()]
    return sp.ImmutableMatrix.hstack(*blocks) if blocks else sp.ImmutableMatrix.zeros(len(cell.states) * cell.n, 0)


@cache
def kernels(cell: Cell) -> Kernels:
    """Compile the cell once per process."""
    quantities = tuple(str(s) for s in expanded(cell))
    a = adjoint_symbols(cell)
    return Kernels(
        quantities=quantities,
        state_index=tuple(quantities.index(str(s)) for s in cell.state_next()),
        sizes=tuple(len(v) for _, v in cell.params),
        step=_compile(cell, list(expanded(cell).values())),
        jacobian=_compile(cell, list(jacobian_step(cell))),
        partials=_compile(cell, list(all_params(cell))),
        vjp=ordered_lambdify(
            # factor_terms turns a0·u·x + a1·v·u·x into u·x·(a0 + a1·v): fewer array passes.
            [sp.factor_terms(e) for e in (*(a * jacobian_step(cell)), *(a * all_params(cell)))],
            _arguments(cell) + list(expanded(cell)) + list(a), MODULES),
    )
