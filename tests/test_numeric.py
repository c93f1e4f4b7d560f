"""The numeric engine: compiled values, gradients against references, modes, log domain, memory."""

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
from derive.compile import ordered_lambdify
from derive.core import Layer, make_core
from derive.graph import expanded
from numeric.check import check_cell, law_slope, random_case
from numeric.training.clip import clip_by_norm, clip_by_value, global_norm
from numeric.engine.grad import value_and_grad
from numeric.engine.jacobian import jacobian_norms, state_jacobian
from numeric.engine.modes import gradient, resolve
from numeric.engine.shapes import prepare
from numeric.init import draw

runner = CliRunner()


def _layer(name: str, n: int = 1, m: int = 1, activation=None, variant=None) -> Layer:
    return Layer(make_core(CELLS[name], variant, activation), n, m)


def test_step_values_match_subs_evalf(any_cell):
    """Compiled values against SymPy's own .subs().evalf() of the element form at a random point."""
    cell = any_cell
    case = random_case(cell, 1, seed=3)
    quantities = value_and_grad(case.layer.core, case.params, case.x, case.initial()).quantities
    ours = [float(v[0, 0, i]) for v in quantities.values() for i in range(cell.n)]
    point = {s: sp.Float(float(v), 30) for s, v in zip(cell.state_prev(), case.s0)}
    point.update({s: sp.Float(float(v), 30) for s, v in zip(cell.x, case.x[0])})
    point.update({s: sp.Float(float(v), 30) for name, sy in cell.params for s, v in zip(sy, np.ravel(case.params[name]))})
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


def test_a_grid_matches_handwritten_bptt():
    """Seven settings as one batch of weights against the hand-written NumPy BPTT of each."""
    x = np.linspace(-1, 1, 30)[:, None]
    rnn = _layer("rnn", activation="tanh")
    pr = draw(rnn, (7,), seed=4)
    ours, _ = gradient(rnn.core, pr, x, lead=(7,))
    hand = rnn_tanh_grad(pr["W_hh"][:, 0, 0], pr["W_xh"][:, 0, 0], pr["b_h"][:, 0], x[:, 0])
    assert np.allclose([ours[k].reshape(7) for k in ("W_hh", "W_xh", "b_h")], hand, rtol=1e-13)
    lstm = _layer("lstm")
    pl = draw(lstm, (7,), seed=5)
    ours, _ = gradient(lstm.core, pl, x, lead=(7,))
    hand = lstm_grad({k: v.reshape(7) for k, v in pl.items()}, x[:, 0])
    assert all(np.allclose(ours[k].reshape(7), hand[k], rtol=1e-12, atol=1e-15) for k in hand)


@pytest.mark.parametrize("n", [1, 3])
def test_grid_axes_chunks_and_single_settings_agree(monkeypatch, n):
    """A (5, 3) grid of weights, whole or in chunks of 4 settings, equals each setting run as a layer."""
    layer = _layer("lstm", n, 2)
    pr = draw(layer, (5, 3), seed=6)
    x = np.linspace(0, 1, 18).reshape(9, 2)
    whole, _ = gradient(layer.core, pr, x, lead=(5, 3))
    monkeypatch.setattr("numeric.engine.grad.CHUNK", 4)
    chunked, _ = gradient(layer.core, pr, x, lead=(5, 3))
    assert all(np.array_equal(whole[k], chunked[k]) for k in whole)
    one, _ = gradient(layer.core, {k: v[2, 1] for k, v in pr.items()}, x)
    assert all(np.allclose(whole[k][2, 1], one[k], rtol=1e-14, atol=1e-16) for k in one)
    forward, _ = gradient(layer.core, pr, x, lead=(5, 3), mode="forward")
    assert all(np.allclose(forward[k], whole[k], rtol=1e-12, atol=1e-15) for k in whole)


def test_a_shared_parameter_in_a_grid_gets_each_settings_gradient():
    """Only W_hh swept: the shared W_xh and b_h still get one gradient per setting."""
    layer = _layer("rnn", 2, 2, activation="tanh")
    params = draw(layer, seed=1)
    params["W_hh"] = np.stack([params["W_hh"], 0.5 * params["W_hh"]])
    x = np.random.default_rng(0).normal(size=(6, 2))
    grid, _ = gradient(layer.core, params, x, lead=(2,))
    for i in range(2):
        one, _ = gradient(layer.core, {**params, "W_hh": params["W_hh"][i]}, x)
        assert all(np.allclose(grid[k][i], one[k], rtol=1e-14) for k in one)


