"""The compiled gradients against independent references, and the law of the linear RNN.

References, and whether each is independent of derive's derivatives:

- central finite differences and the complex step (where the cell is
  analytic): independent, float64;
- ``mpmath.diff`` of the stepped forward pass at 50 digits, along random
  directions: independent, high precision (only the step equations are shared);
- forward (tangent) mode and mpmath at 50 digits: forward mode pushes tangents through
  the stages' JVPs (derived apart from the VJPs that BPTT uses) and mpmath multiplies
  derive's element Jacobians; both share derive's derivation of the step, so they check
  the code and the accumulation more than the derivatives themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from derive import reference
from derive.cell import Cell, make_cell
from derive.cells import CELLS
from derive.core import Layer, make_core

from .engine.grad import value_and_grad
from .engine.jacobian import state_jacobian
from .engine.scan import scan
from .engine.shapes import prepare, split_states
from .engine.tangent import gradient_forward
from .init import draw

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


@dataclass(frozen=True)
class Case:
    """One point to check a cell at: the element form (for the exact references) and the core
    (what the engine runs), with θ, x_1..x_T (T, m) and s_0 (S,)."""

    cell: Cell
    layer: Layer
    params: dict
    x: np.ndarray
    s0: np.ndarray

    def initial(self) -> dict[str, np.ndarray]:
        return split_states(self.layer.states, self.layer.n, self.s0)


def _flat(grads: dict, case: Case, lead: int = 0) -> np.ndarray:
    """Every parameter element in the cell's table order (row-major), a grid's settings in front."""
    parts = [np.reshape(grads[name], np.shape(grads[name])[:lead] + (-1,)) for name in case.layer.param_names()]
    return np.concatenate(parts, axis=-1) if parts else np.zeros(0)


def relative_error(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-300))


def loss(case: Case, params: dict, lead: tuple[int, ...]) -> np.ndarray:
    """L = Σ_i (output)_T[i] for every setting of a grid of parameters."""
    u = prepare(case.layer.core, params, case.x, case.initial(), lead)
    return np.sum(scan(u).states[u.core.output][-1], axis=(-2, -1))


def _perturbed(case: Case, delta) -> dict:
    """A grid of P settings, the j-th with θ_j moved by ``delta`` (real or imaginary)."""
    shapes = case.layer.shapes()
    sizes = [int(np.prod(shapes[name])) for name in case.layer.param_names()]
    total, params, start = sum(sizes), {}, 0
    for name, size in zip(case.layer.param_names(), sizes):
        bump = np.zeros((total, size), dtype=np.result_type(delta, float))
        bump[start:start + size] = np.eye(size) * delta
        params[name] = case.params[name] + bump.reshape((total, *shapes[name]))
        start += size
    return params


def finite_differences(case: Case, eps: float = 1e-6) -> np.ndarray:
    total = len(_flat(case.params, case))
    return (loss(case, _perturbed(case, eps), (total,)) - loss(case, _perturbed(case, -eps), (total,))) / (2 * eps)


def complex_step(case: Case, h: float = 1e-30) -> np.ndarray:
    total = len(_flat(case.params, case))
    return loss(case, _perturbed(case, 1j * h), (total,)).imag / h


def exact_values(case: Case) -> tuple[dict, tuple, sp.ImmutableMatrix]:
    """θ (in the element form's shapes), x_t and s_0 as the exact rationals they denote."""
    shapes = {name: value.shape for name, value in case.cell.params}
    values = {name: sp.ImmutableMatrix(np.vectorize(reference.exact, otypes=[object])(
        np.reshape(case.params[name], shapes[name]))) for name in shapes}
    inputs = tuple(sp.ImmutableMatrix([reference.exact(v) for v in row]) for row in case.x)
    return values, inputs, sp.ImmutableMatrix([reference.exact(v) for v in case.s0])


def mpmath_gradient(case: Case, digits: int = 50) -> np.ndarray:
    values, inputs, s0 = exact_values(case)
    rows = reference.bptt_all(case.cell, values, inputs, s0, case.cell.param_names(), digits=digits)
    return np.array([float(v) for name in case.cell.param_names() for v in rows[name]])


def directional(case: Case, ours: np.ndarray, seed: int = 0, of_state: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(ours·v, d/ds L(θ + s v) by mpmath.diff) along ``DIRECTIONS`` random unit directions v.

    ``ours`` is ∂L/∂θ, or ∂L/∂s_0 when ``of_state`` (then s_0 moves).
    """
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((DIRECTIONS, ours.size))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    values, inputs, s0 = exact_values(case)
    ref = [float(reference.directional_derivative(case.cell, values, inputs, s0, v, of_state=of_state)) for v in directions]
    return directions @ ours, np.array(ref)


def analytic(cell: Cell) -> bool:
    return cell.activation is None or cell.activation.name != "relu"


def random_case(cell: Cell, steps: int, seed: int = 0) -> Case:
    """Random θ (PyTorch's init), x_t ~ U(−1, 1), s_0 ~ U(−0.5, 0.5).

    A ReLU cell can die (every gradient exactly 0), which would make any
    comparison vacuous: then the next seed is drawn, up to 50 times.
    """
    activation = cell.activation.name if cell.activation is not None else None
    layer = Layer(make_core(cell.definition, cell.variant, activation), cell.n, cell.m)
    for attempt in range(50):
        rng = np.random.default_rng(seed + attempt)
        case = Case(cell, layer, draw(layer, seed=seed + attempt), rng.uniform(-1, 1, (steps, cell.m)),
                    rng.uniform(-0.5, 0.5, len(cell.states) * cell.n))
        if not layer.param_names() or np.any(_flat(_gradient(case), case) != 0):
            return case
    raise ValueError(f"{cell.label}: no seed gave a non-zero gradient")


def _gradient(case: Case) -> dict:
    return value_and_grad(case.layer.core, case.params, case.x, case.initial()).grads


def _jacobian(case: Case) -> np.ndarray:
    return state_jacobian(prepare(case.layer.core, case.params, case.x, case.initial())).to_float()[0]


def _state_jacobian_rows(case: Case) -> dict:
    """For a cell without free parameters: ∂s_T/∂s_0 against mpmath, and ∂L/∂s_0 against mpmath.diff."""
    ours = _jacobian(case)
    _, inputs, s0 = exact_values(case)
    ref = reference.state_jacobian(case.cell, {}, inputs, s0, digits=50)
    adjoint = np.concatenate([_gradient(case)[f"{s}_0"][0] for s in case.layer.states])  # ∂L/∂s_0
    return {"mpmath 50 digits": (ours.ravel(), np.array([float(v) for v in ref])),
            "mpmath.diff": directional(case, adjoint, of_state=True)}


def check_cell(cell: Cell, steps: int, seed: int = 0) -> tuple[CheckRow, ...]:
    """Every reference for one cell at one horizon, on random parameters and inputs."""
    case = random_case(cell, steps, seed)
    if not cell.params:
        pairs = _state_jacobian_rows(case)
    else:
        ours = _flat(_gradient(case), case)
        forward = gradient_forward(prepare(case.layer.core, case.params, case.x, case.initial()))
        pairs = {"forward mode": (ours, _flat(forward, case)),
                 "finite differences": (ours, finite_differences(case))}
        if analytic(cell):
            pairs["complex step"] = (ours, complex_step(case))
        pairs["mpmath 50 digits"] = (ours, mpmath_gradient(case))
        pairs["mpmath.diff"] = directional(case, ours, seed)
    activation = cell.activation.name if cell.activation is not None else None
    return tuple(CheckRow(cell.name, cell.variant, cell.n, steps, name, relative_error(a, b), TOLERANCES[name],
                          activation)
                 for name, (a, b) in pairs.items())


def law_slope(w: float, horizons=(10, 20, 40, 80)) -> float:
    """The fitted slope of log10|∂h_T/∂h_0| against T for the linear RNN (should be log10|w|)."""
    core = make_core(CELLS["rnn"])
    logs = []
    for T in horizons:
        u = prepare(core, {"W_hh": [[w]], "W_xh": [[1.0]], "b_h": [0.0]}, np.ones((T, 1)))
        logs.append(float(state_jacobian(u).log10_norm()[0]))
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
