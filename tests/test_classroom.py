"""What a teacher and a PyTorch user hit first: silent wrong answers, hostile inputs, outside references."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()


def _ok(args) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result.output


def _refused(args, *texts) -> str:
    result = runner.invoke(app, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert all(t in lines[0] for t in texts), lines[0]
    return lines[0]


def _torch_rnn(path, n=3, m=2, seed=0):
    """An nn.RNN state_dict as safetensors would hold it: weight_ih_l0, weight_hh_l0, two biases."""
    rng = np.random.default_rng(seed)
    arrays = {"weight_ih_l0": rng.uniform(-1, 1, (n, m)), "weight_hh_l0": rng.uniform(-1, 1, (n, n)),
              "bias_ih_l0": rng.uniform(-1, 1, n), "bias_hh_l0": rng.uniform(-1, 1, n)}
    np.savez(path, **arrays)
    return arrays


def _tanh_rnn_gradient(a, x):
    """∂L/∂h_0 of L = Σ h_T for h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh), by hand."""
    hs = [np.zeros(a["weight_hh_l0"].shape[0])]
    for xt in x:
        hs.append(np.tanh(a["weight_ih_l0"] @ xt + a["bias_ih_l0"] + a["weight_hh_l0"] @ hs[-1] + a["bias_hh_l0"]))
    bar = np.ones_like(hs[-1])
    for h in reversed(hs[1:]):
        bar = a["weight_hh_l0"].T @ (bar * (1 - h**2))
    return bar


def test_an_nn_rnn_state_dict_is_tanh_unless_told_and_says_so(tmp_path):
    """Item 1: no nn.RNN is linear; a state_dict does not record its nonlinearity, so PyTorch's default."""
    path = tmp_path / "rnn.npz"
    a = _torch_rnn(path)
    x = np.ones((4, 2))
    data = json.loads(_ok(["numeric", "--params", str(path), "--steps", "4", "--json"]))
    assert "nn.RNN's default" in data["weights"]
    np.testing.assert_allclose(data["grad_initial_state"]["h_0"], _tanh_rnn_gradient(a, x), rtol=1e-12)
    relu = json.loads(_ok(["numeric", "--params", str(path), "--steps", "4", "--json", "--activation", "relu"]))
    assert relu["cell"] == "rnn" and "nn.RNN's default" not in relu["weights"]
    assert "rnn (tanh)" in _ok(["derive", "--params", str(path), "--steps", "4"])


def test_a_trained_rnn_is_read_back_with_its_activation(tmp_path):
    out = tmp_path / "rnn.npz"
    _ok(["train", "--cell", "rnn", "--task", "latch", "--lag", "3", "--hidden", "3", "--updates", "10",
         "--every", "10", "--out", str(out)])
    data = json.loads(_ok(["numeric", "--params", str(out), "--steps", "3", "--json"]))
    assert "activation tanh, as the file records" in data["weights"]


@pytest.mark.parametrize("command", ["derive", "numeric"])
def test_the_verdict_comes_from_the_measured_rate_the_same_everywhere(command):
    """Item 2: statquest's Company A, the same verdict and rate in derive and numeric (the whole state)."""
    args = ["--cell", "statquest", "--inputs", "0,0.5,0.25,1"]
    out = _ok([command, *args, *(["--steps", "4"] if command == "derive" else [])])
    assert "exploding (measured)" in out and "0.102 per step" in out


def test_a_saturated_tanh_rnn_is_called_vanishing_with_the_bound_beside_it():
    out = _ok(["derive", "--activation", "tanh", "--set", "w=2", "--set", "u=1", "--set", "b_h=0"])
    assert "vanishing (measured)" in out and "allows growth, but φ saturates" in out
    assert "exploding possible" not in out.split("7. Regime")[1].split("\n", 2)[2]


def test_the_matrix_forms_regime_carries_gamma_sigma_and_the_bound(tmp_path):
    path = tmp_path / "rnn.npz"
    _torch_rnn(path, n=5)
    data = json.loads(_ok(["derive", "--params", str(path), "--steps", "6", "--format", "json"]))
    regime = data["numbers"]["regime"]
    assert regime["gamma"] == "1" and regime["sigma1"] > 0 and regime["bound_log10"] is not None
    assert regime["verdict"].endswith("(measured)") and regime["measured_log10_rate"] is not None


