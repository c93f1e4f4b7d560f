"""Trained weights in, gradients out under PyTorch's names.

PyTorch's ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` stack their gate blocks in
rows: for gates g_1..g_G (LSTM i, f, g, o; GRU r, z, n) of layer k,
weight_ih_l{k} = [W_x{g_1}; …; W_x{g_G}] is (G·n, m), weight_hh_l{k} is (G·n, n),
and each gate's pre-activation is W_x{g} x + bias_ih[g] + W_h{g} h + bias_hh[g].
Where our cell has one bias a gate, b_g = bias_ih[g] + bias_hh[g]; the GRU's
candidate keeps them apart, n = tanh(W_xn x + b_xn + r ⊙ (W_hn h + b_hn)).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from derive.cell import CellDef, Param
from derive.cells import CELLS
from derive.errors import InvalidValue



GATES = {"rnn": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
"""Each cell's gate blocks in the order PyTorch stacks them; one block for the RNN."""

APART = {"gru": ("n",)}

#: What ``train --out`` saves beside a cell's weights: the readout, in our names and nn.Linear's.
TRAINED_READOUT = frozenset({"W_hq", "b_q", "fc.weight", "fc.bias"})
"""Gates whose input and hidden biases stay apart: r multiplies W_hn h + b_hn, not b_xn."""

MODULES = {"rnn": "nn.RNN", "lstm": "nn.LSTM", "gru": "nn.GRU"}
TORCH_VARIANT = "standard"  # the only variant of each cell whose equations PyTorch's modules compute
_TORCH_KEY = re.compile(r"(?P<prefix>(?:.+\.)?)(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
                        r"_l(?P<layer>\d+)(?P<reverse>_reverse)?")


def _refuse(message: str) -> InvalidValue:
    return InvalidValue("params", message)


# --- Our names <-> PyTorch's --------------------------------------------------


def cell_params(tensors: Mapping[str, np.ndarray], cell: str | CellDef, variant: str,
                layer: int = 0, prefix: str | None = None) -> tuple[dict[str, np.ndarray], int, int]:
    """(name -> float64 array, n, m) for one layer, from our names or a PyTorch state_dict.

    Weights are (rows, cols), biases (n,); n and m come from the shapes.
    For PyTorch's layout, W_x{g} = weight_ih[g-th block of n rows] and
    b_g = bias_ih[block] + bias_hh[block] (the GRU keeps b_xn, b_hn apart).

    >>> rng = np.random.default_rng(0)
    >>> state = {"weight_ih_l0": rng.normal(size=(8, 2)), "weight_hh_l0": rng.normal(size=(8, 2))}
    >>> params, n, m = cell_params(state, "lstm", "standard")
    >>> n, m, params["b_f"].tolist(), bool((params["W_xf"] == state["weight_ih_l0"][2:4]).all())
    (2, 2, [0.0, 0.0], True)
    """
    definition = CELLS[cell] if isinstance(cell, str) and cell in CELLS else cell
    table = _table(definition, variant)
    cell = definition.name if isinstance(definition, CellDef) else cell
    found = _torch_keys(tensors, prefix)
    if found is not None:
        _check_torch_variant(cell, variant)
        return _from_torch(tensors, cell, table, layer, *found)
    if layer != 0:
        raise InvalidValue("layer", f"a file of Unrolled's parameter names holds one layer; available: 0; got {layer}")
    if prefix:
        raise InvalidValue("prefix", f"names a module of a PyTorch state_dict; these weights are in Unrolled's "
                           f"names ({', '.join(sorted(tensors)[:3])}, …), one cell's, with no modules to choose")
    arrays = _our_arrays(tensors, definition, variant, table)
    return arrays, *_sizes(arrays, table)


