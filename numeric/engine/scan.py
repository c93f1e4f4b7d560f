"""The one forward pass: s_1..s_T from s_0 and x, keeping what BPTT and the tangents read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .products import Separate, Stacked, arrange
from .shapes import Unroll
from .stages import Group


@dataclass(frozen=True)
class Tape:
    """The forward scan: states (T+1, *lead, B, n), every step's values, the products' operands."""

    states: dict[str, np.ndarray]
    frames: list[dict]  # each step's values by key (``stages.key``), t = 1..T
    operands: dict[str, np.ndarray]  # per-step operands (Cho's r ⊙ h), for ∂L/∂W
    products: dict[str, Stacked | Separate]  # the weights as the products used them, for BPTT


def arranged(u: Unroll) -> dict[str, Stacked | Separate]:
    """Each product group's weights in the layout of a layer or a grid (``products.arrange``)."""
    return {g.key: arrange([u.params[m.weight] for m in g.maps], u.n, bool(u.lead)) for g in u.plan.groups}


def elementwise(u: Unroll) -> dict[str, np.ndarray]:
    """Each elementwise parameter (a bias (n,), one value (1,), a one-unit weight (1, 1)) as
    ([*lead,] 1, ·): broadcast over the batch B."""
    shapes = u.core.shapes(u.n, u.m)
    out = {}
    for name, name_key in u.plan.params:
        value = u.params[name]
        out[name_key] = value.reshape(value.shape[:value.ndim - len(shapes[name])] + (1, -1))
    return out


def x_lead(u: Unroll) -> np.ndarray:
    """x (T, B, m) with an axis of 1 for each lead axis, to broadcast against (T, *lead, B, ·)."""
    return u.x.reshape(u.x.shape[:1] + (1,) * len(u.lead) + u.x.shape[1:])


def value(g: Group, env) -> np.ndarray:
    """The operand v of a group from the step's values."""
    return env[g.key] if g.value is None else g.value(*(env[w] for w in g.inputs))[0]


def split(products: list[np.ndarray], g: Group, env) -> None:
    for name, product in zip(g.map_keys, products):
        env[name] = product


def initial_states(u: Unroll, dtype) -> dict[str, np.ndarray]:
    states = {s: np.empty((u.steps + 1, *u.state_shape), dtype=dtype) for s in u.core.states}
    for s in u.core.states:
        states[s][0] = u.s0[s]
    return states


def step(u: Unroll, kernels, env: dict, products: dict, ahead: dict) -> None:
    """Every value of one step into ``env`` (which holds s_{t−1}, x_t and the parameters);
    ``ahead``: this step's products of the input, computed before the scan."""
    shape = u.state_shape
    for k in kernels:
        for g in k.groups:
            if g.of_x:
                split(ahead[g.key], g, env)
                continue
            env[g.key] = v = value(g, env)
            split(products[g.key].apply(v), g, env)
        if k.forward is not None:
            for sym, out in zip(k.outputs, k.forward(*[env[w] for w in k.inputs])):
                env[sym] = out if np.shape(out) == shape else np.broadcast_to(out, shape)


def input_products(u: Unroll, products: dict, x: np.ndarray) -> dict:
    """The products of the input alone, for the steps of ``x`` at once: one large matrix product."""
    return {g.key: products[g.key].apply(value(g, {u.plan.x: x})) for g in u.plan.groups if g.of_x}


def scan(u: Unroll) -> Tape:
    """s_1..s_T from s_0 and x: the one forward pass."""
    kernels, products = u.plan.kernels, arranged(u)
    states, fixed, x = initial_states(u, u.dtype), elementwise(u), x_lead(u)
    ahead = input_products(u, products, x)
    # Operands computed per step (Cho's r ⊙ h) are kept for ∂L/∂W; plain states and x are stored already.
    kept = [g.key for g in u.plan.groups if not g.of_x and not g.operand.is_Symbol]
    operands = {operand: np.empty((u.steps, *u.state_shape), dtype=u.dtype) for operand in kept}
    frames, prev, now, x_sym = [], u.plan.prev, u.plan.now, u.plan.x
    for t in range(u.steps):
        env = {sym: states[s][t] for s, sym in prev}
        env[x_sym] = x[t]
        env.update(fixed)
        step(u, kernels, env, products, {operand: [p[t] for p in a] for operand, a in ahead.items()})
        for s, sym in now:
            states[s][t + 1] = env[sym]
        for operand in kept:
            operands[operand][t] = env[operand]
        frames.append(env)
    return Tape(states, frames, operands, products)
