"""Input sequences x_1..x_T for a batch: typed, read from a file, or drawn.

Text goes through ``derive.values.parse_inputs`` (one parser for derive and
numeric: exact numbers, then floats).  A file holds one sequence (T, m) or a
batch (B, T, m), as ``.json`` (nested lists), ``.npy`` or ``.npz`` (one array,
or the one named ``x``).  The result is always (B, T, m).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from derive.errors import InvalidValue
from derive.values import parse_array
from derive.values import parse_inputs as parse_exact_inputs

from .arrayfiles import MAX_JSON_BYTES, _json_array, _read_json_value, _real, _regular_size

#: Default horizon when neither --steps nor inputs say.
DEFAULT_STEPS = 50
#: The most steps a request may have.
MAX_STEPS = 10**6


def check_steps(steps: int | None) -> None:
    if steps is not None and not 1 <= steps <= MAX_STEPS:
        raise InvalidValue("steps", f"must be a whole number from 1 to {MAX_STEPS}, got {steps}")


def read_inputs(path: str, m: int) -> tuple[np.ndarray, bool]:
    """(B, T, m) from a file, and whether the file held a batch (B, T, m) rather than one (T, m)."""
    suffix = Path(path).suffix.lower()
    size = _regular_size(path, "inputs")
    if suffix == ".json":
        if size > MAX_JSON_BYTES:
            raise InvalidValue("inputs", f"{path} is {size} bytes; allowed: JSON files up to 256 MiB")
        x = _json_array(path, "the inputs", _read_json_value(path, "inputs"), "inputs")
    elif suffix in (".npy", ".npz"):
        x = _read_numpy(path)
    else:
        raise InvalidValue("inputs", f"{path}: unknown file type {suffix or '(none)'!r}; allowed: .json, .npy, .npz")
    if x.ndim == 1 and m == 1:
        x = x[:, None]
    if x.ndim not in (2, 3) or x.shape[-1] != m or 0 in x.shape:
        raise InvalidValue("inputs", f"{path} holds shape {x.shape}; allowed: (T, {m}) for one sequence "
                           f"or (B, T, {m}) for a batch")
    if not np.isfinite(x).all():
        raise InvalidValue("inputs", f"{path} holds a number that is not finite; allowed: finite numbers")
    return (x if x.ndim == 3 else x[None]), x.ndim == 3


def _read_numpy(path: str) -> np.ndarray:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise InvalidValue("inputs", f"cannot read {path}: {error}") from None
    if isinstance(data, np.ndarray):
        return _real(path, "the inputs", data, "inputs")
    with data:
        names = data.files
        if len(names) != 1 and "x" not in names:
            raise InvalidValue("inputs", f"{path} holds {', '.join(names)}; allowed: one array, or one named x")
        return _real(path, "x", data["x" if "x" in names else names[0]], "inputs")


def inputs(text: str | None, path: str | None, steps: int | None, m: int,
           batch: int | None, seed: int) -> tuple[np.ndarray, bool]:
    """x as (B, T, m) and whether it is a batch: from ``text``, ``path``, random draws
    N(0, 1) for ``batch`` sequences, or x_t = 1 (the lecture's default)."""
    check_steps(steps)
    given = [name for name, value in (("inputs", text), ("inputs_file", path)) if value is not None]
    if len(given) > 1:
        raise InvalidValue("inputs", "give typed inputs or an inputs file, not both")
    if batch is not None and (given or not 1 <= batch <= 1 << 20):
        raise InvalidValue("batch", "draws random inputs: a whole number from 1 to 1048576, "
                           "without typed inputs or an inputs file")
    if path is not None:
        x, batched = read_inputs(path, m)
    elif text is not None:
        if m != 1:
            raise InvalidValue("inputs_text", f"typed inputs are for input size 1; input size {m} needs a file")
        typed = parse_array(text, "inputs_text") if text.strip().startswith("[") else text.split(",")
        T = steps or (len(typed) if isinstance(typed, list) else 1)
        x = np.array([[float(v[0]) for v in parse_exact_inputs(text, T, m)]], dtype=float)[..., None]
        return x, False
    elif batch is not None:
        return np.random.default_rng(seed).standard_normal((batch, steps or DEFAULT_STEPS, m)), True
    else:
        return np.ones((1, steps or DEFAULT_STEPS, m)), False
    if steps is not None and x.shape[1] != steps:
        if x.shape[1] != 1:
            raise InvalidValue("inputs", f"{path} holds {x.shape[1]} steps; allowed: 1 or the {steps} steps asked for")
        x = np.repeat(x, steps, axis=1)
    return x, batched
