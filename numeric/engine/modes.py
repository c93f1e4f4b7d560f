"""Which backend computes ∂L/∂θ: the one place that picks a mode.

``reverse``: BPTT in NumPy (stores the steps); ``forward``: tangent mode in NumPy (stores
nothing, carries one tangent per parameter element); ``native``: BPTT as C generated from
the same stages.  ``auto`` takes reverse unless its stored steps would not fit, then forward.
A layer and a grid of settings take every mode alike.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from derive.core import Core
from derive.errors import InvalidValue

from .grad import CHUNK, by_chunks, differentiate
from .shapes import MEMORY_LIMIT, Unroll, check_memory, memory_bytes, prepare
from .tangent import TANGENT_MEMORY, gradient_forward

MODES = ("auto", "reverse", "forward", "native")


def choose_mode(mode: str) -> str:
    """``mode`` checked against ``MODES``."""
    if mode not in MODES:
        raise InvalidValue("mode", f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
    return mode


def settings(u: Unroll) -> int:
    return int(np.prod(u.lead, dtype=np.int64))


def _needs(core: Core, n: int, m: int, batch: int, steps: int, count: int) -> tuple[int, int]:
    """(bytes reverse mode stores, bytes forward mode carries) for ``count`` settings, a chunk at a time."""
    chunk = min(count, CHUNK)
    directions = sum(int(np.prod(shape)) for shape in core.shapes(n, m).values())
    forward = 8 * directions * chunk * batch * n * (len(core.equations) + len(core.maps) + 2)
    return memory_bytes(core, n, m, batch, steps, chunk), forward


def check_fits(core: Core, n: int, m: int, batch: int, steps: int, *, mode: str, count: int = 1,
               truncate: int | None = None) -> str:
    """The mode that will run (``auto`` resolved), refused before any work when what it holds would not
    fit: reverse stores every step, forward carries a tangent per parameter element."""
    reverse, forward = _needs(core, n, m, batch, steps, count)
    if mode == "auto":
        mode = "reverse" if reverse <= MEMORY_LIMIT or truncate is not None or forward > TANGENT_MEMORY else "forward"
    if mode == "reverse":
        check_memory(core, n, m, batch, steps, min(count, CHUNK))
    if mode == "forward" and forward > TANGENT_MEMORY:
        raise InvalidValue("mode", f"forward mode would carry {forward / 2**30:.1f} GiB of tangents (one per parameter "
                           f"element); allowed: up to {TANGENT_MEMORY / 2**30:.0f} GiB (reverse mode carries one)")
    return mode


def resolve(mode: str, u: Unroll, truncate: int | None = None) -> str:
    """``mode`` checked, and auto resolved by memory: reverse, or forward when reverse would store too much."""
    return check_fits(u.core, u.n, u.m, u.batch, u.steps, mode=choose_mode(mode), count=settings(u),
                      truncate=truncate)


def gradient(core: Core, params: Mapping[str, np.ndarray], x, s0=None, *, lead: tuple[int, ...] = (),
             mode: str = "auto", every_step: bool = False, truncate: int | None = None,
             dtype=None) -> tuple[dict, str]:
    """(∂L/∂θ, the mode that computed it) for L = Σ_i (output)_T[i] (or Σ over every step): each
    parameter lead + its own shape, computed in ``dtype`` (float64 by default, or float32)."""
    return gradient_of(core, prepare(core, params, x, s0, lead, dtype), mode=mode, every_step=every_step,
                       truncate=truncate)


def gradient_of(core: Core, u: Unroll, *, mode: str = "auto", every_step: bool = False,
                truncate: int | None = None) -> tuple[dict, str]:
    """``gradient`` of an unrolling already prepared (``shapes.prepare``) from ``core``."""
    if truncate is not None and mode == "forward":
        raise InvalidValue("truncate", "truncated BPTT runs backwards; allowed with the reverse and native modes")
    mode = resolve(mode, u, truncate)
    if mode == "native":
        return _native(core, u, every_step, truncate), mode
    if mode == "forward":
        run = lambda c: gradient_forward(c, every_step)  # noqa: E731
    else:
        run = lambda c: differentiate(c, every_step=every_step, truncate=truncate).grads  # noqa: E731
    grads = by_chunks(core, u, run) if u.lead else run(u)  # a grid a chunk of settings at a time
    return {name: grads[name] for name, _, _ in core.param_table()}, mode


def _native(core: Core, u: Unroll, every_step: bool, truncate: int | None) -> dict:
    """BPTT as C.  A layer's B sequences run as a grid of B settings sharing its weights, each
    with its own x and s_0, and ∂L/∂θ = Σ_b ∂L_b/∂θ for L_b = Σ_i (output)_T[b, i]; a grid
    of settings takes one sequence."""
    from .native import native_gradient  # needs a C compiler: imported only when asked for

    loss = {"every_step": every_step, "truncate": truncate, "dtype": u.dtype}
    if not u.lead:
        grads = native_gradient(core, u.params, u.x, u.s0, lead=(u.batch,), **loss)
        return {name: g.sum(axis=0) for name, g in grads.items()}
    if u.batch != 1:
        raise InvalidValue("batch", f"a grid of settings in the native mode takes one input sequence, got a batch "
                           f"of {u.batch}; a layer (weights without the grid's axes) takes a batch")
    s0 = {s: v.reshape(-1) for s, v in u.s0.items()}  # (1, n) is the one sequence's
    return native_gradient(core, u.params, u.x[:, 0], s0, lead=u.lead, **loss)
