"""The ``numeric`` command's work: one request record in, one result out.

Weights come from a file (ours or PyTorch's names) or are drawn (``numeric.init``);
inputs are typed, read or drawn.  Shared weights run through ``numeric.layer``
(any hidden size); a grid of settings through the elementwise kernels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from derive.cell import Cell, make_cell
from derive.core import Layer, make_core
from derive.custom import cell_definition
from derive.errors import InvalidValue, NonFinite
from derive.values import parameter_names, parse_initial_state, parse_number, parse_settings

from .arrayfiles import read_tensors
from .batch import Problem, make_problem
from .given import drawn, file_weights, file_activation, given_inputs, requested_sizes, set_values
from .init import check_init
from .inputs import DEFAULT_STEPS, inputs as read_or_draw_inputs
from .kernels import quantity_names
from .layer import LayerResult, LogMatrix, check_memory, jacobian_norms, value_and_grad
from .modes import choose_mode, gradient_and_jacobian, grid_mode
from .spectral import recurrent_norms
from .unroll import log10_norm_by_lag, trace

#: A grid's element kernels hold every element of every weight as a symbol: small n only.
MAX_GRID_HIDDEN = 8
MAX_GRID = 10**7
#: A run's time is estimated before it starts and refused above this many seconds.
MAX_SECONDS = 120
#: Measured on 2 cores (2026-11): each step costs about this much Python on the element path,
#: and each setting-step about (quantities + 4 S²) / ELEMENT_RATE seconds of NumPy.
STEP_SECONDS = 2e-4
ELEMENT_RATE = 2e7
#: Per-step tables and full state Jacobians are shown for at most this many state elements.
SMALL = 8
#: ‖∂s_T/∂s_{T−k}‖ runs the identity backwards as a batch of S rows: up to this S.
MAX_JACOBIAN_ROWS = 1024
#: Lags at which ‖∂s_T/∂s_{T−k}‖ is always computed (and shown).
LAGS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass(frozen=True)
class Request:
    """Everything ``numeric`` is asked, as given: names, numbers, text and paths."""

    cell: str = "rnn"
    variant: str | None = None
    activation: str | None = None
    formulas: tuple[str, ...] = ()
    hidden: int | None = None
    input_size: int | None = None
    steps: int | None = None
    params_file: str | None = None
    layer_index: int = 0  # which layer of a stacked PyTorch model (weight_ih_l<K>)
    prefix: str | None = None         # the module whose weights to read, where a file holds several
    seed: int = 0
    inputs: str | None = None
    inputs_file: str | None = None
    batch: int | None = None
    h0: str | None = None
    c0: str | None = None
    grid: tuple[str, ...] = ()
    mode: str = "auto"
    truncate: int | None = None
    every_step: bool = False
    settings: tuple[str, ...] = ()    # NAME=VALUE over the drawn or read weights, as derive's
    gate_init: str = "pytorch"        # how drawn weights start (``numeric.init``)
    forget_bias: float | None = None
    t_max: int | None = None          # chrono: the longest memory, default T


@dataclass(frozen=True)
class NumericResult:
    """A grid of settings (each its own weights); arrays carry the grid's shape in front."""

    problem: Problem
    grid: tuple[tuple[str, np.ndarray], ...]
    quantities: tuple[str, ...]
    trace: np.ndarray | None
    grads: dict
    jacobian: LogMatrix
    by_lag: np.ndarray | None
    mode: str
    every_step: bool = False
    truncate: int | None = None

    def _repr_html_(self) -> str:
        """Jupyter's rich display: the grid in a short table."""
        norms = self.jacobian.log10_norm()
        finite = norms[np.isfinite(norms)]
        spread = f"{finite.min():.4g} … {finite.max():.4g}" if finite.size else "none finite"
        return _html([("cell", self.problem.cell.label), ("steps", str(self.problem.steps)),
                      ("settings", str(norms.size)), ("mode", self.mode),
                      ("log10 ‖∂s_T/∂s_0‖₂", spread)])


def _html(rows: list[tuple[str, str]]) -> str:
    """A two-column HTML table, escaped."""
    from html import escape

    body = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th><td style='text-align:left'>{escape(v)}</td></tr>"
                   for k, v in rows)
    return f"<table>{body}</table>"


