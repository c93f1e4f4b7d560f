"""Any hidden size: the core's kernels elementwise over (batch, n), the products through BLAS.

One step is, per stage of the core (``derive.core.stages``): the products
P = W v stacked per operand into one matrix product (for the LSTM, one
(B, n) @ (n, 4n) a step, as PyTorch and cuDNN stack the gates), then the
elementwise equations as one compiled kernel.  Products of the input alone do
not depend on the recurrence and run for all T at once, before the scan.

Backwards (BPTT), each stage's vector-Jacobian product is the core's, derived
once by SymPy on scalars; a product's is two matrix products,
v̄ = P̄ W and W̄ = Σ_t P̄_tᵀ v_t, the latter one matrix product over all steps.
Nothing here grows with n but the arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Callable, Mapping

import numpy as np
import sympy as sp

from derive.core import Core, LinearMap, operand_partials, stage_inputs, stage_vjp, stages
from derive.compile import ordered_lambdify
from derive.errors import InvalidValue

from .kernels import MODULES as _NUMPY_MODULES
from .logmatrix import LogMatrix, log10_norm, log10_norms, renormalise


def _sigmoid(a):
    """σ(a) = 1 / (1 + e^{−a}) in place on one new array.

    NumPy's exp is vectorised and its tanh is not: this is about twice as fast as
    (1 + tanh(a/2)) / 2, and as exact (2.4e-16 relative, measured against mpmath over
    ±1e-300..±30).  e^{−a} = inf for a < −709 gives σ = 0, as it should.
    """
    out = np.negative(a)
    with np.errstate(over="ignore"):
        np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)
    return out


MODULES = [{"sigmoid": _sigmoid}, *_NUMPY_MODULES]

#: The largest hidden or input size: a (4096 × 4096) weight is 128 MiB in float64.
MAX_HIDDEN = 4096
#: What one run may hold in memory (stored steps, stacked products, weights and gradients).
MEMORY_LIMIT = 4 << 30
#: Bytes of Python objects per stored step, beside the arrays' data.
STEP_OVERHEAD = 10_000


@dataclass(frozen=True)
class Group:
    """Products sharing one operand v, computed as one matrix product with stacked weights."""

    operand: sp.Expr
    maps: tuple[LinearMap, ...]
    value: Callable | None  # v from the step's values, when v is not a plain symbol
    partials: tuple[tuple[sp.Symbol, Callable], ...]
    inputs: tuple[sp.Symbol, ...]
    of_x: bool  # v reads x alone: computed for all steps before the scan


@dataclass(frozen=True)
class Kernels:
    """One stage, compiled: products, or an elementwise forward kernel and its VJP."""

    groups: tuple[Group, ...] = ()
    quantities: tuple[sp.Symbol, ...] = ()  # those whose cotangent comes from outside the stage
    outputs: tuple[sp.Symbol, ...] = ()  # the quantities, then values saved for the VJP
    inputs: tuple[sp.Symbol, ...] = ()
    forward: Callable | None = None
    cotangents: tuple[tuple[sp.Symbol, int], ...] = ()  # (input, which VJP output), for nonzero ones
    expressions: tuple[tuple[sp.Symbol, sp.Expr], ...] = ()  # each input's cotangent, symbolically
    vjp: Callable | None = None


def _group(core: Core, maps: tuple[LinearMap, ...]) -> tuple[Group, ...]:
    by_operand: dict[sp.Expr, list[LinearMap]] = {}
    for m in maps:
        by_operand.setdefault(m.operand, []).append(m)
    out = []
    for operand, members in by_operand.items():
        inputs = tuple(sorted(operand.free_symbols, key=str))
        plain = operand.is_Symbol
        value = None if plain else ordered_lambdify([operand], inputs, MODULES)
        partials = tuple((u, ordered_lambdify([d], inputs, MODULES)) for u, d in operand_partials(members[0]))
        out.append(Group(operand, tuple(members), value, partials, inputs,
                         of_x=operand.free_symbols <= {core.x}))
    return tuple(out)


def _expanded(core: Core, stage) -> list[sp.Expr]:
    """The stage's equations in its inputs alone (a later one's use of an earlier one inlined)."""
    done: dict[sp.Symbol, sp.Expr] = {}
    for name, expr in stage.equations:
        done[core.current(name)] = expr.xreplace(done)
    return list(done.values())


def _read_later(core: Core, later) -> set:
    """Symbols a later stage reads (so their cotangents come from outside this stage)."""
    read = {core.current(s) for s in core.states}
    for stage in later:
        read |= {u for _, e in stage.equations for u in e.free_symbols}
        read |= {u for m in stage.maps for u in m.operand.free_symbols}
    return read


@cache
def compiled(core: Core) -> tuple[Kernels, ...]:
    """Every stage's kernels, compiled once per core (the same for every n)."""
    out = []
    all_stages = stages(core)
    for index, stage in enumerate(all_stages):
        if stage.maps:
            out.append(Kernels(groups=_group(core, stage.maps)))
            continue
        quantities = tuple(core.current(name) for name, _ in stage.equations)
        inputs = stage_inputs(core, stage)
        cot, exprs = stage_vjp(core, stage)
        # A gate no later stage reads gets no cotangent from outside: 0, not an array of zeros.
        read = _read_later(core, all_stages[index + 1:])
        outside = tuple(c for q, c in zip(quantities, cot) if q in read)
        exprs = [e.xreplace({c: 0 for c in cot if c not in outside}) for e in exprs]
        nonzero = [(u, e) for u, e in zip(inputs, exprs) if e != 0]
        # What the VJP would recompute (tanh(c_t) in h_t = o_t tanh(c_t)) is saved by the
        # forward pass instead, as autograd saves it.
        again = sorted({f for _, e in nonzero for f in e.atoms(sp.Function)}, key=str)
        saved = tuple(sp.Symbol(f"saved_{i}", real=True) for i in range(len(again)))
        forward = _expanded(core, stage)
        expand = dict(zip(quantities, forward))
        # W_xi x and W_hi h (and b_i) share one cotangent: computed once, one array for all three.
        distinct = list(dict.fromkeys(e for _, e in nonzero))
        out.append(Kernels(
            quantities=tuple(q for q, c in zip(quantities, cot) if c in outside),
            outputs=quantities + saved, inputs=inputs,
            forward=ordered_lambdify(forward + [f.xreplace(expand) for f in again], inputs, MODULES),
            cotangents=tuple((u, distinct.index(e)) for u, e in nonzero), expressions=tuple(nonzero),
            vjp=ordered_lambdify([e.xreplace(dict(zip(again, saved))) for e in distinct],
                                 inputs + quantities + saved + outside, MODULES),
        ))
    return tuple(out)


