"""The compiled gradients against independent references, and the law of the linear RNN.

References, and whether each is independent of derive's derivatives:

- central finite differences and the complex step (where the cell is
  analytic): independent, float64;
- ``mpmath.diff`` of the stepped forward pass at 50 digits, along random
  directions: independent, high precision (only the step equations are shared);
- forward (tangent) mode and mpmath at 50 digits: they multiply derive's own
  Jacobians, so they check the compiled code and the accumulation, not the
  derivatives themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from derive import reference
from derive.cell import Cell, make_cell
from derive.cells import CELLS

from .batch import Problem, loss_gradient, make_problem
from .init import draw
from .unroll import forward, gradient_forward, gradient_reverse, state_jacobian

TOLERANCES = {"forward mode": 1e-12, "finite differences": 1e-6, "complex step": 1e-12, "mpmath 50 digits": 1e-12,
              "mpmath.diff": 1e-12}
#: References that share no derivative with derive (they differentiate the forward pass themselves).
INDEPENDENT = frozenset({"finite differences", "complex step", "mpmath.diff"})
#: Random directions v for the directional check ∇L·v against mpmath.diff.
DIRECTIONS = 2


@dataclass(frozen=True)
class CheckRow:
    """One comparison: the largest relative error of our gradient against a reference."""

    cell: str
    variant: str
    hidden: int
    steps: int
    reference: str
    error: float
    tolerance: float
    activation: str | None = None  # part of the case: rnn linear and rnn tanh are two cases

    @property
    def passed(self) -> bool:
        return bool(self.error <= self.tolerance)

    @property
    def independent(self) -> bool:
        """Whether the reference shares no derivative with derive."""
        return self.reference in INDEPENDENT


def _flat(grads: dict, cell: Cell) -> np.ndarray:
    return np.concatenate([np.reshape(grads[name], grads[name].shape[: grads[name].ndim - 2] + (-1,)) for name in cell.param_names()], axis=-1)


def relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-300))


def loss(p: Problem) -> np.ndarray:
    return forward(p)[-1] @ loss_gradient(p)


def _perturbed(p: Problem, delta) -> Problem:
    """A batch of P problems, the j-th with θ_j moved by ``delta`` (real or imaginary)."""
    sizes = [len(v) for _, v in p.cell.params]
    total, params, start = sum(sizes), {}, 0
    for (name, symbols), size in zip(p.cell.params, sizes):
        bump = np.zeros((total, size), dtype=np.result_type(delta, float))
        bump[start : start + size] = np.eye(size) * delta
        params[name] = p.params[name] + bump.reshape((total,) + symbols.shape)
        start += size
    return make_problem(p.cell, params, p.inputs, p.s0)


def finite_differences(p: Problem, eps: float = 1e-6) -> np.ndarray:
    return (loss(_perturbed(p, eps)) - loss(_perturbed(p, -eps))) / (2 * eps)


def complex_step(p: Problem, h: float = 1e-30) -> np.ndarray:
    return loss(_perturbed(p, 1j * h)).imag / h


def mpmath_gradient(p: Problem, digits: int = 50) -> np.ndarray:
    cell = p.cell
    values, inputs, s0 = _exact_problem(p)
    rows = reference.bptt_all(cell, values, inputs, s0, cell.param_names(), digits=digits)
    return np.array([float(v) for name in cell.param_names() for v in rows[name]])


def _exact_problem(p: Problem) -> tuple[dict, tuple, sp.ImmutableMatrix]:
    """θ, x_t and s_0 of a float64 problem as the exact rationals they denote."""
    values = {n: sp.ImmutableMatrix(np.vectorize(reference.exact, otypes=[object])(v)) for n, v in p.params.items()}
    inputs = tuple(sp.ImmutableMatrix([reference.exact(x) for x in row]) for row in p.inputs)
    return values, inputs, sp.ImmutableMatrix([reference.exact(v) for v in p.s0])


def directional(p: Problem, ours: np.ndarray, seed: int = 0, of_state: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(ours·v, d/ds L(θ + s v) by mpmath.diff) along ``DIRECTIONS`` random unit directions v.

    ``ours`` is ∂L/∂θ, or ∂L/∂s_0 when ``of_state`` (then s_0 moves).
    """
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((DIRECTIONS, ours.size))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    values, inputs, s0 = _exact_problem(p)
    ref = [float(reference.directional_derivative(p.cell, values, inputs, s0, v, of_state)) for v in directions]
    return directions @ ours, np.array(ref)


def analytic(cell: Cell) -> bool:
    return cell.activation is None or cell.activation.name != "relu"