def torch_names(cell: str, variant: str, grads: Mapping[str, np.ndarray], layer: int = 0,
                weights: bool = False) -> dict[str, np.ndarray]:
    """Our gradients (or, with ``weights``, our parameters) stacked under PyTorch's keys for ``layer``.

    A summed bias b_g = bias_ih[g] + bias_hh[g] enters additively, so
    ∂L/∂bias_ih[g] = ∂L/∂bias_hh[g] = ∂L/∂b_g; as weights, b_g goes to bias_ih
    and bias_hh is 0, so that reading them back sums to b_g.  A bias may be (n,)
    or, as ``numeric`` gives it, (n, 1).

    >>> grads = {"W_xh": np.ones((2, 1)), "W_hh": np.eye(2), "b_h": np.array([1.0, 2.0])}
    >>> torch_names("rnn", "standard", grads)["bias_hh_l0"].tolist()
    [1.0, 2.0]
    """
    table = _table(CELLS.get(cell, cell), variant)
    _check_torch_variant(cell, variant)
    if layer < 0:
        raise InvalidValue("layer", f"layer must be 0 or more; got {layer}")
    arrays = _our_arrays(grads, CELLS[cell], variant, table)
    _sizes(arrays, table)  # the shapes agree on one n and m, or a one-line error
    # a summed bias feeds both of PyTorch's (b[0] is b[-1]); kept apart, each feeds its own
    def apart(b):
        if weights and len(b) == 1:
            return arrays[b[0]], np.zeros_like(arrays[b[0]])
        return arrays[b[0]], arrays[b[-1]]

    blocks = [(arrays[w_x], arrays[w_h], *apart(b)) for w_x, w_h, b in (_gate_names(cell, gate) for gate in GATES[cell])]
    kinds = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return {f"{kind}_l{layer}": np.concatenate(parts) for kind, parts in zip(kinds, zip(*blocks))}


def _gate_names(cell: str, gate: str) -> tuple[str, str, tuple[str, ...]]:
    """W_x{gate}, W_h{gate} and the gate's bias: b_{gate}, or b_x{gate}, b_h{gate} kept apart."""
    biases = (f"b_x{gate}", f"b_h{gate}") if gate in APART.get(cell, ()) else (f"b_{gate}",)
    return f"W_x{gate}", f"W_h{gate}", biases


def _table(definition: CellDef | str, variant: str) -> tuple[Param, ...]:
    """The parameters a file must give: the cell's table less what the cell fixes."""
    if not isinstance(definition, CellDef):
        raise InvalidValue("cell", f"unknown cell {definition!r}; allowed: {', '.join(CELLS)}, custom")
    cell, tables = definition.name, definition.params
    if variant not in tables:
        raise InvalidValue("variant", f"{cell} has no variant {variant!r}; allowed: {', '.join(tables)}")
    table = tuple(p for p in tables[variant] if p.name not in definition.fixed)
    if not table:
        raise InvalidValue("cell", f"cell {cell!r} has its weights fixed and takes none from a file; "
                                   f"allowed: {', '.join(GATES)}, custom")
    return table


def _check_torch_variant(cell: str, variant: str) -> None:
    if cell not in GATES:
        raise InvalidValue("cell", f"a PyTorch state_dict maps to {', '.join(GATES)}; "
                                   f"a {cell} cell takes Unrolled's parameter names")
    if variant != TORCH_VARIANT:
        raise InvalidValue("variant", f"PyTorch's {MODULES[cell]} layout maps to {cell} {TORCH_VARIANT} only, "
                                      f"not {cell} {variant}; for {variant}, give Unrolled's parameter names")


def _our_arrays(tensors: Mapping[str, np.ndarray], definition: CellDef, variant: str,
                table: tuple[Param, ...]) -> dict[str, np.ndarray]:
    """Our names (or the lecture's aliases w, u) -> arrays in table order, every one present."""
    cell = definition.name
    aliases = {alias: name for name, alias in definition.scalar_names.items()}
    allowed = [p.name + "".join(f" (or {a})" for a, name in aliases.items() if name == p.name) for p in table]
    names, given = {p.name for p in table}, {}
    for key in (k for k in tensors if k not in TRAINED_READOUT):
        name = aliases.get(key, key)
        if name not in names:
            raise _refuse(f"{cell} {variant} has no parameter {key!r}; allowed: {', '.join(allowed)}")
        if name in given:
            raise _refuse(f"{name} is given twice, as {given[name]!r} and {key!r}; allowed: once")
        given[name] = key
    missing = [p.name for p in table if p.name not in given]
    if missing:
        raise _refuse(f"missing {', '.join(missing)}; {cell} {variant} needs {', '.join(allowed)}")
    return {p.name: _shaped(p, tensors[given[p.name]]) for p in table}


