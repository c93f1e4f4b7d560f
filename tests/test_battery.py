"""Bad input, across every command: one line naming what is wrong, the right exit code, no file."""

from __future__ import annotations

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from cli import app

runner = CliRunner()

# (arguments, exit code, text the one line must contain); {tmp} is a fresh empty folder.
BATTERY = [
    (["derive", "--steps", "0"], 2, "--steps"),
    (["derive", "--steps", "abc"], 2, "--steps"),
    (["derive", "--steps", "2.5"], 2, "--steps"),
    (["derive", "--cell", "cnn"], 2, "--cell"),
    (["derive", "--activation", "gelu"], 2, "--activation"),
    (["derive", "--cell", "lstm", "--variant", "gated"], 2, "--variant"),
    (["derive", "--cell", "lstm", "--activation", "tanh"], 2, "--activation"),
    (["derive", "--wrt", "q"], 2, "--wrt"),
    (["derive", "--set", "w"], 2, "--set"),
    (["derive", "--set", "w=nan"], 2, "--set"),
    (["derive", "--set", "w=inf"], 2, "--set"),
    (["derive", "--set", "w=-Infinity"], 2, "--set"),
    (["derive", "--set", "w=1e999"], 2, "--set"),
    (["derive", "--set", "v=1"], 2, "--set"),
    (["derive", "--set", "w=1/0"], 2, "--set"),
    (["derive", "--hidden", "2", "--set", "W_hh=[1,2]"], 2, "--set"),
    (["derive", "--hidden", "2", "--set", "W_hh=[[1,2],[3,NaN]]"], 2, "--set"),
    (["derive", "--hidden", "0"], 2, "--hidden"),
    (["derive", "--hidden", "5000"], 2, "--hidden"),
    (["derive", "--truncate", "3"], 2, "--truncate"),
    (["derive", "--inputs", "1,2"], 2, "--inputs"),
    (["derive", "--cell", "statquest", "--set", "b_f=1"], 2, "--set"),
    (["derive", "--cell", "statquest", "--hidden", "2"], 2, "--hidden"),
    (["derive", "--c0", "1"], 2, "--c0"),
    (["derive", "--format", "xml"], 2, "--format"),
    (["derive", "--bogus"], 2, "--bogus"),
    (["derive", "--cell", "custom"], 2, "--formula"),
    (["derive", "--formula", "tanh(h)"], 2, "--formula"),
    (["derive", "--cell", "custom", "--formula", "9**9**9"], 2, "exponent"),
    (["derive", "--cell", "custom", "--formula", "__import__('os').system('touch x')"], 2, "not allowed"),
    (["derive", "--cell", "custom", "--formula", "h.__class__"], 2, "attribute access"),
    (["derive", "--cell", "custom", "--formula", "tanh(h)", "--hidden", "2"], 2, "--hidden"),
    (["derive", "--cell", "custom", "--formula", "h = tanh(h)", "--formula", "h = h"], 2, "twice"),
    (["numeric", "--cell", "cnn"], 2, "--cell"),
    (["numeric", "--grid", "W_hh=0:1:0"], 2, "--grid"),
    (["numeric", "--grid", "q=0:1:3"], 2, "--grid"),
    (["numeric", "--grid", "W_hh=0:1"], 2, "--grid"),
    (["numeric", "--grid", "W_hh=0:nan:3"], 2, "--grid"),
    (["numeric", "--inputs", "1,x"], 2, "--inputs"),
    (["numeric", "--steps", "3", "--inputs", "1,2"], 2, "--inputs"),
    (["numeric", "--params", "{tmp}/missing.json"], 2, "--params"),
    (["numeric", "--inputs-file", "{tmp}/missing.json"], 2, "--inputs-file"),
    (["numeric", "--c0", "1"], 2, "--c0"),
    (["numeric", "--hidden", "5000"], 2, "--hidden"),
    (["numeric", "--hidden", "4096", "--batch", "4096", "--steps", "1000"], 2, "GiB"),
    (["numeric", "--steps", "1000001"], 2, "--steps"),
    (["numeric", "--inputs-file", "/dev/zero"], 2, "character device"),
    (["numeric", "--batch", "0"], 2, "--batch"),
    (["numeric", "--torch-names"], 2, "--out"),
    (["numeric", "--mode", "sideways"], 2, "--mode"),
    (["numeric", "--out", "{tmp}/no/such/folder/x.npz"], 2, "--out"),
    (["numeric", "--truncate", "2", "--mode", "forward"], 2, "--truncate"),
    (["numeric", "--cell", "custom", "--formula", "lambda: 1"], 2, "lambdas"),
    (["numeric", "--mode", "reverse", "--steps", "90000", "--grid", "W_hh=0:1:8192"], 2, "forward mode"),
    (["numeric", "--mode", "reverse", "--steps", "900000", "--grid", "W_hh=0:1:8192"], 2, "would take about"),
    (["numeric", "--steps", "1000000", "--mode", "forward"], 2, "would take about"),
    (["numeric", "--grid", "W_hh=0:1:10000000", "--steps", "1000"], 2, "would take about"),
    (["numeric", "--cell", "lstm", "--hidden", "8", "--grid", "b_f=0:1:1000000", "--steps", "100"], 2,
     "would take about"),
    (["check", "--cell", "cnn"], 2, "--cell"),
    (["check", "--cell", "rnn", "--steps", "0"], 2, "--steps"),
    (["report", "--out", "{tmp}", "--only", "nope"], 2, "--only"),
    (["report", "--out", "{tmp}", "--format", "svg"], 2, "--format"),
    (["report", "--out", "{tmp}", "--steps", "1"], 2, "--steps"),
    (["report", "--out", "{tmp}", "--dpi", "5"], 2, "--dpi"),
    (["report", "--out", "{tmp}/../big.json/folder"], 2, "is not a folder"),
    (["nosuchcommand"], 2, "nosuchcommand"),
    # Formulas: names that read as something else, and forms that are never finite.
    (["derive", "--cell", "custom", "--formula", "lambda*h"], 2, "Python keyword"),
    (["derive", "--cell", "custom", "--formula", "\uff57*h"], 2, "not plain ASCII"),
    (["derive", "--cell", "custom", "--formula", "\uff54\uff41\uff4e\uff48(h)"], 2, "not plain ASCII"),
    (["derive", "--cell", "custom", "--formula", "\uff48 = w*h"], 2, "not plain ASCII"),
    (["derive", "--cell", "custom", "--formula", "T*h"], 2, "step symbol"),
    (["derive", "--cell", "custom", "--formula", "k*h + t"], 2, "step symbol"),
    (["derive", "--cell", "custom", "--formula", "x_t*h"], 2, "per-step value"),
    (["derive", "--cell", "custom", "--formula", "h_t + w*h"], 2, "per-step value"),
    (["numeric", "--cell", "custom", "--formula", "h_0 + w*h"], 2, "per-step value"),
    (["check", "--cell", "custom", "--formula", "c = c_1 + w*c"], 2, "per-step value"),
    (["derive", "--cell", "custom", "--formula", "w/(h-h)"], 2, "division by zero"),
    (["numeric", "--cell", "custom", "--formula", "w*h/0"], 2, "division by zero"),
    (["derive", "--cell", "custom", "--formula", "pi = h"], 2, "cannot be defined"),
    (["derive", "--cell", "custom", "--formula", "tanh(h)", "--set", "w=1"], 2, "allowed: none"),
    # Values that leave the reals during a run: exit 1, the step named, never "internal error".
    (["derive", "--cell", "custom", "--formula", "log(h)", "--steps", "3"], 1, "h_1 is -inf at step 1"),
    (["derive", "--cell", "custom", "--formula", "sqrt(h - 1)", "--steps", "3"], 1, "at step 1"),
    (["derive", "--cell", "custom", "--formula", "w/h", "--set", "w=1", "--steps", "3"], 1, "division by zero"),
    (["numeric", "--cell", "custom", "--formula", "log(h)", "--steps", "3"], 1, "h_1 is -inf at step 1"),
    (["numeric", "--cell", "custom", "--formula", "sqrt(h - 1) + w", "--steps", "3", "--mode", "reverse"], 1,
     "h_1 is nan at step 1"),
    (["numeric", "--cell", "custom", "--formula", "w/h", "--steps", "3", "--mode", "forward"], 1, "h_1 is inf"),
    (["numeric", "--cell", "custom", "--formula", "w/h", "--steps", "3", "--mode", "native"], 1, "h_1 is inf"),
    (["numeric", "--params", "{tmp}/../big.json", "--steps", "3"], 1, "h_2 is inf at step 2"),
    (["check", "--cell", "custom", "--formula", "log(h)", "--steps", "5"], 1, "not a finite real number"),
    (["numeric", "--steps", "3", "--out", ""], 2, "--out: is empty"),
    (["derive", "--steps", "20000", "--inputs", "abc"], 2, "--inputs"),
    (["derive", "--set", "w=" + "1" * 5000], 2, "at most 100"),
    (["derive", "--hidden", "2", "--set", "W_hh=" + "[" * 5000 + "]" * 5000], 2, "nested 5000 deep"),
    (["numeric", "--inputs", "[" * 5000 + "]" * 5000], 2, "nested 5000 deep"),
    (["derive", "--cell", "custom", "--formula", "tanh(" * 7 + "w*h" + ")" * 7], 2, "nested 7 deep"),
    (["derive", "--cell", "custom", "--formula", "exp(exp(exp(exp(exp(h)))))*w", "--set", "w=1", "--steps", "5"],
     1, "at step 2"),
]


