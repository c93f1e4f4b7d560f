"""What a request works on: weights from a file, a state_dict, settings or a draw, and inputs given as
an array; each checked, with where it came from said in words."""

from __future__ import annotations


import numpy as np

from derive.core import Layer
from derive.errors import InvalidValue
from derive.values import parameter_names, parse_array

from .arrayfiles import read_metadata
from ..init import default_t_max, describe, draw
from ..engine.shapes import MAX_HIDDEN
from .request import Request
from .weights import cell_params, torch_keyed



def requested_sizes(req: Request) -> tuple[int, int]:
    """(n, m) as the request gives them: n defaults to 1, m to n; each within 1..MAX_HIDDEN."""
    n = 1 if req.hidden is None else req.hidden
    m = n if req.input_size is None else req.input_size
    for field, size in (("hidden", n), ("input_size", m)):
        if not 1 <= size <= MAX_HIDDEN:
            raise InvalidValue(field, f"must be a whole number from 1 to {MAX_HIDDEN}, got {size}")
    return n, m


def given_inputs(x, m: int, req: Request) -> tuple[np.ndarray, bool]:
    """Inputs given as an array, (T, m) or (B, T, m), checked as a file's are."""
    if req.inputs is not None or req.inputs_file is not None or req.batch is not None:
        raise InvalidValue("inputs", "give the inputs as an array, as text or a file, or drawn: one of them")
    x = np.asarray(x, dtype=float)
    if x.ndim == 1 and m == 1:
        x = x[:, None]
    if x.ndim not in (2, 3) or x.shape[-1] != m or 0 in x.shape or not np.isfinite(x).all():
        raise InvalidValue("inputs", f"inputs of shape {x.shape}; allowed: finite numbers shaped (T, {m}) or (B, T, {m})")
    if req.steps is not None and x.shape[-2] != req.steps:
        raise InvalidValue("steps", f"the inputs have {x.shape[-2]} steps, not {req.steps}")
    return (x if x.ndim == 3 else x[None]), x.ndim == 3


def file_activation(req: Request, definition, tensors) -> tuple[str | None, str]:
    """(the activation, why) of a cell that takes one, when a weights file is read and none is asked:
    what ``train --out`` recorded, else for a PyTorch state_dict nn.RNN's default, tanh.  A state_dict
    does not record nn.RNN's nonlinearity, and no nn.RNN is linear."""
    if req.activation is not None or tensors is None or not definition.activations:
        return req.activation, ""
    recorded = read_metadata(req.params_file).get("activation") if req.params_file else None
    if recorded in definition.activations:
        return recorded, f"activation {recorded}, as the file records"
    if torch_keyed(tensors):
        return "tanh", ("activation tanh, nn.RNN's default: a state_dict does not record the nonlinearity "
                        "(relu if the model was nn.RNN(nonlinearity='relu'))")
    return None, ""


def file_weights(req: Request, definition, variant: str, tensors) -> tuple[dict | None, int, int, str | None]:
    """(parameters or None, n, m, where they came from); n, m from the file or the request."""
    if tensors is None:
        return None, *requested_sizes(req), None
    label = req.params_file or "the weights given"
    params, n, m = cell_params(tensors, definition, variant, req.layer_index, req.prefix)
    for field, given, found in (("hidden", req.hidden, n), ("input_size", req.input_size, m)):
        if given is not None and given != found:
            raise InvalidValue(field, f"{label} has {field.replace('_', ' ')} {found}, not {given}")
    layer = f" (layer {req.layer_index})" if req.layer_index else ""
    return params, n, m, f"{label}{layer}"


def set_values(layer: Layer, settings: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``--set NAME=VALUE`` for the parameters given (one number fills a matrix)."""
    shapes, names = layer.shapes(), parameter_names(layer)
    values = {}
    for item in settings:
        name, sep, text = item.partition("=")
        if not sep or name.strip() not in names:
            raise InvalidValue("set", f"{item!r} is not NAME=VALUE with NAME one of {', '.join(layer.param_names())}")
        key = names[name.strip()]
        value = np.array(parse_array(text, "set"), dtype=float)
        if len(shapes[key]) == 1 and value.ndim == 2 and value.shape[1] == 1:
            value = value[:, 0]  # a vector given as a column, [[1], [2]]
        try:
            values[key] = np.broadcast_to(value, shapes[key]).copy()
        except ValueError:
            raise InvalidValue("set", f"{key} has shape {shapes[key]}; got {value.shape}") from None
    return values


def drawn(form, req: Request, steps: int) -> tuple[dict, str]:
    """(parameters, how they were drawn) when no file gives them: the request's gate initialisation
    (chrono's T_max defaults to the run's T) and seed."""
    if not form.param_names():
        return {}, "the cell's own fixed weights"
    t_max = (req.t_max or default_t_max(steps)) if req.gate_init == "chrono" else None
    params = draw(form, (), req.seed, init=req.gate_init, forget_bias=req.forget_bias, t_max=t_max)
    return params, f"{describe(req.gate_init, req.forget_bias, t_max)} initialisation, seed {req.seed}"
