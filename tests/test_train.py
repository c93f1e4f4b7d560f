"""Training: the gradient of an update, the optimisers, determinism, the tasks, and the command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app
from derive.cells import CELLS
from derive.core import make_core
from numeric.training import tasks
from numeric.engine.grad import value_and_grad
from numeric.training.optim import AdamState, SGDState, adam, sgd
from numeric.training.train import (Settings, cross_entropy, initial_params, loss_and_grad, loss_function, resolve,
                           squared_error, train)

runner = CliRunner()


def _model(cell: str, task: str, lag: int = 3, hidden: int = 2, seed: int = 0):
    s = resolve(Settings(cell=cell, task=task, lag=lag, hidden=hidden, seed=seed))
    core = make_core(CELLS[cell], None, "tanh" if cell == "rnn" else None)
    x, target = tasks.draw(task, lag, 3, np.random.default_rng(seed))
    return s, core, initial_params(s), x, target


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("task", ["cuisine", "adding"])
def test_the_update_gradient_equals_finite_differences_of_the_loss(cell, task):
    """Every parameter element, the readout's included, against central differences (h = 1e-6)."""
    s, core, params, x, target = _model(cell, task)
    loss = loss_function(task)
    _, _, grads, _ = loss_and_grad(core, params, x, target, loss)
    for name, value in params.items():
        fd = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            for sign in (1, -1):
                moved = dict(params)
                moved[name] = value.copy()
                moved[name][index] += sign * 1e-6
                fd[index] += sign * loss_and_grad(core, moved, x, target, loss)[0] / 2e-6
        np.testing.assert_allclose(grads[name], fd, rtol=1e-6, atol=1e-9, err_msg=f"{cell} {task} {name}")


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_readout_of_ones_gives_the_old_sum_of_h_T_gradient(cell):
    """y = 1ᵀ h_T with L = Σ_b y_b seeds ∂L/∂h_T = 1: the readout path equals L = Σ h_T."""
    _, core, params, x, _ = _model(cell, "cuisine", hidden=3)
    params = {**params, "W_hq": np.ones((1, 3)), "b_q": np.zeros(1)}
    total = lambda y, target: (float(y.sum()), np.ones_like(y))  # noqa: E731
    _, _, ours, _ = loss_and_grad(core, params, x, None, total)
    cell_params = {k: v for k, v in params.items() if k not in ("W_hq", "b_q")}
    old = value_and_grad(core, cell_params, x).grads
    for name in cell_params:
        np.testing.assert_allclose(ours[name], old[name], rtol=1e-13, atol=1e-15, err_msg=name)


def test_losses_and_their_gradients():
    y = np.array([[2.0, 0.0, -1.0]])
    value, grad = cross_entropy(y, np.array([0]))
    p = np.exp(y) / np.exp(y).sum()
    assert value == pytest.approx(-np.log(p[0, 0]), rel=1e-15)
    np.testing.assert_allclose(grad, p - [[1, 0, 0]], rtol=1e-15)
    value, grad = squared_error(np.array([[1.5], [0.0]]), np.array([1.0, 1.0]))
    assert value == pytest.approx((0.25 + 1.0) / 2) and grad.ravel().tolist() == [0.5, -1.0]


def test_sgd_and_adam_follow_pytorchs_rules_by_hand():
    p, g1, g2 = {"w": np.array([1.0])}, {"w": np.array([0.5])}, {"w": np.array([-0.25])}
    p1, s = sgd(p, g1, SGDState(), lr=0.1, momentum=0.9)         # b = g
    p2, s = sgd(p1, g2, s, lr=0.1, momentum=0.9)                 # b = 0.9·0.5 − 0.25 = 0.2
    assert p1["w"][0] == pytest.approx(0.95) and p2["w"][0] == pytest.approx(0.95 - 0.02)
    q1, a = adam(p, g1, AdamState(), lr=0.1)
    assert q1["w"][0] == pytest.approx(1.0 - 0.1 * 0.5 / (0.5 + 1e-8))  # m̂ = g, √v̂ = |g| at t = 1
    q2, a = adam(q1, g2, a, lr=0.1)
    m = (0.9 * 0.05 + 0.1 * -0.25) / (1 - 0.9**2)
    v = (0.999 * 0.001 * 0.25 + 0.001 * 0.0625) / (1 - 0.999**2)
    assert q2["w"][0] == pytest.approx(q1["w"][0] - 0.1 * m / (np.sqrt(v) + 1e-8), rel=1e-12) and a.t == 2


@pytest.mark.parametrize("gate_init", ["chrono", "pytorch"])
def test_a_seeded_run_repeats_bit_for_bit(gate_init):
    s = Settings(cell="lstm", task="latch", lag=4, hidden=4, updates=30, every=10, batch=8, seed=3, gate_init=gate_init)
    a, b = train(s), train(s)
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert [e.loss for e in a.curve] == [e.loss for e in b.curve]
    c = train(Settings(**{**s.__dict__, "seed": 4}))
    assert not np.array_equal(a.params["W_hq"], c.params["W_hq"])


def test_adding_problem_distribution():
    x, target = tasks.draw("adding", 50, 20000, np.random.default_rng(0))
    markers = x[:, :, 1]
    assert x.shape == (20000, 50, 2) and np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :25].sum(axis=1) == 1) and np.all(markers[:, 25:].sum(axis=1) == 1)
    np.testing.assert_allclose(target, (x[:, :, 0] * markers).sum(axis=1), rtol=1e-15)
    assert 0 <= x[:, :, 0].min() and x[:, :, 0].max() < 1 and abs(x[:, :, 0].mean() - 0.5) < 0.005
    # predicting the mean scores Var(u1 + u2) = 1/6
    assert np.mean((target - 1.0) ** 2) == pytest.approx(1 / 6, rel=0.03)