def test_derive_refuses_a_hidden_size_its_weights_do_not_have(tmp_path):
    """Item 3."""
    path = tmp_path / "rnn.npz"
    _torch_rnn(path, n=4)
    _refused(["derive", "--params", str(path), "--hidden", "8"], "--hidden", "has hidden 4, not 8")


def test_sigma1_of_a_large_weight_is_exact_to_its_stated_tolerance():
    """Item 4: above 512 units Lanczos to 1e-12, against LAPACK's SVD."""
    from numeric.engine.spectral import SIGMA_TOLERANCE, largest_singular_value
    n = 600
    w = np.random.default_rng(3).uniform(-1 / np.sqrt(n), 1 / np.sqrt(n), (n, n))
    assert abs(largest_singular_value(w) / np.linalg.norm(w, 2) - 1) < SIGMA_TOLERANCE


def test_a_custom_cell_takes_a_weights_file_and_relu_prime_of_zero_is_pytorchs(tmp_path):
    """Items 5 and 8: the file is read; derive and numeric agree on relu'(0) = 0 (PyTorch's) and elsewhere."""
    path = tmp_path / "p.json"
    path.write_text('{"w": 2}')
    for h0, expected in (("0", 0.0), ("1", 8.0)):
        data = json.loads(_ok(["numeric", "--cell", "custom", "--formula", "relu(w*h)", "--params", str(path),
                               "--steps", "3", "--h0", h0, "--json"]))
        exact = json.loads(_ok(["derive", "--cell", "custom", "--formula", "relu(w*h)", "--set", "w=2",
                                "--steps", "3", "--h0", h0, "--format", "json"]))["value"]
        assert data["jacobian"][0][0] == pytest.approx(expected, abs=1e-12) and exact == expected


def test_a_state_named_like_a_step_symbol_is_refused():
    """Item 6."""
    _refused(["derive", "--cell", "custom", "--formula", "T = w*T"], "--formula", "'T'", "step symbol")
    assert "∂z_3/∂z_0" in _ok(["derive", "--cell", "custom", "--formula", "z = tanh(w*z)", "--steps", "3",
                               "--set", "w=1/2"])


def test_a_value_past_pythons_digit_limit_is_answered_in_the_log_domain():
    """Item 7: h^(8^8) nested, from h_0 = 2: no exact value, a magnitude."""
    out = _ok(["derive", "--cell", "custom", "--formula", "((((((((h**8)**8)**8)**8)**8)**8)**8)**8)",
               "--steps", "3", "--h0", "2"])
    assert "∂h_3/∂h_0 ≈ 10^1.42157e+21" in out


def test_the_linear_rnn_in_matrix_form_needs_only_w_hh_for_any_horizon():
    """Item 9: ∂h_T/∂h_0 = W_hh^T; 0.1 everywhere in 8 × 8 has σ₁ = 0.8, so log10 = T log10 0.8."""
    data = json.loads(_ok(["derive", "--hidden", "8", "--set", "W_hh=0.1", "--steps", "1000000000000",
                           "--format", "json"]))
    assert data["power"]["log10_norm"] == pytest.approx(1e12 * np.log10(0.8), rel=1e-12)
    assert data["power"]["regime"]["verdict"] == "vanishing (measured)"


def test_the_input_size_is_read_off_a_set_input_weight():
    """Item 10."""
    out = _ok(["derive", "--hidden", "4", "--set", "W_xh=[[1],[2],[3],[4]]", "--set", "W_hh=0.1", "--set", "b_h=0",
               "--inputs", "0.1,0.2", "--steps", "2"])
    assert "input size 1" in out and "h_T (sequence 0): 0.3000, 0.5000, 0.7000, 0.9000" in out


def test_json_lists_small_arrays_and_names_the_large_ones():
    """Item 11: a 400-unit LSTM's weights (160,000 numbers each) are named with their shapes, not listed."""
    data = json.loads(_ok(["numeric", "--cell", "lstm", "--hidden", "400", "--steps", "2", "--json"]))
    assert data["grad"]["W_hi"] is None and data["omitted"]["grad.W_hi"] == [400, 400]
    assert data["grad"]["b_i"] is not None and len(data["grad"]["b_i"]) == 400
    small = json.loads(_ok(["numeric", "--cell", "lstm", "--hidden", "4", "--steps", "2", "--json"]))
    assert small["omitted"] == {} and np.shape(small["grad"]["W_hi"]) == (4, 4)