@dataclass(frozen=True)
class Sharing:
    """Cotangents BPTT need not store twice: a group of input products whose every map has
    the cotangent of a recurrent group's map (W_xi x and W_hi h), and parameters whose
    cotangent is a stored product's (b_i), summed from the stored array once at the end."""

    same_bar: tuple[tuple[sp.Expr, sp.Expr], ...]        # (input group's operand, recurrent one's)
    from_bar: tuple[tuple[sp.Symbol, sp.Expr, int], ...]  # (parameter, group operand, block)


@cache
def sharing(core: Core) -> Sharing:
    kernels = compiled(core)
    expr = {u: e for k in kernels for u, e in k.expressions}
    groups = [g for k in kernels for g in k.groups]
    recurrent = [g for g in groups if not g.of_x]

    def same(a, b):
        return expr.get(a) is not None and expr.get(a) == expr.get(b)

    pairs = tuple((g.operand, h.operand) for g in groups if g.of_x for h in recurrent[:1]
                  if len(g.maps) == len(h.maps) and all(same(a.symbol, b.symbol) for a, b in zip(g.maps, h.maps)))
    stored = [(g.operand, j, m.symbol) for g in groups for j, m in enumerate(g.maps)]
    from_bar = {}
    for _, sym in core.params:
        for operand, j, m in stored:
            if same(sym, m):
                from_bar.setdefault(sym, (sym, operand, j))
    return Sharing(pairs, tuple(from_bar.values()))


@dataclass(frozen=True)
class LayerResult:
    """A batch of sequences through one layer, and ∂L/∂θ for L = Σ_b Σ_i (output)_T[b, i].

    ``states``: state -> (T+1, B, n).  ``grads``: parameter -> its own shape, and
    ``h_0``, ``c_0``: ∂L/∂s_0 per sequence, (B, n).  ``log10_adjoint``:
    log10 ‖∂L/∂s_t‖₂ per step t = 0..T and sequence, (T+1, B).
    """

    core: Core
    states: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    log10_adjoint: np.ndarray | None
    tape: "Tape"

    @property
    def quantities(self) -> dict[str, np.ndarray]:
        """Every quantity of the step (gates, states) at t = 1..T: name -> (T, B, n)."""
        symbols = {name: self.core.current(name) for name, _ in self.core.equations}
        return {name: np.stack([env[symbol] for env in self.tape.frames]) for name, symbol in symbols.items()}


