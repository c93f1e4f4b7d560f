"""A hand-written NumPy reference: forward pass and BPTT of every cell, gate by gate.

Independent of the project on purpose (no SymPy, nothing imported from it): the
matrix-form core is tested against these functions, and these functions are tested
against finite differences and the cell equations in ``test_numpy_reference.py``.

Conventions as PyTorch: W_x* is (n, m), W_h* is (n, n), biases are (n,); inputs x
are (B, T, m) and states (B, n), so with a batch in rows a gate's pre-activation is
x_t @ W_x*.T + h_{t-1} @ W_h*.T + b_*.  The loss is L = Σ_b Σ_i h_T[b, i], so the
backward pass starts from ∂L/∂h_T = 1 and ∂L/∂c_T = 0.

>>> rng = np.random.default_rng(0)
>>> params = random_params("lstm", "peephole", 4, 3, rng)
>>> states, grads = forward_backward("lstm", "peephole", params, rng.normal(size=(2, 5, 3)))
>>> states["c"].shape, grads["p_o"].shape, grads["c_0"].shape
((6, 2, 4), (4,), (2, 4))
"""

from __future__ import annotations

import numpy as np


def _gates(*gates: str) -> tuple[str, ...]:
    return tuple(name for g in gates for name in (f"W_x{g}", f"W_h{g}", f"b_{g}"))


PARAM_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("rnn", "standard"): ("W_xh", "W_hh", "b_h"),
    ("lstm", "standard"): _gates("i", "f", "g", "o"),
    ("lstm", "peephole"): _gates("i", "f", "g", "o") + ("p_i", "p_f", "p_o"),
    ("lstm", "coupled"): _gates("f", "g", "o"),
    ("gru", "standard"): _gates("r", "z") + ("W_xn", "W_hn", "b_xn", "b_hn"),
    ("gru", "cho"): _gates("r", "z") + ("W_xn", "W_hn", "b_n"),
    ("gru", "colah"): _gates("r", "z") + ("W_xn", "W_hn", "b_n"),
}
STATE_NAMES = {"rnn": ("h",), "lstm": ("h", "c"), "gru": ("h",)}
ACTIVATIONS = ("linear", "tanh", "sigmoid", "relu")


def param_shape(name: str, n: int, m: int) -> tuple[int, ...]:
    """W_x* is (n, m), W_h* is (n, n), every bias and peephole vector (n,)."""
    if name.startswith("W_x"):
        return (n, m)
    return (n, n) if name.startswith("W_h") else (n,)


def random_params(cell: str, variant: str, n: int, m: int, rng: np.random.Generator) -> dict:
    """Every parameter drawn from U(−1/√n, 1/√n), PyTorch's initialisation."""
    bound = 1.0 / np.sqrt(n)
    return {k: rng.uniform(-bound, bound, param_shape(k, n, m)) for k in _names(cell, variant)}


def _names(cell: str, variant: str) -> tuple[str, ...]:
    if (cell, variant) not in PARAM_NAMES:
        raise ValueError(f"no reference for cell {cell!r} variant {variant!r}; known: {sorted(PARAM_NAMES)}")
    return PARAM_NAMES[(cell, variant)]


def sigmoid(a: np.ndarray) -> np.ndarray:
    """σ(a) = 1 / (1 + e^{−a}), as exp(−log(1 + e^{−a})) so no sign of a overflows."""
    return np.exp(-np.logaddexp(0.0, -a))