def test_a_run_too_large_for_reverse_mode_names_the_mode_option():
    """Item 12."""
    _refused(["numeric", "--steps", "1000000", "--mode", "reverse"], "--mode", "forward mode stores no steps")


def test_statquest_prints_the_day_5_prediction_and_elides_nothing_at_t_4():
    """Item 13: the point of the example, and no '⋮' where every step is shown."""
    a = _ok(["derive", "--cell", "statquest", "--inputs", "0,0.5,0.25,1", "--steps", "4"])
    b = _ok(["derive", "--cell", "statquest", "--inputs", "1,0.5,0.25,1", "--steps", "4"])
    assert "the output h_4 = 0.0064: the lecture's prediction for day 5" in a
    assert "the output h_4 = 0.9694: the lecture's prediction for day 5" in b
    assert "⋮" not in a.split("2. Unrolled")[1].split("3. The local")[0]
    assert "⋮" in _ok(["derive", "--cell", "statquest", "--steps", "5"]).split("2. Unrolled")[1].split("3. The")[0]


def test_gated_cells_get_numbers_from_drawn_weights_that_can_be_typed_back():
    """Item 14: every parameter not set is drawn (seeded, the initialisation named), to 4 digits; typing the
    same values back with --set gives the same derivative, and numeric takes the same --set."""
    out = _ok(["derive", "--cell", "gru", "--steps", "6", "--gate-init", "chrono", "--seed", "3"])
    assert "drawn: chrono (Tallec & Ollivier 2018), T_max = 6 initialisation, seed 3" in out
    at = out.split("6. Numbers\n   at ")[1].split(":\n")[0]
    settings = [item.replace(" ", "") for item in at.split(", ")]
    again = json.loads(_ok(["derive", "--cell", "gru", "--steps", "6", "--format", "json",
                            *[a for s in settings for a in ("--set", s)]]))
    value = float(out.split("∂h_6/∂h_0 = ")[1].split(" ")[0])
    assert again["value"] == pytest.approx(value, rel=1e-12) and "drawn" not in " ".join(again["notes"])
    numeric = json.loads(_ok(["numeric", "--cell", "gru", "--steps", "6", "--json",
                              *[a for s in settings for a in ("--set", s)]]))
    assert numeric["jacobian"][0][0] == pytest.approx(value, rel=1e-9) and "set" in numeric["weights"]


def test_numeric_set_overrides_drawn_weights_on_both_paths():
    grid = json.loads(_ok(["numeric", "--cell", "rnn", "--set", "w=0.5", "--set", "u=1", "--set", "b_h=0",
                           "--mode", "reverse", "--steps", "10", "--json"]))
    layer = json.loads(_ok(["numeric", "--cell", "rnn", "--set", "W_hh=0.5", "--steps", "10", "--json"]))
    assert grid["jacobian"][0][0] == pytest.approx(0.5**10) and layer["jacobian"][0][0] == pytest.approx(0.5**10)


def test_derive_graph_says_where_it_wrote(tmp_path):
    """Item 18."""
    path = tmp_path / "lstm.svg"
    result = runner.invoke(app, ["derive", "--cell", "lstm", "--steps", "3", "--graph", str(path)])
    assert result.exit_code == 0 and f"the unrolled picture: {path}" in result.output and path.exists()


def test_steps_as_people_type_them():
    """Item 18: 1e6 and 1_000_000 are 1000000; 1.5 is one line naming the option."""
    assert "T = 1000000 steps" in _ok(["derive", "--steps", "1e6"])
    assert "T = 1000000 steps" in _ok(["derive", "--steps", "1_000_000"])
    result = runner.invoke(app, ["derive", "--steps", "1.5"])
    assert result.exit_code == 2 and "--steps" in result.output and "not a whole number" in result.output


def test_sums_display_as_written_by_hand():
    """Item 17: max, not Max; no 1*(…); no k = 0 on a sum over k; a fraction's float; a scalar J_t in LaTeX."""
    out = _ok(["derive", "--wrt", "w", "--truncate", "10", "--set", "w=0.5", "--set", "u=1", "--set", "b_h=0"])
    closed = out.split("5. Closed form")[1].split("6. Numbers")[0]
    assert "Σ_{k=max(1, T - 9)}^{T} (h_{k-1}*w^(T - k))" in closed and "at T = 50: Σ_{k=41}^{50}" in closed
    assert "Max" not in closed and "1*(" not in closed and "k = 0" not in closed
    data = json.loads(_ok(["derive", "--set", "w=3/7", "--steps", "60", "--format", "json"]))
    assert isinstance(data["value"], str) and data["float"] == pytest.approx((3 / 7) ** 60, rel=1e-15)
    assert r"J_t &= w \\" in _ok(["derive", "--format", "latex"])


