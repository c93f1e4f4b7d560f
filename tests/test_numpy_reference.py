"""The hand-written NumPy reference checked on its own, then the matrix-form core against it.

The reference is proved right without the project: its states against the cell
equations transcribed per sample with column vectors, its gradients against central
finite differences of L = Σ h_T.  Only the last test imports the project.
"""

from __future__ import annotations

import numpy as np
import pytest

from .numpy_reference import (
    ACTIVATIONS,
    PARAM_NAMES,
    STATE_NAMES,
    forward_backward,
    random_params,
)

CASES = [("rnn", "standard", a) for a in ACTIVATIONS] + [
    (cell, variant, "tanh") for cell, variant in PARAM_NAMES if cell != "rnn"
]


def case_id(case) -> str:
    cell, variant, activation = case
    return f"{cell}-{variant}" + (f"-{activation}" if cell == "rnn" else "")


# --- Builders -----------------------------------------------------------------


def relu_margin(theta: dict, x: np.ndarray, h: np.ndarray) -> float:
    """The smallest |pre-activation| of an RNN run, recomputed from its states."""
    a = h[:-1] @ theta["W_hh"].T + x.transpose(1, 0, 2) @ theta["W_xh"].T + theta["b_h"]
    return float(np.abs(a).min())


def build(case, n: int, m: int, B: int, T: int, seed: int = 0, margin: float = 0.0):
    """θ (parameters, h_0, c_0) and x; for relu, every pre-activation at least ``margin`` from the kink."""
    cell, variant, activation = case
    for attempt in range(200):
        rng = np.random.default_rng([seed, attempt])
        theta = random_params(cell, variant, n, m, rng)
        theta.update({f"{k}_0": rng.uniform(-0.5, 0.5, (B, n)) for k in STATE_NAMES[cell]})
        x = rng.normal(size=(B, T, m))
        if activation != "relu" or margin == 0.0:
            return theta, x
        if relu_margin(theta, x, evaluate(case, theta, x)[0]["h"]) > margin:
            return theta, x
    raise AssertionError(f"no draw keeps relu's pre-activations {margin} from 0")


def evaluate(case, theta: dict, x: np.ndarray):
    cell, variant, activation = case
    params = {k: theta[k] for k in PARAM_NAMES[(cell, variant)]}
    return forward_backward(cell, variant, params, x, theta["h_0"], theta.get("c_0"), activation)


def loss(case, theta: dict, x: np.ndarray) -> float:
    return float(evaluate(case, theta, x)[0]["h"][-1].sum())


# --- The cell equations, one sample and one step at a time, column vectors ----


def sigma(a):
    return 1.0 / (1.0 + np.exp(-a))


PHI = {"linear": lambda a: a, "tanh": np.tanh, "sigmoid": sigma, "relu": lambda a: np.where(a > 0, a, 0.0)}


def equations_step(case, p: dict, x, h, c):
    """(h_t, c_t) from (h_{t-1}, c_{t-1}) exactly as the cells are written, W @ column vector."""
    cell, variant, activation = case
    if cell == "rnn":
        return PHI[activation](p["W_hh"] @ h + p["W_xh"] @ x + p["b_h"]), None
    if cell == "lstm":
        peep = {g: p[f"p_{g}"] if variant == "peephole" else 0.0 for g in "ifo"}
        f = sigma(p["W_xf"] @ x + p["W_hf"] @ h + p["b_f"] + peep["f"] * c)
        g = np.tanh(p["W_xg"] @ x + p["W_hg"] @ h + p["b_g"])
        if variant == "coupled":
            c_new = f * c + (1 - f) * g
        else:
            i = sigma(p["W_xi"] @ x + p["W_hi"] @ h + p["b_i"] + peep["i"] * c)
            c_new = f * c + i * g
        o = sigma(p["W_xo"] @ x + p["W_ho"] @ h + p["b_o"] + peep["o"] * c_new)
        return o * np.tanh(c_new), c_new
    r = sigma(p["W_xr"] @ x + p["W_hr"] @ h + p["b_r"])
    z = sigma(p["W_xz"] @ x + p["W_hz"] @ h + p["b_z"])
    if variant == "standard":
        n = np.tanh(p["W_xn"] @ x + p["b_xn"] + r * (p["W_hn"] @ h + p["b_hn"]))
        return (1 - z) * n + z * h, None
    n = np.tanh(p["W_xn"] @ x + p["W_hn"] @ (r * h) + p["b_n"])
    return ((1 - z) * h + z * n if variant == "colah" else z * h + (1 - z) * n), None


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_states_follow_the_cell_equations(case):
    theta, x = build(case, n=3, m=2, B=2, T=4)
    states, _ = evaluate(case, theta, x)
    for b in range(2):
        h, c = theta["h_0"][b], theta.get("c_0", np.zeros((2, 3)))[b]
        for t in range(4):
            h, c = equations_step(case, theta, x[b, t], h, c)
            np.testing.assert_allclose(states["h"][t + 1, b], h, rtol=1e-13, atol=1e-15)
            if c is not None:
                np.testing.assert_allclose(states["c"][t + 1, b], c, rtol=1e-13, atol=1e-15)