def _shaped(p: Param, value) -> np.ndarray:
    """A weight as (rows, cols), a bias or peephole as (n,) (given (n,) or (n, 1)); a number is 1 × 1."""
    a = np.asarray(value, dtype=np.float64)
    vector = p.cols == "1"
    if a.ndim == 0:
        return a.reshape((1,) if vector else (1, 1))
    if a.ndim == 1 and vector or a.ndim == 2 and not vector:
        return a
    if a.ndim == 2 and a.shape[1] == 1:
        return a[:, 0]
    allowed = f"({p.rows},) or ({p.rows}, 1)" if vector else f"({p.rows}, {p.cols})"
    raise _refuse(f"{p.name} has shape {a.shape}; allowed: {allowed}")


def _sizes(arrays: Mapping[str, np.ndarray], table: tuple[Param, ...]) -> tuple[int, int]:
    """n and m, read off the parameters in table order; every later shape must agree."""
    sizes, source = {"1": 1}, {}
    for p in table:
        dims, shape = ((p.rows,) if p.cols == "1" else (p.rows, p.cols)), arrays[p.name].shape
        for letter, size in zip(dims, shape):
            if letter not in sizes:
                sizes[letter], source[letter] = size, p.name
        expected = tuple(sizes[d] for d in dims)
        if shape != expected or 0 in shape:
            known = ", ".join(f"{d} = {sizes[d]} from {source[d]}" for d in source)
            letters = f"({', '.join(dims)}{',' * (len(dims) == 1)})"
            rule = "n and m must be at least 1" if 0 in shape else f"expected {expected} = {letters} with {known}"
            raise _refuse(f"{p.name} has shape {shape}; {rule}")
    return sizes.get("n", 1), sizes.get("m", 1)  # a scalar (custom) cell has neither


def torch_keyed(tensors: Mapping[str, np.ndarray]) -> bool:
    """Whether ``tensors`` is a PyTorch recurrent module's state_dict (weight_ih_l0, …)."""
    return _torch_keys(tensors) is not None


def _torch_keys(tensors: Mapping[str, np.ndarray], prefix: str | None = None
                ) -> tuple[str, dict[int, dict[str, str]]] | None:
    """The one module prefix (``prefix``, where the file holds several) and layer -> kind -> key of a
    PyTorch RNN state_dict, or None."""
    found = {key: match for key in tensors if (match := _TORCH_KEY.fullmatch(key))}
    if not found:
        return None
    prefixes = sorted({match["prefix"] for match in found.values()})
    if prefix is not None:
        wanted = prefix if not prefix or prefix.endswith(".") else prefix + "."
        if wanted not in prefixes:
            shown = ", ".join(repr(p.rstrip(".")) if p else "'' (no prefix)" for p in prefixes)
            raise InvalidValue("prefix", f"no RNN weights under {prefix!r}; the file has {shown}")
        found = {key: match for key, match in found.items() if match["prefix"] == wanted}
        prefixes = [wanted]
    if len(prefixes) > 1:
        shown = ", ".join(repr(p.rstrip(".")) if p else "'' (no prefix)" for p in prefixes)
        raise InvalidValue("prefix", f"RNN weights under {len(prefixes)} module prefixes: {shown}; "
                           "choose one of them")
    layers: dict[int, dict[str, str]] = {}
    for key, match in found.items():
        if match["reverse"]:
            raise _refuse(f"{key} belongs to a bidirectional model; allowed: one direction (bidirectional=False)")
        if match["kind"] == "weight_hr":
            raise _refuse(f"{key} belongs to an LSTM with proj_size > 0; allowed: proj_size = 0 (no weight_hr keys)")
        layers.setdefault(int(match["layer"]), {})[match["kind"]] = key
    return prefixes[0], layers


