"""Numeric layer: a layer of any size through BLAS (``layer``), grids of settings through
elementwise kernels (``unroll``, ``native``), weights and inputs from files, checks and studies.

The public entry point is ``gradients`` (what ``python cli.py numeric`` calls), taking the
command's options as keywords::

    >>> from numeric import gradients
    >>> r = gradients(cell="lstm", hidden=4, batch=2, steps=10)
    >>> sorted(r.grads)[:3], r.steps
    (['W_hf', 'W_hg', 'W_hi'], 10)

In Jupyter the result shows a short HTML table.
"""


def gradients(weights=None, **options):
    """Unroll a cell and differentiate it through time: ``numeric.run.run(Request(**options))``.

    ``options`` are ``numeric.run.Request``'s fields (cell, hidden, steps, batch, params_file,
    grid, mode, ...); ``weights`` maps parameter names to arrays.  Returns a ``LayerRun`` (shared
    weights, any hidden size) or a ``NumericResult`` (a grid of settings).
    """
    from .run import Request, run

    return run(Request(**options), weights)


__all__ = ["gradients"]
