"""One unrolling, checked once: a core, its weights, a batch of input sequences and s_0.

A layer is weights shared by a batch of B sequences, as PyTorch runs it.  A grid of
settings is the same computation with a leading ``lead`` shape on the weights (each
setting its own), as JAX's ``vmap`` adds an axis: every array of the engine is
(*lead, B, n), weights (*lead, rows, cols), and a parameter without the lead is shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Mapping

import numpy as np

from derive.core import Core, Layer, scalar_core
from derive.errors import InvalidValue

from .stages import Plan, plan

#: The largest hidden or input size: a (4096 × 4096) weight is 128 MiB in float64.
MAX_HIDDEN = 4096
#: What one run may hold in memory (stored steps, stacked products, weights and gradients).
MEMORY_LIMIT = 4 << 30
#: Bytes of Python objects per stored step, beside the arrays' data.
STEP_OVERHEAD = 10_000


@dataclass(frozen=True)
class Unroll:
    """What the engine runs: parameters (each of shape ``lead`` + its own, or its own),
    x time-major (T, B, m), and s_0 per state, broadcastable to (*lead, B, n)."""

    core: Core
    params: Mapping[str, np.ndarray]
    x: np.ndarray
    s0: Mapping[str, np.ndarray]
    n: int
    m: int
    lead: tuple[int, ...] = ()
    dtype: np.dtype = np.dtype(np.float64)  # what every value is computed in

    @property
    def steps(self) -> int:
        return self.x.shape[0]

    @property
    def batch(self) -> int:
        return self.x.shape[1]

    @cached_property
    def plan(self) -> Plan:
        """The core's compiled stages and what every step reads of them: for a layer, the
        elementwise stages in C where a compiler is found (``native.fused``), else NumPy's."""
        if not self.lead:
            from .native.fused import fused_plan  # compiles the core's C on its first use

            return fused_plan(self.core, self.dtype) or plan(self.core)
        return plan(self.core)

    @cached_property
    def state_shape(self) -> tuple[int, ...]:
        """(*lead, B, n): every value of a step."""
        return (*self.lead, self.batch, self.n)


def _check_names(core: Core, params: Mapping) -> None:
    table = core.param_table()
    missing = [name for name, _, _ in table if name not in params]
    if missing:
        raise InvalidValue("params", f"{core.definition.name} needs {', '.join(missing)}")
    extra = sorted(set(params) - {name for name, _, _ in table})
    if extra:
        raise InvalidValue("params", f"{core.definition.name} has no parameter {extra[0]}; "
                           f"allowed: {', '.join(name for name, _, _ in table)}")


def sizes(core: Core, params: Mapping[str, np.ndarray], lead: tuple[int, ...] = ()) -> tuple[int, int]:
    """(n, m) read off the weights; every parameter checked against them (with or without ``lead``)."""
    _check_names(core, params)
    table, k = core.param_table(), len(lead)
    # A parameter with the grid's lead in front is the grid's own; without it, it is shared.
    own = {name: np.shape(params[name])[k:] if k and np.ndim(params[name]) == (2 if cols != "1" else 1) + k
           else np.shape(params[name]) for name, _, cols in table}
    for name in own:
        if own[name] != np.shape(params[name]) and np.shape(params[name])[:k] != lead:
            raise InvalidValue("params", f"{name} has shape {np.shape(params[name])}; a grid's own values "
                               f"come first, as {lead}")
    n = next((own[name][0] for name, rows, _ in table if rows == "n" and own[name]), 1)
    m = next((own[name][1] for name, _, cols in table if cols == "m" and len(own[name]) == 2), 1)
    for name, shape in core.shapes(n, m).items():
        got = own[name]
        if got != shape and not (len(shape) == 1 and got == shape + (1,) and not lead):
            where = f" after the grid's {lead}" if lead else ""
            raise InvalidValue("params", f"{name} has shape {np.shape(params[name])}; at hidden size {n}, "
                               f"input size {m} it must be {shape}{where}")
    if not 1 <= n <= MAX_HIDDEN or not 1 <= m <= MAX_HIDDEN:
        raise InvalidValue("hidden", f"hidden size {n}, input size {m}; allowed: 1 to {MAX_HIDDEN}")
    return n, m


def memory_bytes(core: Core, n: int, m: int, batch: int, steps: int, settings: int = 1) -> int:
    """What ``value_and_grad`` holds at its peak: every step's values, the stacked
    products and their cotangents, the weights and their gradients (float64)."""
    per_step = len(core.prev) + len(core.equations) * 2 + len(core.maps) * 2
    weights = sum(int(np.prod(s)) for s in core.shapes(n, m).values())
    # Each step's values are also Python objects (a dict, array headers): about 10 KB a step,
    # measured (LSTM, n = 1, 10^5 steps: 931 MB), which dominates for long, small runs.
    return 8 * settings * (steps * batch * (per_step * n + m) + 3 * weights) + STEP_OVERHEAD * steps