def sizes(core: Core, params: Mapping[str, np.ndarray]) -> tuple[int, int]:
    """(n, m) read off the weights; every parameter checked against them."""
    table = core.param_table()
    missing = [name for name, _, _ in table if name not in params]
    if missing:
        raise InvalidValue("params", f"{core.definition.name} needs {', '.join(missing)}")
    extra = sorted(set(params) - {name for name, _, _ in table})
    if extra:
        raise InvalidValue("params", f"{core.definition.name} has no parameter {extra[0]}; "
                           f"allowed: {', '.join(name for name, _, _ in table)}")
    n = next((np.shape(params[name])[0] for name, rows, _ in table if rows == "n" and np.ndim(params[name])), 1)
    m = next((np.shape(params[name])[1] for name, _, cols in table if cols == "m" and np.ndim(params[name]) == 2), 1)
    for name, shape in core.shapes(n, m).items():
        got = np.shape(params[name])
        if got != shape and not (len(shape) == 1 and got == shape + (1,)):
            raise InvalidValue("params", f"{name} has shape {got}; at hidden size {n}, input size {m} "
                               f"it must be {shape}")
    if not 1 <= n <= MAX_HIDDEN or not 1 <= m <= MAX_HIDDEN:
        raise InvalidValue("hidden", f"hidden size {n}, input size {m}; allowed: 1 to {MAX_HIDDEN}")
    return n, m


def memory_bytes(core: Core, n: int, m: int, batch: int, steps: int) -> int:
    """What ``value_and_grad`` holds at its peak: every step's values, the stacked
    products and their cotangents, the weights and their gradients (float64)."""
    per_step = len(core.prev) + len(core.equations) * 2 + len(core.maps) * 2
    weights = sum(int(np.prod(s)) for s in core.shapes(n, m).values())
    # Each step's values are also Python objects (a dict, array headers): about 10 KB a step,
    # measured (LSTM, n = 1, 10^5 steps: 931 MB), which dominates for long, small runs.
    return 8 * (steps * batch * (per_step * n + m) + 3 * weights) + STEP_OVERHEAD * steps


def check_memory(core: Core, n: int, m: int, batch: int, steps: int) -> None:
    need = memory_bytes(core, n, m, batch, steps)
    if need > MEMORY_LIMIT:
        raise InvalidValue("memory", f"this run would hold {need / 2**30:.1f} GiB (hidden {n}, batch {batch}, "
                           f"{steps} steps); allowed: up to {MEMORY_LIMIT / 2**30:.0f} GiB (for a long horizon of a "
                           "one-unit cell, forward mode stores no steps)")


def _weights(core: Core, params) -> dict[str, np.ndarray]:
    return {name: np.asarray(params[name], dtype=float) for name in core.weights}


def _elementwise(core: Core, params) -> dict[sp.Symbol, np.ndarray]:
    return {sym: np.asarray(params[name], dtype=float).reshape(-1) for name, sym in core.params}


def _stacked(groups: tuple[Group, ...], weights) -> dict[sp.Expr, np.ndarray]:
    """Each group's weights stacked by rows, transposed for v @ Wᵀ: (cols, G·n)."""
    return {g.operand: np.ascontiguousarray(np.concatenate([weights[m.weight] for m in g.maps]).T)
            for g in groups}


def _value(g: Group, env) -> np.ndarray:
    return env[g.operand] if g.value is None else g.value(*(env[u] for u in g.inputs))[0]


def _split(product: np.ndarray, g: Group, n: int, env) -> None:
    for k, m in enumerate(g.maps):
        env[m.symbol] = product[..., k * n:(k + 1) * n]


@dataclass(frozen=True)
class Tape:
    """The forward scan: states (T+1, B, n), every step's values, the products' operands."""

    states: dict[str, np.ndarray]
    frames: list[dict]  # each step's values, t = 1..T
    operands: dict[sp.Expr, np.ndarray]
    stacked: dict[sp.Expr, np.ndarray]  # the weights as the products used them, for BPTT to reuse