# --- Gradients against finite differences --------------------------------------


def shifted(theta: dict, direction: dict, eps: float) -> dict:
    return {k: v + eps * direction[k] if k in direction else v for k, v in theta.items()}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_every_gradient_entry_matches_central_differences(case):
    theta, x = build(case, n=3, m=2, B=2, T=4, margin=1e-3)
    _, grads = evaluate(case, theta, x)
    assert set(grads) == set(theta)
    step = 1e-6
    for name, value in theta.items():
        numeric = np.empty_like(value)
        for idx in np.ndindex(value.shape):
            unit = np.zeros_like(value)
            unit[idx] = 1.0
            plus = loss(case, shifted(theta, {name: unit}, step), x)
            minus = loss(case, shifted(theta, {name: unit}, -step), x)
            numeric[idx] = (plus - minus) / (2 * step)
        assert grads[name].shape == value.shape, name
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_directional_derivatives_at_n16_t20(case):
    theta, x = build(case, n=16, m=3, B=2, T=20, seed=1, margin=1e-3)
    _, grads = evaluate(case, theta, x)
    rng = np.random.default_rng(2)
    eps = 1e-5
    for _ in range(3):
        v = {k: rng.normal(size=a.shape) for k, a in theta.items()}
        norm = np.sqrt(sum(float((a * a).sum()) for a in v.values()))
        v = {k: a / norm for k, a in v.items()}
        numeric = (loss(case, shifted(theta, v, eps), x) - loss(case, shifted(theta, v, -eps), x)) / (2 * eps)
        exact = sum(float((grads[k] * v[k]).sum()) for k in v)
        assert numeric == pytest.approx(exact, rel=1e-6, abs=1e-8)


# --- The project's matrix-form core against the reference ----------------------

SIZES = [(16, 30, 4, 5), (64, 10, 3, 7)]  # n, T, B, m


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_matrix_core_matches_numpy_reference(case):
    from derive.cells import CELLS
    from derive.core import make_core
    from numeric.engine.grad import value_and_grad

    cell, variant, activation = case
    core = make_core(CELLS[cell], variant, activation if cell == "rnn" else None)
    for n, T, B, m in SIZES:
        theta, x = build(case, n, m, B, T, seed=n)
        states, grads = evaluate(case, theta, x)
        params = {k: theta[k] for k in PARAM_NAMES[(cell, variant)]}
        s0 = {k: theta[f"{k}_0"] for k in STATE_NAMES[cell]}
        r = value_and_grad(core, params, x, s0=s0)
        for k, want in states.items():
            np.testing.assert_allclose(r.states[k], want, rtol=1e-10, atol=1e-12, err_msg=f"state {k}, n={n}")
        for k, want in grads.items():
            assert k in r.grads, f"no gradient for {k}"
            np.testing.assert_allclose(r.grads[k], want, rtol=1e-10, atol=1e-12, err_msg=f"∂L/∂{k}, n={n}")
