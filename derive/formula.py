"""User-typed cell formulas, parsed against an allow-list and built into SymPy by hand.

The text goes through Python's ``ast`` parser (which only parses, never runs)
and every node is checked: numbers, names, + − * / **, unary minus and calls
of the functions in ``FUNCTIONS``.  The SymPy expression is then built from the
tree, so nothing the user typed is ever evaluated (``eval``, ``sympify`` and
``parse_expr`` all run code: ``__import__('os')`` goes through ``parse_expr``).
"""

from __future__ import annotations

import ast
import re
from keyword import iskeyword

import sympy as sp

from .activations import relu, sigmoid
from .errors import InvalidValue

FUNCTIONS = {
    "tanh": sp.tanh, "sigmoid": sigmoid, "relu": relu, "exp": sp.exp, "log": sp.log,
    "sin": sp.sin, "cos": sp.cos, "sqrt": sp.sqrt, "abs": sp.Abs,
}
#: The only names that are not parameters: the constants π and e.  Every other
#: name (E, I, S, N, Q, beta, gamma, ...) is a parameter like w.
CONSTANTS = {"pi": sp.pi, "e": sp.E}
MAX_LENGTH = 400
MAX_NODES = 200
MAX_EXPONENT = 8
#: Functions nested deeper than this make SymPy's simplification and CSE take
#: exponential time (tanh nested 8 deep: 9 s, 12 deep: minutes).
MAX_DEPTH = 6
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,30}$")

_BINARY = {ast.Add: sp.Add, ast.Sub: lambda a, b: a - b, ast.Mult: sp.Mul,
           ast.Div: lambda a, b: a / b, ast.Pow: sp.Pow}
_SYMBOLS = {"+": ast.Add, "-": ast.Sub, "*": ast.Mult, "/": ast.Div, "**": ast.Pow}


def _describe(node: ast.AST, text: str) -> str:
    piece = ast.get_source_segment(text, node) or type(node).__name__
    kinds = {ast.Attribute: "attribute access", ast.Subscript: "subscripts", ast.Lambda: "lambdas",
             ast.ListComp: "comprehensions", ast.GeneratorExp: "comprehensions", ast.Compare: "comparisons",
             ast.BoolOp: "boolean operators", ast.keyword: "keyword arguments", ast.Constant: "non-numeric constants",
             ast.IfExp: "conditional expressions", ast.Call: "calls of anything but a listed function",
             ast.BinOp: "that operator"}
    kind = next((v for k, v in kinds.items() if isinstance(node, k)), type(node).__name__)
    return f"{piece!r} is not allowed ({kind}); allowed: numbers, names, + - * / **, and {', '.join(FUNCTIONS)}"


def _number(value) -> sp.Expr:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return sp.oo
    return sp.Integer(value) if isinstance(value, int) else sp.Rational(repr(value))