def scan(core: Core, params, x: np.ndarray, s0: Mapping[str, np.ndarray]) -> Tape:
    """s_1..s_T from s_0 and x (T, B, m): the one forward pass, keeping what BPTT reads."""
    kernels, weights = compiled(core), _weights(core, params)
    T, B, _ = x.shape
    n = next(iter(s0.values())).shape[-1]
    states = {s: np.empty((T + 1, B, n)) for s in core.states}
    for s in core.states:
        states[s][0] = s0[s]
    fixed = _elementwise(core, params)
    all_groups = [g for k in kernels for g in k.groups]
    stacked = _stacked(tuple(all_groups), weights)
    # Products of the input alone, all steps at once: one large, efficient matrix product.
    ahead = {g.operand: _value(g, {core.x: x}) @ stacked[g.operand] for g in all_groups if g.of_x}
    # Operands computed per step (Cho's r ⊙ h) are kept for ∂L/∂W; plain states and x are stored already.
    operands = {g.operand: np.empty((T, B, n)) for g in all_groups if not g.of_x and not g.operand.is_Symbol}
    tape = []
    now = [(states[s], core.current(s)) for s in core.states]
    for t in range(T):
        env = {sym: states[s][t] for s, sym in core.prev}
        env[core.x] = x[t]
        env.update(fixed)
        for k in kernels:
            for g in k.groups:
                if g.of_x:
                    _split(ahead[g.operand][t], g, n, env)
                    continue
                v = _value(g, env)
                if g.operand in operands:
                    operands[g.operand][t] = v
                _split(v @ stacked[g.operand], g, n, env)
            if k.forward is not None:
                for sym, value in zip(k.outputs, k.forward(*[env[u] for u in k.inputs])):
                    env[sym] = value if np.ndim(value) == 2 else np.broadcast_to(value, (B, n))
        for history, sym in now:
            history[t + 1] = env[sym]
        tape.append(env)
    return Tape(states, tape, operands, stacked)


def _add(cot: dict, key, value) -> None:
    cot[key] = cot[key] + value if key in cot else value


