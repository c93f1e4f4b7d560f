"""The ``numeric`` command's work: load or draw parameters, sweep a grid, unroll, differentiate."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from derive.cell import Cell, check_sizes, make_cell
from derive.custom import cell_definition
from derive.errors import UsageError
from derive.values import parameter_names, parse_initial_state, parse_number

from .batch import Problem, make_problem, random_params
from .kernels import quantity_names
from .unroll import LogMatrix, gradient, log10_norm_by_lag, state_jacobian, trace

MAX_GRID = 10**7


@dataclass(frozen=True)
class NumericResult:
    """What one ``numeric`` run computed; arrays carry the grid's batch shape in front."""

    problem: Problem
    grid: tuple[tuple[str, np.ndarray], ...]
    quantities: tuple[str, ...]
    trace: np.ndarray | None
    grads: dict
    jacobian: LogMatrix
    by_lag: np.ndarray | None
    mode: str


def _reject(name):
    raise ValueError(name)


def _to_float(value):
    return np.array(value, dtype=float) if isinstance(value, list) else float(value)


def load_params(cell: Cell, path: str) -> dict:
    """A JSON file of parameter name -> number or nested list, in derive's shapes."""
    try:
        data = json.loads(Path(path).read_text(), parse_constant=_reject)
    except OSError as error:
        raise UsageError("--params", f"cannot read {path}: {error.strerror}") from None
    except ValueError:
        raise UsageError("--params", f"{path} is not valid JSON (NaN and Infinity are not allowed)") from None
    if not isinstance(data, dict):
        raise UsageError("--params", f"{path} must hold an object of parameter name -> value")
    names, out = parameter_names(cell), {}
    for key, value in data.items():
        if key not in names:
            raise UsageError("--params", f"{cell.label} has no parameter {key!r}; allowed: {', '.join(cell.param_names())}")
        rows, cols = cell.param(names[key]).shape
        array = np.asarray(_to_float(value) if not isinstance(value, bool) else np.nan, dtype=float)
        if array.ndim == 0:
            array = np.full((rows, cols), float(array))
        elif cols == 1 and array.shape == (rows,):
            array = array[:, None]
        if array.shape != (rows, cols) or not np.all(np.isfinite(array)):
            shape = f"({rows},)" if cols == 1 else f"({rows}, {cols})"
            raise UsageError("--params", f"{key} must be finite numbers of shape {shape}")
        out[names[key]] = array
    missing = [n for n in cell.param_names() if n not in out]
    if missing:
        raise UsageError("--params", f"{path} lacks {', '.join(missing)}")
    return out


def parse_grid(cell: Cell, items: list[str]) -> tuple[tuple[str, np.ndarray], ...]:
    """NAME=START:STOP:COUNT items -> (parameter, values) axes."""
    names, axes = parameter_names(cell), []
    for item in items:
        name, _, spec = item.partition("=")
        parts = spec.split(":")
        if name not in names or len(parts) != 3:
            raise UsageError("--grid", f"{item!r} is not NAME=START:STOP:COUNT with NAME one of {', '.join(cell.param_names())}")
        start, stop = (float(parse_number(v, "--grid")) for v in parts[:2])
        try:
            count = int(parts[2])
        except ValueError:
            raise UsageError("--grid", f"COUNT in {item!r} must be a whole number >= 1") from None
        if count < 1:
            raise UsageError("--grid", f"COUNT in {item!r} must be a whole number >= 1")
        axes.append((names[name], np.linspace(start, stop, count)))
    if int(np.prod([len(v) for _, v in axes])) > MAX_GRID:
        raise UsageError("--grid", f"at most {MAX_GRID} settings in all")
    return tuple(axes)


def parse_inputs(text: str | None, path: str | None, steps: int | None, m: int) -> np.ndarray:
    """--inputs 0,0.5 (m = 1) or --inputs-file (a T × m JSON list); default x_t = 1 for T steps."""
    if text is not None and path is not None:
        raise UsageError("--inputs", "give --inputs or --inputs-file, not both")
    if path is not None:
        try:
            data = json.loads(Path(path).read_text(), parse_constant=_reject)
            x = np.asarray(data, dtype=float)
        except OSError as error:
            raise UsageError("--inputs-file", f"cannot read {path}: {error.strerror}") from None
        except (ValueError, TypeError):
            raise UsageError("--inputs-file", f"{path} must be a JSON list of T lists of {m} numbers") from None
        if x.ndim == 1 and m == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != m or len(x) == 0:
            raise UsageError("--inputs-file", f"{path} must be a JSON list of T lists of {m} numbers")
    elif text is not None:
        if m != 1:
            raise UsageError("--inputs", f"input size {m} > 1: use --inputs-file")
        x = np.array([[float(parse_number(v, "--inputs"))] for v in text.split(",")])
    else:
        return np.ones((steps or 50, m))
    if steps is not None and len(x) != steps:
        if len(x) != 1:
            raise UsageError("--inputs", f"got {len(x)} inputs for --steps {steps}; allowed: 1 or {steps}")
        x = np.repeat(x, steps, axis=0)
    return x


def _gridded(params: dict, axes) -> dict:
    out = dict(params)
    shape = tuple(len(v) for _, v in axes)
    for i, (name, values) in enumerate(axes):
        index = [1] * len(axes)
        index[i] = len(values)
        grid = values.reshape(index + [1, 1])
        out[name] = np.broadcast_to(grid, shape + out[name].shape[-2:]).copy()
    return out


def run(cell: str, *, variant=None, activation=None, hidden=1, input_size=1, steps=None,
        params_file=None, seed=0, inputs=None, inputs_file=None, h0=None, c0=None,
        grid=(), mode="auto", truncate=None, every_step=False, formulas=()) -> NumericResult:
    """Unroll a cell over a batch of settings and differentiate it through time."""
    definition = cell_definition(cell, tuple(formulas))
    check_sizes(hidden, input_size)
    if steps is not None and steps < 1:
        raise UsageError("--steps", f"must be a whole number >= 1, got {steps}")
    if mode not in ("auto", "reverse", "forward", "native"):
        raise UsageError("--mode", f"unknown mode {mode!r}; allowed: auto, reverse, forward, native")
    the_cell = make_cell(definition, variant, activation, hidden, input_size)
    params = load_params(the_cell, params_file) if params_file else random_params(the_cell, seed=seed)
    axes = parse_grid(the_cell, list(grid))
    x = parse_inputs(inputs, inputs_file, steps, the_cell.m)
    problem = make_problem(the_cell, _gridded(params, axes), x, np.array(parse_initial_state(the_cell, h0, c0), dtype=float).ravel())
    if truncate is not None and (truncate < 1 or mode == "forward"):
        raise UsageError("--truncate", "needs a whole number >= 1 and reverse mode (BPTT)")
    try:
        grads = gradient(problem, mode, truncate, every_step) if the_cell.params else {}
    except ValueError as error:
        option = "--every-step" if every_step else "--mode"
        raise UsageError(option, str(error)) from None
    single = not axes
    return NumericResult(
        problem=problem, grid=axes, quantities=quantity_names(the_cell),
        trace=trace(problem) if single else None, grads=grads,
        jacobian=state_jacobian(problem), by_lag=log10_norm_by_lag(problem) if single else None,
        mode=mode,
    )
