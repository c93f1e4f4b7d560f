"""The numeric core: compiled values, gradients against references, modes, log domain, memory."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
import sympy as sp
from typer.testing import CliRunner

from bench.handwritten import lstm_grad, rnn_tanh_grad
from cli import app
from derive.cell import make_cell
from derive.cells import CELLS
from derive.graph import expanded
from derive.compile import ordered_lambdify
from numeric.batch import make_problem
from numeric.init import draw
from numeric.check import check_cell, law_slope, random_problem
from numeric.clip import clip_by_norm, clip_by_value, global_norm
from numeric.modes import gradient, grid_mode, reverse_bytes
from numeric.unroll import (gradient_forward, gradient_reverse, log10_norm_by_lag,
                            state_jacobian, trace)

runner = CliRunner()


def test_step_kernel_matches_subs_evalf(any_cell):
    """Compiled values against SymPy's own .subs().evalf() at a random point."""
    cell = any_cell
    p = random_problem(cell, 1, seed=3)
    ours = trace(p)[0]
    point = {s: sp.Float(float(v), 30) for s, v in zip(cell.state_prev(), p.s0)}
    point.update({s: sp.Float(float(v), 30) for s, v in zip(cell.x, p.inputs[0])})
    point.update({s: sp.Float(float(v), 30) for name, sy in cell.params for s, v in zip(sy, np.ravel(p.params[name]))})
    expected = [e.subs(point).evalf(30) for e in expanded(cell).values()]
    assert np.allclose(ours, [float(v) for v in expected], rtol=1e-14, atol=1e-15)


def test_gradients_against_references(any_cell):
    rows = check_cell(any_cell, 12, seed=5)
    assert rows and all(r.passed for r in rows), [(r.reference, r.error) for r in rows]


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn"])
def test_vector_cells_against_references(name):
    cell = make_cell(CELLS[name], activation="tanh" if name == "rnn" else None, n=3, m=2)
    rows = check_cell(cell, 8, seed=1)
    assert all(r.passed for r in rows), [(r.reference, r.error) for r in rows]


def test_matches_handwritten_bptt():
    x = np.linspace(-1, 1, 30)
    rnn = make_cell(CELLS["rnn"], activation="tanh")
    pr = draw(rnn, (7,), seed=4)
    ours = gradient(make_problem(rnn, pr, x))
    hand = rnn_tanh_grad(pr["W_hh"][:, 0, 0], pr["W_xh"][:, 0, 0], pr["b_h"][:, 0, 0], x)
    assert np.allclose([ours[k][:, 0, 0] for k in ("W_hh", "W_xh", "b_h")], hand, rtol=1e-13)
    lstm = make_cell(CELLS["lstm"])
    pl = draw(lstm, (7,), seed=5)
    ours = gradient(make_problem(lstm, pl, x))
    hand = lstm_grad({k: v[:, 0, 0] for k, v in pl.items()}, x)
    assert all(np.allclose(ours[k][:, 0, 0], hand[k], rtol=1e-12, atol=1e-15) for k in hand)


def test_batch_axes_broadcast_and_chunks_agree(monkeypatch):
    cell = make_cell(CELLS["lstm"])
    pr = draw(cell, (5, 3), seed=6)
    p = make_problem(cell, pr, np.linspace(0, 1, 9))
    whole = gradient(p)
    monkeypatch.setattr("numeric.unroll.CHUNK", 4)
    chunked = gradient(p)
    assert all(np.array_equal(whole[k], chunked[k]) for k in whole)
    one = gradient(make_problem(cell, {k: v[2, 1] for k, v in pr.items()}, np.linspace(0, 1, 9)))
    assert all(np.allclose(whole[k][2, 1], one[k], rtol=1e-14) for k in one)


