"""Which computation answers a request: the one place that picks a gradient mode.

``matrix``: BPTT with the weights as matrices (``numeric.layer``), any hidden
size, parameters shared by a batch of sequences.  For a grid of settings (each
its own weights, small n): ``reverse`` (BPTT over the elementwise kernels),
``forward`` (tangent mode, memory flat in T) or ``native`` (BPTT as generated C).
``auto`` takes matrix for shared weights, and for a grid reverse unless its
stored steps would pass ``REVERSE_MEMORY``, then forward.
"""

from __future__ import annotations

import numpy as np

from derive.errors import InvalidValue

from .batch import Problem
from .kernels import quantity_names
from .logmatrix import LogMatrix
from .unroll import CHUNK, gradient_forward, gradient_reverse, state_jacobian

MODES = ("auto", "matrix", "reverse", "forward", "native")
#: Reverse mode stores T × chunk × (S + Q) values; above this many bytes, auto takes forward mode.
REVERSE_MEMORY = 1 << 30


def choose_mode(mode: str, grid: bool) -> str:
    """The mode a request runs in: ``auto`` resolved, a combination that cannot run refused."""
    if mode not in MODES:
        raise InvalidValue("mode", f"unknown mode {mode!r}; allowed: {', '.join(MODES)}")
    if mode == "auto":
        return "grid-auto" if grid else "matrix"
    if mode == "matrix" and grid:
        raise InvalidValue("mode", "a grid gives every setting its own weights; allowed with a grid: "
                           "auto, reverse, forward, native")
    return mode


def reverse_bytes(p: Problem) -> int:
    """What reverse mode stores for one chunk: T + 1 steps of states and quantities."""
    per_step = len(p.cell.states) * p.cell.n + len(quantity_names(p.cell))
    chunk = min(CHUNK, int(np.prod(p.batch_shape, dtype=np.int64)))
    return (p.steps + 1) * chunk * per_step * 8


def grid_mode(p: Problem, mode: str, truncate: int | None = None) -> str:
    """auto for a grid resolved by memory: reverse, or forward when reverse would store too much."""
    if mode not in ("auto", "grid-auto"):
        return mode
    return "reverse" if truncate is not None or reverse_bytes(p) <= REVERSE_MEMORY else "forward"


def gradient(p: Problem, mode: str = "auto", truncate: int | None = None, every_step: bool = False):
    """∂L/∂θ for every setting of a grid, chunk by chunk; ``mode`` reverse, forward, native or auto."""
    stored = reverse_bytes(p)
    mode = grid_mode(p, mode, truncate)
    if mode == "native":
        from .native import gradient_native  # needs a C compiler: imported only when asked for

        return gradient_native(p, truncate, every_step)
    if mode == "forward" and truncate is not None:
        raise InvalidValue("truncate", "truncated BPTT needs reverse mode")
    if mode == "reverse" and truncate is None and stored > REVERSE_MEMORY:
        raise InvalidValue("memory", f"reverse mode would store {stored / 2**30:.1f} GiB of steps; "
                           "forward mode stores none")
    run = (lambda q: gradient_forward(q, every_step)) if mode == "forward" else (
        lambda q: gradient_reverse(q, truncate, every_step))
    parts = [run(q) for q in p.chunks(CHUNK)]
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts]).reshape(p.batch_shape + part_shape)
            for name, part_shape in ((n, parts[0][n].shape[1:]) for n in parts[0])}


def gradient_and_jacobian(p: Problem, mode: str = "auto", truncate: int | None = None,
                          every_step: bool = False) -> tuple[dict, LogMatrix]:
    """∂L/∂θ and ∂s_T/∂s_0 for a grid; native mode computes both in one compiled pass."""
    mode = grid_mode(p, mode, truncate)
    if mode == "native" and p.cell.params and truncate is None:
        from .native import native_pass

        grads, jacobian = native_pass(p, None, every_step, jacobian=True)
        return grads, jacobian
    grads = gradient(p, mode, truncate, every_step) if p.cell.params else {}
    return grads, state_jacobian(p)
