"""Forward and backward through time, batched, from the compiled kernels.

Reverse mode (BPTT) stores the states and runs one vector-Jacobian product a
step; forward (tangent) mode carries ∂s_t/∂θ along and stores nothing, so its
memory does not grow with T.  Products of many Jacobians are renormalised
every step and their scale kept as log10, so nothing overflows or underflows.
"""

from __future__ import annotations

import numpy as np

from .batch import Problem, loss_gradient, split
from .logmatrix import LogMatrix, log10_norms, renormalise
from .kernels import jacobian_kernel, partials_kernel, quantity_names, state_index, step_kernel, vjp_kernel

#: Settings per chunk: arrays of 8192 float64 stay in cache (measured fastest on 2 cores).
CHUNK = 8192


def _stack(values, batch_shape, rows: int, cols: int) -> np.ndarray:
    """Kernel outputs (arrays or constants) as one array of shape batch + (rows, cols)."""
    dtype = np.result_type(float, *[np.asarray(v) for v in values])
    out = np.empty(batch_shape + (rows * cols,), dtype=dtype)
    for i, v in enumerate(values):
        out[..., i] = v
    return out.reshape(batch_shape + (rows, cols))


def _args(p: Problem, state: np.ndarray, t: int) -> list:
    return [*(state[..., i] for i in range(state.shape[-1])), *p.x(t), *p.theta()]


def _size(p: Problem) -> int:
    return len(p.cell.states) * p.cell.n


def step(p: Problem, state: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """(every quantity of step t, s_t) from s_{t-1}."""
    names = quantity_names(p.cell)
    q = _stack(step_kernel(p.cell)(*_args(p, state, t)), p.batch_shape, 1, len(names))[..., 0, :]
    return q, q[..., list(state_index(p.cell))]


def scan(p: Problem) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]]]:
    """The one forward pass: (s_0..s_T, q_1..q_T), states and every quantity of each step,
    as lists of arrays of the batch shape (separate contiguous arrays are what the kernels
    run fastest on).  ``forward``, ``trace`` and the Jacobian products all read it."""
    kernel, index = step_kernel(p.cell), state_index(p.cell)
    state = [np.broadcast_to(p.s0[..., i], p.batch_shape).copy() for i in range(_size(p))]
    states, quantities = [state], []
    for t in range(1, p.steps + 1):
        q = [np.broadcast_to(v, p.batch_shape) for v in kernel(*state, *p.x(t), *p.theta())]
        state = [q[i] for i in index]
        states.append(state)
        quantities.append(q)
    return states, quantities


def forward(p: Problem) -> np.ndarray:
    """All states s_0..s_T, shape (T+1,) + batch + (S,)."""
    return np.stack([np.stack(s, axis=-1) for s in scan(p)[0]])


def trace(p: Problem) -> np.ndarray:
    """Every quantity (gates and states) of every step, shape (T,) + batch + (Q,)."""
    return np.stack([np.stack(q, axis=-1) for q in scan(p)[1]])


def jacobian(p: Problem, state: np.ndarray, t: int) -> np.ndarray:
    S = _size(p)
    return _stack(jacobian_kernel(p.cell)(*_args(p, state, t)), p.batch_shape, S, S)


def partials(p: Problem, state: np.ndarray, t: int) -> np.ndarray:
    width = sum(len(v) for _, v in p.cell.params)
    return _stack(partials_kernel(p.cell)(*_args(p, state, t)), p.batch_shape, _size(p), width)


def gradient_reverse(p: Problem, truncate: int | None = None, every_step: bool = False):
    """∂L/∂θ by BPTT: one fused vector-Jacobian product kernel a step, backwards.

    L = Σ_i h_T[i], or Σ_t Σ_i h_t[i] with ``every_step``; ``truncate`` keeps the
    last τ steps of the sum over source steps k (of the final loss).
    """
    if truncate is not None and every_step:
        raise ValueError("truncation is defined here for the loss on the last step only")
    states, quantities = scan(p)
    vjp, S, theta = vjp_kernel(p.cell), _size(p), p.theta()
    dl = loss_gradient(p)
    adjoint = [float(v) for v in dl]
    dtype = np.result_type(float, *theta, p.inputs)
    total = [np.zeros(p.batch_shape, dtype) for _ in theta]
    first = 1 if truncate is None else max(1, p.steps - truncate + 1)
    for t in range(p.steps, first - 1, -1):
        out = vjp(*states[t - 1], *p.x(t), *theta, *quantities[t - 1], *adjoint)
        adjoint = out[:S]
        for acc, g in zip(total, out[S:]):
            acc += g
        if every_step and t > 1:
            adjoint = [a + d for a, d in zip(adjoint, dl)]
    flat = np.stack([np.broadcast_to(g, p.batch_shape) for g in total], axis=-1) if total else np.zeros(p.batch_shape + (0,))
    return split(p, flat)