@dataclass(frozen=True)
class LayerRun:
    """One layer's weights shared by a batch of sequences, as PyTorch runs it.

    ``trace`` (every quantity of every step) and ``jacobian`` (∂s_T/∂s_0) are for
    sequence 0 of a small layer; ``by_lag`` is log10‖∂s_T/∂s_{T−k}‖₂ of sequence 0.
    """

    layer: Layer
    params: dict[str, np.ndarray]
    inputs: np.ndarray  # (B, T, m)
    batched: bool       # the inputs came as a batch (B, T, m), not one sequence (T, m)
    s0: np.ndarray      # (S,), states stacked in order
    result: LayerResult
    quantities: tuple[str, ...]
    trace: np.ndarray | None
    jacobian: LogMatrix | None
    by_lag: np.ndarray | None
    recurrent: tuple[tuple[str, float], ...]
    source: str
    layer_index: int = 0
    mode: str = "matrix"
    every_step: bool = False
    truncate: int | None = None

    def _repr_html_(self) -> str:
        """Jupyter's rich display: the run in a short table."""
        norm = float(self.by_lag[-1]) if self.by_lag is not None else float("nan")
        return _html([("cell", self.layer.label), ("hidden, input", f"{self.layer.n}, {self.layer.m}"),
                      ("steps, batch", f"{self.steps}, {self.inputs.shape[0]}"), ("weights", self.source),
                      ("log10 ‖∂s_T/∂s_0‖₂ (sequence 0)", f"{norm:.4g}"),
                      *((f"‖∂L/∂{k}‖", f"{float(np.linalg.norm(v)):.4g}") for k, v in self.grads.items()
                        if k in self.params)])

    @property
    def grads(self) -> dict[str, np.ndarray]:
        return {name: self.result.grads[name] for name in self.layer.param_names()}

    @property
    def steps(self) -> int:
        return self.inputs.shape[1]


def check_request(req: Request, definition) -> None:
    """What no path can run, refused before any work: one line naming the value."""
    if req.seed < 0:
        raise InvalidValue("seed", f"must be a whole number >= 0, got {req.seed}")
    if req.truncate is not None and req.truncate < 1:
        raise InvalidValue("truncate", f"must be a whole number >= 1, got {req.truncate}")
    if req.truncate is not None and req.every_step:
        raise InvalidValue("truncate", "truncated BPTT is defined for the loss on the last step only; "
                           "drop it or the loss on every step")
    if req.layer_index < 0:
        raise InvalidValue("layer", f"must be a whole number >= 0, got {req.layer_index}")
    if req.params_file is not None and (req.gate_init != "pytorch" or req.forget_bias is not None
                                        or req.t_max is not None):
        raise InvalidValue("gate_init", f"sets how drawn weights start; the weights of {req.params_file} "
                           "are read, not drawn")
    check_init(definition, req.variant or definition.variants[0], req.gate_init, req.forget_bias, req.t_max)
    scalar = definition.fixed or definition.scalar_only
    if scalar and (req.hidden not in (None, 1) or req.input_size not in (None, 1)):
        raise InvalidValue("hidden" if req.hidden not in (None, 1) else "input_size",
                           f"{definition.name} is a one-unit (scalar) cell; allowed: 1")


def estimated_seconds(cell: Cell, settings: int, steps: int) -> float:
    """A rough upper estimate of a grid run's time (rnn: 10^5 settings × 10^3 steps ≈ 25 s)."""
    S = len(cell.states) * cell.n
    units = len(quantity_names(cell)) + 4 * S * S
    return steps * (STEP_SECONDS + settings * units / ELEMENT_RATE)


def check_layer_time(layer: Layer, batch: int, steps: int) -> None:
    """The matrix path: Python per step (forward, backward, the lag norms) and its matrix products."""
    rows = len(layer.core.maps) * layer.n  # every product W v yields n values (inputs' and states' alike)
    flops = 6 * batch * steps * rows * max(layer.n, layer.m)  # forward, and backward's two products
    seconds = steps * 3 * STEP_SECONDS + flops / 2e9
    if seconds > MAX_SECONDS:
        raise InvalidValue("steps", f"{batch} sequence{'s' if batch > 1 else ''} × {steps} steps at hidden size "
                           f"{layer.n} would take about {seconds:.0f} s; allowed: runs estimated under "
                           f"{MAX_SECONDS} s (fewer steps or a smaller batch)")


def check_time(cell: Cell, settings: int, steps: int) -> None:
    """Refuse a grid run (or one setting on the element path) estimated over ``MAX_SECONDS``."""
    seconds = estimated_seconds(cell, settings, steps)
    if seconds > MAX_SECONDS:
        raise InvalidValue("steps" if settings == 1 else "grid",
                           f"{settings} setting{'s' if settings > 1 else ''} × {steps} steps would take about "
                           f"{seconds:.0f} s; allowed: runs estimated under {MAX_SECONDS} s (fewer steps or settings)")