def test_truncated_and_every_step_losses():
    core = make_core(CELLS["rnn"])
    params, x = {"W_hh": [[0.9]], "W_xh": [[1.0]], "b_h": [0.0]}, np.ones((6, 1))
    h = np.cumsum(0.9 ** np.arange(6))  # h_1..h_6
    h_prev = np.concatenate([[0.0], h[:-1]])
    tau = 3
    expected = sum(0.9 ** (6 - k) * h_prev[k - 1] for k in range(6 - tau + 1, 7))
    assert gradient(core, params, x, truncate=tau)[0]["W_hh"].item() == pytest.approx(expected, rel=1e-14)
    every = gradient(core, params, x, every_step=True, mode="reverse")[0]["W_hh"].item()
    assert every == pytest.approx(gradient(core, params, x, every_step=True, mode="forward")[0]["W_hh"].item(), rel=1e-14)
    full_sum = sum(sum(0.9 ** (T - k) * h_prev[k - 1] for k in range(1, T + 1)) for T in range(1, 7))
    assert every == pytest.approx(full_sum, rel=1e-14)


@pytest.mark.parametrize("w,log10", [(2.0, 1e4 * np.log10(2)), (0.5, -1e4 * np.log10(2))])
def test_log_domain_at_ten_thousand_steps(w, log10):
    u = prepare(make_core(CELLS["rnn"]), {"W_hh": [[w]], "W_xh": [[0.0]], "b_h": [0.0]}, np.zeros((10_000, 1)))
    value = state_jacobian(u).log10_norm()
    assert np.isfinite(value).all() and value.item() == pytest.approx(log10, rel=1e-12)
    by_lag = jacobian_norms(u).log10_by_lag
    assert by_lag[-1] == pytest.approx(log10, rel=1e-12) and np.all(np.isfinite(by_lag))


def test_log_domain_lstm_ten_thousand_steps_stays_finite():
    layer = _layer("lstm", 2, 1)
    u = prepare(layer.core, draw(layer, (3,), seed=0, scale=2.0), np.ones((10_000, 1)), lead=(3,))
    assert np.all(np.isfinite(state_jacobian(u).log10_norm()))


def test_forward_mode_memory_does_not_grow_with_T():
    layer = _layer("lstm")
    pr = draw(layer, (2000,), seed=1)

    def peak(T):
        tracemalloc.start()
        gradient(layer.core, pr, np.ones((T, 1)), lead=(2000,), mode="forward")
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    assert peak(400) < 1.2 * peak(50)


def test_auto_mode_switches_to_forward_for_long_horizons(monkeypatch):
    layer = _layer("rnn", activation="tanh")
    params, x = draw(layer, (10,), seed=2), np.ones((40, 1))
    u = prepare(layer.core, params, x, lead=(10,))
    assert resolve("auto", u) == "reverse"
    monkeypatch.setattr("numeric.engine.modes.MEMORY_LIMIT", 1000)
    assert resolve("auto", u) == "forward" and resolve("auto", u, truncate=5) == "reverse"
    auto, mode = gradient(layer.core, params, x, lead=(10,))
    forward, _ = gradient(layer.core, params, x, lead=(10,), mode="reverse")
    assert mode == "forward" and all(np.allclose(auto[k], forward[k], rtol=1e-13) for k in forward)


def test_law_slope():
    for w in (0.5, 1.3, -2.0):
        assert law_slope(w) == pytest.approx(np.log10(abs(w)), abs=1e-12)


def test_clipping():
    g = {"w": np.array([[[3.0]], [[0.3]]]), "u": np.array([[[4.0]], [[0.4]]])}
    clipped = clip_by_norm(g, 1.0, batch_ndim=1)
    assert np.allclose(global_norm(clipped, batch_ndim=1), [1.0, 0.5])
    assert np.allclose(clipped["w"][0], 0.6)
    assert clip_by_value({"w": np.array([[-7.0, 2.0]])})["w"].tolist() == [[-5.0, 2.0]]
    with pytest.raises(ValueError):
        clip_by_norm(g, 0.0, batch_ndim=1)


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


