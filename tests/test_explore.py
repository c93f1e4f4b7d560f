"""The explorer page: generated from the derivation, self-contained, and its live numbers right.

The numbers are read back from the page as a real browser leaves it: headless Chromium runs the
generated file with settings in its URL fragment and dumps the DOM.  They are compared with
independent computations: exact powers, derive (SymPy and mpmath) and numeric (NumPy BPTT).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from derive import solve
from derive.cells import CELLS
from derive.errors import InvalidValue
from numeric import gradients
from reports.explorer import page
from reports.explorer.lessons import choices, lesson

ROOT = Path(__file__).resolve().parents[1]
CUSTOM = "tanh(w*h + u*x + b)"
BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """The default page (T up to 200), one with T up to 5000, and a custom cell's page."""
    folder = tmp_path_factory.mktemp("explorer")
    made = {"default": page(), "long": page(steps=5000), "custom": page(cell="custom", formulas=(CUSTOM,))}
    for name, data in made.items():
        (folder / f"{name}.html").write_bytes(data)
    return {name: folder / f"{name}.html" for name in made}


# --- The file itself --------------------------------------------------------------------------------


def test_same_options_give_the_same_bytes_in_fresh_processes(tmp_path):
    """Byte-identical output: two processes with different hash seeds write the same file."""
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"page{seed}.html"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "cli.py", "explore", "--cell", "lstm", "--out", str(out)],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_the_file_references_nothing_outside_itself(pages):
    for path in pages.values():
        text = path.read_text(encoding="utf-8")
        for pattern in ("http://", "https://", "//cdn", "<link", " src=", "@import", "url("):
            assert pattern not in text, (path.name, pattern)
        assert len(path.read_bytes()) < 1.5e6


def test_only_its_own_scripts_can_run(pages):
    """Three script elements (data, generated cells, runtime); the CSP names the two that run by hash;
    no inline event handler anywhere."""
    text = pages["custom"].read_text(encoding="utf-8")
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", text, flags=re.S)
    assert [attrs for attrs, _ in scripts] == [' type="application/json" id="data"', "", ""]
    hashes = ["'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
              for attrs, body in scripts if not attrs]
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', text).group(1)
    assert policy == f"default-src 'none'; script-src {' '.join(hashes)}; style-src 'unsafe-inline'"
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", text)


@pytest.mark.parametrize("formula", ["</script><script>alert(1)</script>", "h = <img src=x onerror=alert(1)>",
                                     "h = tanh(w*h) </script>", "h = x; alert(1)"])
def test_a_hostile_formula_is_refused_by_the_parser(formula):
    with pytest.raises(InvalidValue) as error:
        page(cell="custom", formulas=(formula,))
    assert error.value.field == "formula"


def test_a_custom_cell_reaches_the_code_only_as_slots(pages):
    """The generated JavaScript reads p[j], s[j], q[j] and x: no name the user typed."""
    text = pages["custom"].read_text(encoding="utf-8")
    cells = re.findall(r"<script>(const CELLS = .*?)</script>", text, flags=re.S)[0]
    custom = cells[cells.index('"custom":'):]
    code = custom[:custom.index("\n}")]
    names = set(re.findall(r"(?<![.\w])[A-Za-z_]\w*", code.replace('"custom"', "")))
    allowed = {"step", "jacobian", "partials", "p", "s", "x", "q", "const", "new", "Array", "return", "Math",
               "sigmoid", "relu", "heaviside"}
    assert names - allowed <= {f"v{j}" for j in range(100)}, names - allowed


def test_a_symbol_without_a_slot_fails_before_any_code_exists():
    from derive.cell import make_cell
    from derive.javascript import _body, slots

    cell = make_cell(CELLS["rnn"], activation="tanh")
    stray = sp.Symbol("z")
    with pytest.raises(ValueError, match="z is missing from the argument sequences"):
        _body(slots(cell), [sp.tanh(stray) + cell.x[0]], lambda texts: texts[0])
    with pytest.raises(ValueError, match="one-unit cells"):
        slots(make_cell(CELLS["rnn"], n=2))


def test_the_derivation_is_mathml_of_derives_expressions(pages):
    text = pages["default"].read_text(encoding="utf-8")
    rnn = re.search(r'<section class="derivation" data-cell="rnn/linear" hidden>(.*?)</section>', text, re.S).group(1)
    # h_t = b_h + h_{t-1} w + u x_t, and the closed form w^(T−k), as SymPy's MathML printer lays them out
    assert "<msub><mi>h</mi><mrow><mi>t</mi><mo>&#8722;</mo><mn>1</mn></mrow></msub>" in rnn
    assert "<msup><mi>w</mi><mrow><mi>T</mi><mo>&#8722;</mo><mi>k</mi></mrow></msup>" in rnn
    assert rnn.count("<math display=\"block\">") == 4  # the step, J_t, the chain rule, the closed form
    assert not any("{" in block for block in re.findall(r"<math.*?</math>", rnn))  # no h_{t-1} left over