def run(req: Request, weights: dict[str, np.ndarray] | None = None,
        progress: Callable[[str], None] = lambda doing: None, source: str = "the values set",
        state_dict: Mapping[str, np.ndarray] | None = None, x: np.ndarray | None = None) -> NumericResult | LayerRun:
    """Unroll a cell and differentiate it through time, as ``req`` asks; ``progress`` hears what is
    being done as each stage starts.  From Python, arrays instead of files: ``weights`` in our names
    at the request's sizes (``source`` says where they came from), or ``state_dict`` (our names or a
    PyTorch state_dict, sizes read off the shapes), and the inputs ``x`` as (T, m) or (B, T, m)."""
    definition = cell_definition(req.cell, tuple(req.formulas))
    check_request(req, definition)
    mode = choose_mode(req.mode, bool(req.grid))
    tensors = state_dict if state_dict is not None else (
        read_tensors(req.params_file) if req.params_file is not None and weights is None else None)
    activation, why = file_activation(req, definition, tensors)
    core = make_core(definition, req.variant, activation)
    if weights is not None:
        params, (n, m) = weights, requested_sizes(req)
    else:
        params, n, m, source = file_weights(req, definition, core.variant, tensors)
    source = f"{source}; {why}" if why and source else source
    if mode == "matrix":
        check_memory(core, n, m, req.batch or 1, req.steps or DEFAULT_STEPS)
    x, batched = given_inputs(x, m, req) if x is not None else read_or_draw_inputs(
        req.inputs, req.inputs_file, req.steps, m, req.batch, req.seed)
    if mode == "matrix":
        check_layer_time(Layer(core, n, m), x.shape[0], x.shape[1])
        return _run_layer(req, Layer(core, n, m), params, x, batched, source, progress)
    return _run_grid(req, definition, core.variant, n, m, params, x, mode, progress)


def _run_layer(req: Request, layer: Layer, params, x, batched: bool, source: str, progress) -> LayerRun:
    if params is None:
        params, source = drawn(layer, req, x.shape[1])
    if req.settings:
        given = set_values(layer, req.settings)
        params, source = {**params, **given}, f"{source}; {', '.join(given)} set"
    s0 = np.array(parse_initial_state(layer, req.h0, req.c0), dtype=float).ravel()
    initial = {s: s0[j * layer.n:(j + 1) * layer.n] for j, s in enumerate(layer.states)}
    progress(f"{layer.label}, n = {layer.n}: unrolling {x.shape[1]} steps of {x.shape[0]} sequences and BPTT")
    result = value_and_grad(layer.core, params, x, initial, every_step=req.every_step, truncate=req.truncate,
                            adjoint_norms=True)
    check_finite(result.states, result.grads, ("sequence", "unit"))
    S = len(layer.states) * layer.n
    # Below 64 state elements every lag's SVD is cheap; above, the summary's lags only.
    shown = None if S <= 64 else {k for k in LAGS}
    lags = None
    if S <= MAX_JACOBIAN_ROWS:
        progress(f"{layer.label}, n = {layer.n}: ‖∂s_T/∂s_(T−k)‖ by lag ({S} rows back through the steps)")
        lags = jacobian_norms(layer.core, params, x, initial, lags=shown)
    small = S <= SMALL
    names, trace_rows = _trace(layer, result) if small else ((), None)
    return LayerRun(
        layer=layer, params=params, inputs=x, batched=batched, s0=s0, result=result,
        quantities=names, trace=trace_rows, jacobian=lags.jacobian if lags and small else None,
        by_lag=lags.log10_by_lag if lags else None, recurrent=recurrent_norms(layer, params), source=source,
        layer_index=req.layer_index, every_step=req.every_step, truncate=req.truncate,
    )


def check_finite(series: dict[str, np.ndarray], grads: dict[str, np.ndarray], axes: tuple[str, ...],
                 first_step: int = 0) -> None:
    """Raise ``NonFinite`` naming the first value (by step) or gradient that left float64.

    ``series``: name -> (steps, *rest), the first row being step ``first_step``;
    a name with ``_t`` in it (``h_t[0]``) has the step put there.  ``axes`` names
    the ``rest`` axes (("sequence", "unit")) for the message.
    """
    first = None
    for name, values in series.items():
        flat = values.reshape(values.shape[0], -1)
        bad = ~np.isfinite(flat)
        if bad.any():
            row = int(np.argmax(bad.any(axis=1)))
            if first is None or row < first[1]:
                j = int(np.argmax(bad[row]))
                first = (name, row, flat[row, j], np.unravel_index(j, values.shape[1:]))
    if first is not None:
        name, row, value, index = first
        t = row + first_step
        label = re.sub(r"_t\b", f"_{t}", name) if re.search(r"_t\b", name) else f"{name}_{t}"
        where = ", ".join(f"{a} {int(i)}" for a, i in zip(axes, index))
        raise NonFinite(label, t, str(value), f" ({where})" if where else "")
    for name, g in grads.items():
        flat = np.ravel(g)
        if not np.isfinite(flat).all():
            raise NonFinite(f"∂L/∂{name}", None, str(flat[~np.isfinite(flat)][0]))


