"""The engine at any hidden size against mpmath at 30 digits, finite differences, exact SymPy
and PyTorch's layout; its matrix-form derivations against the element ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp
from typer.testing import CliRunner

from cli import app
from derive.cell import make_cell
from derive.cells import CELLS
from derive.core import Layer, make_core
from derive.custom import cell_definition
from derive.graph import jacobian_step
from derive.chain import block
from derive.matrixform import diag, matrix_form
from derive.symbols import parameter, quantity
from derive import reference
from numeric.check import Case, exact_values, mpmath_gradient
from numeric.engine.grad import value_and_grad
from numeric.engine.jacobian import jacobian_norms
from numeric.engine.shapes import prepare
from numeric.init import draw
from numeric.io.weights import torch_names

from .conftest import ALL_CELLS, cell_id

runner = CliRunner()


def _params(layer: Layer, seed: int) -> dict:
    return draw(layer, seed=seed, scale=0.9)


@pytest.mark.parametrize("spec", ALL_CELLS, ids=cell_id)
def test_engine_equals_the_mpmath_reference(spec):
    """BPTT of the matrix stages and the lag norms against derive's element form at 30 digits."""
    name, variant, activation = spec
    definition = CELLS[name]
    n, m = (1, 1) if definition.fixed else (3, 2)
    layer = Layer(make_core(definition, variant, activation), n, m)
    cell = make_cell(definition, variant, activation, n, m)
    case = Case(cell, layer, _params(layer, seed=7), np.random.default_rng(1).normal(size=(9, m)),
                np.random.default_rng(2).uniform(-0.5, 0.5, len(layer.states) * n))
    ours = value_and_grad(layer.core, case.params, case.x, case.initial())
    flat = np.concatenate([ours.grads[k].ravel() for k in layer.param_names()]) if layer.param_names() else []
    np.testing.assert_allclose(flat, mpmath_gradient(case, digits=30), rtol=1e-12, atol=1e-14)
    lags = jacobian_norms(prepare(layer.core, case.params, case.x, case.initial()))
    values, inputs, s0 = exact_values(case)
    exact = reference.state_jacobian(cell, values, inputs, s0)
    norm = np.linalg.norm(np.array(exact.tolist(), dtype=float), 2)
    assert lags.log10_by_lag[-1] == pytest.approx(np.log10(norm), rel=1e-12, abs=1e-13)


def _loss(core, params, x, s0):
    r = value_and_grad(core, params, x, s0)
    return r.states[core.output][-1].sum(), r


@pytest.mark.parametrize("formulas", [("c = tanh(w*c + x)",), ("h = tanh(w*h + u*x + b)", "c = sigmoid(a*c + h)")])
def test_loss_is_on_the_output_state_of_a_custom_cell(formulas):
    """The output is the last formula's state: its gradient is that of Σ c_T, checked by finite differences."""
    core = make_core(cell_definition("custom", formulas))
    assert core.output == formulas[-1].split("=")[0].strip()
    params = {name: np.array([0.7 - 0.2 * i]) for i, (name, _, _) in enumerate(core.param_table())}
    x = np.linspace(-1, 1, 12)[None, :, None]
    s0 = {s: np.array([0.3]) for s in core.states}
    _, r = _loss(core, params, x, s0)
    for name in params:
        bumped = [dict(params, **{name: params[name] + e}) for e in (1e-6, -1e-6)]
        fd = (_loss(core, bumped[0], x, s0)[0] - _loss(core, bumped[1], x, s0)[0]) / 2e-6
        assert r.grads[name][0] == pytest.approx(fd, rel=1e-7, abs=1e-10) and r.grads[name][0] != 0


def test_custom_cell_of_state_c_runs_everywhere():
    """The crash the redesign fixes: a custom cell whose state is not named h."""
    formula = ["--cell", "custom", "--formula", "c = tanh(w*c + x)"]
    for command in (["derive", "--steps", "5"], ["numeric", "--steps", "5"], ["check", "--steps", "20"]):
        result = runner.invoke(app, [command[0], *formula, *command[1:]])
        assert result.exit_code == 0, (command, result.output)
    data = json.loads(runner.invoke(app, ["numeric", *formula, "--steps", "5", "--json"]).output)
    assert data["grad"]["w"] != 0


def _explicit(core, expr, n: int):
    """A matrix-form expression at size n: diag(a) and W as explicit matrices over element symbols."""
    maps = {m.symbol: m for m in core.maps}

    def unit(e, i):
        values = {}
        for s in e.free_symbols:
            name = str(s)
            if s in maps:
                m = maps[s]
                values[s] = (parameter(m.weight, n, n) * sp.Matrix([unit(m.operand, j) for j in range(n)]))[i]
            elif name.endswith("_t") or name.endswith("_{t-1}"):
                base, label = name.rsplit("_", 1)
                values[s] = quantity(base, label.strip("{}"), n)[i]
            else:
                values[s] = parameter(name, n, 1)[i]
        return e.xreplace(values)

    def convert(e):
        if isinstance(e, diag):
            return sp.diag(*[unit(e.args[0], i) for i in range(n)])
        if e.is_Symbol and not e.is_commutative:
            return parameter(str(e), n, n)
        if e.is_Add:
            return sum((convert(a) for a in e.args), sp.zeros(n, n))
        if e.is_Mul:
            out = sp.eye(n)
            for a in e.args:
                out = out * (convert(a) if not a.is_commutative else sp.diag(*[unit(a, i) for i in range(n)]))
            return out
        return sp.diag(*[unit(e, i) for i in range(n)])

    return convert(expr)