def backward(core: Core, params, x: np.ndarray, tape: Tape, seed: dict[str, np.ndarray],
             every_step: dict[str, np.ndarray] | None = None, first: int = 1,
             with_params: bool = True, on_step: Callable | None = None, wrt_inputs: bool = False):
    """BPTT from the cotangent ``seed`` of s_T (state -> (B, n)) down to step ``first``.

    ``every_step`` adds its cotangent at every step t ≥ 1 (a loss on every step).
    Returns (∂/∂s_{first−1} per state, ∂/∂θ per parameter or {}).  ``on_step(t, carry)``
    sees the cotangent of s_{t−1} after each step and may rescale it (returning it).
    ``wrt_inputs`` (with the parameters) adds ``"x"``: ∂/∂x_t, (T, B, m), zero before ``first``.
    """
    kernels, stacked = compiled(core), tape.stacked
    T = len(tape.frames)
    all_groups = [g for k in kernels for g in k.groups]
    # The stacked products' cotangents of every step, for one Σ_t P̄_tᵀ v_t at the end.
    share = sharing(core)
    aliased = dict(share.same_bar)
    summed_later = {sym for sym, _, _ in share.from_bar}
    bars = {g.operand: np.zeros((T, *seed[core.states[0]].shape[:-1], stacked[g.operand].shape[1]))
            for g in all_groups if g.operand not in aliased} if with_params else {}
    bars.update({x_operand: bars[h_operand] for x_operand, h_operand in aliased.items() if with_params})
    sums = {sym: 0.0 for _, sym in core.params}
    carry = dict(seed)
    batch = next(iter(seed.values())).shape[:-1]
    x_bar = np.zeros(x.shape[:1] + batch + x.shape[-1:]) if wrt_inputs else None
    now = [(s, core.current(s)) for s in core.states]
    for t in range(T, first - 1, -1):
        env = tape.frames[t - 1]
        cot = {sym: carry[s] for s, sym in now}
        for k in reversed(kernels):
            if k.vjp is not None:
                bar_out = [cot.get(sym, 0.0) for sym in k.quantities]
                values = k.vjp(*[env[u] for u in k.inputs], *[env[q] for q in k.outputs], *bar_out)
                for u, index in k.cotangents:
                    _add(cot, u, values[index])
            for g in k.groups:
                if g.operand in aliased and with_params:
                    continue  # its cotangents are the recurrent group's, stored there
                n = stacked[g.operand].shape[1] // len(g.maps)
                bar = bars[g.operand][t - 1] if with_params else np.zeros(batch + (stacked[g.operand].shape[1],))
                for j, m in enumerate(g.maps):
                    bar[..., j * n:(j + 1) * n] = cot.get(m.symbol, 0.0)
                if g.of_x:
                    continue
                v_bar = bar @ stacked[g.operand].T
                for u, partial in g.partials:
                    _add(cot, u, v_bar if g.operand.is_Symbol else v_bar * partial(*(env[w] for w in g.inputs))[0])
        if with_params:
            for _, sym in core.params:
                if sym in cot and sym not in summed_later:
                    sums[sym] = sums[sym] + _sum_to(cot[sym], env[sym].shape)
        if wrt_inputs and core.x in cot:  # x read by an elementwise equation, not through a product
            x_bar[t - 1] += cot[core.x]
        carry = {s: np.broadcast_to(cot.get(sym, 0.0), carry[s].shape) for s, sym in core.prev}
        if every_step is not None and t > 1:
            carry = {s: carry[s] + every_step[s] for s in core.states}
        if on_step is not None:
            carry = on_step(t, carry)
    if not with_params:
        return carry, {}
    for sym, operand, j in share.from_bar:
        bar = bars[operand][first - 1:]
        n = bar.shape[-1] // len(next(g for g in all_groups if g.operand == operand).maps)
        shape = next(np.shape(params[name]) for name, s in core.params if s == sym)
        sums[sym] = _sum_to(bar[..., j * n:(j + 1) * n].reshape(-1, n), shape)
    grads = {name: np.broadcast_to(np.asarray(sums[sym], dtype=float), np.shape(params[name])).copy()
             for name, sym in core.params}
    for g in all_groups:
        v = _operand_history(core, g, x, tape)
        bar = bars[g.operand][first - 1:]
        v = v[first - 1:]
        total = bar.reshape(-1, bar.shape[-1]).T @ v.reshape(-1, v.shape[-1])
        n = total.shape[0] // len(g.maps)
        for j, m in enumerate(g.maps):
            grads[m.weight] = total[j * n:(j + 1) * n]
        if wrt_inputs and g.of_x:
            _add_input_cotangent(x_bar, g, bars[g.operand] @ stacked[g.operand].T, x)
    if wrt_inputs:
        grads["x"] = x_bar
    return carry, grads


def _add_input_cotangent(x_bar: np.ndarray, g: Group, v_bar: np.ndarray, x: np.ndarray) -> None:
    """x̄ += v̄ ∂v/∂x for a product W v of the input alone (v = x, or v elementwise in x)."""
    if g.operand.is_Symbol:
        x_bar += v_bar
        return
    for _, partial in g.partials:
        x_bar += v_bar * partial(x)[0]