def _trace(layer: Layer, result: LayerResult) -> tuple[tuple[str, ...], np.ndarray]:
    """Every quantity of every step of sequence 0, named as the grid path names them."""
    names, columns = [], []
    for quantity, values in result.quantities.items():
        for i in range(layer.n):
            names.append(f"{quantity}_t" if layer.n == 1 else f"{quantity}_t[{i}]")
            columns.append(values[:, 0, i])
    return tuple(names), np.stack(columns, axis=-1)


# --- A grid of settings: the elementwise kernels ---------------------------------


def parse_grid(cell: Cell, items: list[str]) -> tuple[tuple[str, np.ndarray], ...]:
    """NAME=START:STOP:COUNT items -> (parameter, values) axes, at most ``MAX_GRID`` settings."""
    names, axes, total = parameter_names(cell), [], 1
    if items and not names:
        raise InvalidValue("grid", f"{cell.label} has no parameters to sweep (its weights are fixed)")
    for item in items:
        name, _, spec = item.partition("=")
        parts = spec.split(":")
        if name in names and names[name] in {a for a, _ in axes}:
            raise InvalidValue("grid", f"{name} is swept twice; allowed: one axis per parameter")
        if name not in names or len(parts) != 3:
            raise InvalidValue("grid", f"{item!r} is not NAME=START:STOP:COUNT with NAME one of "
                               f"{', '.join(cell.param_names())}")
        start, stop = (float(parse_number(v, "grid")) for v in parts[:2])
        count = int(parts[2]) if parts[2].strip().isdigit() else 0
        total *= max(count, 1)
        if count < 1 or total > MAX_GRID:
            raise InvalidValue("grid", f"COUNT in {item!r} must be a whole number from 1, and at most "
                               f"{MAX_GRID} settings in all")
        axes.append((names[name], np.linspace(start, stop, count)))
    return tuple(axes)


def _gridded(params: dict, axes) -> dict:
    out = dict(params)
    shape = tuple(len(v) for _, v in axes)
    for i, (name, values) in enumerate(axes):
        index = [1] * len(axes)
        index[i] = len(values)
        grid = values.reshape(index + [1, 1])
        out[name] = np.broadcast_to(grid, shape + out[name].shape[-2:]).copy()
    return out


def _run_grid(req: Request, definition, variant: str, n: int, m: int, params, x, mode: str,
              progress) -> NumericResult:
    how = "a grid" if req.grid else f"mode {req.mode}"
    if max(n, m) > MAX_GRID_HIDDEN:
        raise InvalidValue("hidden", f"{how} runs element by element: hidden and input size 1 to "
                           f"{MAX_GRID_HIDDEN}, got {n} and {m}; the matrix mode takes any size")
    if x.shape[0] != 1:
        raise InvalidValue("batch" if req.batch else "inputs",
                           f"{how} takes one input sequence, got a batch of {x.shape[0]}")
    cell = make_cell(definition, variant, req.activation, n, m)
    if params is None:
        params, _ = drawn(cell, req, x.shape[1])
    if req.settings:
        params = {**params, **{name: np.array(v.tolist(), dtype=float)
                               for name, v in parse_settings(cell, list(req.settings)).items()}}
    params = {name: np.asarray(v, dtype=float).reshape(v.shape if np.ndim(v) == 2 else (-1, 1))
              for name, v in params.items()}
    axes = parse_grid(cell, list(req.grid))
    check_time(cell, int(np.prod([len(v) for _, v in axes])), x.shape[1])
    s0 = np.array(parse_initial_state(cell, req.h0, req.c0), dtype=float).ravel()
    problem = make_problem(cell, _gridded(params, axes), x[0], s0)
    if req.truncate is not None and grid_mode(problem, mode, req.truncate) == "forward":
        raise InvalidValue("truncate", "truncated BPTT needs reverse mode")
    progress(f"{cell.label}: {problem.steps} steps for {int(np.prod(problem.batch_shape))} settings "
             f"(the first run compiles the cell's kernels)")
    grads, jacobian = gradient_and_jacobian(problem, mode, req.truncate, req.every_step)
    single = not axes
    rows = trace(problem) if single else None
    if single:
        progress(f"{cell.label}: the trace and ‖∂s_T/∂s_(T−k)‖ by lag")
        names = quantity_names(cell)
        # every quantity of every step (gates too), named q_t: the first to leave float64 is named
        check_finite({q: rows[:, i] for i, q in enumerate(names)}, grads, (), first_step=1)
    return NumericResult(
        problem=problem, grid=axes, quantities=quantity_names(cell),
        trace=rows, grads=grads,
        jacobian=jacobian, by_lag=log10_norm_by_lag(problem) if single else None,
        mode=grid_mode(problem, mode, req.truncate), every_step=req.every_step, truncate=req.truncate,
    )
