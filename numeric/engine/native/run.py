"""∂L/∂θ for a grid of settings by the compiled C of ``codegen``: arrays in, one call, arrays out."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from derive.core import Core
from derive.errors import InvalidValue, UnrolledError

from .build import compiled
from .codegen import frame_width, source

#: A thread's buffer: (T + 1) × W values for each of its block's settings, sized to stay in cache.
BLOCK_BYTES = 1 << 18
#: Settings in a block: at most this many, fewer when T is long.
MAX_BLOCK = 256
REALS = {np.dtype(np.float64): "double", np.dtype(np.float32): "float"}


def _strip(value: np.ndarray, rank: int, lead: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of one setting: ``lead`` dropped when the value has one more axis per entry of it."""
    shape = value.shape
    per = shape[:len(lead)] == lead and value.ndim in (len(lead) + rank, len(lead) + rank + (rank == 1))
    return shape[len(lead):] if per and lead else shape


def _sizes(core: Core, params: Mapping, lead: tuple[int, ...]) -> tuple[int, int]:
    """(n, m) read off the weights (a weight is (rows, cols), with ``lead`` in front or not)."""
    table = core.param_table()
    missing = [name for name, _, _ in table if name not in params]
    extra = sorted(set(params) - {name for name, _, _ in table})
    if missing or extra:
        raise InvalidValue("params", f"{core.name} needs {', '.join(name for name, _, _ in table)}; "
                           f"{'missing ' + missing[0] if missing else 'unknown ' + extra[0]}")
    one = {name: _strip(np.asarray(params[name]), 2 if cols != "1" else 1, lead) for name, _, cols in table}
    n = next((one[name][0] for name, rows, _ in table if rows == "n" and one[name]), 1)
    m = next((one[name][1] for name, _, cols in table if cols == "m" and len(one[name]) == 2), 1)
    return n, m


def _split(core: Core, params: Mapping, lead: tuple[int, ...], n: int, m: int, real):
    """(values per setting, name -> (N, size); shared values, name -> (size,)), shapes checked."""
    N, own, shared = int(np.prod(lead, dtype=np.int64)), {}, {}
    for name, shape in core.shapes(n, m).items():
        value = np.asarray(params[name], dtype=real)
        extra = ((1,),) if len(shape) == 1 else ()
        if value.shape in [shape + e for e in ((), *extra)]:
            shared[name] = value.reshape(-1)
        elif value.shape in [lead + shape + e for e in ((), *extra)]:
            own[name] = value.reshape(N, -1)
        else:
            raise InvalidValue("params", f"{name} has shape {value.shape}; at hidden size {n}, input size {m} "
                               f"it must be {shape} (shared) or {lead + shape} (one per setting)")
    return own, shared


def _sequences(x, m: int, lead: tuple[int, ...], N: int, real) -> tuple[np.ndarray, bool]:
    """(x element-major, whether it is per setting): (T, m) shared by every setting, or
    (T, N, m) (or (T, *lead, m)), one sequence per setting, read as (T, m, N)."""
    x = np.asarray(x, dtype=real)
    x = x[:, None] if x.ndim == 1 and m == 1 else x
    if x.ndim == 2 and x.shape[1] == m and x.shape[0] >= 1:
        return np.ascontiguousarray(x), False
    if x.ndim >= 3 and x.shape[-1] == m and x.shape[0] >= 1 and x.shape[1:-1] in ((N,), lead):
        return np.ascontiguousarray(x.reshape(x.shape[0], N, m).transpose(0, 2, 1)), True
    raise InvalidValue("inputs", f"inputs have shape {x.shape}; allowed: (T, {m}) shared by every setting, "
                       f"or (T, {N}, {m}) one sequence per setting, with T >= 1")


def _initial(core: Core, s0: Mapping, n: int, lead: tuple[int, ...], N: int, real) -> tuple[np.ndarray, bool]:
    """(s_0 of every state stacked, whether per setting): (S,) when every state's is (n,), shared;
    else (S, N), element-major, a shared one repeated for every setting."""
    states, own = [], False
    for s in core.states:
        value = np.zeros(n, dtype=real) if s not in s0 else np.asarray(s0[s], dtype=real)
        if value.shape not in ((n,), (N, n), lead + (n,)):
            raise InvalidValue("s0", f"{s}_0 has shape {value.shape}; allowed: ({n},) shared by every setting, "
                               f"or ({N}, {n}) one per setting")
        own |= value.shape != (n,)
        states.append(value.reshape(-1, n))
    if not own:
        return np.ascontiguousarray(np.concatenate([value[0] for value in states])), False
    return np.ascontiguousarray(np.concatenate([np.broadcast_to(v, (N, n)) for v in states], axis=1).T), True