def test_truncated_and_every_step_losses():
    cell = make_cell(CELLS["rnn"])
    p = make_problem(cell, {"W_hh": [[0.9]], "W_xh": [[1.0]], "b_h": [[0.0]]}, np.ones(6))
    h = np.cumsum(0.9 ** np.arange(6))  # h_1..h_6
    h_prev = np.concatenate([[0.0], h[:-1]])
    tau = 3
    expected = sum(0.9 ** (6 - k) * h_prev[k - 1] for k in range(6 - tau + 1, 7))
    assert gradient(p, truncate=tau)["W_hh"].item() == pytest.approx(expected, rel=1e-14)
    every = gradient_reverse(p, every_step=True)["W_hh"].item()
    assert every == pytest.approx(gradient_forward(p, every_step=True)["W_hh"].item(), rel=1e-14)
    full_sum = sum(sum(0.9 ** (T - k) * h_prev[k - 1] for k in range(1, T + 1)) for T in range(1, 7))
    assert every == pytest.approx(full_sum, rel=1e-14)


@pytest.mark.parametrize("w,log10", [(2.0, 1e4 * np.log10(2)), (0.5, -1e4 * np.log10(2))])
def test_log_domain_at_ten_thousand_steps(w, log10):
    cell = make_cell(CELLS["rnn"])
    p = make_problem(cell, {"W_hh": [[w]], "W_xh": [[0.0]], "b_h": [[0.0]]}, np.zeros(10_000))
    value = state_jacobian(p).log10_norm()
    assert np.isfinite(value) and value == pytest.approx(log10, rel=1e-12)
    by_lag = log10_norm_by_lag(p)
    assert by_lag[-1] == pytest.approx(log10, rel=1e-12) and np.all(np.isfinite(by_lag))


def test_log_domain_lstm_ten_thousand_steps_stays_finite():
    cell = make_cell(CELLS["lstm"], n=2, m=1)
    p = make_problem(cell, draw(cell, (3,), seed=0, scale=2.0), np.ones(10_000))
    assert np.all(np.isfinite(state_jacobian(p).log10_norm()))


def test_forward_mode_memory_does_not_grow_with_T():
    cell = make_cell(CELLS["lstm"])
    pr = draw(cell, (2000,), seed=1)

    def peak(T):
        tracemalloc.start()
        gradient(make_problem(cell, pr, np.ones(T)), mode="forward")
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    assert peak(400) < 1.2 * peak(50)


def test_auto_mode_switches_to_forward_for_long_horizons(monkeypatch):
    cell = make_cell(CELLS["rnn"], activation="tanh")
    p = make_problem(cell, draw(cell, (10,), seed=2), np.ones(40))
    assert grid_mode(p, "auto") == "reverse"
    monkeypatch.setattr("numeric.modes.REVERSE_MEMORY", reverse_bytes(p) - 1)
    assert grid_mode(p, "auto") == "forward" and grid_mode(p, "auto", truncate=5) == "reverse"
    auto, forward = gradient(p), gradient_forward(p)
    assert all(np.array_equal(auto[k], forward[k]) for k in forward)


def test_law_slope():
    for w in (0.5, 1.3, -2.0):
        assert law_slope(w) == pytest.approx(np.log10(abs(w)), abs=1e-12)


def test_clipping():
    g = {"w": np.array([[[3.0]], [[0.3]]]), "u": np.array([[[4.0]], [[0.4]]])}
    clipped = clip_by_norm(g, 1.0)
    assert np.allclose(global_norm(clipped), [1.0, 0.5])
    assert np.allclose(clipped["w"][0], 0.6)
    assert clip_by_value({"w": np.array([[-7.0, 2.0]])})["w"].tolist() == [[-5.0, 2.0]]
    with pytest.raises(ValueError):
        clip_by_norm(g, 0.0)


def test_missing_symbol_is_named():
    a, b = sp.symbols("a b")
    with pytest.raises(ValueError, match="b is missing"):
        ordered_lambdify([a + b], [a], "numpy")


def test_cli_statquest_walkthrough():
    result = runner.invoke(app, ["numeric", "--cell", "statquest", "--inputs", "0,0.5,0.25,1"])
    assert result.exit_code == 0, result.output
    assert "prediction for step 5 (h_T): 0.0064" in result.output
    b = runner.invoke(app, ["numeric", "--cell", "statquest", "--inputs", "1,0.5,0.25,1"])
    assert "prediction for step 5 (h_T): 0.9694" in b.output


