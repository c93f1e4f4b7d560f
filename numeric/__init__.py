"""Numeric layer: one engine (``engine``) runs a layer of any size and a grid of settings alike,
by BPTT, forward mode or generated C; weights and inputs from files, checks and studies.

The public entry point is ``gradients`` (what ``python cli.py numeric`` calls), taking the
command's options as keywords, and a model's weights and inputs as arrays::

    >>> import numpy as np
    >>> from numeric import gradients
    >>> r = gradients(cell="lstm", hidden=4, batch=2, steps=10)
    >>> sorted(r.grads)[:3], r.steps
    (['W_hf', 'W_hg', 'W_hi'], 10)
    >>> rng = np.random.default_rng(0)       # an nn.LSTM(3, 5) state_dict, as model.state_dict() gives it
    >>> state = {"weight_ih_l0": rng.normal(size=(20, 3)), "weight_hh_l0": rng.normal(size=(20, 5)),
    ...          "bias_ih_l0": np.zeros(20), "bias_hh_l0": np.zeros(20)}
    >>> r = gradients(state, inputs=rng.normal(size=(7, 3)), cell="lstm")
    >>> r.layer.n, r.layer.m, r.steps, r.grads["W_hi"].shape
    (5, 3, 7, (5, 5))

In Jupyter the result shows a short HTML table.
"""


def gradients(weights=None, inputs=None, **options):
    """Unroll a cell and differentiate it through time: ``numeric.run.run(Request(**options))``.

    ``weights``: a mapping of parameter names to arrays, in our names (``W_hh``) or a PyTorch
    ``state_dict`` (``weight_ih_l0`` …, under any module prefix; torch tensors are converted), its
    sizes read off the shapes.  ``inputs``: x as an array, (T, m) or (B, T, m).  ``options`` are
    ``numeric.io.request.Request``'s fields (cell, hidden, steps, batch, params_file, grid, mode, settings, ...).
    Returns a ``numeric.result.Run``: a layer's (shared weights, any hidden size) or a grid's (``grid``
    names its axes).  A bad value raises ``derive.errors.InvalidValue`` naming the argument.
    """
    from derive.errors import named

    from .run import Request, run

    with named():
        state = None if weights is None else {key: _array(value) for key, value in dict(weights).items()}
        return run(Request(**options), state_dict=state, x=None if inputs is None else _array(inputs))


def _array(value):
    """A NumPy array from an array, a list or a torch tensor (detached, on the CPU, bfloat16 widened)."""
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().cpu()
        if str(getattr(value, "dtype", "")) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
    return np.asarray(value, dtype=float)


__all__ = ["gradients"]