def gradient_forward(p: Problem, every_step: bool = False):
    """∂L/∂θ in forward (tangent) mode: D_t = J_t D_{t-1} + ∂⁺s_t/∂θ, no states stored."""
    dl = loss_gradient(p)
    state = np.broadcast_to(p.s0, p.batch_shape + p.s0.shape[-1:])
    tangent, total = 0.0, 0.0
    for t in range(1, p.steps + 1):
        J, P = jacobian(p, state, t), partials(p, state, t)
        tangent = (np.einsum("...sr,...rp->...sp", J, tangent) if t > 1 else 0) + P
        state = step(p, state, t)[1]
        if every_step or t == p.steps:
            total = total + np.einsum("s,...sp->...p", dl, tangent)
    return split(p, total)


def _products(p: Problem, k: int = 0):
    """J_t ⋯ J_{k+1} for t = k+1..T, renormalised every step: the one forward accumulator.
    It steps along instead of reading ``scan``: memory stays flat in T for a large grid."""
    S = _size(p)
    state = np.broadcast_to(p.s0, p.batch_shape + (S,))
    m = LogMatrix(np.broadcast_to(np.eye(S), p.batch_shape + (S, S)).copy(), np.zeros(p.batch_shape))
    for t in range(1, p.steps + 1):
        if t > k:
            m = LogMatrix(*renormalise(np.einsum("...sr,...rq->...sq", jacobian(p, state, t), m.mantissa),
                                       m.log10_scale))
            yield m
        state = step(p, state, t)[1]


def state_jacobian(p: Problem, k: int = 0) -> LogMatrix:
    """∂s_T/∂s_k = J_T ⋯ J_{k+1}, without over- or underflow."""
    S = _size(p)
    last = LogMatrix(np.broadcast_to(np.eye(S), p.batch_shape + (S, S)).copy(), np.zeros(p.batch_shape))
    for last in _products(p, k):
        pass
    return last


def log10_by_step(p: Problem, rows=slice(None), cols=slice(None)) -> np.ndarray:
    """log10‖∂s_t/∂s_0‖₂ (or of the block ``rows`` × ``cols``) for t = 1..T, shape (T,) + batch."""
    return log10_norms(LogMatrix(m.mantissa[..., rows, cols], m.log10_scale) for m in _products(p))


def contributions(p: Problem) -> np.ndarray:
    """The BPTT term of each source step k: (∂L/∂s_T)(J_T ⋯ J_{k+1})(∂⁺s_k/∂θ), shape (T,) + batch + (P,)."""
    states, quantities = scan(p)
    vjp, S, theta = vjp_kernel(p.cell), _size(p), p.theta()
    adjoint = [float(v) for v in loss_gradient(p)]
    terms = [None] * p.steps
    for t in range(p.steps, 0, -1):
        out = vjp(*states[t - 1], *p.x(t), *theta, *quantities[t - 1], *adjoint)
        adjoint = out[:S]
        terms[t - 1] = np.stack([np.broadcast_to(g, p.batch_shape) for g in out[S:]], axis=-1)
    return np.stack(terms)


def log10_norm_by_lag(p: Problem) -> np.ndarray:
    """log10‖∂s_T/∂s_{T−lag}‖₂ for lag = 0..T, shape (T+1,) + batch."""
    states = forward(p)
    S = _size(p)

    def products():
        g = np.broadcast_to(np.eye(S), p.batch_shape + (S, S)).copy()
        log_scale = np.zeros(p.batch_shape)
        yield LogMatrix(g, log_scale)
        for t in range(p.steps, 0, -1):
            g, log_scale = renormalise(np.einsum("...sr,...rq->...sq", g, jacobian(p, states[t - 1], t)), log_scale)
            yield LogMatrix(g, log_scale)

    return log10_norms(products())