needs_cc = pytest.mark.skipif(__import__("numeric.engine.native.build").engine.native.build.compiler() is None,
                              reason="no C compiler")


@needs_cc
@pytest.mark.parametrize("name,variant,activation", [
    ("rnn", "standard", "tanh"), ("rnn", "standard", "relu"), ("lstm", "standard", None),
    ("lstm", "peephole", None), ("lstm", "coupled", None), ("gru", "standard", None), ("gru", "cho", None),
    ("gru", "colah", None)])
def test_native_matches_the_handwritten_reference(name, variant, activation):
    """The generated C against the hand-written NumPy BPTT (no SymPy in it): an independent value."""
    from . import numpy_reference as ref

    core = make_core(CELLS[name], variant, activation)
    rng = np.random.default_rng(5)
    theta = ref.random_params(name, variant, 2, 3, rng)
    x = rng.uniform(-1, 1, (30, 3))
    _, want = ref.forward_backward(name, variant, theta, x[None], activation=activation or "tanh")
    ours, mode = gradient(core, {k: v[None] for k, v in theta.items()}, x, lead=(1,), mode="native")
    assert mode == "native"
    for k in theta:
        np.testing.assert_allclose(ours[k][0], want[k], rtol=1e-12, atol=1e-14, err_msg=k)


@needs_cc
def test_native_options_agree_with_reverse_mode(any_cell):
    """Truncation and a loss on every step reach the C pass as they reach the NumPy one."""
    cell = any_cell
    layer = Layer(make_core(cell.definition, cell.variant, cell.activation.name if cell.activation else None), 1, 1)
    if not layer.param_names():
        pytest.skip("no parameters")
    params = draw(layer, (37,), seed=9)
    x = np.random.default_rng(1).uniform(-1, 1, (25, 1))
    s0 = {s: np.random.default_rng(2).uniform(-0.5, 0.5, 1) for s in layer.states}
    for kwargs in ({}, {"truncate": 7}, {"every_step": True}):
        ours, _ = gradient(layer.core, params, x, s0, lead=(37,), mode="native", **kwargs)
        ref, _ = gradient(layer.core, params, x, s0, lead=(37,), mode="reverse", **kwargs)
        for name in ref:
            assert np.allclose(ours[name], ref[name], rtol=1e-12, atol=1e-14 * np.max(np.abs(ref[name]))), (name, kwargs)


@needs_cc
def test_native_vector_cells_grid_axes_and_a_layer():
    layer = _layer("lstm", 3, 2)
    pr = draw(layer, (4, 5), seed=3)
    x = np.random.default_rng(0).uniform(-1, 1, (9, 2))
    ours, _ = gradient(layer.core, pr, x, lead=(4, 5), mode="native")
    ref, _ = gradient(layer.core, pr, x, lead=(4, 5), mode="reverse")
    assert all(ours[k].shape == ref[k].shape and np.allclose(ours[k], ref[k], rtol=1e-12, atol=1e-15) for k in ref)
    one, _ = gradient(layer.core, {k: v[1, 2] for k, v in pr.items()}, x, mode="native")
    assert all(np.allclose(one[k], ref[k][1, 2], rtol=1e-12, atol=1e-15) for k in ref)


@needs_cc
def test_native_refuses_a_batch_of_sequences():
    from derive.errors import InvalidValue

    layer = _layer("rnn", activation="tanh")
    with pytest.raises(InvalidValue, match="one input sequence"):
        gradient(layer.core, draw(layer, (3,), seed=1), np.ones((4, 3, 1)), lead=(3,), mode="native")


def test_mpmath_diff_is_an_independent_reference_that_can_fail():
    """mpmath.diff of the forward pass finds a gradient that is off by 1e-9, and needs no derive Jacobian."""
    from numeric.check import INDEPENDENT, _flat, _gradient, directional
    cell = make_cell(CELLS["lstm"], n=2, m=1)
    case = random_case(cell, 10, seed=2)
    ours = _flat(_gradient(case), case)
    a, b = directional(case, ours)
    assert np.max(np.abs(a - b) / np.abs(b)) < 1e-13
    wrong = ours.copy()
    wrong[3] *= 1 + 1e-9
    a, b = directional(case, wrong)
    assert np.max(np.abs(a - b) / np.abs(b)) > 1e-12
    assert "mpmath.diff" in INDEPENDENT and "forward mode" not in INDEPENDENT


