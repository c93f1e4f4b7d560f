"""∂s_T/∂s_k in the log domain: by lag (backwards, a pullback of the identity) and by step
(forwards, a push of the identity), renormalised every step so nothing over- or underflows
(``numeric.engine.logmatrix``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .logmatrix import LogMatrix, log10_norms, renormalise
from .bptt import pullback
from .scan import scan
from .shapes import Unroll, join_states, split_states
from .tangent import directions, push_forward


@dataclass(frozen=True)
class LagNorms:
    """log10‖∂s_T/∂s_{T−k}‖₂ for k = 0..T, (T+1, *lead), and ∂s_T/∂s_0 itself, (*lead, S, S)."""

    log10_by_lag: np.ndarray
    jacobian: LogMatrix


def _identity(u: Unroll, lead_axes: int) -> dict[str, np.ndarray]:
    """The S rows (or columns) of the identity, per state: (S, …, n) or (…, S, n)."""
    S = len(u.core.states) * u.n
    columns = split_states(u.core.states, u.n, np.eye(S, dtype=u.dtype))
    return {s: part.reshape((S,) + (1,) * lead_axes + (u.n,)) for s, part in columns.items()}


def jacobian_norms(u: Unroll, lags=None) -> LagNorms:
    """‖∂s_T/∂s_{T−k}‖₂ of a one-sequence unrolling (B = 1), for every lag k (or ``lags`` only,
    NaN elsewhere): the identity's S rows run backwards through the steps' VJPs as a batch
    of S, so that after k steps they are ∂s_T/∂s_{T−k}."""
    tape = scan(u)
    S, T = len(u.core.states) * u.n, u.steps
    rows = {s: np.broadcast_to(np.moveaxis(e, 0, -2), (*u.lead, S, u.n)) for s, e in _identity(u, 0).items()}
    product = LogMatrix(join_states(u.core.states, rows), np.zeros(u.lead))
    out = np.full((T + 1, *u.lead), np.nan)
    wanted: list[tuple[int, LogMatrix]] = [(0, product)]

    def flush():
        # One batched SVD for many lags: a call per step costs more than the SVD of a small S × S.
        if wanted:
            lags_, products = zip(*wanted)
            out[list(lags_)] = log10_norms(products)
            wanted.clear()

    def renormalised(t, carry):
        nonlocal product
        product = LogMatrix(*renormalise(join_states(u.core.states, carry), product.log10_scale))
        lag = T - t + 1
        if lags is None or lag in lags or lag == T:
            wanted.append((lag, product))
            if len(wanted) >= 256:
                flush()
        return split_states(u.core.states, u.n, product.mantissa)

    pullback(u, tape, rows, renormalised)
    flush()
    return LagNorms(out, product)


def state_products(u: Unroll, on_product: Callable[[int, LogMatrix], None]) -> None:
    """∂s_t/∂s_0 for t = 1..T, each handed to ``on_product`` as a LogMatrix (*lead, B, S, S): the
    identity's S columns carried forwards as tangents, stepping along (memory flat in T)."""
    S = len(u.core.states) * u.n
    scale = np.zeros(u.state_shape[:-1])

    def renormalised(t, sdot):
        nonlocal scale
        mantissa, scale = renormalise(np.moveaxis(join_states(u.core.states, sdot), 0, -1), scale)
        on_product(t, LogMatrix(mantissa, scale))
        by_state = split_states(u.core.states, u.n, np.swapaxes(mantissa, -1, -2))  # (…, directions, n) each
        return {s: np.moveaxis(part, -2, 0) for s, part in by_state.items()}

    push_forward(u, directions(u, _identity(u, len(u.lead) + 1), S, False), renormalised)


def state_jacobian(u: Unroll) -> LogMatrix:
    """∂s_T/∂s_0 = J_T ⋯ J_1, (*lead, B, S, S), without over- or underflow."""
    S = len(u.core.states) * u.n
    last = [LogMatrix(np.broadcast_to(np.eye(S), (*u.state_shape[:-1], S, S)).copy(),
                      np.zeros(u.state_shape[:-1]))]
    state_products(u, lambda t, m: last.__setitem__(0, m))
    return last[0]


def log10_by_step(u: Unroll, rows=slice(None), cols=slice(None)) -> np.ndarray:
    """log10‖∂s_t/∂s_0‖₂ (or of the block ``rows`` × ``cols``) for t = 1..T: (T, *lead, B)."""
    out = []
    state_products(u, lambda t, m: out.append(LogMatrix(m.mantissa[..., rows, cols], m.log10_scale).log10_norm()))
    return np.array(out)