def random_problem(cell: Cell, steps: int, seed: int = 0) -> Problem:
    """Random θ (PyTorch's init), x_t ~ U(−1, 1), s_0 ~ U(−0.5, 0.5).

    A ReLU cell can die (every gradient exactly 0), which would make any
    comparison vacuous: then the next seed is drawn, up to 50 times.
    """
    for attempt in range(50):
        rng = np.random.default_rng(seed + attempt)
        p = make_problem(cell, draw(cell, seed=seed + attempt), rng.uniform(-1, 1, (steps, cell.m)),
                         rng.uniform(-0.5, 0.5, len(cell.states) * cell.n))
        if not cell.params or np.any(_flat(gradient_forward(p), cell) != 0):
            return p
    raise ValueError(f"{cell.label}: no seed gave a non-zero gradient")


def _state_jacobian_rows(p: Problem) -> dict:
    """For a cell without free parameters: ∂s_T/∂s_0 against mpmath, and ∂L/∂s_0 against mpmath.diff."""
    cell = p.cell
    ours = state_jacobian(p).to_float()
    _, inputs, s0 = _exact_problem(p)
    ref = reference.state_jacobian(cell, {}, inputs, s0, digits=50)
    adjoint = loss_gradient(p) @ ours  # ∂L/∂s_0 = (∂L/∂s_T) ∂s_T/∂s_0
    return {"mpmath 50 digits": (ours.ravel(), np.array([float(v) for v in ref])),
            "mpmath.diff": directional(p, np.ravel(adjoint), of_state=True)}


def check_cell(cell: Cell, steps: int, seed: int = 0) -> tuple[CheckRow, ...]:
    """Every reference for one cell at one horizon, on random parameters and inputs."""
    p = random_problem(cell, steps, seed)
    if not cell.params:
        pairs = _state_jacobian_rows(p)
    else:
        ours = _flat(gradient_reverse(p), cell)
        pairs = {"forward mode": (ours, _flat(gradient_forward(p), cell)),
                 "finite differences": (ours, finite_differences(p))}
        if analytic(cell):
            pairs["complex step"] = (ours, complex_step(p))
        pairs["mpmath 50 digits"] = (ours, mpmath_gradient(p))
        pairs["mpmath.diff"] = directional(p, ours, seed)
    activation = cell.activation.name if cell.activation is not None else None
    return tuple(CheckRow(cell.name, cell.variant, cell.n, steps, name, relative_error(a, b), TOLERANCES[name],
                          activation)
                 for name, (a, b) in pairs.items())


def law_slope(w: float, horizons=(10, 20, 40, 80)) -> float:
    """The fitted slope of log10|∂h_T/∂h_0| against T for the linear RNN (should be log10|w|)."""
    cell = make_cell(CELLS["rnn"])
    logs = []
    for T in horizons:
        p = make_problem(cell, {"W_hh": [[w]], "W_xh": [[1.0]], "b_h": [[0.0]]}, np.ones(T))
        logs.append(float(state_jacobian(p).log10_norm()))
    return float(np.polyfit(horizons, logs, 1)[0])


def default_cases() -> list[tuple[Cell, int]]:
    cases = []
    for definition in CELLS.values():
        for variant in definition.variants:
            for activation in definition.activations or (None,):
                sizes = (1,) if definition.fixed else (1, 3)
                for n in sizes:
                    cell = make_cell(definition, variant, activation, n, 1 if definition.fixed else n)
                    cases.append((cell, 100 if n == 1 else 20))
    return cases


def check_one(cell: str, formulas: tuple[str, ...], steps: int, seed: int = 0):
    """The same rows for one cell (``--cell``, or a typed ``--cell custom``), and the law."""
    from derive.custom import cell_definition
    from derive.errors import InvalidValue

    if not 1 <= steps <= 1000:
        raise InvalidValue("steps", f"must be a whole number from 1 to 1000, got {steps}")
    definition = cell_definition(cell, formulas)
    rows = tuple(row for variant in definition.variants
                 for activation in (definition.activations or (None,))
                 for row in check_cell(make_cell(definition, variant, activation), steps, seed))
    laws = tuple((w, law_slope(w), float(np.log10(abs(w)))) for w in (0.5, 2.0))
    return rows, laws


def check_all(seed: int = 0, progress=lambda done, total, label: None
              ) -> tuple[tuple[CheckRow, ...], tuple[tuple[float, float, float], ...]]:
    """(gradient rows, law rows (w, fitted slope, log10|w|)) for every cell and variant;
    ``progress(done, total, label)`` hears of each case as it starts."""
    cases = default_cases()
    rows = []
    for done, (cell, steps) in enumerate(cases):
        progress(done, len(cases), f"{cell.label} n={cell.n}")
        rows += check_cell(cell, steps, seed)
    rows = tuple(rows)
    laws = tuple((w, law_slope(w), float(np.log10(abs(w)))) for w in (0.5, 0.9, 1.1, 2.0, -1.5))
    return rows, laws
