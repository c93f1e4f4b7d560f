"""float32: the same engine in the dtype PyTorch users train in, its accuracy stated and checked."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from derive.cells import CELLS
from derive.core import Layer, make_core
from derive.errors import InvalidValue
from numeric.engine.grad import value_and_grad
from numeric.engine.modes import gradient
from numeric.init import draw

from .conftest import ALL_CELLS, cell_id

runner = CliRunner()
#: float32 against float64 on these small runs: a few float32 roundings (2^-24 ≈ 6e-8) per step.
TOLERANCE = 2e-5


def _relative(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(a[k] - b[k])) / max(np.max(np.abs(b[k])), 1e-30)) for k in b)


@pytest.mark.parametrize("spec", ALL_CELLS, ids=cell_id)
def test_every_cell_in_float32_is_float64_to_float32_accuracy(spec):
    name, variant, activation = spec
    n = 1 if CELLS[name].fixed or CELLS[name].scalar_only else 3
    layer = Layer(make_core(CELLS[name], variant, activation), n, n)
    if not layer.param_names():
        pytest.skip("no parameters")
    params, x = draw(layer, seed=3), np.random.default_rng(4).uniform(-1, 1, (2, 12, n))
    wide = value_and_grad(layer.core, params, x).grads
    narrow = value_and_grad(layer.core, params, x, dtype="float32")
    assert all(v.dtype == np.float32 for v in narrow.grads.values())
    assert all(v.dtype == np.float32 for v in narrow.states.values())
    assert _relative(narrow.grads, wide) < TOLERANCE


@pytest.mark.parametrize("mode", ["reverse", "forward", "native"])
def test_a_grid_in_float32_in_every_mode(mode):
    if mode == "native":
        pytest.importorskip("numeric.engine.native.build")
        from numeric.engine.native.build import compiler
        if compiler() is None:
            pytest.skip("no C compiler")
    layer = Layer(make_core(CELLS["lstm"]), 1, 1)
    params, x = draw(layer, (50,), seed=1), np.random.default_rng(2).uniform(-1, 1, (40, 1))
    wide, _ = gradient(layer.core, params, x, lead=(50,), mode="reverse")
    narrow, _ = gradient(layer.core, params, x, lead=(50,), mode=mode, dtype=np.float32)
    assert all(v.dtype == np.float32 for v in narrow.values()) and _relative(narrow, wide) < TOLERANCE


def test_a_dtype_the_engine_does_not_compute_in_is_refused():
    layer = Layer(make_core(CELLS["rnn"]), 1, 1)
    with pytest.raises(InvalidValue, match="allowed: float64, float32"):
        value_and_grad(layer.core, draw(layer), np.ones((3, 1)), dtype="float16")


def test_the_cli_in_float32_says_so_and_agrees():
    args = ["numeric", "--cell", "gru", "--hidden", "8", "--batch", "3", "--steps", "20", "--json"]
    wide = json.loads(runner.invoke(app, args).output)
    result = runner.invoke(app, [*args, "--dtype", "float32"])
    assert result.exit_code == 0, result.output
    narrow = json.loads(result.output)
    assert narrow["dtype"] == "float32" and wide["dtype"] == "float64"
    grads = {k: np.array(v) for k, v in narrow["grad"].items()}
    assert _relative(grads, {k: np.array(v) for k, v in wide["grad"].items()}) < TOLERANCE
    text = runner.invoke(app, ["numeric", "--cell", "gru", "--hidden", "8", "--steps", "5", "--dtype", "float32"])
    assert "in float32" in text.output


def test_training_in_float32_keeps_float32_and_learns():
    from numeric.training.train import Settings, train

    result = train(Settings(cell="lstm", task="latch", lag=5, hidden=8, updates=300, every=100, dtype="float32"))
    assert all(v.dtype == np.float32 for v in result.params.values())
    assert result.succeeded, result.final


def test_float32_against_pytorch_float32():
    """The same nn.LSTM weights and inputs: our float32 gradients against PyTorch's float32 autograd."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    module = torch.nn.LSTM(3, 16, batch_first=True)
    x = torch.randn(4, 30, 3)
    out, _ = module(x)
    out[:, -1].sum().backward()
    from numeric import gradients

    run = gradients(module.state_dict(), inputs=x.numpy(), cell="lstm", dtype="float32")
    theirs = {"W_hi": module.weight_hh_l0.grad[:16].numpy(), "W_xf": module.weight_ih_l0.grad[16:32].numpy(),
              "b_o": (module.bias_ih_l0.grad[48:]).numpy()}
    for name, want in theirs.items():
        got = run.grads[name]
        assert got.dtype == np.float32
        assert float(np.max(np.abs(got - want)) / np.max(np.abs(want))) < 1e-5, name
