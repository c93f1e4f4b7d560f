"""The ``numeric`` command's work: one request record in, one result out.

Weights come from a file (ours or PyTorch's names) or are drawn (``numeric.init``);
inputs are typed, read or drawn.  A layer (weights shared by a batch of sequences) and
a grid of settings (``numeric.grid``: each its own weights) run through the one engine.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

import numpy as np

from derive.core import Layer, make_core
from derive.custom import cell_definition
from derive.errors import InvalidValue, NonFinite
from derive.values import parse_initial_state

from .io.arrayfiles import read_tensors
from .engine.grad import differentiate
from .engine.jacobian import jacobian_norms, state_jacobian
from .engine.power import power_norm
from .engine.modes import MODES, check_fits, choose_mode, gradient_of, resolve
from .engine.shapes import MEMORY_LIMIT, Unroll, check_dtype, check_time, memory_bytes, prepare, split_states
from .io.given import drawn, file_activation, file_weights, given_inputs, requested_sizes, set_values
from .init import check_init
from .io.inputs import DEFAULT_STEPS, inputs as read_or_draw_inputs
from .engine.logmatrix import LogMatrix
from .engine.spectral import recurrent_norms
from .grid import run_grid
from .io.request import Request
from .result import Run

#: Per-step tables and full state Jacobians are shown for at most this many state elements.
SMALL = 8
#: ‖∂s_T/∂s_{T−k}‖ runs the identity backwards as a batch of S rows: up to this S.
MAX_JACOBIAN_ROWS = 1024
#: Lags at which ‖∂s_T/∂s_{T−k}‖ is always computed (and shown).
LAGS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


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
    choose_mode(req.mode)
    check_dtype(req.dtype)
    scalar = definition.fixed or definition.scalar_only
    if scalar and (req.hidden not in (None, 1) or req.input_size not in (None, 1)):
        raise InvalidValue("hidden" if req.hidden not in (None, 1) else "input_size",
                           f"{definition.name} is a one-unit (scalar) cell; allowed: 1")


def run(req: Request, weights: dict[str, np.ndarray] | None = None,
        progress: Callable[[str], None] = lambda doing: None, source: str = "the values set",
        state_dict: Mapping[str, np.ndarray] | None = None, x: np.ndarray | None = None) -> Run:
    """Unroll a cell and differentiate it through time, as ``req`` asks; ``progress`` hears what is
    being done as each stage starts.  From Python, arrays instead of files: ``weights`` in our names
    at the request's sizes (``source`` says where they came from), or ``state_dict`` (our names or a
    PyTorch state_dict, sizes read off the shapes), and the inputs ``x`` as (T, m) or (B, T, m)."""
    definition = cell_definition(req.cell, tuple(req.formulas))
    check_request(req, definition)
    tensors = state_dict if state_dict is not None else (
        read_tensors(req.params_file) if req.params_file is not None and weights is None else None)
    activation, why = file_activation(req, definition, tensors)
    core = make_core(definition, req.variant, activation)
    if weights is not None:
        params, (n, m) = weights, requested_sizes(req)
    else:
        params, n, m, source = file_weights(req, definition, core.variant, tensors)
    source = f"{source}; {why}" if why and source else source
    layer = Layer(core, n, m)
    if not req.grid:  # before the inputs are drawn: they alone could be too large
        check_fits(core, n, m, req.batch or 1, req.steps or DEFAULT_STEPS, mode=choose_mode(req.mode),
                   truncate=req.truncate)
    x, batched = given_inputs(x, m, req) if x is not None else read_or_draw_inputs(
        req.inputs, req.inputs_file, req.steps, m, req.batch, req.seed)
    if params is None:
        params, source = drawn(layer, req, x.shape[1])
    if req.settings:
        given = set_values(layer, req.settings)
        params, source = {**params, **given}, f"{source}; {', '.join(given)} set"
    s0 = np.array(parse_initial_state(layer, req.h0, req.c0), dtype=float).ravel()
    if req.grid:
        return run_grid(req, layer, params, x, s0, source=source, progress=progress)
    check_time(layer, 1, x.shape[0], x.shape[1])
    return _run_layer(req, layer, params, x, batched, s0, source=source, progress=progress)


def _stored(layer: Layer, batch: int, steps: int) -> bool:
    """Whether the steps fit in memory (forward mode is for when they do not)."""
    return memory_bytes(layer.core, layer.n, layer.m, batch, steps) <= MEMORY_LIMIT


def _run_layer(req: Request, layer: Layer, params, x, batched: bool, s0, *, source: str, progress) -> Run:
    init, T = split_states(layer.states, layer.n, s0), x.shape[1]
    u = prepare(layer.core, params, x, init, dtype=req.dtype)
    mode = resolve(req.mode, u, req.truncate)
    progress(f"{layer.label}, n = {layer.n}: unrolling {T} steps of {x.shape[0]} sequences, mode {mode}")
    if _stored(layer, x.shape[0], T):
        fields = _layer_views(req, layer, u, prepare(layer.core, params, x[:1], init, dtype=req.dtype), progress)
    else:  # forward mode over a horizon whose steps do not fit: ∂s_T/∂s_0 stepping along
        jacobian = state_jacobian(prepare(layer.core, params, x[:1], init, dtype=req.dtype))
        fields = {"jacobian": LogMatrix(jacobian.mantissa[0], jacobian.log10_scale[0])}
    result = fields.pop("result", None)
    if mode == "reverse":
        grads = {name: result.grads[name] for name in layer.param_names()}
    else:
        grads, _ = gradient_of(layer.core, u, mode=mode, every_step=req.every_step, truncate=req.truncate)
    check_finite({}, grads, ())
    return Run(layer=layer, params=params, inputs=x, batched=batched, s0=s0, grads=grads, source=source, mode=mode,
               states=result.states if result else None, log10_adjoint=result.log10_adjoint if result else None,
               initial_grads={s: result.grads[f"{s}_0"] for s in layer.states} if result else None,
               recurrent=recurrent_norms(layer, params), layer_index=req.layer_index, every_step=req.every_step,
               truncate=req.truncate, dtype=str(np.dtype(req.dtype)), **fields)


def _layer_views(req: Request, layer: Layer, u: Unroll, first: Unroll, progress) -> dict:
    """What a person reads beside the gradients of the layer's unrolling ``u``: states, the adjoint by
    step, the trace, and the lags of ``first``, its sequence 0."""
    result = differentiate(u, every_step=req.every_step, truncate=req.truncate, adjoint_norms=True)
    check_finite(result.states, {}, ("sequence", "unit"))
    S = len(layer.states) * layer.n
    names, rows = _trace(layer, result) if S <= SMALL else ((), None)
    views = {"result": result, "quantities": names, "trace": rows}
    if S > MAX_JACOBIAN_ROWS:
        progress(f"{layer.label}, n = {layer.n}: ‖∂s_T/∂s_0‖ by power iteration on JᵀJ ({S} state elements)")
        found = power_norm(first)
        by_lag = np.full(u.steps + 1, np.nan)
        by_lag[-1] = found.log10
        return {**views, "by_lag": by_lag, "norm_note": f"by power iteration on JᵀJ ({found.iterations} "
                f"iterations, relative residual {found.residual:.1e}); the other lags are not computed above "
                f"{MAX_JACOBIAN_ROWS} state elements"}
    progress(f"{layer.label}, n = {layer.n}: ‖∂s_T/∂s_(T−k)‖ by lag ({S} rows back through the steps)")
    # Below 64 state elements every lag's SVD is cheap; above, the summary's lags only.
    lags = jacobian_norms(first, lags=None if S <= 64 else set(LAGS))
    return {**views, "jacobian": lags.jacobian if S <= SMALL else None, "by_lag": lags.log10_by_lag}


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


def _trace(layer: Layer, result) -> tuple[tuple[str, ...], np.ndarray]:
    """Every quantity of every step of sequence 0: h_t (one unit) or h_t[i]."""
    names, columns = [], []
    for quantity, values in result.quantities.items():
        for i in range(layer.n):
            names.append(f"{quantity}_t" if layer.n == 1 else f"{quantity}_t[{i}]")
            columns.append(values[:, 0, i])
    return tuple(names), np.stack(columns, axis=-1)


__all__ = ["MODES", "Request", "Run", "run", "check_request", "check_finite"]