# --- Item 15: the figures, looked at as slides ---------------------------------------------------


def _texts(fig) -> list[str]:
    from matplotlib.text import Text
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def test_explode_says_what_it_draws():
    from numeric import studies
    from reports import figures
    fig = figures.explode_vanish(studies.explode_vanish(100, 50))
    texts = " ".join(_texts(fig))
    assert "$2^{50}$" in texts and "8.88e-16" in texts and "(log scale)" not in texts and "2^50" not in texts


def test_the_heatmaps_colours_follow_its_data_and_its_caption_its_numbers():
    from numeric import studies
    from reports import figures
    from reports.build import heatmap_caption
    r = studies.tanh_heatmap(20, 0)
    mesh = figures.tanh_heatmap(r).axes[0].collections[0]
    assert mesh.norm.vmin == pytest.approx(np.nanmin(r.log10)) and mesh.norm.vmax == pytest.approx(max(np.nanmax(r.log10), 1e-9))
    caption = heatmap_caption(r)
    assert f"{r.log10[np.argmin(np.abs(r.weights - 3.0)), -1]:.1f}" in caption


def test_the_cliff_shows_plain_descent_thrown_off_and_clipped_descent_down_the_valley():
    """Pascanu et al.'s point: at the same learning rate the plain step jumps off the wall, the clipped one
    does not, and ends lower."""
    from numeric import studies
    r = studies.cliff(size=41)
    steps = lambda p: np.linalg.norm(np.diff(p, axis=1), axis=-1)  # noqa: E731
    assert steps(r.plain).max() > 10 * r.lr * r.threshold >= 10 * steps(r.clipped).max() - 1e-9
    off = (r.plain[:, -1, 0] < r.w[0]) | (r.plain[:, -1, 0] > r.w[-1]) | (r.plain[:, -1, 1] > r.b[-1])
    assert off.all()
    from reports.figures import cliff
    assert all(not t.startswith("he cliff") for t in _texts(cliff(r)))


def test_lags_shows_chrono_and_says_every_cell_forgets_at_pytorchs_init():
    from numeric import studies
    from reports.build import lags_caption
    r = studies.lag_curves(20, seeds=4)
    assert r.cells == ("rnn (tanh)", "lstm", "gru", "lstm (chrono)")
    assert r.median[3, -1] > r.median[1, -1] + 1  # chrono carries further
    assert "every cell forgets" in lags_caption(r) and f"{r.median[0, -1]:.1f}" in lags_caption(r)


def test_sources_runs_to_the_horizon_and_the_carousel_does_not_overclaim():
    from numeric import studies
    from reports import figures
    assert studies.sources(50, 0).log10.shape[-1] == 50
    assert "slows the vanishing" in " ".join(_texts(figures.carousel(studies.carousel(20, 0))))


def test_clipping_axis_ends_a_decade_over_its_tallest_bar_with_powers_as_ticks():
    from numeric import studies
    from reports import figures
    r = studies.clipping(50)
    ax = figures.clipping(r).axes[0]
    top = max(np.max(np.abs(v)) for v in (r.before, r.by_norm, r.by_value))
    assert top < ax.get_ylim()[1] <= 100 * top
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert all(label == "0" or label.startswith("$10^{") for label in labels)


def test_the_lecture_figure_puts_its_predictions_beside_the_lines():
    from numeric import studies
    from reports import figures
    fig = figures.lecture_example(studies.lecture_example())
    for ax in fig.axes[:2]:
        note = next(t for t in ax.texts if "day-5 prediction" in t.get_text())
        assert note.xyann[0] > 0 and ax.get_xlim()[1] > 4.5  # to the right of day 4, inside the axes


def test_the_readme_is_the_students_path_and_links_the_reference():
    """Item 19: set-up first, the story in commands, under 200 lines; every docs/ page it links exists
    and links back nowhere broken."""
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    lines = readme.splitlines()
    assert len(lines) < 200
    setup = readme.index("## Set-up")
    assert setup < readme.index("## The lecture, in commands") < readme.index("## The figures")
    assert "python cli.py derive --steps 50" in readme[setup:setup + 400]
    for page in (root / "docs").glob("*.md"):
        for target in re.findall(r"\]\(([^)#]+\.md)", page.read_text()):
            assert (page.parent / target).exists(), (page.name, target)
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)", readme))
    assert linked == {f"docs/{p.name}" for p in (root / "docs").glob("*.md")}


