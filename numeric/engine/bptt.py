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
from .stages import compile_stages, groups, sharing


def _add(cot: dict, key, v) -> None:
    cot[key] = cot[key] + v if key in cot else v


def _vjp_step(u: Unroll, tape: Tape, env: dict, cot: dict, bars: dict | None = None,
              x_bar: np.ndarray | None = None) -> None:
    """Every cotangent of one step, from those of its states (in ``cot``, whose shape may have a batch
    of its own: the S rows of a Jacobian), stage by stage backwards.  ``bars``: the products'
    cotangent arrays of this step, to fill (None: nothing is stored); ``x_bar``: where to add x_t's
    cotangent where a stage reads x directly (None: not wanted)."""
    shape = np.broadcast_shapes(*(np.shape(cot[u.core.current(s)]) for s in u.core.states))
    aliased = dict(sharing(u.core).same_bar) if bars is not None else {}
    for k in reversed(compile_stages(u.core)):
        if k.vjp is not None:
            args = [*[env[w] for w in k.inputs], *[env[q] for q in k.outputs],
                    *[cot.get(sym, 0.0) for sym in k.received]]
            values = k.vjp(*args)
            for w, index in k.cotangents:
                _add(cot, w, values[index])
            if x_bar is not None and k.x_vjp is not None:
                x_bar += k.x_vjp(*args)[0]
        for g in k.groups:
            if g.of_x and (bars is None or g.operand in aliased):
                continue  # nothing flows back to x; stored under the recurrent group's operand
            products = tape.products[g.operand]
            bar = bars[g.operand] if bars is not None else products.at(products.storage(1, shape, u.dtype), 0)
            for j, m in enumerate(g.maps):
                products.block(bar, j)[...] = cot.get(m.symbol, 0.0)
            if g.of_x:
                continue
            v_bar = products.pull(bar)
            for w_sym, partial in g.partials:
                _add(cot, w_sym, v_bar if g.operand.is_Symbol else v_bar * partial(*(env[a] for a in g.inputs))[0])


def _carry(u: Unroll, cot: dict, shape) -> dict[str, np.ndarray]:
    return {s: np.broadcast_to(cot.get(sym, 0.0), shape) for s, sym in u.core.prev}


def pullback(u: Unroll, tape: Tape, seed: dict[str, np.ndarray],
             on_step: Callable[[int, dict], dict] = lambda t, carry: carry) -> dict[str, np.ndarray]:
    """∂(seed · s_T)/∂s_0 per state: the states' cotangents alone, back through every step.
    ``on_step(t, carry)`` sees the cotangent of s_{t−1} and returns it, or it rescaled."""
    carry = dict(seed)
    shape = np.broadcast_shapes(*(np.shape(v) for v in seed.values()))
    for t in range(u.steps, 0, -1):
        cot = {u.core.current(s): carry[s] for s in u.core.states}
        _vjp_step(u, tape, tape.frames[t - 1], cot)
        carry = on_step(t, _carry(u, cot, shape))
    return carry


def _bar_arrays(u: Unroll, tape: Tape) -> dict:
    aliased = dict(sharing(u.core).same_bar)
    bars = {g.operand: tape.products[g.operand].storage(u.steps, u.state_shape(), u.dtype)
            for g in groups(u.core) if g.operand not in aliased}
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
    x_read = np.zeros((u.steps, *u.state_shape()[:-1], u.m), u.dtype) if wrt_inputs else None
    summed_later = {sym for sym, _, _ in sharing(u.core).from_bar}
    carry = dict(seed)
    for t in range(u.steps, first - 1, -1):
        env = tape.frames[t - 1]
        cot = {u.core.current(s): np.broadcast_to(carry[s], u.state_shape()) for s in u.core.states}
        _vjp_step(u, tape, env, cot, {operand: tape.products[operand].at(bar, t - 1) for operand, bar in bars.items()},
                  None if x_read is None else x_read[t - 1])
        for _, sym in u.core.params:
            if by_step:
                sums.setdefault(sym, np.zeros((u.steps, *u.state_shape()), u.dtype))[t - 1] += cot.get(sym, 0.0)
            elif sym in cot and sym not in summed_later:  # summed over the batch once, at the end
                if sym not in sums:
                    sums[sym] = np.zeros(u.state_shape(), u.dtype)
                sums[sym] += cot[sym]
        carry = _carry(u, cot, u.state_shape())
        if every_step is not None and t > 1:
            carry = {s: carry[s] + every_step[s] for s in u.core.states}
        on_step(t, carry)
    return carry, bars, {"sums": sums, "x": x_read}


def _own(total: np.ndarray, shape: tuple[int, ...], lead: tuple[int, ...]) -> np.ndarray:
    """(*lead, n) summed to a parameter's own shape: over units for one shared by all of them."""
    size = int(np.prod(shape))
    total = total if total.shape[-1] == size else np.sum(total, axis=-1, keepdims=True)
    return np.broadcast_to(total, (*lead, size)).reshape(*lead, *shape).copy()


def parameter_grads(u: Unroll, tape: Tape, bars: dict, sums: dict, first: int = 1) -> dict[str, np.ndarray]:
    """∂L/∂θ from BPTT's cotangents: W̄ = Σ_t P̄_tᵀ v_t as one product, biases summed.
    Shapes: lead + each parameter's own."""
    shapes = u.core.shapes(u.n, u.m)
    out = {}
    totals = {sym: np.sum(value, axis=-2) for sym, value in sums.items()}
    for sym, operand, j in sharing(u.core).from_bar:
        products = tape.products[operand]
        totals[sym] = np.sum(products.block(products.window(bars[operand], first - 1), j), axis=(0, -2))
    for name, sym in u.core.params:
        out[name] = _own(totals.get(sym, np.zeros((*u.lead, u.n), u.dtype)), shapes[name], u.lead)
    for g in groups(u.core):
        products = tape.products[g.operand]
        totals = products.weight_grads(products.window(bars[g.operand], first - 1),
                                       operand_history(u, g, tape)[first - 1:], len(u.lead))
        for m, total in zip(g.maps, totals):
            out[m.weight] = total
    return out



def input_grads(u: Unroll, tape: Tape, bars: dict, x_read: np.ndarray | None) -> np.ndarray:
    """∂L/∂x_t, (T, *lead, B, m): through each product of the input, and where x is read directly."""
    out = np.zeros((u.steps, *u.state_shape()[:-1], u.m), u.dtype) if x_read is None else x_read
    for g in groups(u.core):
        if g.of_x:
            v_bar = tape.products[g.operand].pull(bars[g.operand])
            out += v_bar if g.operand.is_Symbol else sum(v_bar * p(x_lead(u))[0] for _, p in g.partials)
    return out


def operand_history(u: Unroll, g, tape: Tape) -> np.ndarray:
    """v_t for t = 1..T: (T, [*lead,] B, cols)."""
    if g.of_x:
        x = x_lead(u)
        return x if g.operand.is_Symbol else value(g, {u.core.x: x})
    if g.operand.is_Symbol:
        state = next(s for s, sym in u.core.prev if sym == g.operand)
        return tape.states[state][:-1]
    return tape.operands[g.operand]