def test_cli_json_keys_and_params_file(tmp_path):
    params = {"W_xh": [[1.0]], "W_hh": [[0.5]], "b_h": [0.0]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(params))
    result = runner.invoke(app, ["numeric", "--params", str(path), "--inputs", "1,1,1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"states", "grad", "jacobian", "log10_norm_by_lag"} <= set(data)
    assert data["states"]["h"] == [[1.0], [1.5], [1.75]]
    assert data["jacobian"] == [[0.125]]
    assert data["grad"]["W_hh"] == pytest.approx(0.25 * 0.0 + 0.5 * 1.0 + 1.5, rel=1e-15)  # Σ_k w^(3-k) h_{k-1}


def test_cli_grid_and_out(tmp_path):
    out = tmp_path / "g.npz"
    result = runner.invoke(app, ["numeric", "--activation", "tanh", "--grid", "W_hh=0.5:2:4", "--grid", "b_h=0:1:3",
                                 "--steps", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = np.load(out)
    assert data["log10_norm_jacobian"].shape == (4, 3) and data["grad_W_hh"].shape == (4, 3, 1, 1)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_check_passes():
    """One line per case, the activations included (the whole set runs in the report's checks page)."""
    result = runner.invoke(app, ["check", "--cell", "rnn", "--steps", "30"])
    assert result.exit_code == 0, result.output
    assert " 0 failed" in result.output and "FAIL" not in result.output
    cases = [line.split()[:2] for line in result.output.splitlines() if line.startswith("rnn ")]
    assert cases == [["rnn", "linear"], ["rnn", "tanh"], ["rnn", "sigmoid"], ["rnn", "relu"]], result.output


needs_cc = pytest.mark.skipif(__import__("numeric.native").native.compiler() is None, reason="no C compiler")


@needs_cc
@pytest.mark.parametrize("name,variant,activation", [
    ("rnn", "standard", "tanh"), ("rnn", "standard", "relu"), ("lstm", "standard", None),
    ("lstm", "peephole", None), ("lstm", "coupled", None), ("gru", "standard", None), ("gru", "cho", None),
    ("gru", "colah", None)])
def test_native_matches_the_handwritten_reference(name, variant, activation):
    """The generated C against the hand-written NumPy BPTT (no SymPy in it): an independent value."""
    from . import numpy_reference as ref

    cell = make_cell(CELLS[name], variant, activation, n=2, m=3)
    rng = np.random.default_rng(5)
    theta = ref.random_params(name, variant, 2, 3, rng)
    x = rng.uniform(-1, 1, (30, 3))
    _, want = ref.forward_backward(name, variant, theta, x[None], activation=activation or "tanh")
    params = {k: (v if v.ndim == 2 else v[:, None])[None] for k, v in theta.items()}
    ours = gradient(make_problem(cell, params, x), "native")
    for k in theta:
        np.testing.assert_allclose(ours[k][0].reshape(want[k].shape), want[k], rtol=1e-12, atol=1e-14, err_msg=k)


@needs_cc
def test_native_options_agree_with_reverse_mode(any_cell):
    """Truncation and a loss on every step reach the C pass as they reach the NumPy one (plumbing;
    the values themselves are checked against the hand-written reference above)."""
    cell = any_cell
    if not cell.params:
        pytest.skip("no parameters")
    p = make_problem(cell, draw(cell, (37,), seed=9), np.random.default_rng(1).uniform(-1, 1, (25, cell.m)),
                     np.random.default_rng(2).uniform(-0.5, 0.5, len(cell.states) * cell.n))
    for kwargs in ({}, {"truncate": 7}, {"every_step": True}):
        ours, ref = gradient(p, "native", **kwargs), gradient_reverse(p, **kwargs)
        for name in ref:
            assert np.allclose(ours[name], ref[name], rtol=1e-12, atol=1e-14 * np.max(np.abs(ref[name]))), (name, kwargs)


@needs_cc
def test_native_vector_cells_and_batch_axes():
    cell = make_cell(CELLS["lstm"], n=3, m=2)
    pr = draw(cell, (4, 5), seed=3)
    p = make_problem(cell, pr, np.random.default_rng(0).uniform(-1, 1, (9, 2)))
    ours, ref = gradient(p, "native"), gradient_reverse(p)
    assert all(ours[k].shape == ref[k].shape and np.allclose(ours[k], ref[k], rtol=1e-12, atol=1e-15) for k in ref)


@needs_cc
def test_native_refuses_batched_inputs():
    cell = make_cell(CELLS["rnn"], activation="tanh")
    p = make_problem(cell, draw(cell, (3,), seed=1), np.ones((4, 3, 1)))
    with pytest.raises(ValueError, match="shared by the batch"):
        gradient(p, "native")


@needs_cc
def test_native_jacobian_product_in_the_same_pass(any_cell):
    """∂s_T/∂s_0 carried backwards in the C pass equals the forward product of the NumPy path,
    mantissa and log10 scale, far past float64's range (T = 2000)."""
    from numeric.native import native_pass

    cell = any_cell
    if not cell.params:
        pytest.skip("no parameters")
    p = make_problem(cell, draw(cell, (5,), seed=4, scale=1.5),
                     np.random.default_rng(3).uniform(-1, 1, (2000, cell.m)))
    grads, ours = native_pass(p, jacobian=True)
    ref = state_jacobian(p)
    zero = ~ref.mantissa.any(axis=(-2, -1))  # relu can end at exactly 0: its scale then means nothing
    assert np.array_equal(zero, ~ours.mantissa.any(axis=(-2, -1)))
    assert np.allclose(ours.log10_scale[~zero], ref.log10_scale[~zero], rtol=1e-10, atol=1e-9)
    assert np.allclose(ours.mantissa, ref.mantissa, rtol=1e-8, atol=1e-10)
    plain, none = native_pass(p)
    assert none is None and all(np.array_equal(plain[k], grads[k]) for k in grads)


def test_mpmath_diff_is_an_independent_reference_that_can_fail():
    """mpmath.diff of the forward pass finds a gradient that is off by 1e-9, and needs no derive Jacobian."""
    from numeric.check import INDEPENDENT, _flat, directional
    cell = make_cell(CELLS["lstm"], n=2, m=1)
    p = random_problem(cell, 10, seed=2)
    ours = _flat(gradient_reverse(p), cell)
    a, b = directional(p, ours)
    assert np.max(np.abs(a - b) / np.abs(b)) < 1e-13
    wrong = ours.copy()
    wrong[3] *= 1 + 1e-9
    a, b = directional(p, wrong)
    assert np.max(np.abs(a - b) / np.abs(b)) > 1e-12
    assert "mpmath.diff" in INDEPENDENT and "forward mode" not in INDEPENDENT


def test_the_cliff_gradient_and_clipped_steps():
    """The cliff's BPTT gradient equals finite differences of its loss; clipped steps are at most lr·threshold
    long while plain steps off the wall are far longer."""
    from derive.custom import cell_definition
    from numeric.studies import CLIFF_FORMULA, _cliff_loss_and_grad, cliff

    cell = make_cell(cell_definition("custom", (CLIFF_FORMULA,)))
    w, b = np.array([3.0, 8.0, 11.0]), np.array([-1.0, -3.5, -5.2])
    _, gw, gb = _cliff_loss_and_grad(cell, w, b, 50, 0.5, 0.7)
    h = 1e-6
    fd_w = (_cliff_loss_and_grad(cell, w + h, b, 50, 0.5, 0.7)[0] - _cliff_loss_and_grad(cell, w - h, b, 50, 0.5, 0.7)[0]) / (2 * h)
    fd_b = (_cliff_loss_and_grad(cell, w, b + h, 50, 0.5, 0.7)[0] - _cliff_loss_and_grad(cell, w, b - h, 50, 0.5, 0.7)[0]) / (2 * h)
    np.testing.assert_allclose(gw, fd_w, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(gb, fd_b, rtol=1e-5, atol=1e-8)
    r = cliff(size=21, updates=20)
    clipped = np.linalg.norm(np.diff(r.clipped, axis=1), axis=-1)
    plain = np.linalg.norm(np.diff(r.plain, axis=1), axis=-1)
    assert clipped.max() <= r.lr * r.threshold * (1 + 1e-12)
    assert plain.max() > 5 * r.lr * r.threshold