@pytest.mark.parametrize("name,variant", [("rnn", None), ("lstm", "standard"), ("lstm", "peephole"),
                                          ("gru", "standard"), ("gru", "cho")])
def test_matrix_form_jacobian_equals_the_element_jacobian_exactly(name, variant):
    """Each block Σ diag(·) W of the matrix form, written out at n = 2, is the element-level block."""
    activation = "tanh" if name == "rnn" else None
    cell = make_cell(CELLS[name], variant, activation, n=2, m=1)
    core = make_core(CELLS[name], variant, activation)
    for b in matrix_form(core).blocks:
        element = block(cell, jacobian_step(cell), b.of, b.wrt)
        difference = sp.expand(_explicit(core, b.expr, 2) - element)
        assert difference == sp.zeros(2, 2) or sp.simplify(difference) == sp.zeros(2, 2), (b.of, b.wrt)


def _torch_state(params: dict, cell: str) -> dict:
    named = torch_names(cell, "standard", params)
    # torch_names puts a summed bias b in both of PyTorch's; split it unevenly (the sum is b),
    # except the GRU's n gate, whose two biases are kept apart
    n = params["W_hh" if cell == "rnn" else "W_hr" if cell == "gru" else "W_hi"].shape[0]
    summed = np.ones_like(named["bias_ih_l0"])
    if cell == "gru":
        summed[2 * n:] = 0
    ih = np.where(summed == 1, 0.25, 1.0) * named["bias_ih_l0"]
    hh = np.where(summed == 1, 0.75, 1.0) * named["bias_hh_l0"]
    return dict(named, bias_ih_l0=ih, bias_hh_l0=hh)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_pytorch_state_dict_gives_the_gradients_our_names_give(tmp_path, cell):
    core = make_core(CELLS[cell], None, "tanh" if cell == "rnn" else None)
    layer = Layer(core, 5, 3)
    params = _params(layer, seed=3)
    np.savez(tmp_path / "ours.npz", **params)
    np.savez(tmp_path / "torch.npz", **{f"rnn.{k}": v for k, v in _torch_state(params, cell).items()})
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(4, 7, 3)))
    common = ["numeric", "--cell", cell, "--inputs-file", str(tmp_path / "x.npy")]
    if cell == "rnn":
        common += ["--activation", "tanh"]
    for source in ("ours", "torch"):
        result = runner.invoke(app, [*common, "--params", str(tmp_path / f"{source}.npz"),
                                     "--out", str(tmp_path / f"g_{source}.npz"), "--torch-names"])
        assert result.exit_code == 0, result.output
    a, b = np.load(tmp_path / "g_ours.npz"), np.load(tmp_path / "g_torch.npz")
    assert a["h"].shape == (4, 8, 5)
    for key in a.files:
        assert np.allclose(a[key], b[key], rtol=1e-13, atol=1e-15), key
    # PyTorch's keys: each gate's rows hold that gate's gradient; both biases get ∂L/∂b
    gates = {"rnn": ["h"], "lstm": ["i", "f", "g", "o"], "gru": ["r", "z", "n"]}[cell]
    first = gates[0]
    w_x = "W_xh" if cell == "rnn" else f"W_x{first}"
    assert np.array_equal(a["grad_weight_ih_l0"][:5], a[f"grad_{w_x}"])
    bias = "b_h" if cell == "rnn" else f"b_{first}"
    assert np.array_equal(a["grad_bias_ih_l0"][:5], a[f"grad_{bias}"])
    assert np.array_equal(a["grad_bias_hh_l0"][:5], a[f"grad_{bias}"])


def test_derive_matrix_form_with_a_weights_file(tmp_path):
    layer = Layer(make_core(CELLS["lstm"]), 64, 64)
    np.savez(tmp_path / "model.npz", **_torch_state(_params(layer, seed=1), "lstm"))
    result = runner.invoke(app, ["derive", "--cell", "lstm", "--params", str(tmp_path / "model.npz"), "--steps", "30"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "hidden size 64" in text and "∂c_t/∂c_{t-1} = diag(f_t)" in text
    assert "5. Numbers for these weights" in text and "σ₁ of the recurrent weights: W_hi" in text
    data = json.loads(runner.invoke(app, ["derive", "--cell", "lstm", "--params", str(tmp_path / "model.npz"),
                                          "--steps", "30", "--format", "json"]).output)
    assert data["form"] == "matrix" and data["numbers"]["hidden"] == 64
    assert data["jacobian_blocks"][-1]["text"] == "diag(f_t)"
    latex = runner.invoke(app, ["derive", "--cell", "gru", "--hidden", "16", "--format", "latex"]).output
    assert r"\operatorname{diag}" in latex and "W_{hn}" in latex


def test_summary_for_a_large_layer_is_short():
    result = runner.invoke(app, ["numeric", "--cell", "gru", "--hidden", "128", "--batch", "3", "--steps", "12"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) < 20 and max(map(len, lines)) < 200
    assert any(line.startswith("regime:") for line in lines) and "σ₁ of the recurrent weights" in result.output


def test_law_slope_of_the_matrix_path():
    """Linear RNN with W_hh = w I: log10‖∂h_T/∂h_{T−k}‖ grows by log10|w| a step, far past float64's range."""
    core = make_core(CELLS["rnn"], None, "linear")
    n, w = 16, 7.0
    params = {"W_hh": w * np.eye(n), "W_xh": np.ones((n, n)), "b_h": np.zeros(n)}
    lags = jacobian_norms(prepare(core, params, np.zeros((500, n)))).log10_by_lag  # h_t = 0: no state overflows
    assert np.allclose(np.diff(lags), np.log10(w), rtol=1e-12) and lags[-1] > 400