@pytest.mark.parametrize("args,code,text", BATTERY, ids=[" ".join(a) for a, _, _ in BATTERY])
def test_bad_input(tmp_path, monkeypatch, args, code, text):
    # A linear RNN whose second state overflows float64 (1e300 · 1e300), outside the watched folder.
    (tmp_path.parent / "big.json").write_text('{"W_hh": [[1e300]], "W_xh": [[1e300]], "b_h": [0]}')
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in args])
    lines = result.output.strip().splitlines()
    assert result.exit_code == code, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: ") and text in lines[0], result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content,message", [
    ("{", "not valid JSON"), ('{"W_hh": [[1, 2]], "W_xh": 1, "b_h": 0}', "W_hh has shape"),
    ('{"zz": 1}', "no parameter"), ('{"W_hh": NaN}', "not a finite number"), ('[1, 2]', "not an object"),
    ('{"W_hh": 1}', "missing"), ('{"W_hh": 1, "W_hh": 2}', "appears twice"), ('{"W_hh": 1e999}', "1e999"),
    ('{"W_hh": "2", "W_xh": 1, "b_h": 0}', "not a number"),
])
def test_bad_params_files(tmp_path, content, message):
    path = tmp_path / "p.json"
    path.write_text(content)
    result = runner.invoke(app, ["numeric", "--params", str(path)])
    assert result.exit_code == 2 and message in result.output, result.output
    assert [p.name for p in tmp_path.iterdir()] == ["p.json"]


