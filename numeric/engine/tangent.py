"""Forward (tangent) mode: D directions carried along the steps beside the values, nothing stored.

Each step's tangents come from the stages' JVPs (``derive.rules.stage_jvp``) and, for a
product, Ṗ = W v̇ + Ẇ v.  A direction is a one-hot change of one parameter element, or of
one element of s_0: the first gives ∂L/∂θ with memory flat in T, the second ∂s_t/∂s_0 for
every t in one pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .products import Separate, Stacked
from .scan import arranged, elementwise, input_products, step, value, x_lead
from .shapes import Unroll
from .stages import compile_jvps


def offsets(u: Unroll) -> dict[str, int]:
    """Where each parameter's elements start among the directions, in the cell's table order."""
    out, start = {}, 0
    for name, shape in u.core.shapes(u.n, u.m).items():
        out[name] = start
        start += int(np.prod(shape))
    return out


def direction_count(u: Unroll) -> int:
    return sum(int(np.prod(shape)) for shape in u.core.shapes(u.n, u.m).values())


def _one_hot(u: Unroll, count: int, start: int, size: int) -> np.ndarray:
    """The tangent of an elementwise parameter along its own directions: (D, 1…, 1, n)."""
    out = np.zeros((count, *(1,) * len(u.lead), 1, u.n), u.dtype)
    if size == 1:
        out[start, ..., 0, :] = 1.0
    else:
        out[start + np.arange(size), ..., 0, np.arange(size)] = 1.0
    return out


def _weight_tangent(pdot: np.ndarray, v: np.ndarray, start: int) -> None:
    """Ṗ += Ẇ v for the one-hot directions of W's elements (row-major from ``start``)."""
    n, cols = pdot.shape[-1], v.shape[-1]
    rows, columns = np.divmod(np.arange(n * cols), cols)
    pdot[start + np.arange(n * cols), ..., rows] += np.moveaxis(v[..., columns], -1, 0)


@dataclass(frozen=True)
class Directions:
    """D tangent directions: s_0's (state -> (D, …, n)), and with ``weights`` and ``fixed`` one per
    parameter element (a weight's first direction; an elementwise parameter's one-hot tangent)."""

    count: int
    s0: dict[str, np.ndarray]
    weights: dict[str, int]
    fixed: dict


def directions(u: Unroll, s0: dict[str, np.ndarray], count: int, wrt_params: bool) -> Directions:
    start = offsets(u) if wrt_params else {}
    fixed = {sym: _one_hot(u, count, start[name], int(np.prod(u.core.shapes(u.n, u.m)[name])))
             for name, sym in u.plan.params if name in start}
    return Directions(count, dict(s0), {name: start[name] for name in u.core.weights if name in start}, fixed)


def _product_tangents(u: Unroll, g, products: Stacked | Separate, env: dict, dot: dict, d: Directions) -> None:
    if g.of_x:
        v_dot = None
    elif g.operand.is_Symbol:
        v_dot = dot.get(g.key)
    else:
        v_dot = sum((partial(*(env[w] for w in g.inputs))[0] * dot[w] for w, partial in g.partials if w in dot), 0.0)
    shape = (d.count, *u.state_shape)
    moving = isinstance(v_dot, np.ndarray)  # not s_0's zero tangent, nor x's
    pdots = products.apply(v_dot) if moving else [np.zeros(shape, u.dtype) for _ in g.maps]
    pdots = [np.array(np.broadcast_to(p, shape)) for p in pdots]
    v = value(g, env)
    for m, name, pdot in zip(g.maps, g.map_keys, pdots):
        if m.weight in d.weights:
            _weight_tangent(pdot, v, d.weights[m.weight])
        dot[name] = pdot


def _tangent_step(u: Unroll, env: dict, dot: dict, products: dict, d: Directions) -> None:
    """Every tangent of one step into ``dot`` (which holds those of s_{t−1} and the parameters)."""
    for k, jvp in zip(u.plan.kernels, compile_jvps(u.core)):
        for g in k.groups:
            _product_tangents(u, g, products[g.key], env, dot, d)
        if jvp is not None:
            tangents = jvp(*[env[w] for w in k.inputs], *[env[q] for q in k.computed],
                           *[dot.get(w, 0.0) for w in k.inputs])
            for q, tangent in zip(k.computed, tangents):
                dot[q] = tangent


def push_forward(u: Unroll, d: Directions, on_step: Callable[[int, dict], dict]) -> None:
    """Carry the tangent directions ``d`` along the steps; ``on_step(t, ṡ_t)`` sees each step's state
    tangents (state -> (D, *lead, B, n)) and returns them, or them rescaled."""
    kernels, products, fixed, x = u.plan.kernels, arranged(u), elementwise(u), x_lead(u)
    states, sdot = {s: np.broadcast_to(u.s0[s], u.state_shape) for s in u.core.states}, d.s0
    shape = (d.count, *u.state_shape)
    for t in range(u.steps):
        env = {name: states[s] for s, name in u.plan.prev}
        env[u.plan.x] = x[t]
        env.update(fixed)
        step(u, kernels, env, products, input_products(u, products, x[t]))
        dot = {name: sdot[s] for s, name in u.plan.prev} | d.fixed
        _tangent_step(u, env, dot, products, d)
        states = {s: env[name] for s, name in u.plan.now}
        sdot = on_step(t + 1, {s: np.broadcast_to(dot.get(name, 0.0), shape) for s, name in u.plan.now})


#: What forward mode may carry: D directions × settings × B × n values, a few arrays of them at once
#: (checked before a run, by ``numeric.engine.modes.check_fits``).
TANGENT_MEMORY = 1 << 30


def gradient_forward(u: Unroll, every_step: bool = False) -> dict[str, np.ndarray]:
    """∂L/∂θ for L = Σ_i (output)_T[i] (or Σ over every step) in forward mode: parameter ->
    lead + its own shape, the same as BPTT's, with nothing stored."""
    count = direction_count(u)
    total = np.zeros((count, *u.lead), u.dtype)

    def add(t, sdot):
        nonlocal total
        if every_step or t == u.steps:
            total = total + np.sum(sdot[u.core.output], axis=(-2, -1))
        return sdot

    push_forward(u, directions(u, {s: 0.0 for s in u.core.states}, count, True), add)
    shapes, start = u.core.shapes(u.n, u.m), offsets(u)
    return {name: np.moveaxis(total[start[name]:start[name] + int(np.prod(shape))], 0, -1).reshape(*u.lead, *shape)
            for name, shape in shapes.items()}
