"""Numbers: exact closed forms, log-domain magnitudes, the mpmath reference, and laws."""

from __future__ import annotations

import math

import mpmath
import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

from derive import reference
from derive.cell import make_cell
from derive.cells import CELLS
from derive.chain import state_chain
from derive.logdomain import Magnitude, evaluate
from derive.regime import regime
from derive.solution import solve
from derive.symbols import T, k, quantity
from derive.values import parse_inputs, parse_number

from .helpers import close, initial_state
from .test_identities import nested_state


def value_at(w: str, steps: int, **kw):
    return solve(steps=steps, settings=(f"w={w}",), **kw).evaluations[0].entries[0]


def test_lecture_numbers_are_exact():
    assert value_at("2", 50).exact == 1125899906842624
    half = value_at("0.5", 50)
    assert half.exact == sp.Rational(1, 1125899906842624)
    assert half.float == 8.881784197001252e-16


@pytest.mark.parametrize("w,approx,log10", [("2", "1.41e+1505", 5000 * math.log10(2)),
                                             ("0.5", "7.08e-1506", -5000 * math.log10(2))])
def test_log_domain_never_overflows(w, approx, log10):
    m = value_at(w, 5000)
    assert (m.approx, m.float, m.sign) == (approx, None, 1)
    assert m.log10_abs == pytest.approx(log10, rel=1e-14)


def test_closed_form_at_a_billion_steps():
    m = value_at("-2", 10**9 + 1)
    assert m.sign == -1 and m.exact is None
    assert m.log10_abs == pytest.approx((10**9 + 1) * math.log10(2), rel=1e-14)


@settings(max_examples=40, deadline=None)
@given(st.fractions(min_value=-3, max_value=3, max_denominator=50).filter(lambda f: f != 0),
       st.integers(min_value=1, max_value=3000))
def test_log_domain_matches_mpmath(w, steps):
    w_sym = sp.Symbol("w")
    m = evaluate(w_sym ** (T - k), {w_sym: sp.Rational(w.numerator, w.denominator), T: steps, k: 0})
    with mpmath.workdps(50):
        expected = mpmath.mpf(w.numerator) / w.denominator
        assert m.log10_abs == pytest.approx(float(steps * mpmath.log10(abs(expected))), rel=1e-12, abs=1e-12)
    assert m.sign == (1 if w > 0 or steps % 2 == 0 else -1)


@pytest.mark.parametrize("name,variant,activation", [
    ("rnn", "standard", "tanh"), ("rnn", "standard", "sigmoid"), ("lstm", "standard", None),
    ("lstm", "peephole", None), ("gru", "standard", None), ("gru", "cho", None)])
def test_reference_matches_sympy_derivative_of_nested(name, variant, activation):
    """The mpmath stepping equals SymPy's derivative of the nested expression at 40 digits."""
    cell = make_cell(CELLS[name], variant, activation)
    steps = 3
    values = {p: sp.ImmutableMatrix([[sp.Rational(3 + i, 10)]]) for i, p in enumerate(cell.param_names())}
    inputs = parse_inputs("0.5,-0.25,1", steps, 1)
    s0 = sp.ImmutableMatrix([sp.Rational(1, 5)] * len(cell.states))
    ours = reference.state_jacobian(cell, values, inputs, s0)
    # 40-digit floats, not the exact rationals: SymPy then evaluates as it substitutes, so the
    # nested expression never grows (exact, its evalf can take minutes for some term orders).
    point = {s: sp.Float(v, 40) for name_, v_ in values.items() for s, v in zip(cell.param(name_), v_)}
    point.update({quantity("x", str(t + 1), 1)[0]: sp.Float(x[0], 40) for t, x in enumerate(inputs)})
    symbols0 = initial_state(cell)
    at_s0 = {s: sp.Float(v, 40) for s, v in zip(symbols0, s0)}
    direct = nested_state(cell, steps, point).jacobian(symbols0).xreplace(at_s0)
    assert all(close(sp.Float(mpmath.nstr(a, 30), 30), b, rel=1e-25) for a, b in zip(ours, direct))


@settings(max_examples=15, deadline=None)
@given(st.floats(min_value=0.3, max_value=1.8).filter(lambda w: abs(w - 1) > 0.05))
def test_law_slope_of_log_gradient_is_log_w(w):
    """Law: the fitted slope of log10|∂h_T/∂h_0| against T equals log10|w| (linear RNN)."""
    cell = make_cell(CELLS["rnn"])
    wr = sp.Rational(w).limit_denominator(1000)
    values = {"W_hh": sp.ImmutableMatrix([[wr]]), "W_xh": sp.ImmutableMatrix([[1]]), "b_h": sp.ImmutableMatrix([[0]])}
    Ts = [5, 10, 20, 40, 80]
    logs = [float(mpmath.log10(abs(reference.state_jacobian(cell, values, parse_inputs(None, n, 1), sp.ImmutableMatrix([0]))[0]))) for n in Ts]
    mean_t, mean_l = sum(Ts) / len(Ts), sum(logs) / len(logs)
    slope = sum((a - mean_t) * (b - mean_l) for a, b in zip(Ts, logs)) / sum((a - mean_t) ** 2 for a in Ts)
    assert slope == pytest.approx(math.log10(float(wr)), rel=1e-12, abs=1e-12)


