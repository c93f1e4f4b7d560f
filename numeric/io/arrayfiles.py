"""Arrays from files a user names: JSON, NumPy's .npy/.npz, safetensors, PyTorch's .pt.

Every reader refuses what is not a regular file (``/dev/zero`` would never end),
JSON beyond 256 MiB, non-finite numbers, quoted numbers and duplicate keys, and
unpickles nothing.  Errors are ``InvalidValue`` for the caller's ``field``.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from derive.errors import InvalidValue

MAX_JSON_BYTES = 256 * 2**20
MAX_DEPTH = 3


def _reason(error: BaseException) -> str:
    """An exception's first line: library messages may run over several."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text.splitlines()[0]


def read_tensors(path: str, field: str = "params") -> dict[str, np.ndarray]:
    """Name -> float64 array from a .json, .npz, .safetensors, or (with torch) .pt/.pth file.

    >>> read_tensors("weights.h5")
    Traceback (most recent call last):
    ...
    derive.errors.InvalidValue: weights.h5: unknown file type '.h5'; allowed: .json, .npz, .safetensors, .pt, .pth
    """
    suffix = Path(path).suffix.lower()
    readers = {".json": _read_json, ".npz": _read_npz, ".safetensors": _read_safetensors,
               ".pt": _read_torch, ".pth": _read_torch}
    if suffix not in readers:
        raise InvalidValue(field, f"{path}: unknown file type {suffix or '(none)'!r}; allowed: {', '.join(readers)}")
    size = _regular_size(path, field)
    if suffix == ".json" and size > MAX_JSON_BYTES:
        raise InvalidValue(field, f"{path} is {size} bytes; allowed: JSON files up to {MAX_JSON_BYTES} bytes (256 MiB)")
    tensors = readers[suffix](path, field)
    for key, array in tensors.items():
        if not np.isfinite(array).all():
            index = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
            where = f"{key}[{', '.join(map(str, index))}]" if index else key
            raise InvalidValue(field, f"{path}: {where} is {array[index]}; allowed: finite numbers")
    return tensors


def _regular_size(path: str, field: str) -> int:
    """The size of a regular file; a device (/dev/zero) or a pipe would never end or never come."""
    try:
        status = os.stat(path)
    except OSError as error:
        raise InvalidValue(field, f"cannot read {path}: {_reason(error)}") from None
    mode = status.st_mode
    if not stat.S_ISREG(mode):
        kinds = {stat.S_ISDIR: "folder", stat.S_ISCHR: "character device", stat.S_ISBLK: "block device",
                 stat.S_ISFIFO: "named pipe", stat.S_ISSOCK: "socket"}
        kind = next((name for test, name in kinds.items() if test(mode)), "special file")
        raise InvalidValue(field, f"{path} is a {kind}, not a regular file; allowed: regular files")
    return status.st_size


class _NotFinite(str):
    """A JSON number that is not finite (NaN, Infinity, 1e999), kept as its text to name it."""


def _json_number(text: str) -> float | _NotFinite:
    # ints too: float() has no 4300-digit limit, and every value becomes float64 anyway
    value = float(text)
    return value if math.isfinite(value) else _NotFinite(text)


def _read_json_value(path: str, field: str):
    """A JSON file's value, strictly: no duplicate keys, NaN, Infinity or 1e999 (kept as text to
    be named), every number a float."""
    def unique(pairs):
        seen = {}
        for key, value in pairs:
            if key in seen:
                raise InvalidValue(field, f"{path}: key {key!r} appears twice; allowed: each name once")
            seen[key] = value
        return seen

    try:
        with open(path, "rb") as handle:
            text = handle.read(MAX_JSON_BYTES + 1)  # + 1: a file that grew since stat
        if len(text) > MAX_JSON_BYTES:
            raise InvalidValue(field, f"{path} is over {MAX_JSON_BYTES} bytes; allowed: JSON files up to 256 MiB")
        return json.loads(text, object_pairs_hook=unique, parse_float=_json_number,
                          parse_int=_json_number, parse_constant=_NotFinite)
    except OSError as error:
        raise InvalidValue(field, f"cannot read {path}: {_reason(error)}") from None
    except RecursionError:
        raise InvalidValue(field, f"{path} nests too deeply; allowed: lists up to {MAX_DEPTH} deep") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise InvalidValue(field, f"{path} is not valid JSON: {_reason(error)}") from None


def _read_json(path: str, field: str) -> dict[str, np.ndarray]:
    data = _read_json_value(path, field)
    if not isinstance(data, dict):
        kind = "array" if isinstance(data, list) else "value"
        raise InvalidValue(field, f"{path} holds a JSON {kind}, not an object; "
                           "allowed: an object of name -> number or nested list")
    return {key: _json_array(path, key, value, field) for key, value in data.items()}


def _json_array(path: str, key: str, value, field: str) -> np.ndarray:
    """A number or nested list of numbers, at most ``MAX_DEPTH`` lists deep, as float64."""
    def check(item, depth: int) -> None:
        if isinstance(item, list):
            if depth == MAX_DEPTH:
                raise InvalidValue(field, f"{path}: {key} nests lists deeper than {MAX_DEPTH}; allowed: lists up to {MAX_DEPTH} deep")
            for inner in item:
                check(inner, depth + 1)
        elif isinstance(item, _NotFinite):
            raise InvalidValue(field, f"{path}: {key} holds {item}, which is not a finite number; allowed: finite numbers")
        elif not isinstance(item, float):  # true, null, "2", {…}: ints arrive as floats
            shown = json.dumps(item)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise InvalidValue(field, f"{path}: {key} holds {shown}, which is not a number; allowed: numbers or nested lists of numbers")

    check(value, 0)
    try:
        return np.array(value, dtype=np.float64)
    except ValueError:
        raise InvalidValue(field, f"{path}: {key} is a ragged list; allowed: rows of equal length") from None