def _pre(p: dict, g: str, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """W_x{g} x_t + W_h{g} h_{t-1} + b_{g}, one batch element per row."""
    return x @ p[f"W_x{g}"].T + h @ p[f"W_h{g}"].T + p[f"b_{g}"]


def _gate_back(p: dict, grads: dict, g: str, da: np.ndarray, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Add ∂L/∂W_x{g}, ∂L/∂W_h{g}, ∂L/∂b_{g} from ∂L/∂a_{g}; return the gate's share of ∂L/∂h_{t-1}."""
    grads[f"W_x{g}"] += da.T @ x
    grads[f"W_h{g}"] += da.T @ h
    grads[f"b_{g}"] += da.sum(axis=0)
    return da @ p[f"W_h{g}"]


# --- Elman RNN ----------------------------------------------------------------


def _activate(name: str, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(φ(a), φ'(a)); relu'(0) = 0."""
    if name == "linear":
        return a.copy(), np.ones_like(a)
    if name == "tanh":
        h = np.tanh(a)
        return h, 1.0 - h * h
    if name == "sigmoid":
        h = sigmoid(a)
        return h, h * (1.0 - h)
    if name == "relu":
        return np.maximum(a, 0.0), (a > 0).astype(a.dtype)
    raise ValueError(f"unknown activation {name!r}; known: {ACTIVATIONS}")


def _rnn_step(p, variant, activation, x, s):
    """h_t = φ(W_hh h_{t-1} + W_xh x_t + b_h)."""
    h, dphi = _activate(activation, _pre(p, "h", x, s["h"]))
    return {"x": x, "h_prev": s["h"], "h": h, "dphi": dphi}


def _rnn_back(p, variant, q, ds, grads):
    da = ds["h"] * q["dphi"]
    return {"h": _gate_back(p, grads, "h", da, q["x"], q["h_prev"])}


# --- LSTM ---------------------------------------------------------------------


def _lstm_step(p, variant, activation, x, s):
    """i, f, o = σ(…), g = tanh(…), c_t = f c_{t-1} + i g, h_t = o tanh(c_t).

    peephole: i, f add p_* ⊙ c_{t-1}, o adds p_o ⊙ c_t; coupled: i = 1 − f.
    """
    h, c = s["h"], s["c"]
    peep = variant == "peephole"
    q = {"x": x, "h_prev": h, "c_prev": c}
    if variant != "coupled":
        q["i"] = sigmoid(_pre(p, "i", x, h) + (p["p_i"] * c if peep else 0.0))
    q["f"] = sigmoid(_pre(p, "f", x, h) + (p["p_f"] * c if peep else 0.0))
    q["g"] = np.tanh(_pre(p, "g", x, h))
    keep = 1.0 - q["f"] if variant == "coupled" else q["i"]
    q["c"] = q["f"] * c + keep * q["g"]
    q["o"] = sigmoid(_pre(p, "o", x, h) + (p["p_o"] * q["c"] if peep else 0.0))
    q["tanh_c"] = np.tanh(q["c"])
    q["h"] = q["o"] * q["tanh_c"]
    return q


def _lstm_back(p, variant, q, ds, grads):
    x, h_prev, c_prev = q["x"], q["h_prev"], q["c_prev"]
    f, g, o, tc, dh = q["f"], q["g"], q["o"], q["tanh_c"], ds["h"]
    peep = variant == "peephole"
    da_o = dh * tc * o * (1.0 - o)
    dc = dh * o * (1.0 - tc * tc) + ds["c"]
    if peep:  # o sees the new c_t
        dc = dc + da_o * p["p_o"]
        grads["p_o"] += (da_o * q["c"]).sum(axis=0)
    if variant == "coupled":
        da = {"f": dc * (c_prev - g) * f * (1.0 - f), "g": dc * (1.0 - f) * (1.0 - g * g)}
    else:
        i = q["i"]
        da = {"i": dc * g * i * (1.0 - i), "f": dc * c_prev * f * (1.0 - f), "g": dc * i * (1.0 - g * g)}
    dc_prev = dc * f
    if peep:  # i and f see c_{t-1}
        dc_prev = dc_prev + da["i"] * p["p_i"] + da["f"] * p["p_f"]
        grads["p_i"] += (da["i"] * c_prev).sum(axis=0)
        grads["p_f"] += (da["f"] * c_prev).sum(axis=0)
    da["o"] = da_o
    dh_prev = sum(_gate_back(p, grads, k, v, x, h_prev) for k, v in da.items())
    return {"h": dh_prev, "c": dc_prev}


# --- GRU ----------------------------------------------------------------------


def _gru_step(p, variant, activation, x, s):
    """r, z = σ(…); standard n = tanh(W_xn x + b_xn + r ⊙ (W_hn h + b_hn)),
    cho/colah n = tanh(W_xn x + W_hn (r ⊙ h) + b_n);
    standard/cho h_t = (1 − z) n + z h_{t-1}, colah h_t = (1 − z) h_{t-1} + z n.
    """
    h = s["h"]
    r, z = sigmoid(_pre(p, "r", x, h)), sigmoid(_pre(p, "z", x, h))
    q = {"x": x, "h_prev": h, "r": r, "z": z}
    if variant == "standard":
        q["hn"] = h @ p["W_hn"].T + p["b_hn"]
        a_n = x @ p["W_xn"].T + p["b_xn"] + r * q["hn"]
    else:
        q["rh"] = r * h
        a_n = x @ p["W_xn"].T + q["rh"] @ p["W_hn"].T + p["b_n"]
    n = q["n"] = np.tanh(a_n)
    q["h"] = (1.0 - z) * h + z * n if variant == "colah" else (1.0 - z) * n + z * h
    return q


def _gru_back(p, variant, q, ds, grads):
    x, h_prev, r, z, n, dh = q["x"], q["h_prev"], q["r"], q["z"], q["n"], ds["h"]
    if variant == "colah":
        dn, dz, dh_prev = dh * z, dh * (n - h_prev), dh * (1.0 - z)
    else:
        dn, dz, dh_prev = dh * (1.0 - z), dh * (h_prev - n), dh * z
    da_n = dn * (1.0 - n * n)
    grads["W_xn"] += da_n.T @ x
    if variant == "standard":
        grads["b_xn"] += da_n.sum(axis=0)
        dhn = da_n * r
        dr = da_n * q["hn"]
        grads["W_hn"] += dhn.T @ h_prev
        grads["b_hn"] += dhn.sum(axis=0)
        dh_prev = dh_prev + dhn @ p["W_hn"]
    else:
        grads["b_n"] += da_n.sum(axis=0)
        grads["W_hn"] += da_n.T @ q["rh"]
        drh = da_n @ p["W_hn"]
        dr = drh * h_prev
        dh_prev = dh_prev + drh * r
    dh_prev = dh_prev + _gate_back(p, grads, "r", dr * r * (1.0 - r), x, h_prev)
    dh_prev = dh_prev + _gate_back(p, grads, "z", dz * z * (1.0 - z), x, h_prev)
    return {"h": dh_prev}


# --- BPTT, the same loop for every cell ---------------------------------------

FAMILIES = {"rnn": (_rnn_step, _rnn_back), "lstm": (_lstm_step, _lstm_back), "gru": (_gru_step, _gru_back)}


def forward_backward(cell, variant, params, x, h0=None, c0=None, activation="tanh"):
    """States h_0..h_T (and c) and the exact gradient of L = Σ h_T by BPTT.

    Returns ``(states, grads)``: ``states[name]`` is (T+1, B, n); ``grads`` holds
    ∂L/∂θ for every parameter in its shape, and ∂L/∂h_0 (∂L/∂c_0) under "h_0" ("c_0").
    """
    p = {k: np.asarray(params[k], dtype=np.float64) for k in _names(cell, variant)}
    x = np.asarray(x, dtype=np.float64)
    B, T, _ = x.shape
    n = p[_names(cell, variant)[1]].shape[0]  # W_h* is (n, n)
    given = {"h": h0, "c": c0}
    s = {k: np.zeros((B, n)) if given[k] is None else np.array(given[k], dtype=np.float64) for k in STATE_NAMES[cell]}
    step, back = FAMILIES[cell]
    trajectory, caches = [s], []
    for t in range(T):
        q = step(p, variant, activation, x[:, t], trajectory[-1])
        caches.append(q)
        trajectory.append({k: q[k] for k in s})
    grads = {k: np.zeros_like(v) for k, v in p.items()}
    ds = {k: np.ones((B, n)) if k == "h" else np.zeros((B, n)) for k in s}
    for q in reversed(caches):
        ds = back(p, variant, q, ds, grads)
    states = {k: np.stack([state[k] for state in trajectory]) for k in s}
    return states, {**grads, **{f"{k}_0": v for k, v in ds.items()}}
