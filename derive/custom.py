"""A cell typed by the user: one formula per state, turned into a ``CellDef`` like any other.

``h = tanh(w*h + u*x + b)`` (or just the right-hand side) is an Elman cell;
``--formula "c = f*c + ..." --formula "h = tanh(c)"`` a two-state one.  In a
formula, x is the input; a state name means the state's value at t−1, unless an
earlier formula of the same step defined it (then it is the new value, as in
h_t = o ⊙ tanh(c_t)); pi and e are the constants; every other name (E, I, S, N,
beta, gamma, ...) is a scalar parameter, except names that read as per-step
values or step symbols (h_0, x_t, T), which are refused.
"""

from __future__ import annotations

import re

import sympy as sp

from .cell import CellDef, Param, StepInputs
from .cells import CELLS
from .errors import InvalidValue
from .formula import parse_formula, split_assignment


def _placeholder(name: str) -> sp.Symbol:
    return sp.Symbol(f"__{name}", real=True)


def custom_definition(formulas: tuple[str, ...]) -> CellDef:
    """Parse and check ``formulas``; the parameters are the free names in order of appearance."""
    if not formulas:
        raise InvalidValue("formula", "a custom cell needs at least one formula, e.g. 'tanh(w*h + u*x + b)'")
    parsed = []
    for text in formulas:
        state, body = split_assignment(text, "h")
        parsed.append((state, parse_formula(body, _placeholder)))
    states = tuple(state for state, _ in parsed)
    for state in states:
        if state in RESERVED:
            raise InvalidValue("formula", f"{state!r} reads as a step symbol (T, t and k are taken); "
                               "give the state another name, e.g. h or c")
    if len(set(states)) != len(states):
        raise InvalidValue("formula", f"a state is defined twice in {', '.join(states)}")
    free = {s.name[2:] for _, expr in parsed for s in expr.free_symbols}
    typed = [word for text in formulas for word in re.findall(r"[A-Za-z][A-Za-z0-9_]*", text.partition("=")[2] or text)]
    names = list(dict.fromkeys(w for w in typed if w in free and w not in states and w != "x"))
    for name in names:
        _check_parameter_name(name, states)

    def step(s: StepInputs):
        equations, defined = [], set()
        for state, expr in parsed:
            values = {_placeholder("x"): s.x[0]}
            values.update({_placeholder(n): s.p[n][0] for n in names})
            values.update({_placeholder(st): (s.q(st) if st in defined else s.prev[st])[0] for st in states})
            equations.append((state, sp.ImmutableMatrix([expr.xreplace(values)])))
            defined.add(state)
        return tuple(equations)

    return CellDef(
        name="custom",
        summary="; ".join(f"{state} = {sp.sstr(expr).replace('__', '')}" for state, expr in parsed),
        states=states,
        params={"standard": tuple(Param(n, "1") for n in names)},
        step=step,
        scalar_only=True,
        output=states[-1],  # the last formula's state is what the cell puts out
    )


#: Symbols of the general-T forms: the horizon T, the step t, the source step k.
RESERVED = ("T", "t", "k")


def _check_parameter_name(name: str, states: tuple[str, ...]) -> None:
    """A parameter may not look like a per-step value (h_0, x_t, c_3) or a step symbol (T, t, k)."""
    head, sep, _ = name.partition("_")
    if name in RESERVED or (sep and head in (*states, "x")):
        raise InvalidValue("formula", f"{name!r} reads as {'a step symbol' if name in RESERVED else 'a per-step value'} "
                           f"(T, t, k, and {', '.join(f'{s}_t' for s in (*states, 'x'))}, {states[0]}_0 are taken); "
                           "give the parameter another name")


def cell_definition(cell: str, formulas: tuple[str, ...] = ()) -> CellDef:
    """The definition ``--cell`` names, or the one ``--formula`` types for ``--cell custom``."""
    if cell == "custom":
        return custom_definition(tuple(formulas))
    if formulas:
        raise InvalidValue("formula", f"defines a custom cell; the {cell} cell is already defined")
    if cell not in CELLS:
        raise InvalidValue("cell", f"unknown cell {cell!r}; allowed: {', '.join(CELLS)}, custom")
    return CELLS[cell]
