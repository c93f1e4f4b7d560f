"""∂L/∂θ for L = Σ_i (output)_T[i] (or summed over every step), and what a trainer seeds itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from derive.core import Core

from .logmatrix import log10_norm
from .bptt import backward, input_grads, operand_history, own_shape, parameter_grads
from .scan import Tape, scan
from .shapes import Unroll, prepare
from .stages import key


def bptt(u: Unroll, tape: Tape, seed: dict[str, np.ndarray], *, first: int = 1,
         every_step: dict[str, np.ndarray] | None = None, wrt_inputs: bool = False,
         on_step: Callable[[int, dict], None] = lambda t, carry: None) -> tuple[dict, dict]:
    """(∂/∂s_{first−1} per state, ∂/∂θ per parameter) for the cotangent ``seed`` of s_T.

    ``wrt_inputs`` adds ``"x"``: ∂/∂x_t, (T, *lead, B, m), zero before ``first``.
    """
    carry, bars, rest = backward(u, tape, seed, first=first, every_step=every_step, wrt_inputs=wrt_inputs,
                                 on_step=on_step)
    grads = parameter_grads(u, tape, bars, rest["sums"], first)
    if wrt_inputs:
        grads["x"] = input_grads(u, tape, bars, rest["x"])
    return carry, grads


@dataclass(frozen=True)
class ValueAndGrad:
    """A batch of sequences unrolled, and ∂L/∂θ for L = Σ_b Σ_i (output)_T[b, i].

    ``states``: state -> (T+1, *lead, B, n).  ``grads``: parameter -> lead + its own shape,
    and ``h_0``, ``c_0``: ∂L/∂s_0, (*lead, B, n).  ``log10_adjoint``: log10 ‖∂L/∂s_t‖₂ per
    step t = 0..T, (T+1, *lead, B), when asked for.
    """

    unroll: Unroll
    states: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    log10_adjoint: np.ndarray | None
    tape: Tape

    @property
    def quantities(self) -> dict[str, np.ndarray]:
        """Every quantity of the step (gates, states) at t = 1..T: name -> (T, *lead, B, n)."""
        core = self.unroll.core
        return {name: np.stack([env[key(core.current(name))] for env in self.tape.frames]) for name, _ in core.equations}


def loss_seed(u: Unroll) -> dict[str, np.ndarray]:
    """∂L/∂s_T for L = Σ_i (output)_T[i]: ones on the output state, zeros on the others."""
    return {s: np.full(u.state_shape, 1.0 if s == u.core.output else 0.0, u.dtype) for s in u.core.states}


def value_and_grad(core: Core, params: Mapping[str, np.ndarray], x, s0=None, *, lead: tuple[int, ...] = (),
                   every_step: bool = False, truncate: int | None = None, adjoint_norms: bool = False,
                   dtype=None) -> ValueAndGrad:
    """Unroll a batch of sequences x (B, T, m) and differentiate L = Σ_b Σ_i (output)_T[b, i]
    (Σ over every step too with ``every_step``) by BPTT; ``truncate`` keeps the last τ steps.

    Parameters are shared by the batch, in the cell's shapes (biases (n,)), each with the
    grid's ``lead`` shape in front where it has one; s0 maps a state to (n,) or (B, n).
    ``dtype``: float64 (the default) or float32, what everything is computed in.
    """
    return differentiate(prepare(core, params, x, s0, lead, dtype), every_step=every_step, truncate=truncate,
                         adjoint_norms=adjoint_norms)


def differentiate(u: Unroll, *, every_step: bool = False, truncate: int | None = None,
                  adjoint_norms: bool = False) -> ValueAndGrad:
    """``value_and_grad`` of an unrolling already prepared (``shapes.prepare``)."""
    tape = scan(u)
    ones = loss_seed(u)
    norms = np.full((u.steps + 1, *u.state_shape[:-1]), -np.inf) if adjoint_norms else None

    def record(t, carry):
        norms[t - 1] = log10_norm(np.concatenate([np.asarray(c) for c in carry.values()], axis=-1))

    first = 1 if truncate is None else max(1, u.steps - truncate + 1)
    if adjoint_norms:
        norms[u.steps] = log10_norm(np.concatenate(list(ones.values()), axis=-1))
    carry, grads = bptt(u, tape, ones, first=first, every_step=ones if every_step else None,
                        on_step=record if adjoint_norms else (lambda t, c: None))
    for s in u.core.states:
        grads[f"{s}_0"] = np.array(carry[s]) if first == 1 else np.zeros(u.state_shape)
    return ValueAndGrad(u, tape.states, grads, norms, tape)


#: Settings per chunk of a large grid: its arrays stay in cache, and BPTT stores the steps of one chunk at
#: a time (measured fastest here among 4096-32768 for the one-unit RNN, LSTM and GRU, 2026-12-06).
CHUNK = 16384


def chunks(params: Mapping[str, np.ndarray], lead: tuple[int, ...], own: Mapping[str, tuple], size: int | None = None):
    """The grid flattened and cut into parameter sets of at most ``size`` (``CHUNK``) settings,
    (count,) + own shape (a shared parameter stays shared)."""
    size = size or CHUNK
    total = int(np.prod(lead, dtype=np.int64))
    flat = {name: v.reshape((total, *own[name])) if np.ndim(v) > len(own[name]) else v for name, v in params.items()}
    for start in range(0, total, size):
        count = min(size, total - start)
        yield (count,), {name: v[start:start + count] if np.ndim(v) > len(own[name]) else v for name, v in flat.items()}


def by_chunks(core: Core, u: Unroll, gradient_of: Callable[[Unroll], dict]) -> dict[str, np.ndarray]:
    """A grid's ∂L/∂θ (``gradient_of`` one prepared chunk) a chunk of settings at a time:
    parameter -> lead + its own shape.  ``core`` is the cell's (``u.core`` may be its scalar form)."""
    shapes, x = u.core.shapes(u.n, u.m), u.x.transpose(1, 0, 2)
    parts = [gradient_of(prepare(core, chunk, x, u.s0, size, u.dtype)) for size, chunk in chunks(u.params, u.lead, shapes)]
    return {name: np.concatenate([p[name] for p in parts]).reshape((*u.lead, *shapes[name])) for name in shapes}


def contributions(core: Core, params: Mapping[str, np.ndarray], x, s0=None) -> dict[str, np.ndarray]:
    """The BPTT term of each source step k, (∂L/∂s_T)(J_T ⋯ J_{k+1})(∂⁺s_k/∂θ), for L = Σ_i (output)_T[i]:
    parameter -> (T, *its shape), one sequence; their sum over k is ∂L/∂θ."""
    u = prepare(core, params, x, s0)
    tape = scan(u)
    _, bars, rest = backward(u, tape, loss_seed(u), by_step=True)
    shapes = u.core.shapes(u.n, u.m)
    out = {name: np.zeros((u.steps, *shape), u.dtype) for name, shape in shapes.items()}
    for name, name_key in u.plan.params:  # each step's (n,) summed to the parameter's own shape
        out[name][:] = own_shape(np.sum(rest["sums"][name_key], axis=-2), shapes[name], (u.steps,))
    for g in u.plan.groups:  # a weight's term of step t: Σ_b P̄_t ⊗ v_t, from what BPTT stored
        products, v = tape.products[g.key], operand_history(u, g, tape)
        for t in range(u.steps):
            terms = products.weight_grads(products.window(bars[g.key], t, t + 1), v[t:t + 1], 0)
            for m, term in zip(g.maps, terms):
                out[m.weight][t] = term
    return out
