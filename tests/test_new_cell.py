"""A new cell is one definition: added to the table alone, every command works for it, training included.

The MGU (Zhou et al. 2016, "Minimal gated unit for recurrent neural networks"): one gate f,
h̃_t = tanh(W_xh x_t + W_hh (f_t ⊙ h_{t-1}) + b_h), h_t = (1 − f_t) ⊙ h_{t-1} + f_t ⊙ h̃_t.
A small f keeps the state, so its keep bias is b_f with sign −1.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp
from typer.testing import CliRunner

from cli import app
from derive.activations import sigmoid
from derive.cell import CellDef, Memory, Param, StepInputs
from derive.cells import CELLS, elementwise, hadamard, ones_like

runner = CliRunner()


def mgu_step(s: StepInputs):
    p, q, h = s.p, s.q, s.prev["h"]
    f = ("f", elementwise(sigmoid, p["W_xf"] * s.x + p["W_hf"] * h + p["b_f"]))
    candidate = ("n", elementwise(sp.tanh, p["W_xh"] * s.x + p["W_hh"] * hadamard(q("f"), h) + p["b_h"]))
    return (f, candidate, ("h", hadamard(ones_like(h) - q("f"), h) + hadamard(q("f"), q("n"))))


MGU = CellDef(
    name="mgu", summary="MGU, one gate f; h_t = (1 − f) ⊙ h_{t-1} + f ⊙ tanh(W_xh x_t + W_hh (f ⊙ h_{t-1}) + b_h)",
    states=("h",),
    params={"standard": (Param("W_xf", "n", "m"), Param("W_hf", "n", "n"), Param("b_f", "n"),
                         Param("W_xh", "n", "m"), Param("W_hh", "n", "n"), Param("b_h", "n"))},
    step=mgu_step, memory={"standard": Memory("b_f", sign=-1)},
)


@pytest.fixture
def mgu(monkeypatch):
    monkeypatch.setitem(CELLS, "mgu", MGU)
    return "mgu"


def _ok(args) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, (args, result.output)
    return result.output


def test_a_new_cell_derives_computes_checks_trains_and_sweeps(mgu):
    assert "∂h_4/∂h_0 = " in _ok(["derive", "--cell", mgu, "--steps", "4"])
    assert "diag(" in _ok(["derive", "--cell", mgu, "--hidden", "4", "--steps", "5"])
    grads = {}
    for mode in ("auto", "reverse", "forward", "native"):
        data = json.loads(_ok(["numeric", "--cell", mgu, "--hidden", "2", "--steps", "6", "--mode", mode, "--json"]))
        grads[mode] = np.array(data["grad"]["W_hh"], dtype=float).reshape(2, 2)
    for mode, g in grads.items():
        np.testing.assert_allclose(g, grads["reverse"], rtol=1e-9, err_msg=mode)
    grid = _ok(["numeric", "--cell", mgu, "--hidden", "3", "--grid", "W_hh=0:1:3", "--steps", "6", "--mode", "native"])
    assert "3 settings" in grid and "mode native" in grid
    assert "0 failed" in _ok(["check", "--cell", mgu])
    trained = json.loads(_ok(["train", "--cell", mgu, "--task", "latch", "--lag", "3", "--hidden", "4",
                              "--updates", "20", "--every", "10", "--json"]))
    assert trained["settings"]["gate_init"] == "chrono" and trained["settings"]["cell"] == mgu
    swept = _ok(["sweep", "--models", f"{mgu}:pytorch,{mgu}:chrono", "--task", "latch", "--lags", "2",
                 "--seeds", "1", "--updates", "10", "--jobs", "1"])
    assert "mgu:chrono" in swept


def test_chrono_keeps_the_new_cells_memory_with_the_sign_it_declares(mgu):
    from derive.core import Layer, make_core
    from numeric.init import draw
    p = draw(Layer(make_core(MGU), 8, 2), seed=0, init="chrono", t_max=30)
    assert (p["b_f"] <= 0).all()  # f = σ(b_f) small: the MGU keeps h


def test_a_new_cell_is_on_the_explorer_page(mgu, tmp_path):
    out = tmp_path / "page.html"
    _ok(["explore", "--cell", mgu, "--out", str(out)])
    text = out.read_text(encoding="utf-8")
    assert '<section class="derivation" data-cell="mgu" hidden>' in text and '"mgu": {' in text
    assert '"start": "mgu"' in text
