"""Symbolic layer: cells, unrolled graphs, Jacobians and BPTT through time (SymPy only).

The public entry point is ``solve`` (what ``python cli.py derive`` calls)::

    >>> from derive import solve
    >>> d = solve("rnn", steps=50, settings=("w=2",))
    >>> d.evaluations[0].entries[0].exact
    1125899906842624

In Jupyter a ``Derivation`` shows its equations as LaTeX.
"""

from .solution import Derivation, solve

__all__ = ["Derivation", "solve"]
