"""Backpropagation through time: the one reverse pass, for a layer and a grid alike.

Each step runs the stages backwards: an elementwise stage's VJP (derived once by SymPy,
``derive.rules.stage_vjp``), then a product's, v̄ = P̄ W.  The products' cotangents of every
step are stored, so that each weight's gradient W̄ = Σ_t P̄_tᵀ v_t is one matrix product
over all steps at the end.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .scan import Tape, value, x_lead
from .shapes import Unroll


def _add(cot: dict, key, v) -> None:
    cot[key] = cot[key] + v if key in cot else v


def _vjp_step(u: Unroll, tape: Tape, env: dict, cot: dict, bars: dict | None = None,
              x_bar: np.ndarray | None = None) -> None:
    """Every cotangent of one step, from those of its states (in ``cot``, whose shape may have a batch
    of its own: the S rows of a Jacobian), stage by stage backwards.  ``bars``: the products'
    cotangent arrays of this step, to fill (None: nothing is stored); ``x_bar``: where to add x_t's
    cotangent where a stage reads x directly (None: not wanted)."""
    shape = np.shape(next(iter(cot.values())))
    aliased = u.plan.aliased if bars is not None else {}
    for k in u.plan.backwards:
        if k.vjp is not None:
            args = [*[env[w] for w in k.inputs], *[env[q] for q in k.outputs],
                    *[cot.get(sym, 0.0) for sym in k.received]]
            values = k.vjp(*args)
            for w, index in k.cotangents:
                _add(cot, w, values[index])
            if x_bar is not None and k.x_vjp is not None:
                x_bar += k.x_vjp(*args)[0]
        for g in k.groups:
            if g.of_x and (bars is None or g.key in aliased):
                continue  # nothing flows back to x; stored under the recurrent group's operand
            products = tape.products[g.key]
            bar = bars[g.key] if bars is not None else products.at(products.storage(1, shape, u.dtype), 0)
            for j, name in enumerate(g.map_keys):
                products.block(bar, j)[...] = cot.get(name, 0.0)
            if g.of_x:
                continue
            v_bar = products.pull(bar)
            for w_sym, partial in g.partials:
                _add(cot, w_sym, v_bar if g.operand.is_Symbol else v_bar * partial(*(env[a] for a in g.inputs))[0])


def _carry(u: Unroll, cot: dict, shape) -> dict[str, np.ndarray]:
    """The cotangent of s_{t−1} per state, each of the states' full shape."""
    out = {}
    for s, sym in u.plan.prev:
        value = cot.get(sym, 0.0)
        out[s] = value if np.shape(value) == shape else np.broadcast_to(value, shape)
    return out


def pullback(u: Unroll, tape: Tape, seed: dict[str, np.ndarray],
             on_step: Callable[[int, dict], dict] = lambda t, carry: carry) -> dict[str, np.ndarray]:
    """∂(seed · s_T)/∂s_0 per state: the states' cotangents alone, back through every step.
    ``on_step(t, carry)`` sees the cotangent of s_{t−1} and returns it, or it rescaled."""
    carry, now = dict(seed), u.plan.now
    shape = np.broadcast_shapes(*(np.shape(v) for v in seed.values()))
    for t in range(u.steps, 0, -1):
        cot = {sym: carry[s] for s, sym in now}
        _vjp_step(u, tape, tape.frames[t - 1], cot)
        carry = on_step(t, _carry(u, cot, shape))
    return carry


def _bar_arrays(u: Unroll, tape: Tape) -> dict:
    aliased = u.plan.aliased
    bars = {g.key: tape.products[g.key].storage(u.steps, u.state_shape, u.dtype)
            for g in u.plan.groups if g.key not in aliased}
    bars.update({x_operand: bars[h_operand] for x_operand, h_operand in aliased.items()})
    return bars


