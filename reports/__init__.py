"""Figures and multi-page reports drawn from ``numeric.studies`` results (matplotlib only draws here).

The public entry point is ``figure`` (one figure of ``python cli.py report`` by name), which
returns a matplotlib ``Figure`` and writes nothing::

    >>> from reports import figure
    >>> type(figure("explode")).__name__
    'Figure'
"""


def figure(name: str, steps: int = 50, seed: int = 0):
    """The report's figure ``name`` (explode, unrolled, cliff, ...), computed and drawn; no file is written."""
    from derive.errors import InvalidValue

    from .build import NAMES, sections

    chosen = [s for s in sections(steps, seed) if s.name == name]
    if not chosen:
        raise InvalidValue("only", f"unknown figure {name!r}; allowed: {', '.join(NAMES)}")
    return chosen[0].draw(chosen[0].compute())


__all__ = ["figure"]
