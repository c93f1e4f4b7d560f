"""Symbolic layer: cells, unrolled graphs, Jacobians and BPTT through time (SymPy only).

The public entry point is ``solve`` (what ``python cli.py derive`` calls)::

    >>> from derive import solve
    >>> d = solve("rnn", steps=50, settings=("w=2",))
    >>> d.evaluations[0].entries[0].exact
    1125899906842624

In Jupyter a ``Derivation`` shows its equations as LaTeX.
"""

from .errors import named
from .render import Derivation
from .solution import solve as _solve


def solve(cell: str = "rnn", **options) -> Derivation:
    """``derive.solution.solve``, with a bad value's error naming the argument (``hidden: …``)."""
    with named():
        return _solve(cell, **options)


solve.__doc__ = (_solve.__doc__ or "") + "\n    A bad value raises ``InvalidValue`` naming the argument."

__all__ = ["Derivation", "solve"]