def test_existing_output_needs_force(tmp_path):
    out = tmp_path / "a.npz"
    out.write_bytes(b"keep")
    result = runner.invoke(app, ["numeric", "--steps", "3", "--out", str(out)])
    assert result.exit_code == 2 and "--force" in result.output
    assert out.read_bytes() == b"keep"
    assert runner.invoke(app, ["numeric", "--steps", "3", "--out", str(out), "--force"]).exit_code == 0
    assert out.read_bytes()[:2] == b"PK"


def test_unexpected_error_is_one_line_exit_1_and_debug_shows_it(monkeypatch):
    import numeric.present.derivation

    def broken(*args, **kwargs):
        raise RuntimeError("simulated")

    monkeypatch.setattr(numeric.present.derivation, "solve", broken)
    result = runner.invoke(app, ["derive"])
    assert result.exit_code == 1 and result.output.strip() == "Error: internal error, RuntimeError: simulated (--debug shows where)"
    debug = runner.invoke(app, ["--debug", "derive"])
    assert debug.exit_code == 1 and isinstance(debug.exception, RuntimeError)


def test_ctrl_c_exits_130(monkeypatch):
    import numeric.present.derivation

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(numeric.present.derivation, "solve", interrupted)
    assert runner.invoke(app, ["derive"]).exit_code == 130


