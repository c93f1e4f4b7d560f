"""Each cell as the explorer shows and runs it: derive's own expressions as MathML, its step,
local Jacobian and parameter partials as JavaScript (``derive.javascript``), and the settings
the page opens with (the lecture's examples, else the weights ``derive`` draws)."""

from __future__ import annotations

import html

import sympy as sp

from derive.cell import Cell, CellDef, make_cell
from derive.chain import state_chain
from derive.errors import InvalidValue
from derive.graph import generic_equations, jacobian_step, quantity_names
from derive.javascript import program
from derive.printing import mathml, text
from derive.regime import recurrent_weight
from derive.values import parameter_names, parse_number
from numeric.explain import drawn_settings


def choices(definition: CellDef) -> list[tuple[str | None, str | None]]:
    """Every (variant, activation) of a definition: the page offers each one."""
    activations = definition.activations or (None,)
    return [(v, a) for v in definition.variants for a in activations]


def key(definition: CellDef, variant: str | None, activation: str | None) -> str:
    """How the page names one choice: ``rnn/tanh``, ``lstm/peephole``, ``statquest``."""
    extra = [part for part in (variant if len(definition.variants) > 1 else None, activation) if part]
    return "/".join([definition.name, *extra])


def _symbol(name: str) -> str:
    return mathml(sp.Symbol(name))


def partial(of: str, wrt: str) -> str:
    """∂of/∂wrt as a MathML fraction."""
    return f"<mfrac><mrow><mo>∂</mo>{_symbol(of)}</mrow><mrow><mo>∂</mo>{_symbol(wrt)}</mrow></mfrac>"


def _equation(lhs: str, rhs: str) -> str:
    return f"<mrow>{lhs}<mo>=</mo>{rhs}</mrow>"


def _chain(cell: Cell) -> tuple[str, ...]:
    """The chain rule over T steps, the closed form where one exists, and each carousel's product."""
    out = cell.output
    chain = state_chain(cell, out, out)
    states = "s" if len(cell.states) > 1 else out
    factors = "".join(_symbol(f"J_{{{label}}}") for label in ("T", "T-1")) + "<mo>⋯</mo>" + _symbol("J_{k+1}")
    rows = [_equation(partial(f"{states}_T", f"{states}_k"), f"<mrow>{factors}</mrow>")]
    if chain.closed is not None:
        rows.append(_equation(partial(f"{out}_T", f"{out}_k"), mathml(chain.closed, cell)))
    for c in cell.definition.carousel:
        along = state_chain(cell, c, c)
        rows.append(_equation(partial(f"{c}_T", f"{c}_k"), mathml(along.closed, cell)) +
                    f"<mtext>  along the {html.escape(c)} path alone</mtext>")
    return tuple(rows)


def math(cell: Cell) -> dict:
    """The derivation, displayed: the step, the local Jacobian, the chain rule and closed forms."""
    states = "s" if len(cell.states) > 1 else cell.output
    jacobian = _equation(_symbol("J_t"), _equation(partial(f"{states}_t", f"{states}_{{t-1}}"),
                                                   mathml(jacobian_step(cell), cell)))
    return {"step": [mathml(e, cell) for e in generic_equations(cell)], "jacobian": jacobian,
            "chain": list(_chain(cell))}


def defaults(definition: CellDef, cell: Cell, variant, activation) -> dict[str, float]:
    """The page's first values: the lecture's first example, else the weights ``derive`` draws (seed 0)."""
    if definition.examples:
        settings = tuple(f"{k}={v}" for k, v in definition.examples[0].items())
    else:
        settings, _ = drawn_settings(definition, variant, activation, 1, 1, 50)
    names = parameter_names(cell)
    values = {}
    for item in settings:
        name, _, text = item.partition("=")
        values[names[name]] = float(parse_number(text, "set"))
    return values


def _example(cell: Cell, example: dict) -> dict:
    """One of the lecture's settings (w = 2; w = 0.5) as a button's label and the values it sets."""
    names = cell.param_names()
    label = ", ".join(f"{cell.display_name(k)} = {v}" for k, v in example.items())
    return {"label": label, "values": {str(names.index(k)): float(parse_number(v, "set")) for k, v in example.items()}}


def _bound(cell: Cell) -> dict | None:
    """What Pascanu's bound needs: γ = sup|φ'| and which parameter is the recurrent weight."""
    weight = recurrent_weight(cell)
    if weight is None:
        return None
    return {"gamma": float(cell.activation.gamma), "weight": cell.param_names().index(weight)}


#: The page's link names these itself; a parameter may not take one of the names.
LINK_KEYS = ("cell", "variant", "activation", "T", "x")


def _check_names(cell: Cell) -> None:
    reserved = set(LINK_KEYS) | {f"{s}0" for s in cell.states}
    for name in cell.param_names():
        if cell.display_name(name) in reserved:
            raise InvalidValue("formula", f"the parameter {cell.display_name(name)!r} has the name of a key of the "
                               f"explorer's link ({', '.join(sorted(reserved))}); rename it")


def lesson(definition: CellDef, variant: str | None, activation: str | None) -> dict:
    """One choice of cell as the page's data (``code`` is the JavaScript, kept apart from the rest)."""
    cell = make_cell(definition, variant, activation)
    _check_names(cell)
    values = defaults(definition, cell, variant, activation)
    quantities = quantity_names(cell)
    return {
        "key": key(definition, variant, activation), "cell": definition.name, "variant": variant,
        "activation": activation, "label": cell.label, "summary": definition.summary,
        "states": list(cell.states), "output": cell.states.index(cell.output),
        "quantities": list(quantities), "state_slots": [quantities.index(s) for s in cell.states],
        "params": [{"key": name, "name": cell.display_name(name), "value": values.get(name, 0.0)}
                   for name in cell.param_names()],
        "carousel": [cell.states.index(c) for c in definition.carousel],
        "carousel_factors": [text(state_chain(cell, c, c).factor, cell) for c in definition.carousel],
        "output_meaning": definition.output_meaning,
        "input_examples": {name: list(map(float, xs)) for name, xs in definition.input_examples.items()},
        "examples": [_example(cell, example) for example in definition.examples],
        "bound": _bound(cell), "math": math(cell), "code": program(cell),
    }
