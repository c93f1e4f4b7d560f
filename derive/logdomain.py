"""Magnitudes carried as sign and log10|·|, so no product of T factors overflows.

``log10_abs`` is the one named rewrite of this project: log|∏ a_i| = Σ log|a_i|
and log|b^e| = e·log|b|.  It runs on the symbolic form *before* numbers are
substituted, so w^T at T = 10^9 is never multiplied out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath
import sympy as sp

#: Exact values are held and printed only up to this many digits.
EXACT_DIGITS = 400
#: Working precision (decimal digits) of the high-precision evaluation.
PRECISION = 30


def log10_abs(expr: sp.Expr) -> sp.Expr:
    """log10|expr| with products and powers turned into sums.

    >>> w, T = sp.symbols("w T")
    >>> log10_abs(w**T * 3)
    T*log(Abs(w))/log(10) + log(3)/log(10)
    """
    if isinstance(expr, sp.Mul):
        return sp.Add(*(log10_abs(arg) for arg in expr.args))
    if isinstance(expr, sp.Pow):
        base, exponent = expr.args
        return exponent * log10_abs(base)
    return sp.log(sp.Abs(expr), 10)


def sign(expr: sp.Expr) -> sp.Expr:
    """sign(expr) with products and powers split, so it too never multiplies out.

    >>> sign(sp.Pow(-2, 10**9 + 1, evaluate=False))   # (-2)^(10^9+1) is never multiplied out
    -1
    >>> w = sp.Symbol("w")
    >>> sign(3 * w**7)
    sign(w)**7
    """
    if isinstance(expr, sp.Mul):
        return sp.Mul(*(sign(arg) for arg in expr.args))
    if isinstance(expr, sp.Pow):
        base, exponent = expr.args
        return sp.Pow(sign(base), exponent)
    return sp.sign(expr)


def exact_digits(expr: sp.Expr, values: dict) -> float:
    """An upper estimate of the digits of ``expr`` evaluated exactly at ``values``.

    Digits are counted as log10 of numerator and denominator, so 2^300 is about
    91 digits.  Infinite when the value is not a rational (tanh(2) has no exact digits).

    >>> w = sp.Symbol("w")
    >>> round(exact_digits(w**300, {w: sp.Integer(2)}), 1)
    91.3
    """
    if isinstance(expr, sp.Pow):
        exponent = expr.exp.xreplace(values)
        if not exponent.is_Integer:
            return math.inf
        return abs(int(exponent)) * exact_digits(expr.base, values) + 1
    if isinstance(expr, sp.Mul):
        return sum(exact_digits(arg, values) for arg in expr.args)
    if isinstance(expr, sp.Add):
        # A sum of rationals: the denominators multiply, the numerators add (one digit of carry per term).
        return sum(exact_digits(arg, values) + 1 for arg in expr.args)
    value = expr.xreplace(values)
    if not value.is_Rational:
        return math.inf
    return _log10_digits(value)


def _log10_digits(value: sp.Rational) -> float:
    return math.log10(max(abs(value.p), 1)) + math.log10(value.q)


def digits(value: sp.Rational) -> int:
    """The digits written out for an exact value: numerator and denominator (when not 1).

    Counted exactly up to about 3000 digits; beyond, from the bit length (Python refuses to write
    integers of over 4300 digits, and no such value is shown exactly anyway).

    >>> digits(sp.Rational(2) ** 1328), digits(sp.Rational(1, 3)), digits(sp.Integer(2) ** (8 ** 8)) > 5 * 10**6
    (400, 2, True)
    """
    return _integer_digits(abs(value.p)) + (_integer_digits(value.q) if value.q != 1 else 0)


def _integer_digits(n: int) -> int:
    if n.bit_length() < 10_000:
        return len(str(n))
    return int(n.bit_length() * math.log10(2)) + 1


@dataclass(frozen=True)
class Magnitude:
    """A real number as sign and log10|·|, with its exact value when it is small enough.

    >>> Magnitude.of(sp.Rational(1, 2) ** 50).approx
    '8.88e-16'
    """

    sign: int
    log10_abs: float
    exact: sp.Rational | None = None
    #: The value at high precision where one was computed (floats come from it, not from 10^log10).
    high: mpmath.mpf | None = None

    @classmethod
    def of(cls, value) -> "Magnitude":
        """From an exact SymPy number or an mpmath number."""
        exact = value if isinstance(value, sp.Rational) else None
        with mpmath.workdps(PRECISION):
            v = mpmath.mpf(value.p) / value.q if exact is not None else mpmath.mpf(value)
            if v == 0:
                return cls(0, -math.inf, exact, v)
            return cls(1 if v > 0 else -1, float(mpmath.log10(abs(v))), exact, v)

    @property
    def approx(self) -> str:
        """±m.mme±X from the logarithm alone: never overflows."""
        if self.sign == 0:
            return "0"
        if abs(self.log10_abs) >= 1e15:  # a float's log10 keeps no digits of the mantissa here
            return f"{'-' if self.sign < 0 else ''}10^{self.log10_abs:.6g}"
        exponent = math.floor(self.log10_abs)
        mantissa = 10 ** (self.log10_abs - exponent)
        if round(mantissa, 2) >= 10:
            mantissa, exponent = mantissa / 10, exponent + 1
        return f"{'-' if self.sign < 0 else ''}{mantissa:.2f}e{exponent:+d}"

    @property
    def float(self) -> float | None:
        """The value as a float64, or None where float64 would overflow or underflow."""
        if self.sign == 0:
            return 0.0
        if not -307 < self.log10_abs < 308:
            return None
        if self.exact is not None:
            return float(self.exact)
        if self.high is not None:
            return float(self.high)
        return self.sign * 10.0**self.log10_abs


def evaluate(expr: sp.Expr, values: dict) -> Magnitude:
    """``expr`` at ``values`` (symbol -> Rational), exactly when it has few enough digits."""
    # The estimate bounds the work; the digits actually written decide exactness.
    if exact_digits(expr, values) <= 4 * EXACT_DIGITS:
        value = expr.xreplace(values)
        if value.is_Rational and digits(value) <= EXACT_DIGITS:
            return Magnitude.of(value)
    log_value = log10_abs(expr).xreplace(values).evalf(PRECISION)
    sign_value = sign(expr).xreplace(values)
    if log_value == -sp.oo or sign_value == 0:
        return Magnitude(0, -math.inf)
    with mpmath.workdps(PRECISION):
        high = int(sign_value) * mpmath.power(10, mpmath.mpf(str(log_value)))
    return Magnitude(int(sign_value), float(log_value), None, high)
