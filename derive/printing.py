"""How expressions read: one-line text (h_{t-1}, ∏, σ, ^), LaTeX and presentation MathML.

Short decimals stay decimals (the lecture's 2.70, not 27/10); per-step
sequences print as subscripts (h[t-1] -> h_{t-1}).
"""

from __future__ import annotations

import re

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.mathml import MathMLPresentationPrinter
from sympy.printing.str import StrPrinter

from .activations import sigmoid_as_exp

#: Rationals whose denominator divides this print as decimals.
_DECIMAL_DENOMINATOR = 10**8  # up to 8 decimals: drawn weights to 4 significant digits stay decimals


def decimal(r: sp.Rational) -> str | None:
    """'2.7' for 27/10, None when the decimal would not be short and exact."""
    if r.is_Integer or _DECIMAL_DENOMINATOR % r.q:
        return None
    digits = len(str(_DECIMAL_DENOMINATOR)) - 1
    text = f"{abs(r.p) * _DECIMAL_DENOMINATOR // r.q:0{digits + 1}d}"
    whole, frac = text[:-digits], text[-digits:].rstrip("0")
    return ("-" if r.p < 0 else "") + f"{int(whole)}.{frac}"


def _index_text(index) -> str:
    text = str(index).replace(" ", "")
    return text if len(text) == 1 else "{%s}" % text


def _as_symbol(item: sp.Indexed) -> sp.Symbol:
    """h[t-1] -> the symbol h_{t-1}; h[t, 0] -> h_t[0] (Indexed prints itself otherwise)."""
    step, *rest = item.indices
    return sp.Symbol(f"{item.base.label}_{_index_text(step)}" + "".join(f"[{i}]" for i in rest))


def _coefficient(printer, expr, join: str) -> str | None:
    """2.7*h rather than 27*h/10: a decimal coefficient printed in front; an unevaluated factor 1
    (the loss's ∂L/∂h_T = 1 in a BPTT sum) not printed at all."""
    if len(expr.args) > 1 and any(a == 1 for a in expr.args):
        rest = [a for a in expr.args if a != 1]
        return printer._print(rest[0] if len(rest) == 1 else sp.Mul(*rest, evaluate=False))
    c, rest = expr.as_coeff_Mul()
    shown = decimal(c) if isinstance(c, sp.Rational) else None
    if shown is None or rest == 1:
        return None
    body = printer.parenthesize(rest, sp.printing.precedence.PRECEDENCE["Mul"], strict=True)
    return f"{shown}{join}{body}"


class TextPrinter(StrPrinter):
    """SymPy's str printer with the notation of the lecture and of this tool."""

    def _print_Rational(self, expr):
        return decimal(expr) or super()._print_Rational(expr)

    def _print_Mul(self, expr):
        return _coefficient(self, expr, "*") or super()._print_Mul(expr)

    def _print_Equality(self, expr):
        return f"{self._print(expr.lhs)} = {self._print(expr.rhs)}"

    def _print_Max(self, expr):
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Product(self, expr):
        (i, lo, hi), = expr.limits
        return f"∏_{{{self._print(i)}={self._print(lo)}}}^{{{self._print(hi)}}} ({self._print(expr.function)})"

    def _print_Sum(self, expr):
        (i, lo, hi), = expr.limits
        return f"Σ_{{{self._print(i)}={self._print(lo)}}}^{{{self._print(hi)}}} ({self._print(expr.function)})"

    def _print_sigmoid(self, expr):
        return f"σ({self._print(expr.args[0])})"

    def _print_Heaviside(self, expr):
        return f"H({self._print(expr.args[0])})"

    def _print_MatPow(self, expr):
        return f"{self.parenthesize(expr.base, 1000)}**({self._print(expr.exp)})"


class TexPrinter(LatexPrinter):
    def _print_Rational(self, expr):
        return decimal(expr) or super()._print_Rational(expr)

    def _print_Mul(self, expr):
        return _coefficient(self, expr, " ") or super()._print_Mul(expr)

    def _print_Symbol(self, expr, style="plain"):
        # Our own split: SymPy would read W_xi as W with subscript ξ.
        name, bracket, element = expr.name.partition("[")
        base, underscore, sub = name.partition("_")
        out = base + ("_{%s}" % sub.strip("{}") if underscore else "")
        return out + ("^{[%s]}" % element.rstrip("]") if bracket else "")

    def _print_Heaviside(self, expr, exp=None):
        body = r"H\left(%s\right)" % self._print(expr.args[0])
        return body if exp is None else r"%s^{%s}" % (body, exp)