# --- The practitioner's list --------------------------------------------------------------------


class _Tensor:
    """What a torch tensor offers the API (detach, cpu, numpy, dtype), without torch."""

    def __init__(self, array, dtype="torch.float32"):
        self.array, self.dtype = np.asarray(array, dtype=np.float32), dtype

    def detach(self):
        return self

    def cpu(self):
        return self

    def float(self):
        return _Tensor(self.array)

    def numpy(self):
        return self.array


def test_gradients_take_a_state_dict_of_tensors_and_inputs_as_arrays():
    """Item 20: model.state_dict() and an (B, T, m) array, no files; sizes read off the shapes."""
    from numeric import gradients
    rng = np.random.default_rng(1)
    state = {"rnn.weight_ih_l0": _Tensor(rng.normal(size=(12, 3))), "rnn.weight_hh_l0": _Tensor(rng.normal(size=(12, 4))),
             "rnn.bias_ih_l0": _Tensor(np.zeros(12), "torch.bfloat16"), "rnn.bias_hh_l0": _Tensor(np.zeros(12))}
    x = rng.normal(size=(2, 5, 3))
    r = gradients(state, inputs=x, cell="gru")
    assert (r.layer.n, r.layer.m, r.steps, r.inputs.shape) == (4, 3, 5, (2, 5, 3))
    np.testing.assert_array_equal(r.inputs, x)
    assert "the weights given" in r.source
    with pytest.raises(Exception, match=r"^inputs: "):
        gradients(state, inputs=np.ones((5, 2)), cell="gru")


def test_the_python_api_names_the_argument_and_the_matrix_form():
    from derive import solve
    from derive.errors import InvalidValue
    with pytest.raises(InvalidValue, match=r"^hidden: .* got 64 .*matrix form"):
        solve("rnn", hidden=64)


def test_derive_runs_on_the_users_inputs(tmp_path):
    """Item 21: --inputs-file and --batch, as numeric has them; the numbers are for those inputs."""
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).normal(size=(3, 6, 2)))
    ones = json.loads(_ok(["derive", "--cell", "lstm", "--hidden", "4", "--input-size", "2", "--steps", "6",
                           "--format", "json"]))
    data = json.loads(_ok(["derive", "--cell", "lstm", "--hidden", "4", "--input-size", "2", "--steps", "6",
                           "--inputs-file", str(path), "--format", "json"]))
    assert data["numbers"]["batch"] == 3 and data["numbers"]["grad_norm"] != ones["numbers"]["grad_norm"]
    drawn = json.loads(_ok(["derive", "--cell", "gru", "--hidden", "2", "--batch", "4", "--steps", "5", "--format", "json"]))
    assert drawn["numbers"]["batch"] == 4


def test_a_state_dict_without_cell_says_which_cell_its_shapes_look_like(tmp_path):
    """Item 22: a 4-block LSTM read as the default rnn."""
    path = tmp_path / "lstm.npz"
    rng = np.random.default_rng(0)
    np.savez(path, weight_ih_l0=rng.normal(size=(16, 3)), weight_hh_l0=rng.normal(size=(16, 4)))
    _refused(["numeric", "--params", str(path)], "--cell", "look like nn.LSTM", "(the cell is lstm)")


def test_two_modules_in_one_file_are_picked_by_prefix(tmp_path):
    path = tmp_path / "two.npz"
    rng = np.random.default_rng(0)
    np.savez(path, **{"enc.weight_ih_l0": rng.normal(size=(16, 3)), "enc.weight_hh_l0": rng.normal(size=(16, 4)),
                      "dec.weight_ih_l0": rng.normal(size=(12, 3)), "dec.weight_hh_l0": rng.normal(size=(12, 4))})
    _refused(["numeric", "--params", str(path), "--cell", "lstm"], "--prefix", "'dec', 'enc'")
    assert json.loads(_ok(["numeric", "--params", str(path), "--cell", "gru", "--prefix", "dec", "--json",
                           "--mode", "reverse", "--steps", "3"]))["hidden"] == 4
    _refused(["numeric", "--params", str(path), "--cell", "gru", "--prefix", "mid"], "--prefix", "no RNN weights")