def _real(path: str, key: str, array: np.ndarray, field: str) -> np.ndarray:
    if array.dtype.kind not in "iuf":
        raise InvalidValue(field, f"{path}: {key} has dtype {array.dtype}; allowed: real numbers (float or int)")
    return array.astype(np.float64)


#: The .npz member that holds what wrote the file (``train --out``: the settings), as JSON text.
METADATA = "__metadata__"


def _load_npz(path: str, field: str) -> dict[str, np.ndarray]:
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise InvalidValue(field, f"{path} holds one unnamed array; allowed: named arrays (np.savez(path, W_hh=...))")
        with data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise InvalidValue(field, f"cannot read {path} as .npz: {_reason(error)}") from None


def _read_npz(path: str, field: str) -> dict[str, np.ndarray]:
    arrays = _load_npz(path, field)
    return {key: _real(path, key, array, field) for key, array in arrays.items() if key != METADATA}


def with_metadata(arrays: Mapping[str, np.ndarray], metadata: Mapping) -> dict[str, np.ndarray]:
    """``arrays`` and ``metadata`` (JSON-ready) as one mapping for ``np.savez``."""
    return {**arrays, METADATA: np.array(json.dumps(metadata, allow_nan=False))}


def read_metadata(path: str, field: str = "params") -> dict:
    """What ``with_metadata`` stored in a .npz file; {} for any other file or none stored."""
    if Path(path).suffix.lower() != ".npz":
        return {}
    _regular_size(path, field)
    text = _load_npz(path, field).get(METADATA)
    if text is None:
        return {}
    try:
        data = json.loads(str(text))
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise InvalidValue(field, f"{path}: {METADATA} is not a JSON object")
    return data


def _read_safetensors(path: str, field: str) -> dict[str, np.ndarray]:
    try:
        from safetensors import SafetensorError
        from safetensors.numpy import load_file
    except ImportError:
        raise InvalidValue(field, f"reading {path} needs the safetensors package: pip install 'unrolled[weights]'") from None
    try:
        arrays = load_file(path)
    except (TypeError, AttributeError):  # NumPy has no bfloat16 (nor float8): read the format ourselves
        arrays = _read_safetensors_widened(path, field)
    except (OSError, SafetensorError) as error:
        raise InvalidValue(field, f"cannot read {path} as .safetensors: {_reason(error)}") from None
    return {key: _real(path, key, array, field) for key, array in arrays.items()}


_SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
                       "I8": "i1", "U8": "u1"}


def _read_safetensors_widened(path: str, field: str) -> dict[str, np.ndarray]:
    """A .safetensors file read by its format (an 8-byte header length, a JSON header, raw bytes), with
    bfloat16 widened to float32 exactly: a bfloat16 is the top 16 bits of the float32 it stands for."""
    data = Path(path).read_bytes()
    try:
        length = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + length])
        out = {}
        for key, entry in header.items():
            if key == "__metadata__":
                continue
            start, end = (8 + length + offset for offset in entry["data_offsets"])
            raw, dtype = data[start:end], entry["dtype"]
            if dtype == "BF16":
                array = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
            elif dtype in _SAFETENSORS_DTYPES:
                array = np.frombuffer(raw, _SAFETENSORS_DTYPES[dtype])
            else:
                raise InvalidValue(field, f"{path}: {key} has dtype {dtype}; allowed: float64/32/16, bfloat16 or int")
            out[key] = array.reshape(entry["shape"])
    except (ValueError, KeyError, TypeError) as error:
        raise InvalidValue(field, f"cannot read {path} as .safetensors: {_reason(error)}") from None
    return out


def _read_torch(path: str, field: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise InvalidValue(field, f"reading {path} needs PyTorch (pip install torch); "
                      "or save the state_dict as .safetensors or .npz") from None
    try:  # weights_only: tensors and plain containers, never arbitrary pickled objects
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise InvalidValue(field, f"{path} holds pickled Python objects, not only tensors (a whole model saved "
                           "with torch.save(model)?); nothing in it was run. Save the weights instead: "
                           "torch.save(model.state_dict(), path)") from None
    except (OSError, EOFError, RuntimeError, TypeError, ValueError, zipfile.BadZipFile) as error:
        raise InvalidValue(field, f"cannot read {path} as a PyTorch file: it is damaged, cut short or not "
                           f"written by torch.save ({_reason(error)})") from None
    if not isinstance(state, Mapping):
        raise InvalidValue(field, f"{path} holds a {type(state).__name__}; allowed: a state_dict (model.state_dict())")
    out = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise InvalidValue(field, f"{path}: {key!r} is a {type(value).__name__}; allowed: a state_dict of name -> tensor")
        if value.is_complex() or value.dtype == torch.bool:
            raise InvalidValue(field, f"{path}: {key} has dtype {value.dtype}; allowed: real numbers (float or int)")
        out[key] = value.detach().to(torch.float64).numpy()
    return out
