"""Numbers typed by a user, parsed exactly (0.5 is 1/2) and checked against shapes.

No text reaches ``eval`` or ``sympify``: a number is matched by a regular
expression and read with ``fractions.Fraction``; a nested list by ``json``.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction

import sympy as sp

from .cell import Cell
from .errors import InvalidValue

#: A number as a user may type one (derive's settings and inputs, and the explorer page's boxes and link).
NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE]([+-]?\d+))?$")
_FRACTION = re.compile(r"^[+-]?\d+/\d+$")
#: Decimal exponents beyond this are refused: they are not useful and cost time to hold exactly.
MAX_EXPONENT = 300
#: A number is at most this many characters (float64 needs 17 digits; Python refuses ints past 4300).
MAX_CHARS = 100
#: Lists nest at most this deep (a matrix is 2; a deeper list is a mistake, and very deep ones exhaust the stack).
MAX_NESTING = 4


def parse_number(text: str, field: str) -> sp.Rational:
    """The exact rational a decimal, scientific or p/q number denotes.

    >>> parse_number("0.5", "set")
    1/2
    >>> parse_number("-3e-2", "set")
    -3/100
    """
    text = text.strip()
    if len(text) > MAX_CHARS:
        raise InvalidValue(field, f"a number of {len(text)} characters; allowed: at most {MAX_CHARS}")
    match = NUMBER.match(text)
    if match:
        if match.group(4) is not None and abs(int(match.group(4))) > MAX_EXPONENT:
            raise InvalidValue(field, f"{text} is beyond 1e±{MAX_EXPONENT}; allowed: finite numbers")
        return sp.Rational(Fraction(text))
    if _FRACTION.match(text):
        if text.split("/")[1].strip("0") == "":
            raise InvalidValue(field, f"{text} divides by zero")
        return sp.Rational(Fraction(text))
    if text.lower().lstrip("+-") in {"nan", "inf", "infinity"}:
        raise InvalidValue(field, f"{text} is not allowed; allowed: finite numbers")
    raise InvalidValue(field, f"{text!r} is not a number (write 0.5, -3e-2 or 1/2)")


def _reject_constant(name: str):
    raise ValueError(name)


def _depths(text: str):
    """The bracket depth after each character of ``text``."""
    depth = 0
    for c in text:
        depth += (c == "[") - (c == "]")
        yield depth


def parse_array(text: str, field: str):
    """A number, or a (nested) JSON list of numbers, as nested lists of Rationals."""
    if not text.strip().startswith("["):
        return parse_number(text, field)
    depth = max(_depths(text))
    if depth > MAX_NESTING:
        raise InvalidValue(field, f"lists nested {depth} deep; allowed: at most {MAX_NESTING} (a matrix is [[...], ...])")
    try:
        data = json.loads(text, parse_float=str, parse_int=str, parse_constant=_reject_constant)
    except ValueError:
        raise InvalidValue(field, f"{text!r} is not a number or a JSON list of numbers") from None

    def convert(item):
        if isinstance(item, list):
            return [convert(i) for i in item]
        if isinstance(item, str):
            return parse_number(item, field)
        raise InvalidValue(field, f"{item!r} in {text!r} is not a number")

    return convert(data)


def fit_shape(value, rows: int, cols: int, field: str, name: str) -> sp.ImmutableMatrix:
    """``value`` as a rows × cols matrix: a single number fills every element."""
    if not isinstance(value, list):
        return sp.ImmutableMatrix(rows, cols, [value] * (rows * cols))
    flat_column = cols == 1 and all(not isinstance(v, list) for v in value)
    grid = [[v] for v in value] if flat_column else value
    ok = len(grid) == rows and all(isinstance(r, list) and len(r) == cols for r in grid)
    if not ok or any(isinstance(v, list) for r in grid for v in r):
        shape = f"{rows}" if cols == 1 else f"{rows}×{cols}"
        raise InvalidValue(field, f"{name} has shape {shape}; got {json.dumps(value, default=str).replace(chr(34), '')}")
    return sp.ImmutableMatrix(grid)


def parameter_names(cell) -> dict[str, str]:
    """Every spelling a user may type for a parameter of a ``Cell`` or a ``Layer`` -> its table name (w -> W_hh)."""
    names = {name: name for name in cell.param_names()}
    names.update({cell.display_name(name): name for name in cell.param_names()})
    return names


def parse_settings(cell: Cell, settings: list[str]) -> dict[str, sp.ImmutableMatrix]:
    """``--set name=value`` items -> parameter name -> value of the parameter's shape."""
    if settings and cell.definition.fixed:
        raise InvalidValue("set", f"{cell.name} has fixed weights; the lstm cell takes them as parameters")
    names = parameter_names(cell)
    values: dict[str, sp.ImmutableMatrix] = {}
    for item in settings:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name or not text.strip():
            raise InvalidValue("set", f"{item!r} is not NAME=VALUE (for example w=0.5)")
        if name not in names:
            allowed = ", ".join(sorted(names)) or "none (its weights are fixed, or its formula has no parameters)"
            raise InvalidValue("set", f"{cell.label} has no parameter {name!r}; allowed: {allowed}")
        shape = cell.param(names[name]).shape
        values[names[name]] = fit_shape(parse_array(text, "set"), *shape, "set", name)
    return values


def parse_initial_state(cell: Cell, h0: str | None, c0: str | None) -> sp.ImmutableMatrix:
    """``--h0`` and ``--c0`` (one number filling the state, or a JSON list of n) as s_0; default 0."""
    given = {"h": h0, "c": c0}
    for name, text in given.items():
        if text is not None and name not in cell.states:
            raise InvalidValue(f"{name}0", f"{cell.label} has no state {name}; its states: {', '.join(cell.states)}")
    parts = []
    for s in cell.states:
        value = parse_array(given[s], f"{s}0") if given.get(s) is not None else sp.Integer(0)
        parts.append(fit_shape(value, cell.n, 1, f"{s}0", f"{s}_0"))
    return sp.ImmutableMatrix.vstack(*parts)


def parse_inputs(text: str | None, T: int, m: int) -> tuple[sp.ImmutableMatrix, ...]:
    """``--inputs``: one value held for all T steps, or T comma-separated values (m = 1),
    or a JSON list of T lists of m numbers.  The default is x_t = 1."""
    if text is None:
        return (sp.ImmutableMatrix.ones(m, 1),) * T
    items = input_items(text, T, m)
    return items * T if len(items) == 1 else items


def input_items(text: str, T: int, m: int) -> tuple[sp.ImmutableMatrix, ...]:
    """``--inputs`` checked, as typed: one x (held for all T steps) or T of them."""
    body = text.strip()
    items = parse_array(body, "inputs_text") if body.startswith("[") else [
        parse_number(part, "inputs_text") for part in body.split(",")
    ]
    if len(items) not in (1, T):
        raise InvalidValue("inputs_text", f"got {len(items)} values; allowed: 1 or T = {T}")
    return tuple(fit_shape(x, m, 1, "inputs_text", "each input x_t") for x in items)