def test_tanh_closed_form_is_w_power_times_product():
    cell = make_cell(CELLS["rnn"], activation="tanh")
    closed = state_chain(cell, "h", "h").closed
    h = sp.IndexedBase("h", real=True)
    w = cell.param("W_hh")[0]
    t = sp.Symbol("t", integer=True, positive=True)
    assert closed == w ** (T - k) * sp.Product(1 - h[t] ** 2, (t, k + 1, T))


def test_lstm_cell_path_is_product_of_forget_gates():
    closed = state_chain(make_cell(CELLS["lstm"]), "c", "c").closed
    assert closed.function == sp.IndexedBase("f", real=True)[sp.Symbol("t", integer=True, positive=True)]


def test_closed_form_agrees_with_stepping():
    """w^T from the closed form equals the mpmath stepping of the linear RNN."""
    stepped = solve(steps=200, settings=("w=0.97", "u=1", "b_h=0"), wrt="h")
    assert stepped.evaluations[0].method.startswith("closed form")
    cell = make_cell(CELLS["rnn"])
    values = {"W_hh": sp.ImmutableMatrix([[sp.Rational(97, 100)]]), "W_xh": sp.ImmutableMatrix([[1]]), "b_h": sp.ImmutableMatrix([[0]])}
    ref = reference.state_jacobian(cell, values, parse_inputs(None, 200, 1), sp.ImmutableMatrix([0]))[0]
    assert float(mpmath.log10(ref)) == pytest.approx(stepped.evaluations[0].log10_norm, rel=1e-14)


def test_matrix_power_at_a_billion_steps():
    d = solve(steps=10**9, hidden=2, settings=("W_hh=[[0.5,0.1],[0,0.3]]",))
    e = d.evaluations[0]
    assert math.isfinite(e.log10_norm) and e.log10_norm < -3e8
    assert d.regime.verdict == "vanishing (measured)" and "guarantees vanishing" in d.regime.reason


@pytest.mark.parametrize("activation,w,verdict", [
    ("tanh", "0.5", "vanishing"), ("tanh", "2", "exploding possible"), ("tanh", "1", "neutral"),
    ("sigmoid", "3", "vanishing"), ("sigmoid", "5", "exploding possible"), ("relu", "1.5", "exploding possible")])
def test_regime_verdicts(activation, w, verdict):
    cell = make_cell(CELLS["rnn"], activation=activation)
    assert regime(cell, 10, {"W_hh": sp.ImmutableMatrix([[parse_number(w, "--set")]])}).verdict == verdict


def test_regime_uses_largest_singular_value():
    cell = make_cell(CELLS["rnn"], activation="tanh", n=2)
    # σ₁ of [[0, 2], [0.1, 0]] is 2 even though both eigenvalues have |λ| < 0.5.
    r = regime(cell, 10, {"W_hh": sp.ImmutableMatrix([[0, 2], [sp.Rational(1, 10), 0]])})
    assert r.sigma1 == pytest.approx(2) and r.verdict == "exploding possible"


def test_statquest_predicts_the_lecture_days():
    def day5(inputs):
        cell = make_cell(CELLS["statquest"])
        frames = reference.forward(cell, {}, parse_inputs(inputs, 4, 1), sp.ImmutableMatrix([0, 0]))
        return float(frames[-1][-1])

    assert day5("0,0.5,0.25,1") == pytest.approx(0.0064, abs=5e-4)  # Company A: 0
    assert day5("1,0.5,0.25,1") == pytest.approx(0.9694, abs=5e-4)  # Company B: 1


def test_magnitude_of_zero():
    assert Magnitude.of(sp.Integer(0)).approx == "0"


@pytest.mark.parametrize("steps,exact", [(300, True), (1328, True), (1329, False)])
def test_exact_up_to_the_stated_number_of_digits(steps, exact):
    """2^T is exact while it has at most EXACT_DIGITS (400) digits: 2^1328 has 400, 2^1329 has 401."""
    from derive.logdomain import EXACT_DIGITS
    m = value_at("2", steps)
    assert (m.exact is not None) == exact
    assert len(str(2**steps)) <= EXACT_DIGITS if exact else len(str(2**steps)) > EXACT_DIGITS
    if exact:
        assert m.exact == 2**steps


def test_floats_come_from_the_high_precision_value_not_from_its_logarithm():
    """1.01^3000 has too many digits to hold exactly; its float is the correctly rounded one."""
    m = value_at("1.01", 3000)
    assert m.exact is None
    with mpmath.workdps(60):
        expected = float(mpmath.mpf(101) ** 3000 / mpmath.mpf(100) ** 3000)
    assert m.float == expected
    big = Magnitude.of(mpmath.mpf(2) ** 101 / 3)
    assert big.float == 2.0**101 / 3


def test_exact_settings_give_exact_bptt_values():
    """The linear RNN at rational settings (x_t = 1, h_0 = 0): ∂h_3/∂w is exactly 25."""
    d = solve(steps=3, wrt="w", settings=("w=2", "u=5", "b_h=0"))
    value = d.evaluations[0].entries[0]
    # h_1 = 5, h_2 = 15, h_3 = 35; ∂h_3/∂w = h_2 + w h_1 + w² h_0 = 15 + 10 + 0 = 25.
    assert value.exact == 25 and value.float == 25.0
    assert "exact" in d.evaluations[0].method
