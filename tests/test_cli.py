"""The derive command: the lecture's story, JSON for every cell, and one-line errors."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from cli import app
from derive.cells import CELLS

runner = CliRunner()

JSON_KEYS = {"cell", "steps", "wrt", "step_equations", "jacobian_step", "closed_form", "latex",
             "value", "log10_abs", "sign", "regime", "evaluations", "notes"}


def test_default_story_prints_the_lecture_numbers():
    result = runner.invoke(app, ["derive", "--steps", "50"])
    assert result.exit_code == 0, result.output
    for expected in ("w^50", "1125899906842624", "8.881784197001252e-16", "exploding possible", "vanishing"):
        assert expected in result.output


@pytest.mark.parametrize("cell,variant", [(c, v) for c, d in CELLS.items() for v in d.variants])
def test_json_for_every_cell(cell, variant):
    result = runner.invoke(app, ["derive", "--steps", "50", "--format", "json", "--cell", cell, "--variant", variant])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert JSON_KEYS <= set(data) and data["cell"] == cell and data["steps"] == 50


def test_json_value_for_the_story():
    data = json.loads(runner.invoke(app, ["derive", "--format", "json", "--set", "W_hh=2"]).output)
    assert (data["value"], data["sign"], data["closed_form"]["at_steps"]) == (1125899906842624, 1, "w^50")
    assert data["regime"]["verdict"] == "exploding (measured)"  # the linear RNN at w = 2 grows as 2^T
    assert data["regime"]["measured_log10_rate"] == pytest.approx(math.log10(2))


def test_latex_output():
    result = runner.invoke(app, ["derive", "--format", "latex", "--activation", "tanh"])
    assert result.exit_code == 0, result.output
    assert r"\begin{align*}" in result.output and r"\prod_{t=k + 1}^{T}" in result.output


def test_bptt_with_truncation():
    result = runner.invoke(app, ["derive", "--wrt", "w", "--truncate", "5", "--set", "w=0.9", "--set", "u=1", "--set", "b_h=0", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["closed_form"]["expr"].startswith("Σ_{k=max(1, T - 4)}")
    # ∂h_50/∂w over the last 5 steps, x_t = 1, h_0 = 0: Σ_{k=46}^{50} w^(50-k) h_{k-1}, h_j = Σ_{i<j} w^i.
    from fractions import Fraction
    w = Fraction(9, 10)
    h = lambda j: sum(w**i for i in range(j))
    assert Fraction(data["value"]) == sum(w ** (50 - k) * h(k - 1) for k in range(46, 51))  # exact: rational stepping


def test_a_million_steps_never_expands_the_product():
    """At T = 10^6: the linear RNN's value from its closed form against mpmath; the LSTM's carousel
    product stays a product, and the notes say why it is not stepped."""
    import mpmath
    data = json.loads(runner.invoke(app, ["derive", "--steps", "1000000", "--set", "w=-0.5", "--format", "json"]).output)
    with mpmath.workdps(40):
        expected = float(10**6 * mpmath.log10(mpmath.mpf("0.5")))
    assert data["log10_abs"] == pytest.approx(expected, rel=1e-15) and data["sign"] == 1
    result = runner.invoke(app, ["derive", "--cell", "lstm", "--wrt", "c", "--steps", "1000000", "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["closed_form"]["at_steps"] == "∏_{t=1}^{1000000} (f_t)"
    assert any("T <= 10000" in note or "--set" in note for note in data["notes"])


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("unrolled ")


@pytest.mark.parametrize("fmt", ["text", "latex", "json"])
@pytest.mark.parametrize("hidden", ["1", "4"])
def test_a_path_only_form_says_so_in_the_formula(fmt, hidden):
    """∂c_T/∂c_k = ∏ f_t holds along the c path alone; every rendering marks it on the ∂ itself."""
    result = runner.invoke(app, ["derive", "--cell", "lstm", "--wrt", "c", "--steps", "10", "--hidden", hidden,
                                 "--format", fmt])
    assert result.exit_code == 0, result.output
    if fmt != "json":
        assert {"latex": r"\right|_{c\text{ path only}} &="}.get(fmt, "|_(c path only) =") in result.output
    else:
        data = json.loads(result.output)
        forms = data["path_products"] if hidden == "4" else [data["closed_form"]]
        assert all(f["name"].endswith("|_(c path only)") and "alone" in f["scope"] for f in forms)



@pytest.mark.parametrize("command", ["derive", "numeric", "check", "train", "sweep", "report"])
def test_every_help_ends_with_examples(command):
    text = runner.invoke(app, [command, "--help"]).output
    tail = text[text.index("Examples:"):].splitlines()[1:]
    assert len(tail) >= 2 and all(line.strip().startswith("python cli.py ") for line in tail if line.strip())


def test_numeric_says_which_mode_ran_for_a_grid():
    result = runner.invoke(app, ["numeric", "--grid", "W_hh=0:1:3", "--steps", "5"])
    assert result.exit_code == 0 and "(mode reverse: BPTT)" in result.output.splitlines()[1], result.output


@pytest.mark.parametrize("suffix,magic", [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_derive_graph_draws_the_cell_unrolled(tmp_path, suffix, magic):
    out = tmp_path / f"lstm.{suffix}"
    result = runner.invoke(app, ["derive", "--cell", "lstm", "--steps", "50", "--graph", str(out)])
    assert result.exit_code == 0, result.output
    first = out.read_bytes()
    assert first.startswith(magic)
    assert runner.invoke(app, ["derive", "--cell", "lstm", "--steps", "50", "--graph", str(out), "--force"]).exit_code == 0
    assert out.read_bytes() == first  # no dates or random ids: byte-identical


def test_derive_graph_refuses_an_unknown_suffix(tmp_path):
    result = runner.invoke(app, ["derive", "--graph", str(tmp_path / "x.gif")])
    assert result.exit_code == 2 and "--graph" in result.output and list(tmp_path.iterdir()) == []


def test_the_unrolled_picture_comes_from_the_cells_definition(tmp_path, monkeypatch):
    """A custom cell is drawn with its own quantities, by a function that returns a Figure and writes nothing."""
    from matplotlib.figure import Figure

    from derive.custom import cell_definition
    from numeric.studies import unrolled
    from reports.figures import unrolled as draw
    monkeypatch.chdir(tmp_path)
    picture = unrolled(cell_definition("custom", ("c = sigmoid(a*h + 1)*c + tanh(d*x)", "h = tanh(c)")), 9)
    assert picture.quantities == ("c", "h") and picture.steps == (1, 2, 3, None, 9)
    assert set(picture.log10_jacobian) == {1, 2, 3, 9}
    fig = draw(picture)
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert isinstance(fig, Figure) and {"c_9", "h_9", "x_1", "⋯"} <= texts and list(tmp_path.iterdir()) == []


def test_the_python_api_and_its_rich_display(tmp_path, monkeypatch):
    """derive.solve, numeric.gradients and reports.figure: what the CLI calls, with Jupyter reprs."""
    from matplotlib.figure import Figure

    from derive import solve
    from numeric import gradients
    from reports import figure
    monkeypatch.chdir(tmp_path)
    latex = solve("lstm", steps=5, wrt="c")._repr_latex_()
    assert latex.startswith(r"\begin{align*}") and r"\right|_{c\text{ path only}}" in latex
    html = gradients(cell="gru", hidden=3, batch=2, steps=6)._repr_html_()
    assert html.startswith("<table>") and "gru" in html and "‖∂L/∂W_hr‖" in html
    assert "mode</th><td style='text-align:left'>reverse" in gradients(grid=("W_hh=0:1:3",), steps=5)._repr_html_()
    assert isinstance(figure("unrolled", steps=8), Figure) and list(tmp_path.iterdir()) == []