def _from_torch(tensors, cell: str, table: tuple[Param, ...], layer: int, prefix: str,
                layers: dict[int, dict[str, str]]) -> tuple[dict[str, np.ndarray], int, int]:
    """Split one layer's stacked blocks into our parameters, in table order."""
    if layer not in layers:
        ks = sorted(layers)
        available = f"0..{ks[-1]}" if ks == list(range(len(ks))) else ", ".join(map(str, ks))
        raise InvalidValue("layer", f"layer {layer} is not in the state_dict; available: {available}")
    keys = layers[layer]
    for kind in ("weight_ih", "weight_hh"):
        if kind not in keys:
            raise _refuse(f"{prefix}{kind}_l{layer} is missing; allowed: a {MODULES[cell]} state_dict "
                          f"with weight_ih_l{layer} and weight_hh_l{layer}")
    if ("bias_ih" in keys) != ("bias_hh" in keys):
        have, lack = ("bias_ih", "bias_hh") if "bias_ih" in keys else ("bias_hh", "bias_ih")
        raise _refuse(f"{keys[have]} is given without {prefix}{lack}_l{layer}; allowed: both biases or neither")
    arrays = {kind: np.asarray(tensors[key], dtype=np.float64) for kind, key in keys.items()}
    n, m = _torch_sizes(cell, arrays, keys)
    for kind in ("bias_ih", "bias_hh"):
        arrays.setdefault(kind, np.zeros(len(GATES[cell]) * n))  # bias=False
    out = {}
    for k, gate in enumerate(GATES[cell]):
        block = {kind: array[k * n:(k + 1) * n] for kind, array in arrays.items()}
        w_x, w_h, biases = _gate_names(cell, gate)
        out[w_x], out[w_h] = block["weight_ih"], block["weight_hh"]
        apart = (block["bias_ih"], block["bias_hh"])
        out.update(zip(biases, apart if len(biases) == 2 else (apart[0] + apart[1],)))
    return {p.name: out[p.name].copy() for p in table}, n, m


def _torch_sizes(cell: str, arrays: dict[str, np.ndarray], keys: dict[str, str]) -> tuple[int, int]:
    """n from weight_hh's columns, m from weight_ih's; every array then has G blocks of n rows."""
    gates, module = GATES[cell], MODULES[cell]
    for kind, letter in (("weight_hh", "n"), ("weight_ih", "m")):
        shape = arrays[kind].shape
        if len(shape) != 2 or 0 in shape:
            raise _refuse(f"{keys[kind]} has shape {shape}; allowed: a 2-D ({len(gates)}·n, {letter}) array, n, m >= 1")
    n, m = arrays["weight_hh"].shape[1], arrays["weight_ih"].shape[1]
    rows = len(gates) * n
    blocks = arrays["weight_hh"].shape[0] / n
    if blocks != len(gates):
        looks = [MODULES[c] for c, g in GATES.items() if len(g) == blocks]
        hint = f"; its {blocks:g} blocks of n = {n} rows look like {' or '.join(looks)} (the cell is " \
               f"{', '.join(c for c, g in GATES.items() if len(g) == blocks)})" if looks else ""
        raise InvalidValue("cell", f"{keys['weight_hh']} has shape {arrays['weight_hh'].shape}, not a {module}'s "
                           f"({rows}, {n}){hint}")
    expected = {"weight_hh": (rows, n), "weight_ih": (rows, m), "bias_ih": (rows,), "bias_hh": (rows,)}
    for kind, shape in expected.items():  # weight_hh first: its columns gave n, its rows must agree
        if kind in arrays and arrays[kind].shape != shape:
            layout = f"stacks gates {', '.join(gates)} in blocks" if len(gates) > 1 else "has one block"
            raise _refuse(f"{keys[kind]} has shape {arrays[kind].shape}; {module} {layout} of n = {n} rows, "
                          f"so expected {shape}")
    return n, m