def test_the_cliff_gradient_and_clipped_steps():
    """The cliff's BPTT gradient equals finite differences of its loss; clipped steps are at most lr·threshold
    long while plain steps off the wall are far longer."""
    from derive.custom import cell_definition
    from numeric.studies import CLIFF_FORMULA, _cliff_loss_and_grad, cliff

    cell = make_core(cell_definition("custom", (CLIFF_FORMULA,)))
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


def test_bptt_is_written_once_per_backend():
    """One reverse sweep over the steps in NumPy (numeric/engine/bptt.py, whose two sweeps share one
    step) and one printed in C; derive's mpmath and symbolic references are the independent others."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "numeric"
    backwards = re.compile(r"for \w+ in range\([^\n]*, -1\)")  # a loop over the steps, last to first
    sweeps = {str(p.relative_to(root)) for p in root.rglob("*.py") if backwards.search(p.read_text())}
    assert sweeps == {"engine/bptt.py"}
    assert (root / "engine/bptt.py").read_text().count("_vjp_step(u, tape,") == 2
    from numeric.engine.native.codegen import source
    from derive.core import make_core

    assert source(make_core(CELLS["lstm"]), 1, 1).count("t--") == 1


def test_a_grid_above_eight_units_and_its_json():
    """A grid at hidden 16 (the element path stopped at 8) runs through the layer's engine; its JSON
    has every setting's gradient norm and the grid's axes."""
    result = runner.invoke(app, ["numeric", "--cell", "lstm", "--hidden", "16", "--grid", "b_f=0:2:3", "--steps", "12",
                                 "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["grid"] == {"b_f": [0.0, 1.0, 2.0]} and len(data["grad_norm"]["W_hf"]) == 3
    assert np.array(data["grad"]["W_hi"]).shape == (3, 16, 16) and len(data["log10_norm_jacobian"]) == 3
    layer = _layer("lstm", 16, 16)
    params = draw(layer, seed=0)
    one, _ = gradient(layer.core, {**params, "b_f": np.full(16, 2.0)}, np.ones((12, 16)))
    np.testing.assert_allclose(data["grad"]["W_hi"][2], one["W_hi"], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_power_iteration_finds_the_pushed_norm(name):
    """‖∂s_T/∂s_0‖₂ by power iteration on JᵀJ (one tangent forwards, one row back) equals the SVD of the
    identity pushed back through the steps, for a layer wide enough to need it and a small one."""
    from numeric.engine.power import power_norm

    layer = _layer(name, 24, 24, activation="tanh" if name == "rnn" else None)
    u = prepare(layer.core, draw(layer, seed=1), np.random.default_rng(0).normal(size=(1, 40, 24)))
    found = power_norm(u)
    assert found.residual < 1e-6 and found.log10 == pytest.approx(jacobian_norms(u).log10_by_lag[-1], abs=1e-9)


def test_a_layer_past_the_identity_push_still_gets_its_regime(monkeypatch):
    monkeypatch.setattr("numeric.run.MAX_JACOBIAN_ROWS", 8)
    result = runner.invoke(app, ["numeric", "--cell", "lstm", "--hidden", "8", "--batch", "2", "--steps", "30"])
    assert result.exit_code == 0, result.output
    assert "by power iteration on JᵀJ" in result.output and "regime: unknown" not in result.output
    args = ["numeric", "--cell", "lstm", "--hidden", "8", "--batch", "2", "--steps", "30", "--json"]
    iterated = json.loads(runner.invoke(app, args).output)
    monkeypatch.setattr("numeric.run.MAX_JACOBIAN_ROWS", 1024)
    pushed = json.loads(runner.invoke(app, args).output)
    assert iterated["log10_norm_jacobian"] == pytest.approx(pushed["log10_norm_jacobian"], abs=1e-8)