class MathMLPrinter(MathMLPresentationPrinter):
    """SymPy's presentation MathML (what browsers render natively) in this tool's notation."""

    def _element(self, tag: str, *children, text: str | None = None):
        node = self.dom.createElement(tag)
        if text is not None:
            node.appendChild(self.dom.createTextNode(text))
        for child in children:
            node.appendChild(child)
        return node

    def _tokens(self, text: str):
        """t-1 as <mi>t</mi><mo>−</mo><mn>1</mn>: names, numbers and operators, each its own element."""
        parts = re.findall(r"[A-Za-z]+|\d+|\S", text)
        tags = [("mn" if p.isdigit() else "mi" if p.isalpha() else "mo") for p in parts]
        nodes = [self._element(tag, text="−" if p == "-" else p) for tag, p in zip(tags, parts)]
        return nodes[0] if len(nodes) == 1 else self._element("mrow", *nodes)

    def _print_Symbol(self, sym, style="plain"):
        # Our own split, as TexPrinter's: h_{t-1} is h with subscript t − 1, W_xi is W with xi.
        name, bracket, element = sym.name.partition("[")
        base, underscore, sub = name.partition("_")
        out = self._element("mi", text=base)
        if underscore:
            out = self._element("msub", out, self._tokens(sub.strip("{}")))
        if bracket:
            out = self._element("msup", out, self._element("mrow", self._element("mo", text="["),
                                                              self._tokens(element.rstrip("]")), self._element("mo", text="]")))
        return out

    def _print_Rational(self, expr):
        shown = decimal(expr)
        return self._element("mn", text=shown) if shown else super()._print_Rational(expr)

    def _print_Mul(self, expr):
        c, rest = expr.as_coeff_Mul()
        shown = decimal(c) if isinstance(c, sp.Rational) else None
        if shown is None or rest == 1:
            return super()._print_Mul(expr)
        body = self._print(rest)
        if isinstance(rest, sp.Add):
            body = self._element("mrow", self._element("mo", text="("), body, self._element("mo", text=")"))
        return self._element("mrow", self._element("mn", text=shown), self._element("mo", text="\u2062"), body)

    def _print_sigmoid(self, expr):
        return self._element("mrow", self._element("mi", text="σ"), self._paren_comma_separated(*expr.args))

    def _print_Heaviside(self, expr):
        return self._element("mrow", self._element("mi", text="H"), self._paren_comma_separated(*expr.args))

    def _print_Product(self, expr):
        (i, lo, hi), = expr.limits
        under = self._element("mrow", self._print(i), self._element("mo", text="="), self._print(lo))
        big = self._element("munderover", self._element("mo", text="∏"), under, self._print(hi))
        return self._element("mrow", big, self._element("mrow", self._element("mo", text="("),
                                                         self._print(expr.function), self._element("mo", text=")")))


def prepare(expr, cell=None):
    """The display form: per-step sequences as symbols, and σ as e^x/(e^x+1) for
    cells that the lecture writes that way."""
    with sp.evaluate(False):  # renaming never needs SymPy to re-simplify (deep tanh(tanh(…)) costs exponential time)
        expr = expr.xreplace({i: _as_symbol(i) for i in expr.atoms(sp.Indexed)})
    if cell is not None and cell.definition.sigmoid_as_exp:
        return expr.replace(lambda e: e.func.__name__ == "sigmoid", lambda e: sigmoid_as_exp(e))
    return expr


def text(expr, cell=None) -> str:
    """One line of text for ``expr``.

    >>> w, T = sp.symbols("w T")
    >>> text(w**T * sp.Rational(27, 10))
    '2.7*w^T'
    """
    expr = prepare(expr, cell)
    if isinstance(expr, sp.MatrixBase) and expr.shape == (1, 1):
        return text(expr[0])
    if isinstance(expr, sp.MatrixBase):
        rows = ["[" + ", ".join(text(e) for e in row) + "]" for row in expr.tolist()]
        return "[" + ", ".join(rows) + "]"
    return TextPrinter().doprint(expr).replace("**", "^")


def latex(expr, cell=None) -> str:
    """LaTeX for ``expr`` (matrices as pmatrix; a 1 × 1 matrix as its one entry)."""
    if isinstance(expr, sp.MatrixBase) and expr.shape == (1, 1):
        expr = expr[0]
    return TexPrinter({"mat_delim": "(", "mul_symbol": None}).doprint(prepare(expr, cell))


def mathml(expr, cell=None) -> str:
    """Presentation MathML for ``expr``, without the ``<math>`` element (a 1 × 1 matrix as its one entry).

    >>> mathml(sp.Symbol("h_{t-1}"))
    '<msub><mi>h</mi><mrow><mi>t</mi><mo>&#8722;</mo><mn>1</mn></mrow></msub>'
    """
    if isinstance(expr, sp.MatrixBase) and expr.shape == (1, 1):
        expr = expr[0]
    # SymPy writes a minus as "-" (a hyphen); ours (h_{t−1}) as the minus sign: one sign on the page.
    return MathMLPrinter({"mul_symbol": None}).doprint(prepare(expr, cell)).replace("<mo>-</mo>", "<mo>&#8722;</mo>")


def align(rows: list[str], indent: str = "") -> str:
    """``lhs &= rhs`` rows as an amsmath ``align*`` block, each row after ``indent``."""
    return "\\begin{align*}\n" + " \\\\\n".join(indent + row for row in rows) + "\n\\end{align*}"
