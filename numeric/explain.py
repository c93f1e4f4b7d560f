"""``derive`` for a layer of any size: the matrix-form derivation and, given weights, its numbers.

The forms come from ``derive.matrixform`` (SymPy, the same for every n); the
numbers for a user's weights (``--params`` or every parameter ``--set``) from
``numeric.layer``, through the same request as ``numeric``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from derive.core import Layer, make_core
from derive.custom import cell_definition
from derive.errors import InvalidValue
from derive.values import parse_array

from .run import LayerRun, Request, check_request, requested_sizes, run

#: Above this hidden size ``derive`` shows the matrix form alone (element forms grow as n²).
ELEMENT_LIMIT = 3


@dataclass(frozen=True)
class Explained:
    """A layer, its horizon, and the numbers for the given weights (None without weights)."""

    layer: Layer
    steps: int
    numbers: LayerRun | None


def wants_matrix_form(hidden: int, params_file: str | None) -> bool:
    """Matrix form for n > ``ELEMENT_LIMIT`` or for weights from a file; element forms otherwise."""
    return hidden > ELEMENT_LIMIT or params_file is not None


def _settings(layer: Layer, settings: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """``--set NAME=VALUE`` for every parameter (one number fills a matrix), or None if any is missing."""
    shapes, names = layer.shapes(), {layer.display_name(k): k for k in layer.param_names()}
    names.update({k: k for k in layer.param_names()})
    values = {}
    for item in settings:
        name, sep, text = item.partition("=")
        if not sep or name.strip() not in names:
            raise InvalidValue("set", f"{item!r} is not NAME=VALUE with NAME one of {', '.join(layer.param_names())}")
        key = names[name.strip()]
        value = np.array(parse_array(text, "set"), dtype=float)
        if len(shapes[key]) == 1 and value.ndim == 2 and value.shape[1] == 1:
            value = value[:, 0]  # a vector given as a column, [[1], [2]]
        try:
            values[key] = np.broadcast_to(value, shapes[key]).copy()
        except ValueError:
            raise InvalidValue("set", f"{key} has shape {shapes[key]}; got {value.shape}") from None
    return values if set(values) == set(shapes) else None


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
            raise InvalidValue("set", "give weights by --params or by --set, not both")
        numbers = run(replace(req, steps=steps, mode="matrix"), progress=progress)
        return Explained(numbers.layer, steps, numbers)
    layer = Layer(core, *requested_sizes(req))
    values = _settings(layer, settings)
    if values is None:
        return Explained(layer, steps, None)
    numbers = run(replace(req, steps=steps, mode="matrix"), weights=values, progress=progress)
    return Explained(numbers.layer, steps, numbers)
