"""The peers ``hidden.py`` times us against: PyTorch's layers and JAX's ``jit(grad(L))`` over
``lax.scan``, both on PyTorch's four stacked tensors, and the check that each computes our gradients
before anything is timed."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from numeric.io.weights import torch_names

#: PyTorch's gate blocks, top to bottom, in weight_ih_l0 and weight_hh_l0.
GATES = {"rnn": "h", "lstm": "ifgo", "gru": "rzn"}
TOLERANCE = 1e-10
FLOAT32_TOLERANCE = 1e-4  # JAX float32 against our float64


# --- PyTorch's layout, and PyTorch ------------------------------------------------------


def stacked(cell: str, params: dict) -> dict[str, np.ndarray]:
    """Our weights as PyTorch's four tensors (``numeric.io.weights.torch_names``): b_g in bias_ih, bias_hh 0,
    but for the GRU's b_hn, which sits inside r ⊙ (W_hn h + b_hn)."""
    return torch_names(cell, "standard", params, weights=True)


def unstacked(cell: str, grad: dict[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """Gradients of PyTorch's four tensors under our names: the inverse of ``stacked`` for gradients, where
    a summed bias's gradient is bias_ih's (reading weights back, ``cell_params``, sums the two)."""
    out = {}
    for k, g in enumerate(GATES[cell]):
        rows = slice(k * n, (k + 1) * n)
        out[f"W_x{g}"], out[f"W_h{g}"] = grad["weight_ih_l0"][rows], grad["weight_hh_l0"][rows]
        if cell == "gru" and g == "n":
            out["b_xn"], out["b_hn"] = grad["bias_ih_l0"][rows], grad["bias_hh_l0"][rows]
        else:
            out[f"b_{g}"] = grad["bias_ih_l0"][rows]
    return out


def torch_layer(torch, cell: str, params: dict, n: int):
    """PyTorch's layer with our weights (``stacked``)."""
    layer = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        n, n, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for name, value in stacked(cell, params).items():
            getattr(layer, name).copy_(torch.from_numpy(value))
    return layer


def torch_grads(cell: str, layer, n: int) -> dict[str, np.ndarray]:
    """The layer's gradients under our names."""
    return unstacked(cell, {name: p.grad.double().numpy() for name, p in layer.named_parameters()}, n)


def torch_run(layer, x) -> Callable[[], object]:
    """One forward and backward pass; returns h_T."""
    def run():
        layer.zero_grad(set_to_none=True)
        last = layer(x)[0][:, -1]
        last.sum().backward()
        return last
    return run


# --- JAX ----------------------------------------------------------------------------------


def jax_step(jax, cell: str) -> Callable:
    """PyTorch's equations for one step, from the state tuple (h first), a_x = W_ih x + b_ih and
    a_h = W_hh h + b_hh (every gate, stacked in PyTorch's order: i f g o; r z n)."""
    jnp, sigmoid = jax.numpy, jax.nn.sigmoid

    def rnn(state, a_x, a_h):
        return (jnp.tanh(a_x + a_h),)

    def lstm(state, a_x, a_h):
        i, f, g, o = jnp.split(a_x + a_h, 4, axis=-1)
        c = sigmoid(f) * state[1] + sigmoid(i) * jnp.tanh(g)
        return sigmoid(o) * jnp.tanh(c), c

    def gru(state, a_x, a_h):
        (r_x, z_x, n_x), (r_h, z_h, n_h) = jnp.split(a_x, 3, axis=-1), jnp.split(a_h, 3, axis=-1)
        r, z = sigmoid(r_x + r_h), sigmoid(z_x + z_h)
        return ((1 - z) * jnp.tanh(n_x + r * n_h) + z * state[0],)  # n_h holds b_hn: r ⊙ (W_hn h + b_hn)

    return {"rnn": rnn, "lstm": lstm, "gru": gru}[cell]


def jax_grad(jax, cell: str, states: int) -> Callable:
    """``jit(grad(L))`` of PyTorch's four tensors, L = Σ_b Σ_i h_T[b, i] over ``lax.scan`` from zero
    states; called as ``grad(p, x)`` with x (T, B, m).  Every step's input part is one product
    before the scan, as PyTorch computes it on a CPU."""
    step, jnp = jax_step(jax, cell), jax.numpy

    def loss(p, x):
        def body(state, a_xt):
            return step(state, a_xt, state[0] @ p["weight_hh_l0"].T + p["bias_hh_l0"]), None
        zero = jnp.zeros(x.shape[1:-1] + p["weight_hh_l0"].shape[1:], x.dtype)
        final, _ = jax.lax.scan(body, (zero,) * states, x @ p["weight_ih_l0"].T + p["bias_ih_l0"])
        return final[0].sum()

    return jax.jit(jax.grad(loss))


def jax_contenders(jax, cell: str, core, params: dict, x: np.ndarray, ours) -> tuple[dict, dict]:
    """JAX in float64 and float32, each checked against our float64 gradients ``ours``, and the
    first call's seconds (tracing and compiling) and largest relative difference of each."""
    grad, n, runs, info = jax_grad(jax, cell, len(core.states)), x.shape[-1], {}, {}
    for name, dtype, tolerance in (("jax64", np.float64, TOLERANCE), ("jax32", np.float32, FLOAT32_TOLERANCE)):
        p = {k: jax.numpy.asarray(v.astype(dtype)) for k, v in stacked(cell, params).items()}
        xs = jax.numpy.asarray(np.swapaxes(x, 0, 1).astype(dtype))
        start = time.perf_counter()
        theirs = jax.block_until_ready(grad(p, xs))
        info[f"{name}_first"] = time.perf_counter() - start
        theirs = unstacked(cell, {k: np.asarray(v, np.float64) for k, v in theirs.items()}, n)
        info[f"{name}_error"] = checked(f"JAX {np.dtype(dtype).name} {cell} n={n}", tolerance,
                                        {k: relative_error(ours.grads[k], v) for k, v in theirs.items()})
        runs[name] = lambda p=p, xs=xs: jax.block_until_ready(grad(p, xs))
    return runs, info


# --- checking and timing ------------------------------------------------------------------


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300))


def checked(what: str, tolerance: float, errors: dict[str, float]) -> float:
    """The largest of the relative ``errors``; stops the run unless it is below ``tolerance``."""
    worst = max(errors, key=errors.get)
    if not errors[worst] < tolerance:
        raise SystemExit(f"MISMATCH {what}: {worst} differs by {errors[worst]:.3g} "
                         f"(relative; allowed < {tolerance:g}); all: {errors}")
    return errors[worst]
