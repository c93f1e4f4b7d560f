"""A grid of settings: parameters swept over NAME=START:STOP:COUNT axes, every setting its own
weights, run as one batch through the engine (weights with the grid's shape in front)."""

from __future__ import annotations

import numpy as np

from derive.core import Layer
from derive.errors import InvalidValue
from derive.values import parameter_names, parse_number

from .engine.jacobian import state_jacobian
from .engine.modes import gradient_of, resolve
from .engine.shapes import check_time, prepare, split_states
from .engine.logmatrix import LogMatrix
from .result import Run

#: The most settings a grid may have.
MAX_GRID = 10**7


def parse_grid(layer: Layer, items: list[str]) -> tuple[tuple[str, np.ndarray], ...]:
    """NAME=START:STOP:COUNT items -> (parameter, values) axes, at most ``MAX_GRID`` settings."""
    names, axes, total = parameter_names(layer), [], 1
    if items and not names:
        raise InvalidValue("grid", f"{layer.label} has no parameters to sweep (its weights are fixed)")
    for item in items:
        name, _, spec = item.partition("=")
        parts = spec.split(":")
        if name in names and names[name] in {a for a, _ in axes}:
            raise InvalidValue("grid", f"{name} is swept twice; allowed: one axis per parameter")
        if name not in names or len(parts) != 3:
            raise InvalidValue("grid", f"{item!r} is not NAME=START:STOP:COUNT with NAME one of "
                               f"{', '.join(layer.param_names())}")
        start, stop = (float(parse_number(v, "grid")) for v in parts[:2])
        count = int(parts[2]) if parts[2].strip().isdigit() else 0
        total *= max(count, 1)
        if count < 1 or total > MAX_GRID:
            raise InvalidValue("grid", f"COUNT in {item!r} must be a whole number from 1, and at most "
                               f"{MAX_GRID} settings in all")
        axes.append((names[name], np.linspace(start, stop, count)))
    return tuple(axes)


def gridded(params: dict[str, np.ndarray], axes) -> dict[str, np.ndarray]:
    """Every parameter with the grid's shape in front: a swept one filled with its axis' value
    (every element of a matrix alike), the others repeated."""
    shape = tuple(len(v) for _, v in axes)
    out = {}
    for name, value in params.items():
        value = np.asarray(value, dtype=float)
        swept = [i for i, (axis, _) in enumerate(axes) if axis == name]
        if swept:
            values = axes[swept[0]][1].reshape([len(axes[swept[0]][1]) if i == swept[0] else 1 for i in range(len(axes))])
            value = values.reshape(values.shape + (1,) * value.ndim) + np.zeros(value.shape)
        out[name] = np.broadcast_to(value, shape + np.shape(params[name])).copy()
    return out


def run_grid(req, layer: Layer, params, x, s0: np.ndarray, *, source: str, progress):
    """∂L/∂θ and ∂s_T/∂s_0 for every setting of the request's grid."""
    if x.shape[0] != 1:
        raise InvalidValue("batch" if req.batch else "inputs", f"a grid takes one input sequence, got a batch of {x.shape[0]}")
    axes = parse_grid(layer, list(req.grid))
    lead = tuple(len(v) for _, v in axes)
    settings = int(np.prod(lead))
    check_time(layer, settings, 1, x.shape[1])
    grid_params, init = gridded(params, axes), split_states(layer.states, layer.n, s0)
    u = prepare(layer.core, grid_params, x, init, lead, req.dtype)
    mode = resolve(req.mode, u, req.truncate)
    progress(f"{layer.label}: {x.shape[1]} steps for {settings} settings, mode {mode}")
    grads, mode = gradient_of(layer.core, u, mode=mode, every_step=req.every_step, truncate=req.truncate)
    progress(f"{layer.label}: ∂s_T/∂s_0 for {settings} settings")
    product = state_jacobian(u)
    jacobian = LogMatrix(product.mantissa[..., 0, :, :], product.log10_scale[..., 0])
    return Run(layer=layer, params=grid_params, inputs=x, batched=False, s0=s0, grads=grads, source=source,
               mode=mode, grid=axes, jacobian=jacobian, every_step=req.every_step, truncate=req.truncate,
               dtype=str(np.dtype(req.dtype)),
               layer_index=req.layer_index)