def test_cuisine_distribution():
    x, answer = tasks.draw("cuisine", 7, 30000, np.random.default_rng(1))
    assert x.shape == (30000, 11, len(tasks.VOCABULARY)) and len(tasks.VOCABULARY) <= 32
    assert np.all(x.sum(axis=-1) == 1)  # one-hot
    words = np.array(tasks.VOCABULARY)[np.argmax(x, axis=-1)]
    assert set(words[:, 0]) == set(tasks.PEOPLE) and np.all(words[:, 1] == "eats") and np.all(words[:, -1] == "cuisine?")
    assert set(words[:, 3:-1].ravel()) == set(tasks.FILLERS)
    # the answer is the food's cuisine, and nothing else decides it
    assert all(tasks.CUISINES[a] == tasks.FOODS[f] for a, f in zip(answer, words[:, 2]))
    share = np.bincount(answer, minlength=len(tasks.CUISINES)) / len(answer)
    expected = [sum(c == cuisine for c in tasks.FOODS.values()) / len(tasks.FOODS) for cuisine in tasks.CUISINES]
    np.testing.assert_allclose(share, expected, atol=0.01)
    assert tasks.describe("cuisine", x).split()[1:3] == ["eats", words[0, 2]]


def test_latch_distribution():
    x, bit = tasks.draw("latch", 20, 20000, np.random.default_rng(2))
    assert x.shape == (20000, 21, 1) and set(np.unique(x[:, 0, 0])) == {-1.0, 1.0}
    assert np.all((x[:, 0, 0] > 0) == (bit == 1)) and abs(bit.mean() - 0.5) < 0.01
    assert np.std(x[:, 1:, 0]) == pytest.approx(tasks.LATCH_NOISE, rel=0.01)


def test_train_command_summary_json_and_weights_for_numeric(tmp_path):
    out = tmp_path / "gru.npz"
    result = runner.invoke(app, ["train", "--cell", "gru", "--task", "latch", "--lag", "3", "--hidden", "4",
                                 "--updates", "40", "--every", "20", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["updates"] in (20, 40) and len(data["curves"]["loss"]) == len(data["curves"]["update"])
    assert set(data["start"]["log10_first"]) == {"h"}
    saved = np.load(out)
    assert {"W_hr", "W_hq", "b_q", "rnn.weight_ih_l0", "fc.weight"} <= set(saved.files)
    again = runner.invoke(app, ["numeric", "--cell", "gru", "--params", str(out), "--steps", "5", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["hidden"] == 4


@pytest.mark.parametrize("args,text", [
    (["--task", "nope"], "--task"), (["--lag", "0"], "--lag"), (["--task", "adding", "--lag", "1"], "--lag"),
    (["--updates", "0"], "--updates"), (["--hidden", "4096", "--batch", "4096", "--lag", "100"], "GiB"),
    (["--out", "/no/such/folder/x.npz"], "--out"), (["--cell", "statquest"], "--cell"),
    (["--optimiser", "rmsprop"], "--optimiser"), (["--clip", "sometimes"], "--clip"), (["--lr", "0"], "--lr"),
])
def test_train_bad_input_is_one_line_exit_2(args, text):
    result = runner.invoke(app, ["train", *args])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and text in lines[0], result.output


def test_ctrl_c_during_training_saves_nothing_and_says_where(tmp_path):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "model.npz"
    p = subprocess.Popen([sys.executable, "cli.py", "train", "--task", "latch", "--lag", "20", "--updates", "100000",
                          "--every", "1000", "--out", str(out)], cwd=Path(__file__).resolve().parent.parent,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().startswith("gates: chrono")  # the keep gate open, the write gate closed
    assert p.stdout.readline().startswith("training lstm")
    assert p.stdout.readline().startswith("update      0:")  # training is under way
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("stopped at update ") and lines[0].endswith("of 100000; nothing was saved")
    assert lines[1:] == ["Aborted."] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args,text", [(["--jobs", "0"], "--jobs"), (["--lags", "2,x"], "--lags"),
                                       (["--seeds", "0"], "--seeds"), (["--models", "rnn,cnn"], "--models:"),
                                       (["--models", "rnn:chrono"], "--models:"), (["--models", "lstm,lstm:chrono"], "--models:"), (["--lags", "0"], "--lags:")])
def test_sweep_bad_input_is_one_line_exit_2(args, text):
    result = runner.invoke(app, ["sweep", *args])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and text in lines[0], result.output


def test_a_sweep_does_not_depend_on_its_number_of_workers():
    from numeric.training.sweep import sweep
    base = Settings(task="latch", updates=20, hidden=4, batch=8, every=10)
    one = sweep(base, models=(("rnn", "pytorch"), ("gru", "chrono")), lags=(2, 3), seeds=1, jobs=1)
    two = sweep(base, models=(("rnn", "pytorch"), ("gru", "chrono")), lags=(2, 3), seeds=1, jobs=2)
    strip = lambda runs: [{k: v for k, v in r.items() if k != "seconds"} for r in runs]  # noqa: E731
    assert strip(one["runs"]) == strip(two["runs"]) and one["table"] == two["table"]
    json.dumps(one, allow_nan=False)  # strict JSON
