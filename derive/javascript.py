"""A one-unit cell's step, local Jacobian and immediate parameter partials, printed as JavaScript.

One definition, several printers: NumPy lambdifies the cell's stages, the native backend prints
them as C, and the explorer page (``reports.explorer``) runs these.  Argument order is the API
(PyDy's rule): ``p`` holds the parameters in ``cell.param_names()`` order, ``s`` the state
s_{t−1} in ``cell.states`` order, ``x`` the input x_t, ``q`` the step's quantities in equation
order.  No name from the cell reaches the code: every symbol is printed as its slot, and a symbol
without one fails here, before any code exists.

    step(p, s, x)        -> q: every quantity of step t (i_t, f_t, …, h_t)
    jacobian(p, s, x, q) -> J_t = ∂s_t/∂s_{t−1}, rows and columns in ``cell.states`` order
    partials(p, s, x, q) -> ∂⁺s_t/∂θ, one row per state, one column per parameter
"""

from __future__ import annotations

import sympy as sp
from sympy.printing.jscode import JavascriptCodePrinter

from .cell import Cell
from .graph import jacobian_step, param_jacobian, quantity_names

#: Functions of ours that JavaScript lacks: the page's runtime defines them (σ with one exp).
RUNTIME_FUNCTIONS = {"sigmoid": "sigmoid", "relu": "relu", "Heaviside": "heaviside"}


class _Printer(JavascriptCodePrinter):
    """SymPy's JavaScript printer with every symbol replaced by its slot (``p[0]``, ``q[3]``)."""

    def __init__(self, slots: dict[sp.Symbol, str]):
        super().__init__({"user_functions": RUNTIME_FUNCTIONS})
        self.slots = slots

    def _print_Symbol(self, expr):
        if expr not in self.slots:
            raise ValueError(f"{expr} is missing from the argument sequences")
        return self.slots[expr]


def slots(cell: Cell) -> dict[sp.Symbol, str]:
    """Each symbol of a one-unit cell -> where the generated code reads it."""
    if cell.n != 1 or cell.m != 1:
        raise ValueError(f"the page runs one-unit cells (n = m = 1), got n = {cell.n}, m = {cell.m}")
    out = {cell.x[0]: "x"}
    out.update({value[0]: f"p[{j}]" for j, (_, value) in enumerate(cell.params)})
    out.update({value[0]: f"s[{j}]" for j, (_, value) in enumerate(cell.prev)})
    out.update({cell.current(name)[0]: f"q[{j}]" for j, name in enumerate(quantity_names(cell))})
    return out


def _body(slot_map: dict[sp.Symbol, str], exprs: list[sp.Expr], result) -> list[str]:
    """Common subexpressions first (``const v0 = …``), then ``result`` of the reduced expressions."""
    shared, reduced = sp.cse(exprs, symbols=sp.numbered_symbols("cse"))
    slot_map, lines = dict(slot_map), []
    for j, (sym, value) in enumerate(shared):
        lines.append(f"const v{j} = {_Printer(slot_map).doprint(value)};")
        slot_map[sym] = f"v{j}"
    printer = _Printer(slot_map)
    return lines + [result([printer.doprint(e) for e in reduced])]


def _function(name: str, args: str, lines: list[str]) -> str:
    return f"  {name}({args}) {{\n" + "".join(f"    {line}\n" for line in lines) + "  },\n"


def _step(cell: Cell) -> str:
    """Each quantity in equation order; a later equation reads an earlier one from ``q``."""
    lines = [f"const q = new Array({len(cell.equations)});"]
    for j, (_, expr) in enumerate(cell.equations):
        body = _body(slots(cell), [expr[0]], lambda texts, j=j: f"q[{j}] = {texts[0]};")
        lines += body if len(body) == 1 else ["{", *("  " + line for line in body), "}"]
    return _function("step", "p, s, x", lines + ["return q;"])


def _matrix(name: str, matrix: sp.MatrixBase, cell: Cell) -> str:
    rows, cols = matrix.shape

    def result(texts):
        return "return [" + ", ".join("[" + ", ".join(texts[r * cols:(r + 1) * cols]) + "]" for r in range(rows)) + "];"

    return _function(name, "p, s, x, q", _body(slots(cell), list(matrix), result))


def partials(cell: Cell) -> sp.ImmutableMatrix:
    """∂⁺s_t/∂θ for every scalar parameter: one column each, in ``cell.param_names()`` order."""
    if not cell.params:
        return sp.ImmutableMatrix.zeros(len(cell.states), 0)
    return sp.ImmutableMatrix.hstack(*(param_jacobian(cell, name) for name in cell.param_names()))


def program(cell: Cell) -> str:
    """The cell as a JavaScript object literal with ``step``, ``jacobian`` and ``partials``.

    >>> from derive.cells import CELLS
    >>> from derive.cell import make_cell
    >>> print(program(make_cell(CELLS["rnn"])))
    {
      step(p, s, x) {
        const q = new Array(1);
        q[0] = p[2] + s[0]*p[1] + p[0]*x;
        return q;
      },
      jacobian(p, s, x, q) {
        return [[p[1]]];
      },
      partials(p, s, x, q) {
        return [[x, s[0], 1]];
      },
    }
    """
    return "{\n" + _step(cell) + _matrix("jacobian", jacobian_step(cell), cell) + \
        _matrix("partials", partials(cell), cell) + "}"