def _stacked(core: Core, parts: dict, real) -> np.ndarray:
    """The parameters' elements in the cell's order, element-major: (elements, N) or (elements,)."""
    rows = [parts[name].T if parts[name].ndim == 2 else parts[name] for name, _, _ in core.param_table()
            if name in parts]
    if not rows:
        return np.zeros(1, dtype=real)  # a valid pointer that is never read
    return np.ascontiguousarray(np.concatenate(rows, axis=0))


def _call(function, core: Core, n: int, m: int, N: int, arrays: tuple[np.ndarray, ...], *, first: int,
          every_step: bool) -> np.ndarray:
    """The kernel run on its element-major arrays (theta, shared, x, s0): out (elements, N),
    each setting's ∂L/∂θ."""
    T, real, W = arrays[2].shape[0], arrays[2].dtype, frame_width(core, n, m)
    block = max(8, min(MAX_BLOCK, BLOCK_BYTES // ((T + 1) * W * real.itemsize)) // 8 * 8)
    out = np.empty((max(1, sum(int(np.prod(s)) for s in core.shapes(n, m).values())), N), dtype=real)
    failed = function(N, T, block, *(a.ctypes.data for a in arrays), first, int(every_step), out.ctypes.data)
    if failed:
        raise UnrolledError(f"the native backend could not allocate its buffers ({T + 1} steps × {W} values × "
                            f"{block} settings a thread); fewer steps")
    return out


def native_gradient(core: Core, params: Mapping[str, np.ndarray], x: np.ndarray, s0: Mapping[str, np.ndarray], *,
                    lead: tuple[int, ...], every_step: bool = False, truncate: int | None = None,
                    dtype=np.float64) -> dict[str, np.ndarray]:
    """∂L/∂θ for every setting of a grid, L = Σ_i (output)_T[i] (Σ over t = 1..T too with
    ``every_step``), by BPTT over the last ``truncate`` steps (all by default).

    ``params[name]``: the cell's shape (shared by every setting) or ``lead`` + that shape
    (a value per setting); x: (T, m), shared, or (T, N, m), a sequence per setting
    (N = prod(lead)); s0: state -> (n,), shared, or (N, n).  A layer's batch of B sequences
    is lead = (B,) with the weights shared: its ∂L/∂θ is the sum over the settings.
    Returns name -> ``lead`` + shape, in ``dtype`` (float64, or float32 for C in float).
    """
    real, lead = np.dtype(dtype), tuple(int(d) for d in lead)
    if real not in REALS:
        raise InvalidValue("dtype", f"{real} is not supported; allowed: float64, float32")
    if truncate is not None and not 1 <= truncate:
        raise InvalidValue("truncate", f"must be a whole number of steps >= 1, got {truncate}")
    n, m = _sizes(core, params, lead)
    N = int(np.prod(lead, dtype=np.int64))
    own, shared = _split(core, params, lead, n, m, real)
    (xs, own_x), (state, own_s0) = _sequences(x, m, lead, N, real), _initial(core, s0, n, lead, N, real)
    per_setting = frozenset(name for name, mine in (("x", own_x), ("s0", own_s0)) if mine)
    function = compiled(source(core, n, m, shared=frozenset(shared), real=REALS[real], per_setting=per_setting))
    first = 1 if truncate is None else max(1, xs.shape[0] - truncate + 1)
    arrays = (_stacked(core, own, real), _stacked(core, shared, real), xs, state)
    out = _call(function, core, n, m, N, arrays, first=first, every_step=every_step)
    grads, start = {}, 0
    for name, shape in core.shapes(n, m).items():
        size = int(np.prod(shape))
        grads[name] = np.ascontiguousarray(out[start:start + size].T).reshape(lead + shape)
        start += size
    return grads