SPECIAL_TARGETS = {
    "numeric": ("out.npz", ["numeric", "--steps", "3", "--out", "{path}", "--force"]),
    "report": ("clipping.png", ["report", "--out", "{folder}", "--only", "clipping", "--format", "png", "--force"]),
}


@pytest.mark.parametrize("kind", ["fifo", "folder"])
@pytest.mark.parametrize("command", SPECIAL_TARGETS)
def test_force_never_replaces_what_is_not_a_regular_file(tmp_path, command, kind):
    # a FIFO stands in for a device node such as /dev/null, which a failing test must not destroy
    name, args = SPECIAL_TARGETS[command]
    path = tmp_path / name
    os.mkfifo(path) if kind == "fifo" else path.mkdir()
    before = stat.S_IFMT(path.lstat().st_mode)
    result = runner.invoke(app, [a.format(path=path, folder=tmp_path) for a in args])
    assert result.exit_code == 2 and "not a regular file" in result.output, result.output
    assert stat.S_IFMT(path.lstat().st_mode) == before
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_force_replaces_a_symlink_itself_not_its_target(tmp_path):
    target, link = tmp_path / "target.npz", tmp_path / "link.npz"
    target.write_bytes(b"keep")
    link.symlink_to(target)
    result = runner.invoke(app, ["numeric", "--steps", "3", "--out", str(link), "--force"])
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == b"keep"
    assert not link.is_symlink() and link.read_bytes()[:2] == b"PK"


@pytest.mark.parametrize("args,text", [
    (["numeric", "--grid", "w=0:1:3", "--grid", "w=0:2:2"], "swept twice"),
    (["numeric", "--seed", "-1"], "--seed"),
    (["numeric", "--hidden", "0"], "--hidden"),
    (["numeric", "--truncate", "3", "--every-step", "--mode", "reverse"], "--truncate"),
    (["numeric", "--truncate", "3", "--every-step"], "--truncate"),
    (["numeric", "--cell", "custom", "--formula", "h = tanh(w*h + x)", "--hidden", "2"], "--hidden: custom is a one-unit"),
    (["numeric", "--batch", "4", "--grid", "w=0:1:3"], "--batch"),
    (["numeric", "--cell", "statquest", "--grid", "w=0:1:3"], "no parameters to sweep"),
    (["numeric", "--cell", "lstm", "--steps", "1000000"], "would take about"),
    (["derive", "--hidden", "4", "--steps", "-3"], "--steps"),
])
def test_found_in_review_one_line_exit_2(args, text):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and text in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_adjoint_and_jacobian_norms_neither_underflow_nor_overflow(tmp_path):
    """10^-200 is printed as such, not 0 (the norms are taken in the log domain)."""
    path = tmp_path / "p.json"
    path.write_text('{"W_xh": 1, "W_hh": 0.1, "b_h": 0}')
    result = runner.invoke(app, ["numeric", "--params", str(path), "--steps", "400"])
    assert "k=200: 10^-200.000" in result.output and "k=400: 10^-400.000" in result.output


def test_every_step_loss_is_named():
    result = runner.invoke(app, ["numeric", "--cell", "custom", "--formula", "c = tanh(w*c + x)", "--steps", "5",
                                 "--every-step"])
    assert result.exit_code == 0 and "L = Σ_t Σ_i c_t[i]" in result.output


@pytest.mark.parametrize("mode", ["reverse", "forward"])
def test_json_jacobian_that_underflows_is_null_with_its_mantissa_and_scale(tmp_path, mode):
    path = tmp_path / "p.json"
    path.write_text('{"W_xh": 1, "W_hh": 0.001, "b_h": 0}')
    data = json.loads(runner.invoke(app, ["numeric", "--params", str(path), "--steps", "120", "--json",
                                          "--mode", mode]).output)
    assert data["jacobian"] is None and data["jacobian_mantissa"] == [[1.0]]
    assert data["jacobian_log10_scale"] == pytest.approx(-360.0, abs=1e-9)
