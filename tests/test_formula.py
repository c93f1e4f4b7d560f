"""Typed formulas: the grammar parses to what SymPy builds, everything else is refused, fast."""

from __future__ import annotations

import pytest
import sympy as sp
from hypothesis import given, settings, strategies as st

from derive.errors import InvalidValue
from derive.formula import FUNCTIONS, parse_formula

NAMES = ("h", "c", "x", "w", "u", "b", "W_hh")


def symbol(name):
    return sp.Symbol(name, real=True)


@st.composite
def trees(draw, depth=4):
    """(text, the SymPy expression built directly) for a random formula of the grammar."""
    if depth == 0 or draw(st.booleans()):
        if draw(st.booleans()):
            name = draw(st.sampled_from(NAMES))
            return name, symbol(name)
        value = draw(st.integers(0, 99) | st.sampled_from([0.5, 2.75, 1e-3]))
        return repr(value), (sp.Integer(value) if isinstance(value, int) else sp.Rational(repr(value)))
    kind = draw(st.sampled_from(["+", "-", "*", "/", "**", "neg", "call"]))
    left_text, left = draw(trees(depth=depth - 1))
    if kind == "neg":
        return f"-({left_text})", -left
    if kind == "call":
        name = draw(st.sampled_from(sorted(FUNCTIONS)))
        return f"{name}({left_text})", FUNCTIONS[name](left)
    if kind == "**":
        exponent = draw(st.integers(-3, 3))
        return f"({left_text})**{exponent}" if exponent >= 0 else f"({left_text})**({exponent})", sp.Pow(left, exponent)
    right_text, right = draw(trees(depth=depth - 1))
    ops = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}
    return f"({left_text}) {kind} ({right_text})", ops[kind](left, right)


@settings(max_examples=300, deadline=2000)
@given(trees())
def test_grammar_parses_to_the_expression_sympy_builds(tree):
    text, expected = tree
    if expected.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        # Never finite (1/0, 0/0): refused by name rather than carried into a cell.
        with pytest.raises(InvalidValue, match="division by zero"):
            parse_formula(text, symbol)
    else:
        assert parse_formula(text, symbol) == expected


@settings(max_examples=500, deadline=500)
@given(st.lists(st.sampled_from(list("hxwub()+-*/.,[]_ '\"=:@0123456789") + ["**", "tanh", "__", "lambda", "import", "os", "e9"]),
                max_size=40).map("".join))
def test_random_text_is_parsed_or_refused_never_anything_else(text):
    try:
        result = parse_formula(text, symbol)
    except InvalidValue as error:
        assert error.field == "formula" and "\n" not in str(error)
    else:
        assert isinstance(result, sp.Basic)


REFUSED = [
    ("9**9**9", "exponent"), ("h.__class__", "attribute access"), ("h[0]", "subscripts"),
    ("lambda: h", "lambdas"), ("[h for h in x]", "comprehensions"), ("open('f')", "unknown function 'open'"),
    ("__import__('os')", "unknown function '__import__'"), ("tanh(x=1)", "exactly one argument"),
    ("h if x else w", "conditional"), ("h < 1", "comparisons"), ("'a'", "non-numeric"), ("h**0.5", "exponent"),
    ("h @ w", "operator"), ("1e400", "finite"), ("(" * 300 + "h" + ")" * 300, "characters"),
    ("+".join(["h"] * 150), "parts"), ("", "empty"), ("tanh", "not allowed as a name"), ("h +", "cannot parse"),
]


def test_refusals_name_the_offending_piece():
    for text, message in REFUSED:
        try:
            parse_formula(text, symbol)
        except InvalidValue as error:
            assert message in str(error), (text, str(error))
        else:
            raise AssertionError(f"{text!r} was accepted")


@pytest.mark.parametrize("name", ["E", "I", "S", "N", "Q", "beta", "gamma", "O", "lam"])
def test_names_sympy_gives_meanings_to_are_parameters(name):
    """Only pi and e are constants; E, I, S, N, Q, beta, gamma are parameters like w."""
    from derive.solution import solve
    d = solve("custom", formulas=(f"{name}*h + x",), steps=3, settings=(f"{name}=0.5",))
    assert d.cell.param_names() == (name,)
    assert d.evaluations[0].entries[0].exact == sp.Rational(1, 8)


@pytest.mark.parametrize("formula,value", [("pi*h", sp.pi ** 3), ("e*h", sp.E ** 3)])
def test_pi_and_e_are_the_constants(formula, value):
    from derive.solution import solve
    d = solve("custom", formulas=(formula,), steps=3)
    assert d.cell.param_names() == ()
    assert d.evaluations[0].entries[0].float == pytest.approx(float(value), rel=1e-15)