def check_memory(core: Core, n: int, m: int, batch: int, steps: int, settings: int = 1) -> None:
    need = memory_bytes(core, n, m, batch, steps, settings)
    if need > MEMORY_LIMIT:
        raise InvalidValue("memory", f"this run would hold {need / 2**30:.1f} GiB (hidden {n}, batch {batch}, "
                           f"{steps} steps{f', {settings} settings' if settings > 1 else ''}); allowed: up to "
                           f"{MEMORY_LIMIT / 2**30:.0f} GiB (for a long horizon, forward mode stores no steps)")


def _real(value, dtype: np.dtype) -> np.ndarray:
    """``value`` as an array of ``dtype``, not copied when it is one already."""
    return np.asarray(value, dtype=dtype)


def _own_shape(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A bias given as a column (n, 1), as a one-unit cell writes it, read as (n,)."""
    return value[..., 0] if len(shape) == 1 and value.shape[-2:] == shape + (1,) else value


#: The dtypes a run may be computed in (complex: the complex step of ``check``).
DTYPES = ("float64", "float32")


def check_dtype(dtype) -> np.dtype:
    """``dtype`` (a name or a NumPy dtype) checked against ``DTYPES``."""
    try:
        checked = np.dtype(dtype)
    except TypeError:
        checked = None
    if checked is None or str(checked) not in DTYPES:
        raise InvalidValue("dtype", f"{dtype!r} is not a dtype the engine computes in; allowed: {', '.join(DTYPES)}")
    return checked


def _dtype(dtype, values) -> np.dtype:
    """``dtype`` checked, or float64 (complex128 when a value is complex: the complex step)."""
    if dtype is None:
        return np.dtype(np.complex128 if any(np.iscomplexobj(v) for v in values) else np.float64)
    return check_dtype(dtype)


def prepare(core: Core, params: Mapping[str, np.ndarray], x, s0=None, lead: tuple[int, ...] = (),
            dtype=None) -> Unroll:
    """Check and arrange one unrolling: x given as (T, m) or (B, T, m); s_0 per state (n,) or
    (B, n), zeros by default.  Everything is computed in ``dtype`` (float64 by default; complex
    parameters, the complex step, stay complex)."""
    n, m = sizes(core, params, lead)
    shapes = core.shapes(n, m)
    dtype = _dtype(dtype, [x, *params.values()])
    arrays = {name: _own_shape(_real(params[name], dtype), shapes[name]) for name in shapes}
    x = _real(x, dtype)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[-1] != m or x.shape[1] < 1:
        raise InvalidValue("inputs", f"inputs have shape {x.shape}; allowed: (T, {m}) or (B, T, {m})")
    batch = x.shape[0]
    initial = {}
    for s in core.states:
        value = np.zeros(n, dtype) if s0 is None or s not in s0 else _real(s0[s], dtype)
        if value.shape not in ((n,), (batch, n)):
            raise InvalidValue("s0", f"{s}_0 has shape {value.shape}; allowed: ({n},) or ({batch}, {n})")
        initial[s] = value
    # A grid of one-unit cells: every product is a scalar one, and the step one elementwise kernel
    # (a layer keeps its products: one BLAS call a step beats an elementwise sum per weight).
    stepped = scalar_core(core) if lead and n == m == 1 and core.maps else core
    return Unroll(stepped, arrays, np.ascontiguousarray(x.transpose(1, 0, 2)), initial, n, m, tuple(lead), dtype)


#: A run's time is estimated before it starts and refused above this many seconds.
MAX_SECONDS = 120
#: Measured on 2 cores (2026-11, 2026-12): each step costs about this much Python, each product flop
#: 1/FLOP_RATE s, and each unit's elementwise value or product of a step (forwards and back) UNIT_SECONDS.
STEP_SECONDS = 2e-4
FLOP_RATE = 2e9
UNIT_SECONDS = 2.5e-9


def check_time(layer: Layer, settings: int, batch: int, steps: int) -> None:
    """Refuse a run estimated over ``MAX_SECONDS``: Python per step (forward, backward, the lag norms)
    and the products' flops, for every setting of a grid."""
    rows = len(layer.core.maps) * layer.n  # every product W v yields n values (inputs' and states' alike)
    flops = 6 * settings * batch * steps * max(rows, 1) * max(layer.n, layer.m, 4)
    units = settings * batch * steps * layer.n * (len(layer.core.equations) + len(layer.core.maps))
    seconds = steps * 3 * STEP_SECONDS + flops / FLOP_RATE + units * UNIT_SECONDS
    if seconds > MAX_SECONDS:
        what = f"{settings} settings" if settings > 1 else f"{batch} sequence{'s' if batch > 1 else ''}"
        raise InvalidValue("grid" if settings > 1 else "steps",
                           f"{what} × {steps} steps at hidden size {layer.n} would take about {seconds:.0f} s; "
                           f"allowed: runs estimated under {MAX_SECONDS} s (fewer steps, settings or sequences)")


def split_states(states: tuple[str, ...], n: int, v: np.ndarray) -> dict[str, np.ndarray]:
    """A vector over the states stacked in order, (…, S), as state -> (…, n)."""
    return {s: v[..., j * n:(j + 1) * n] for j, s in enumerate(states)}


def join_states(states: tuple[str, ...], parts) -> np.ndarray:
    """state -> (…, n) stacked in the states' order, (…, S): ``split_states`` undone."""
    return np.concatenate([np.asarray(parts[s]) for s in states], axis=-1)
