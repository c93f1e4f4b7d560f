"""Activation functions as SymPy functions that know their own derivative.

SymPy has no sigmoid or ReLU, and spelling them out (``exp(a)/(exp(a)+1)``)
makes derivatives unreadable.  Defining them as ``Function`` subclasses lets a
derivative stay in terms of the activation itself, e.g. σ'(a) = σ(a)(1 − σ(a)),
which is what lets a Jacobian be written with the gate's own name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy as sp


class sigmoid(sp.Function):
    r"""The logistic function σ(a) = e^a / (e^a + 1), written as the lecture does.

    >>> a = sp.Symbol("a")
    >>> sp.diff(sigmoid(a), a)
    (1 - sigmoid(a))*sigmoid(a)
    """

    def fdiff(self, argindex=1):
        return self * (1 - self)

    @classmethod
    def eval(cls, arg):
        if arg.is_zero:
            return sp.S.Half

    def _eval_rewrite_as_exp(self, arg, **kwargs):
        return sp.exp(arg) / (sp.exp(arg) + 1)

    def _eval_is_real(self):
        return self.args[0].is_real

    def _latex(self, printer, exp=None):
        body = r"\sigma\left(%s\right)" % printer._print(self.args[0])
        return body if exp is None else r"%s^{%s}" % (body, exp)


class relu(sp.Function):
    r"""The rectifier relu(a) = max(0, a); its derivative is the step H(a).

    >>> a = sp.Symbol("a")
    >>> sp.diff(relu(a), a)
    Heaviside(relu(a), 0)
    """

    def fdiff(self, argindex=1):
        # H(relu(a)) = H(a) everywhere, and it lets the derivative be renamed in
        # terms of the unit's output.  H(0) = 0 is PyTorch's choice at the kink.
        return sp.Heaviside(self, 0)

    @classmethod
    def eval(cls, arg):
        if arg.is_number and arg.is_real:
            return sp.Max(arg, 0)

    def _eval_rewrite_as_Max(self, arg, **kwargs):
        return sp.Max(arg, 0)

    def _latex(self, printer, exp=None):
        body = r"\operatorname{relu}\left(%s\right)" % printer._print(self.args[0])
        return body if exp is None else r"%s^{%s}" % (body, exp)


def sigmoid_as_exp(expr: sp.Expr) -> sp.Expr:
    """Rewrite every σ(a) in ``expr`` as e^a / (e^a + 1), the lecture's spelling."""
    return expr.replace(sigmoid, lambda arg: sp.exp(arg) / (sp.exp(arg) + 1))


@dataclass(frozen=True)
class Activation:
    """An elementwise nonlinearity φ and γ = sup |φ'(a)| (Pascanu et al. 2013)."""

    name: str
    apply: Callable[[sp.Expr], sp.Expr]
    gamma: sp.Rational


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation("linear", lambda a: a, sp.Integer(1)),
    "tanh": Activation("tanh", sp.tanh, sp.Integer(1)),
    "sigmoid": Activation("sigmoid", sigmoid, sp.Rational(1, 4)),
    "relu": Activation("relu", relu, sp.Integer(1)),
}