def _build(node: ast.AST, text: str, symbol, field: str) -> sp.Expr:
    def fail(message: str):
        raise InvalidValue(field, message)

    if isinstance(node, ast.Expression):
        return _build(node.body, text, symbol, field)
    if isinstance(node, ast.Constant):
        try:
            value = _number(node.value)
        except TypeError:
            fail(_describe(node, text))
        if not value.is_finite:
            fail(f"{ast.get_source_segment(text, node)!r} is not a finite number")
        return value
    if isinstance(node, ast.Name):
        if not NAME.match(node.id) or node.id in FUNCTIONS or node.id.startswith("_"):
            fail(f"{node.id!r} is not allowed as a name (a function, or not a plain name)")
        return CONSTANTS[node.id] if node.id in CONSTANTS else symbol(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _build(node.operand, text, symbol, field)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _build(node.left, text, symbol, field)
        if isinstance(node.op, ast.Pow):
            exponent = node.right
            negative = isinstance(exponent, ast.UnaryOp) and isinstance(exponent.op, ast.USub)
            value = exponent.operand if negative else exponent
            if not (isinstance(value, ast.Constant) and isinstance(value.value, int)
                    and not isinstance(value.value, bool) and value.value <= MAX_EXPONENT):
                fail(f"exponent {ast.get_source_segment(text, exponent)!r} is not allowed; "
                     f"allowed: whole numbers from -{MAX_EXPONENT} to {MAX_EXPONENT}")
            return sp.Pow(left, -value.value if negative else value.value)
        return _BINARY[type(node.op)](left, _build(node.right, text, symbol, field))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS:
        if node.keywords or len(node.args) != 1:
            fail(f"{ast.get_source_segment(text, node)!r}: {node.func.id} takes exactly one argument")
        return FUNCTIONS[node.func.id](_build(node.args[0], text, symbol, field))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        fail(f"unknown function {node.func.id!r}; allowed: {', '.join(FUNCTIONS)}")
    fail(_describe(node, text))


def parse_formula(text: str, symbol=None, field: str = "formula") -> sp.Expr:
    """The SymPy expression of one formula, every name made by ``symbol(name)``.

    >>> parse_formula("tanh(w*h + u*x + b)")
    tanh(b + h*w + u*x)
    >>> try:
    ...     parse_formula("__import__('os')")
    ... except InvalidValue as error:
    ...     print(error.field, error)
    formula unknown function '__import__'; allowed: tanh, sigmoid, relu, exp, log, sin, cos, sqrt, abs
    """
    symbol = symbol or (lambda name: sp.Symbol(name, real=True))
    if len(text) > MAX_LENGTH:
        raise InvalidValue(field, f"the formula has {len(text)} characters; allowed: at most {MAX_LENGTH}")
    if not text.strip():
        raise InvalidValue(field, "the formula is empty")
    check_ascii(text, field)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        keyword = next((w for w in re.findall(r"[A-Za-z_]\w*", text) if iskeyword(w)), None)
        if keyword:
            raise InvalidValue(field, f"{keyword!r} is a Python keyword and cannot be a name; "
                               "choose another, e.g. lam for lambda") from None
        raise InvalidValue(field, f"cannot parse {text.strip()!r}: {error.msg}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise InvalidValue(field, f"the formula has more than {MAX_NODES} parts")
    depth = _call_depth(tree)
    if depth > MAX_DEPTH:
        raise InvalidValue(field, f"functions are nested {depth} deep; allowed: at most {MAX_DEPTH} "
                           "(the derivative's size grows exponentially with the depth)")
    expr = _build(tree, text.strip(), symbol, field)
    if expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise InvalidValue(field, f"{text.strip()!r} is infinite or undefined for every value "
                           f"(it simplifies to {sp.sstr(expr).replace('__', '')}); a division by zero?")
    return expr


def _call_depth(node: ast.AST) -> int:
    """How deeply function calls nest: tanh(exp(h)) is 2."""
    inner = max((_call_depth(child) for child in ast.iter_child_nodes(node)), default=0)
    return inner + isinstance(node, ast.Call)


def check_ascii(text: str, field: str) -> None:
    """Formulas are plain ASCII: Python would fold fullwidth ｗ into w (NFKC) behind the user's back."""
    odd = next((c for c in text if not c.isascii()), None)
    if odd is not None:
        raise InvalidValue(field, f"{odd!r} (U+{ord(odd):04X}) is not plain ASCII; type names, numbers and "
                           "operators in ASCII (w, not ｗ)")


def split_assignment(text: str, default: str, field: str = "formula") -> tuple[str, str]:
    """'c = f*c + i*g' -> ('c', 'f*c + i*g'); a bare formula defines ``default``."""
    name, sep, body = text.partition("=")
    if not sep:
        return default, text
    name = name.strip()
    check_ascii(name, field)
    if not NAME.match(name) or name in FUNCTIONS or name in CONSTANTS or name == "x":
        raise InvalidValue(field, f"{name!r} cannot be defined; write STATE = formula, STATE a plain name like h or c")
    return name, body