# --- In the browser -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("UNROLLED_REQUIRE_BROWSER"):
            pytest.fail("chromium is required (UNROLLED_REQUIRE_BROWSER is set) and not installed")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return found


class _Elements(HTMLParser):
    """Every element with an id (or a data-param), and the body: its attributes and its text."""

    def __init__(self):
        super().__init__()
        self.found, self.open, self.labels = {}, [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "label" and "for" in attrs:
            self.labels.add(attrs["for"])
        name = attrs.get("id") or (attrs.get("data-param") and f"param:{attrs['data-param']}") or \
            (tag == "body" and "body")
        entry = {"attrs": attrs, "text": ""}
        if name:
            self.found[name] = entry
        if tag not in ("input", "meta", "br", "path", "line", "rect"):
            self.open.append(entry)

    def handle_endtag(self, tag):
        if self.open:
            self.open.pop()

    def handle_data(self, data):
        for entry in self.open:
            entry["text"] += data


def shown(browser: str, path: Path, fragment: str, tmp_path: Path) -> dict:
    """The page's elements after its scripts ran at ``path#fragment``."""
    done = subprocess.run([browser, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           f"{path.as_uri()}#{fragment}"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    parser = _Elements()
    parser.feed(done.stdout)
    # Chromium dumps whatever is there after about 5 s: a page that hangs is caught by this, not by a timeout.
    assert parser.found["body"]["attrs"].get("data-ready") == "1", f"the page did not finish at #{fragment}"
    return parser.found | {"labelled": parser.labels}


def test_w_2_over_50_steps_is_2_to_the_50_exactly(browser, pages, tmp_path):
    dom = shown(browser, pages["default"], "cell=rnn&w=2&T=50", tmp_path)
    assert dom["dh-value"]["attrs"]["data-value"] == "1125899906842624"
    assert dom["dh-value"]["text"].startswith("1125899906842624")
    assert dom["regime"]["attrs"]["data-verdict"] == "exploding (measured)"
    assert "w=2" in dom["link"]["attrs"]["href"] and "T=50" in dom["link"]["attrs"]["href"]


def test_w_half_over_50_steps_is_half_to_the_50_exactly(browser, pages, tmp_path):
    dom = shown(browser, pages["default"], "cell=rnn&w=0.5&T=50", tmp_path)
    assert dom["dh-value"]["attrs"]["data-value"] == "8.881784197001252e-16" == repr(0.5 ** 50)
    assert dom["regime"]["attrs"]["data-verdict"] == "vanishing (measured)"


def test_beyond_floating_point_the_page_shows_the_power_of_ten(browser, pages, tmp_path):
    dom = shown(browser, pages["long"], "cell=rnn&w=2&T=2000", tmp_path)
    assert "data-value" not in dom["dh-value"]["attrs"]  # 2^2000 is no double
    assert float(dom["dh-value"]["attrs"]["data-log10"]) == pytest.approx(2000 * np.log10(2), rel=1e-13)
    assert "10^602.06" in dom["dh-value"]["text"] and "Infinity" not in dom["dh-value"]["text"]


def test_tanh_saturates_as_derive_says(browser, pages, tmp_path):
    """The regime verdict and rate of the page against derive's (Python, mpmath) at the same setting."""
    dom = shown(browser, pages["default"], "cell=rnn&activation=tanh&w=2&u=1&b_h=0&T=50", tmp_path)
    d = solve("rnn", activation="tanh", steps=50, settings=("w=2", "u=1", "b_h=0"))
    assert dom["regime"]["attrs"]["data-verdict"] == d.evaluations[0].regime.verdict == "vanishing (measured)"
    assert float(dom["dh-value"]["attrs"]["data-log10"]) == pytest.approx(d.evaluations[0].entries[0].log10_abs, rel=1e-12)


LESSONS = [lesson(d, v, a) for d in CELLS.values() for v, a in choices(d)]


@pytest.mark.parametrize("data", LESSONS, ids=[d["key"] for d in LESSONS])
def test_every_cell_on_the_page_matches_numeric(browser, pages, tmp_path, data):
    """∂h_T/∂h_0, ‖∂s_T/∂s_0‖₂, the states at T and every ∂h_T/∂θ (BPTT) against numeric to 1e-12
    relative, at the page's weights with one moved (an LSTM's b_f as the issue asks)."""
    values = {q["key"]: q["value"] for q in data["params"]}
    moved = "b_f" if "b_f" in values else next(iter(values), None)
    fragment = f"cell={data['cell']}&T=40&x=0.3,-0.2,0.7"
    fragment += "".join(f"&{k}={data[k]}" for k in ("variant", "activation") if data[k])
    if moved:
        values[moved] = 1.5
        fragment += f"&{moved}=1.5"
    dom = shown(browser, pages["default"], fragment, tmp_path)
    weights = {k: np.full((1, 1) if k.startswith("W") else (1,), v) for k, v in values.items()}
    r = gradients(weights or None, inputs=np.array([0.3, -0.2] + [0.7] * 38)[:, None], cell=data["cell"],
                  variant=data["variant"], activation=data["activation"])
    out = data["output"]
    jacobian = r.jacobian.mantissa[out, out] * 10.0 ** r.jacobian.log10_scale
    assert float(dom["dh-value"]["attrs"]["data-value"]) == pytest.approx(jacobian, rel=1e-12)
    sigma1 = np.linalg.svd(r.jacobian.mantissa, compute_uv=False)[0]
    assert float(dom["norm-value"]["attrs"]["data-log10"]) == pytest.approx(
        np.log10(sigma1) + r.jacobian.log10_scale, rel=1e-12, abs=1e-13)
    finals = {e["attrs"]["data-name"]: float(e["attrs"]["data-value"]) for k, e in dom.items() if k.startswith("final-")}
    for state in data["states"]:
        assert finals[state] == pytest.approx(r.states[state][-1, 0, 0], rel=1e-12), state
    assert len(r.grads) == len(data["params"])
    for name, grad in r.grads.items():
        assert float(dom[f"param:{name}"]["attrs"]["data-value"]) == pytest.approx(grad.item(), rel=1e-12), name


def test_a_custom_formulas_page_matches_derive(browser, pages, tmp_path):
    dom = shown(browser, pages["custom"], "cell=custom&w=0.9&u=1&b=0.1&T=30&x=0.5", tmp_path)
    d = solve("custom", formulas=(CUSTOM,), steps=30, settings=("w=0.9", "u=1", "b=0.1"), inputs="0.5")
    assert float(dom["dh-value"]["attrs"]["data-value"]) == pytest.approx(float(d.evaluations[0].entries[0].high), rel=1e-12)


def test_company_a_and_b_end_where_the_lecture_says(browser, pages, tmp_path):
    for name, inputs in CELLS["statquest"].input_examples.items():
        fragment = f"cell=statquest&T=4&x={','.join(map(str, inputs))}"
        dom = shown(browser, pages["default"], fragment, tmp_path)
        h = next(float(e["attrs"]["data-value"]) for k, e in dom.items()
                 if k.startswith("final-") and e["attrs"]["data-name"] == "h")
        d = solve("statquest", steps=4, inputs=",".join(map(str, inputs)))
        assert h == pytest.approx(dict(d.evaluations[0].states)["h"][-1], rel=1e-12), name


def test_a_bad_link_is_named_not_obeyed(browser, pages, tmp_path):
    dom = shown(browser, pages["default"], "cell=rnn&w=oops&T=999999&zzz=1", tmp_path)
    assert dom["notice"]["text"] == "ignored in the link: w, T, zzz"
    assert dom["dh-value"]["attrs"]["data-value"] == "1125899906842624"  # the opening setting: w = 2, T = 50


def test_every_control_has_a_name_a_keyboard_and_a_screen_reader_can_use(browser, pages, tmp_path):
    dom = shown(browser, pages["default"], "cell=lstm", tmp_path)
    labelled = dom["labelled"]
    controls = [(k, e) for k, e in dom.items() if k in ("cell", "T", "inputs") or re.fullmatch(r"[ps]\d+", k)]
    assert len(controls) == 3 + 12 + 2  # the LSTM's 12 parameters and h_0, c_0
    for name, _ in controls:
        assert name in labelled, name


def test_moving_a_slider_recomputes_and_rewrites_the_link(browser, pages, tmp_path):
    """The page's own event wiring: a script added to a copy (and named in its policy) moves w to 0.5."""
    harness = ('const w = document.getElementById("p1"); w.value = "0.5"; w.dispatchEvent(new Event("input"));'
               'document.body.dataset.after = document.getElementById("dh-value").dataset.value;'
               'document.body.dataset.link = location.hash;')
    digest = "'sha256-" + base64.b64encode(hashlib.sha256(harness.encode()).digest()).decode() + "'"
    text = pages["default"].read_text(encoding="utf-8")
    text = text.replace("script-src ", f"script-src {digest} ").replace("</body>", f"<script>{harness}</script>\n</body>")
    copy = tmp_path / "harness.html"
    copy.write_text(text, encoding="utf-8")
    body = shown(browser, copy, "cell=rnn&w=2&T=50", tmp_path)["body"]["attrs"]
    assert body["data-after"] == repr(0.5 ** 50)
    assert "w=0.5" in body["data-link"] and "T=50" in body["data-link"]


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "Error: --steps: must be a whole number from 1 to 10000, got 0"),
    (["--cell", "custom", "--formula", "</script>"], "Error: --formula: "),
    (["--cell", "lstm", "--variant", "nope"], "Error: --variant: unknown variant of lstm 'nope'"),
    (["--params", "missing.npz"], "Error: --params: "),
])
def test_bad_options_get_one_line_and_no_file(args, message, tmp_path):
    from typer.testing import CliRunner

    from cli import app

    out = tmp_path / "page.html"
    result = CliRunner().invoke(app, ["explore", "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(message) and result.output.count("\n") == 1, result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_choice_the_page_does_not_have_is_named(browser, pages, tmp_path):
    dom = shown(browser, pages["default"], "cell=lstm&variant=nope&T=20", tmp_path)
    assert dom["notice"]["text"] == "ignored in the link: cell, variant"
    assert dom["dh-name"]["text"] == "∂h_20/∂h_0 ="  # the opening cell, at the link's T


def test_extreme_settings_finish_and_say_what_they_are(browser, pages, tmp_path):
    """A flat line at 1e20 (ticks once looped forever), a weight of 1.5e308 (its square is no double),
    w = 0 (a derivative of exactly 0: derive's bound verdict), hex in a link (refused as derive does)."""
    shown(browser, pages["default"], "cell=rnn&w=1&u=0&b_h=0&h0=1e20&T=5", tmp_path)
    dom = shown(browser, pages["default"], "cell=rnn&w=1.5e308&T=2", tmp_path)
    assert float(dom["dh-value"]["attrs"]["data-log10"]) == pytest.approx(2 * np.log10(1.5e308), rel=1e-13)
    assert "data-value" not in dom["dh-value"]["attrs"]
    dom = shown(browser, pages["default"], "cell=rnn&w=0&T=50", tmp_path)
    d = solve("rnn", steps=50, settings=("w=0", "u=1", "b_h=0"))
    assert dom["regime"]["attrs"]["data-verdict"] == d.evaluations[0].regime.verdict == "vanishing"
    assert dom["dh-value"]["attrs"]["data-value"] == "0" and dom["norm-value"]["text"].endswith("= 0")
    dom = shown(browser, pages["default"], "cell=rnn&w=0x10&T=5", tmp_path)
    assert dom["notice"]["text"] == "ignored in the link: w"


def test_a_parameter_may_not_take_a_key_of_the_link():
    with pytest.raises(InvalidValue, match="'cell' has the name of a key of the explorer's link"):
        page(cell="custom", formulas=("h = tanh(cell*h + x)",))


def test_a_trained_models_sensitivity_is_drawn(browser, tmp_path):
    """``explore --params`` with a model ``train --out`` saved: the page carries the held-out
    ‖∂ℓ/∂x_t‖ per step as ``sensitivity`` computes it, and shows the figure with its note."""
    import json

    from typer.testing import CliRunner

    from cli import app
    from numeric.training.sensitivity import saved_model, sensitivity

    model, out = tmp_path / "tiny.npz", tmp_path / "page.html"
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--cell", "lstm", "--task", "latch", "--lag", "3", "--hidden", "4",
                                  "--updates", "5", "--every", "5", "--out", str(model)])
    assert trained.exit_code == 0, trained.output
    made = runner.invoke(app, ["explore", "--out", str(out), "--params", str(model)])
    assert made.exit_code == 0, made.output
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>',
                                out.read_text(encoding="utf-8"), re.S).group(1))
    settings, params = saved_model(str(model))
    want = sensitivity(settings, params, 256, seed=0).mean
    np.testing.assert_allclose(data["trained"]["mean"], want, rtol=1e-12)
    dom = shown(browser, out, "cell=rnn", tmp_path)
    assert "hidden" not in dom["trained"]["attrs"]
    assert dom["trained-note"]["text"].startswith("lstm trained on latch (lag 3): accuracy ")