def backward(u: Unroll, tape: Tape, seed: dict[str, np.ndarray], *, first: int = 1,
             every_step: dict[str, np.ndarray] | None = None, wrt_inputs: bool = False, by_step: bool = False,
             on_step: Callable[[int, dict], None] = lambda t, carry: None) -> tuple[dict, dict, dict]:
    """BPTT from the cotangent ``seed`` of s_T (state -> (*lead, B, n)) down to step ``first``.

    ``every_step`` adds its cotangent at every step t ≥ 1 (a loss on every step);
    ``on_step(t, carry)`` sees the cotangent of s_{t−1}.  Returns (∂/∂s_{first−1} per state,
    the per-step cotangents of the products (T, *lead, B, k·n) by operand, and of x where an
    elementwise equation reads it, and the elementwise parameters' summed cotangents, or with
    ``by_step`` each step's, (T, *lead, n)).
    """
    bars, sums = _bar_arrays(u, tape), {}
    x_read = np.zeros((u.steps, *u.state_shape[:-1], u.m), u.dtype) if wrt_inputs else None
    keys = [name for _, name in u.plan.params]
    summed = [name for name in keys if name not in u.plan.summed_later]
    carry, now = dict(seed), u.plan.now
    for t in range(u.steps, first - 1, -1):
        env = tape.frames[t - 1]
        cot = {sym: carry[s] for s, sym in now}
        _vjp_step(u, tape, env, cot, {operand: tape.products[operand].at(bar, t - 1) for operand, bar in bars.items()},
                  None if x_read is None else x_read[t - 1])
        for sym in keys if by_step else summed:
            if by_step:
                sums.setdefault(sym, np.zeros((u.steps, *u.state_shape), u.dtype))[t - 1] += cot.get(sym, 0.0)
            elif sym in cot:  # summed over the batch once, at the end
                if sym not in sums:
                    sums[sym] = np.zeros(u.state_shape, u.dtype)
                sums[sym] += cot[sym]
        carry = _carry(u, cot, u.state_shape)
        if every_step is not None and t > 1:
            carry = {s: carry[s] + every_step[s] for s in u.core.states}
        on_step(t, carry)
    return carry, bars, {"sums": sums, "x": x_read}


def own_shape(total: np.ndarray, shape: tuple[int, ...], lead: tuple[int, ...]) -> np.ndarray:
    """(*lead, n) summed to a parameter's own shape: over units for one shared by all of them."""
    size = int(np.prod(shape))
    total = total if total.shape[-1] == size else np.sum(total, axis=-1, keepdims=True)
    return np.broadcast_to(total, (*lead, size)).reshape(*lead, *shape).copy()


def parameter_grads(u: Unroll, tape: Tape, bars: dict, sums: dict, first: int = 1) -> dict[str, np.ndarray]:
    """∂L/∂θ from BPTT's cotangents: W̄ = Σ_t P̄_tᵀ v_t as one product, biases summed.
    Shapes: lead + each parameter's own."""
    shapes = u.core.shapes(u.n, u.m)
    out = {}
    totals = {name: np.sum(value, axis=-2) for name, value in sums.items()}
    for name, operand, j in u.plan.sharing.from_bar:
        products = tape.products[operand]
        totals[name] = np.sum(products.block(products.window(bars[operand], first - 1), j), axis=(0, -2))
    for name, name_key in u.plan.params:
        out[name] = own_shape(totals.get(name_key, np.zeros((*u.lead, u.n), u.dtype)), shapes[name], u.lead)
    for g in u.plan.groups:
        products = tape.products[g.key]
        totals = products.weight_grads(products.window(bars[g.key], first - 1),
                                       operand_history(u, g, tape)[first - 1:], len(u.lead))
        for m, total in zip(g.maps, totals):
            out[m.weight] = total
    return out



def input_grads(u: Unroll, tape: Tape, bars: dict, x_read: np.ndarray | None) -> np.ndarray:
    """∂L/∂x_t, (T, *lead, B, m): through each product of the input, and where x is read directly."""
    out = np.zeros((u.steps, *u.state_shape[:-1], u.m), u.dtype) if x_read is None else x_read
    for g in u.plan.groups:
        if g.of_x:
            v_bar = tape.products[g.key].pull(bars[g.key])
            out += v_bar if g.operand.is_Symbol else sum(v_bar * p(x_lead(u))[0] for _, p in g.partials)
    return out


def operand_history(u: Unroll, g, tape: Tape) -> np.ndarray:
    """v_t for t = 1..T: (T, [*lead,] B, cols)."""
    if g.of_x:
        x = x_lead(u)
        return x if g.operand.is_Symbol else value(g, {u.plan.x: x})
    if g.operand.is_Symbol:
        state = next(s for s, name in u.plan.prev if name == g.key)
        return tape.states[state][:-1]
    return tape.operands[g.key]
