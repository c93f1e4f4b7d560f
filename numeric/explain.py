"""``derive`` for a layer of any size: the matrix-form derivation and, given weights, its numbers.

The forms come from ``derive.matrixform`` (SymPy, the same for every n); the
numbers for a user's weights (``--params`` or every parameter ``--set``) from
``numeric.run``, through the same request and engine as ``numeric``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from derive.cell import check_sizes, make_cell
from derive.core import Layer, make_core
from derive.custom import cell_definition
from derive.errors import InvalidValue
from derive.matrixform import constant_jacobian
from derive.values import parameter_names, parse_array

from .init import as_settings, check_init, default_t_max, describe, draw
from .engine.logmatrix import LogMatrix, power
from .io.given import drawn, requested_sizes, set_values
from .io.request import Request
from .result import Run
from .run import check_request, run
from .engine.spectral import largest_singular_value

#: Above this hidden size ``derive`` shows the matrix form alone (element forms grow as n²).
ELEMENT_LIMIT = 3


@dataclass(frozen=True)
class Power:
    """∂s_T/∂s_0 = W^T for a cell whose step Jacobian is one weight W (the linear RNN): needs W alone."""

    weight: str
    jacobian: LogMatrix
    sigma1: float
    steps: int

    @property
    def log10_norm(self) -> float:
        return float(self.jacobian.log10_norm())


@dataclass(frozen=True)
class Explained:
    """A layer, its horizon, and the numbers for the given weights (None without weights); ``power``
    where the Jacobian is one weight and that weight is given."""

    layer: Layer
    steps: int
    numbers: Run | None
    power: Power | None = None


def wants_matrix_form(hidden: int, params_file: str | None) -> bool:
    """Matrix form for n > ``ELEMENT_LIMIT`` or for weights from a file; element forms otherwise."""
    return hidden > ELEMENT_LIMIT or params_file is not None


def drawn_settings(definition, variant: str | None, activation: str | None, n: int, m: int, steps: int, *,
                   given: tuple[str, ...] = (), seed: int = 0, gate_init: str = "pytorch") -> tuple[tuple[str, ...], str]:
    """The element form's missing parameters, drawn as ``numeric`` draws them and written as settings
    (4 significant digits, what a reader can type back), with a note of how; nothing for a cell with
    worked examples (the lecture's RNN) or with every parameter given."""
    check_sizes(n, m)
    check_init(definition, variant or definition.variants[0], gate_init)
    cell = make_cell(definition, variant, activation, n, m)
    names, spelled = set(cell.param_names()), parameter_names(cell)
    given_names = {spelled.get(item.partition("=")[0].strip()) for item in given}
    if not names or names <= given_names or definition.examples:
        return (), ""
    t_max = default_t_max(steps) if gate_init == "chrono" else None
    params = {k: v for k, v in draw(cell, seed=seed, init=gate_init, t_max=t_max).items() if k not in given_names}
    return as_settings(params), (f"{', '.join(cell.display_name(k) for k in params)} drawn: "
                                 f"{describe(gate_init, None, t_max)} initialisation, seed {seed}, "
                                 "to 4 significant digits")


def _input_size(core, settings: tuple[str, ...]) -> int | None:
    """m as a ``--set`` input weight's shape gives it (W_xh = [[1], [2], [3], [4]]: m = 1), else None."""
    columns = {name for name, _, cols in core.param_table() if cols == "m"}
    columns |= {alias for name, alias in core.definition.scalar_names.items() if name in columns}
    for item in settings:
        name, _, text = item.partition("=")
        if name.strip() in columns:
            value = np.array(parse_array(text, "set"), dtype=float)
            if value.ndim == 2:
                return value.shape[1]
    return None


def _power(layer: Layer, values: dict[str, np.ndarray], steps: int) -> Power | None:
    weight = constant_jacobian(layer.core)
    if weight is None or weight not in values:
        return None
    w = values[weight]
    return Power(weight, power(w, steps), largest_singular_value(w), steps)


def explain(req: Request, settings: tuple[str, ...] = (), wrt: str | None = None,
            progress: Callable[[str], None] = lambda doing: None) -> Explained:
    """The layer ``req`` describes and, when weights are given, a run of it for the numbers
    (``progress`` as ``numeric.run.run``'s).  The matrix form shows every block and every gradient;
    ``wrt`` is only checked to name one."""
    definition = cell_definition(req.cell, req.formulas)
    core = make_core(definition, req.variant, req.activation)
    names = {*core.states, *(f"{s}_0" for s in core.states), *(name for name, _, _ in core.param_table()),
             *core.definition.scalar_names.values()}
    if wrt is not None and wrt.strip() not in names:
        raise InvalidValue("wrt", f"{core.name} has no state or parameter {wrt!r}; allowed: {', '.join(sorted(names))}")
    if req.steps is None or req.steps < 1:
        raise InvalidValue("steps", f"must be a whole number >= 1, got {req.steps}")
    steps = req.steps
    check_request(req, definition)
    if req.params_file is not None:
        if settings:
            raise InvalidValue("set", "weights come from a file or from settings, not both")
        numbers = run(replace(req, steps=steps, mode="reverse"), progress=progress)
        return Explained(numbers.layer, steps, numbers, _power(numbers.layer, numbers.params, steps))
    if req.input_size is None:
        req = replace(req, input_size=_input_size(core, settings))
    layer = Layer(core, *requested_sizes(req))
    values = set_values(layer, settings)
    power_ = _power(layer, values, steps)
    if set(values) == set(layer.shapes()):
        numbers = run(replace(req, steps=steps, mode="reverse"), weights=values, progress=progress)
        return Explained(numbers.layer, steps, numbers, power_)
    params, how = drawn(layer, req, steps)
    source = how + (f"; {', '.join(values)} set" if values else "")
    try:
        numbers = run(replace(req, steps=steps, mode="reverse"), weights={**params, **values}, progress=progress,
                      source=source)
    except InvalidValue as error:
        if error.field not in ("memory", "steps") or power_ is None:
            raise
        numbers = None  # W^T needs W alone; stepping every other weight through T steps is out of reach
    return Explained(layer, steps, numbers, power_)
