"""A run as data: JSON-ready (large arrays named under ``omitted`` instead) and arrays for
``np.savez`` (gradients in our names, and PyTorch's on request)."""

from __future__ import annotations

import math

import numpy as np

from derive.errors import InvalidValue
from derive.regime import judge
from derive.render import finite, regime_json

from ..io.weights import torch_names
from ..result import Run
from .text import regime


def _jacobian_json(m) -> dict:
    """∂s_T/∂s_0 as mantissa × 10^scale always, and as plain numbers only where float64 holds
    every entry: an entry that under- or overflows makes ``jacobian`` null, never a silent 0.0."""
    if m is None:
        return {"jacobian": None, "jacobian_mantissa": None, "jacobian_log10_scale": None}
    plain = m.to_float()
    lost = ~np.isfinite(plain) | ((plain == 0) & (m.mantissa != 0))
    return {"jacobian": None if lost.any() else [_finite_or_none(row) for row in plain],
            "jacobian_mantissa": [_finite_or_none(row) for row in m.mantissa],
            "jacobian_log10_scale": float(m.log10_scale)}


def _finite_or_none(values):
    return finite(np.ravel(values).tolist())


def _unbatched(r: Run, a: np.ndarray) -> np.ndarray:
    """An array with the batch axis first, without it when the inputs were one sequence."""
    return a if r.batched else a[0]


#: JSON lists arrays of at most this many numbers; larger ones are named with their shape under
#: ``omitted`` (an .npz holds them): a 4096-unit layer's gradients would be gigabytes of text.
JSON_ARRAY_LIMIT = 100_000


def _listed(a: np.ndarray, name: str, omitted: dict, scalar: bool = False):
    a = np.asarray(a)
    if a.size > JSON_ARRAY_LIMIT:
        omitted[name] = list(a.shape)
        return None
    return float(a.ravel()[0]) if scalar and a.size == 1 else a.tolist()


def _per_sequence(r: Run, a: np.ndarray | None, name: str, omitted: dict):
    return None if a is None else _listed(_unbatched(r, a), name, omitted)


def _grad_norms(r: Run, omitted: dict) -> dict:
    """‖∂L/∂θ‖ (Frobenius) per parameter, per setting of a grid."""
    shapes = r.layer.shapes()
    return {k: _listed(np.sqrt(np.sum(np.square(v), axis=tuple(range(v.ndim - len(shapes[k]), v.ndim)))),
                       f"grad_norm.{k}", omitted, scalar=True) for k, v in r.grads.items()}


def to_json(r: Run) -> dict:
    """A run as JSON-ready data (keys listed in docs/numeric.md); a grid's settings with their
    gradients and norms, and every array of a layer that is small enough to list."""
    lay, omitted = r.layer, {}
    out = {
        "cell": lay.name, "variant": lay.variant, "hidden": lay.n, "input_size": lay.m, "steps": r.steps,
        "batch": int(r.inputs.shape[0]), "mode": r.mode, "dtype": r.dtype, "weights": r.source,
        "grad": {k: _listed(v, f"grad.{k}", omitted, scalar=True) for k, v in r.grads.items()},
        "grad_norm": _grad_norms(r, omitted),
    }
    if r.grid:
        out["grid"] = {name: values.tolist() for name, values in r.grid}
        out["log10_norm_jacobian"] = _listed(np.where(np.isfinite(r.jacobian.log10_norm()), r.jacobian.log10_norm(),
                                                      np.nan), "log10_norm_jacobian", omitted)
        out["omitted"] = omitted
        return out
    out.update({
        "states": None if r.states is None else
        {s: _listed(_unbatched(r, v[1:].transpose(1, 0, 2)), f"states.{s}", omitted) for s, v in r.states.items()},
        "quantities": {name: r.trace[:, i].tolist() for i, name in enumerate(r.quantities)} if r.trace is not None else None,
        "grad_initial_state": None if r.initial_grads is None else
        {f"{s}_0": _per_sequence(r, v, f"grad_initial_state.{s}_0", omitted) for s, v in r.initial_grads.items()},
        **_jacobian_json(r.jacobian),
        "log10_norm_jacobian": float(r.by_lag[-1]) if r.by_lag is not None else (
            float(r.jacobian.log10_norm()) if r.jacobian is not None else None),
        "log10_norm_by_lag": _finite_or_none(r.by_lag) if r.by_lag is not None else None,
        "log10_adjoint": None if r.log10_adjoint is None else (
            [_finite_or_none(row) for row in r.log10_adjoint.T] if r.batched else _finite_or_none(r.log10_adjoint[:, 0])),
        "recurrent_sigma1": dict(r.recurrent),
        "regime": regime_json(regime(r)),
        "omitted": omitted,  # field -> shape of each array too large to list (null above)
    })
    return out


def arrays(r: Run, torch_keys: bool = False) -> dict[str, np.ndarray]:
    """Everything computed, as arrays for ``np.savez``; gradients as ``grad_<name>`` in our
    names at every size, and with ``torch_keys`` under PyTorch's too (``grad_weight_ih_l0``)."""
    if r.grid and torch_keys:
        raise InvalidValue("torch_names", "PyTorch's keys name one layer's weights; a grid has many")
    out = {f"grad_{k}": v for k, v in r.grads.items()}
    out.update({f"grid_{name}": v for name, v in r.grid})
    if r.grid:
        out["log10_norm_jacobian"] = r.jacobian.log10_norm()
    else:
        out["inputs"] = _unbatched(r, r.inputs)
    if r.initial_grads is not None:
        out.update({f"grad_{s}_0": _unbatched(r, v) for s, v in r.initial_grads.items()})
    if r.states is not None:
        out.update({s: _unbatched(r, v.transpose(1, 0, 2)) for s, v in r.states.items()})
    if r.log10_adjoint is not None:
        out["log10_adjoint"] = _unbatched(r, r.log10_adjoint.T)
    if r.by_lag is not None:
        out["log10_norm_by_lag"] = r.by_lag
    if r.jacobian is not None:
        out["jacobian_mantissa"], out["jacobian_log10_scale"] = r.jacobian.mantissa, r.jacobian.log10_scale
    if r.trace is not None:
        out["quantities"] = r.trace
    if torch_keys:
        named = torch_names(r.layer.name, r.layer.variant, r.grads, r.layer_index)
        out.update({f"grad_{k}": v for k, v in named.items()})
    return out


def power_json(p) -> dict:
    rate = p.log10_norm / p.steps if math.isfinite(p.log10_norm) else None
    return {"weight": p.weight, "steps": p.steps, "log10_norm": finite(p.log10_norm), "sigma1": p.sigma1,
            "regime": regime_json(judge(p.weight, 1, p.sigma1, p.steps, rate))}