def _sum_to(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Σ over the batch (and over units, for a parameter shared by all of them)."""
    value = np.asarray(value)
    total = value.reshape(-1, value.shape[-1]).sum(axis=0) if value.ndim > 1 else value
    return total if total.shape == shape else total.sum(keepdims=True).reshape(shape)


def _operand_history(core: Core, g: Group, x: np.ndarray, tape: Tape) -> np.ndarray:
    """v_t for t = 1..T, shape (T, B, cols)."""
    if g.of_x:
        return x if g.operand.is_Symbol else _value(g, {core.x: x})
    if g.operand.is_Symbol:
        state = next(s for s, sym in core.prev if sym == g.operand)
        return tape.states[state][:-1]
    return tape.operands[g.operand]


def _prepare(core: Core, params, x, s0):
    n, m = sizes(core, params)
    x = np.asarray(x, dtype=float)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[-1] != m or x.shape[1] < 1:
        raise InvalidValue("inputs", f"inputs have shape {x.shape}; allowed: (T, {m}) or (B, T, {m})")
    batch, steps = x.shape[0], x.shape[1]
    check_memory(core, n, m, batch, steps)
    initial = {}
    for s in core.states:
        value = np.zeros((batch, n)) if s0 is None or s not in s0 else np.asarray(s0[s], dtype=float)
        if value.shape not in ((n,), (batch, n)):
            raise InvalidValue("s0", f"{s}_0 has shape {value.shape}; allowed: ({n},) or ({batch}, {n})")
        initial[s] = np.broadcast_to(value, (batch, n))
    return n, np.ascontiguousarray(x.transpose(1, 0, 2)), initial


def value_and_grad(core: Core, params: Mapping[str, np.ndarray], x, s0=None, *,
                   every_step: bool = False, truncate: int | None = None,
                   adjoint_norms: bool = False) -> LayerResult:
    """Unroll a batch of sequences x (B, T, m) and differentiate L = Σ_b Σ_i (output)_T[b, i]
    (Σ over every step too with ``every_step``) by BPTT; ``truncate`` keeps the last τ steps.
    ``adjoint_norms``: also log10‖∂L/∂s_t‖₂ at every step (else ``log10_adjoint`` is None).

    Parameters are shared by the batch, in the cell's shapes (biases (n,)); s0 maps a
    state to (n,) or (B, n), zeros by default.
    """
    n, xs, initial = _prepare(core, params, x, s0)
    T, B = xs.shape[:2]
    tape = scan(core, params, xs, initial)
    ones = {s: np.full((B, n), 1.0 if s == core.output else 0.0) for s in core.states}
    norms = np.full((T + 1, B), -np.inf)
    norms[T] = _log10_norm(ones)

    def record(t, carry):
        norms[t - 1] = _log10_norm(carry)
        return carry

    first = 1 if truncate is None else max(1, T - truncate + 1)
    carry, grads = backward(core, params, xs, tape, ones, ones if every_step else None, first,
                            on_step=record if adjoint_norms else None)
    for s in core.states:
        grads[f"{s}_0"] = np.array(carry[s]) if first == 1 else np.zeros((B, n))
    return LayerResult(core, tape.states, grads, norms if adjoint_norms else None, tape)


def _log10_norm(carry: Mapping[str, np.ndarray]) -> np.ndarray:
    """log10 ‖v‖₂ per row, scaled by max|v| first so that 1e-200 or 1e170 neither under- nor overflows."""
    v = np.concatenate([np.asarray(a) for a in carry.values()], axis=-1)
    return log10_norm(v)


@dataclass(frozen=True)
class LagNorms:
    """log10‖∂s_T/∂s_{T−k}‖₂ for k = 0..T, and ∂s_T/∂s_0 itself in the log domain."""

    log10_by_lag: np.ndarray
    jacobian: LogMatrix


def jacobian_norms(core: Core, params, x, s0=None, sequence: int = 0, lags=None) -> LagNorms:
    """‖∂s_T/∂s_{T−k}‖₂ of one sequence, for every lag k, without over- or underflow.

    The identity's S rows (S = states × n) run backwards through the steps' VJPs as
    a batch of S: after k steps the rows are ∂s_T/∂s_{T−k}.  Each step's product is
    renormalised and its scale kept as log10 (``numeric.logmatrix``).  The spectral
    norm (an SVD of S × S) is taken at every lag, or at ``lags`` only (NaN elsewhere).
    """
    n, xs, initial = _prepare(core, params, x, s0)
    xs = xs[:, sequence:sequence + 1]
    tape = scan(core, params, xs, {s: v[sequence:sequence + 1] for s, v in initial.items()})
    S = len(core.states) * n
    T = xs.shape[0]
    product = LogMatrix(np.eye(S), np.zeros(()))
    out = np.full(T + 1, np.nan)
    wanted: list[tuple[int, LogMatrix]] = [(0, product)]

    def flush():
        # One batched SVD for many lags: a call per step costs more than the SVD of a small S × S.
        if wanted:
            lags_, products = zip(*wanted)
            out[list(lags_)] = log10_norms(products)
            wanted.clear()

    def renormalised(t, carry):
        nonlocal product
        product = LogMatrix(*renormalise(np.concatenate([carry[s] for s in core.states], axis=-1),
                                         product.log10_scale))
        lag = T - t + 1
        if lags is None or lag in lags or lag == T:
            wanted.append((lag, product))
            if len(wanted) >= 256:
                flush()
        return {s: product.mantissa[:, j * n:(j + 1) * n] for j, s in enumerate(core.states)}

    seed = {s: np.eye(S)[:, j * n:(j + 1) * n] for j, s in enumerate(core.states)}
    backward(core, params, xs, tape, seed, with_params=False, on_step=renormalised)
    flush()
    return LagNorms(out, product)