def test_a_bfloat16_safetensors_file_is_widened_exactly(tmp_path):
    import struct
    rng = np.random.default_rng(0)
    arrays = {"weight_ih_l0": rng.normal(size=(3, 2)).astype(np.float32),
              "weight_hh_l0": rng.normal(size=(3, 3)).astype(np.float32)}
    header, blob = {}, b""
    for key, value in arrays.items():
        raw = (value.view(np.uint32) >> 16).astype("<u2").tobytes()
        header[key] = {"dtype": "BF16", "shape": list(value.shape), "data_offsets": [len(blob), len(blob) + len(raw)]}
        blob += raw
    text = json.dumps(header).encode()
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + blob)
    from numeric.io.arrayfiles import read_tensors
    got = read_tensors(str(path))
    truncated = (arrays["weight_hh_l0"].view(np.uint32) & 0xFFFF0000).view(np.float32)
    np.testing.assert_array_equal(got["weight_hh_l0"], truncated)
    assert json.loads(_ok(["numeric", "--params", str(path), "--steps", "3", "--json", "--mode", "reverse"]))["hidden"] == 3


def test_a_pickled_model_and_a_damaged_pt_say_what_to_do(tmp_path):
    torch = pytest.importorskip("torch")
    whole = tmp_path / "model.pt"
    torch.save(torch.nn.LSTM(2, 3), whole)
    _refused(["numeric", "--params", str(whole), "--cell", "lstm"], "model.state_dict()", "nothing in it was run")
    damaged = tmp_path / "damaged.pt"
    torch.save(torch.nn.LSTM(2, 3).state_dict(), damaged)
    damaged.write_bytes(damaged.read_bytes()[:100])
    _refused(["numeric", "--params", str(damaged), "--cell", "lstm"], "damaged, cut short or not written by torch.save")


def test_review_fixes_prefix_gate_init_and_neutral_rates(tmp_path):
    """--prefix on a file of our names is refused; derive checks --gate-init for every cell; a rate that
    moves the derivative by less than 0.1 decade over the horizon is neutral; the table shows the weights."""
    path = tmp_path / "ours.json"
    path.write_text('{"W_hh": 0.5, "W_xh": 1, "b_h": 0}')
    _refused(["numeric", "--params", str(path), "--prefix", "encoder"], "--prefix", "Unrolled's names")
    _refused(["derive", "--cell", "rnn", "--gate-init", "bogus"], "--gate-init")
    assert "regime: neutral (measured)" in _ok(["numeric", "--cell", "lstm", "--hidden", "8", "--gate-init", "chrono"])
    rnn = tmp_path / "rnn.npz"
    _torch_rnn(rnn, n=2, m=1)
    table = _ok(["numeric", "--params", str(rnn), "--steps", "5"])
    assert "weights: " in table and "nn.RNN's default" in table
    assert "set w to decide" not in _ok(["derive", "--activation", "tanh", "--set", "w=2"])


def test_the_library_speaks_values_not_options():
    """Every error the library raises names its field and what is allowed; only cli.py knows option names
    (a string like '--steps' in a raised message would be wrong for the Python API)."""
    import ast
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    errors = {"InvalidValue", "UnrolledError", "NonFinite", "_refuse"}
    found = []
    for package in ("derive", "numeric", "reports"):
        for path in (root / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                        getattr(node.exc.func, "id", getattr(node.exc.func, "attr", "")) in errors:
                    found += [f"{path.name}:{node.lineno}" for sub in ast.walk(node.exc)
                              if isinstance(sub, ast.Constant) and isinstance(sub.value, str)
                              and re.search(r"(?<![\w-])--[a-z]", sub.value)]
    assert found == []


def test_no_library_text_names_an_option():
    """Beyond errors: no text derive or numeric writes names a CLI option (the CLI passes its names in
    where a hint needs one, as ``trainview.header(settings, "--gate-init")``).  Docstrings may, and the
    C compiler's own flags are not ours."""
    import ast
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    found = []
    for package in ("derive", "numeric"):
        for path in (root / package).rglob("*.py"):
            if path.name == "build.py" and path.parent.name == "native":
                continue  # gcc's --version and --param
            tree = ast.parse(path.read_text())
            docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                          if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                          and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
            found += [f"{path.relative_to(root)}:{node.lineno}: {node.value[:60]!r}" for node in ast.walk(tree)
                      if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
                      and re.search(r"(?<![\w-])--[a-z]", node.value)]
    assert found == []
