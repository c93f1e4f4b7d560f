"""The cells Unrolled knows, each one definition: a parameter table and one step.

Gate names and order follow PyTorch (LSTM i, f, g, o; GRU r, z, n); parameter
names follow d2l (W_xh, W_hh, b_h).  Shapes are column-vector, as PyTorch's
weights: W_x* is (n, m), W_h* is (n, n), biases are (n,).
"""

from __future__ import annotations

import sympy as sp

from .activations import sigmoid
from .cell import CellDef, Memory, Param, StepInputs


def hadamard(a: sp.MatrixBase, b: sp.MatrixBase) -> sp.ImmutableMatrix:
    """The elementwise product a ⊙ b."""
    return sp.ImmutableMatrix(a.multiply_elementwise(b))


def elementwise(fn, a: sp.MatrixBase) -> sp.ImmutableMatrix:
    return sp.ImmutableMatrix(a.applyfunc(fn))


def ones_like(a: sp.MatrixBase) -> sp.ImmutableMatrix:
    return sp.ImmutableMatrix.ones(*a.shape)


def _affine(s: StepInputs, gate: str) -> sp.ImmutableMatrix:
    """W_x{gate} x_t + W_h{gate} h_{t-1} + b_{gate}."""
    p = s.p
    return p[f"W_x{gate}"] * s.x + p[f"W_h{gate}"] * s.prev["h"] + p[f"b_{gate}"]


def _gate_params(*gates: str) -> tuple[Param, ...]:
    return tuple(
        param
        for g in gates
        for param in (Param(f"W_x{g}", "n", "m"), Param(f"W_h{g}", "n", "n"), Param(f"b_{g}", "n"))
    )


# --- Elman RNN ----------------------------------------------------------------


def rnn_step(s: StepInputs):
    """h_t = φ(W_hh h_{t-1} + W_xh x_t + b_h)."""
    p = s.p
    pre = p["W_hh"] * s.prev["h"] + p["W_xh"] * s.x + p["b_h"]
    return (("h", elementwise(s.activation.apply, pre)),)


RNN = CellDef(
    name="rnn",
    summary="Elman RNN, h_t = φ(W_hh h_{t-1} + W_xh x_t + b_h)",
    states=("h",),
    params={"standard": (Param("W_xh", "n", "m"), Param("W_hh", "n", "n"), Param("b_h", "n"))},
    step=rnn_step,
    activations=("linear", "tanh", "sigmoid", "relu"),
    scalar_names={"W_hh": "w", "W_xh": "u"},
    examples=(
        {"W_hh": "2", "W_xh": "1", "b_h": "0"},
        {"W_hh": "0.5", "W_xh": "1", "b_h": "0"},
    ),
)


# --- LSTM ---------------------------------------------------------------------


def lstm_step(s: StepInputs):
    """i, f, o = σ(W_x* x_t + W_h* h_{t-1} + b_*), g = tanh(…),
    c_t = f ⊙ c_{t-1} + i ⊙ g, h_t = o ⊙ tanh(c_t).

    ``peephole``: i and f also see p_* ⊙ c_{t-1}, o sees p_o ⊙ c_t.
    ``coupled``: no input gate, c_t = f ⊙ c_{t-1} + (1 − f) ⊙ g.
    """
    q, c_prev = s.q, s.prev["c"]
    peep = s.variant == "peephole"

    def gate(name: str, fn, cell_state=None):
        pre = _affine(s, name)
        if peep and cell_state is not None:
            pre = pre + hadamard(s.p[f"p_{name}"], cell_state)
        return (name, elementwise(fn, pre))

    gates = [] if s.variant == "coupled" else [gate("i", sigmoid, c_prev)]
    gates += [gate("f", sigmoid, c_prev), gate("g", sp.tanh)]
    keep = ones_like(c_prev) - q("f") if s.variant == "coupled" else q("i")
    cell = ("c", hadamard(q("f"), c_prev) + hadamard(keep, q("g")))
    output = gate("o", sigmoid, q("c"))
    return (*gates, cell, output, ("h", hadamard(q("o"), elementwise(sp.tanh, q("c")))))


_LSTM_PARAMS = _gate_params("i", "f", "g", "o")

LSTM = CellDef(
    name="lstm",
    summary="LSTM, gates i, f, g, o; c_t = f ⊙ c_{t-1} + i ⊙ g, h_t = o ⊙ tanh(c_t)",
    states=("h", "c"),
    params={
        "standard": _LSTM_PARAMS,
        "peephole": _LSTM_PARAMS + (Param("p_i", "n"), Param("p_f", "n"), Param("p_o", "n")),
        "coupled": _gate_params("f", "g", "o"),
    },
    step=lstm_step,
    carousel=("c",),
    memory={"standard": Memory("b_f", write="b_i"), "peephole": Memory("b_f", write="b_i"),
            "coupled": Memory("b_f")},
)


# --- GRU ----------------------------------------------------------------------


def gru_step(s: StepInputs):
    """PyTorch: r, z = σ(W_x* x_t + W_h* h_{t-1} + b_*),
    n_t = tanh(W_xn x_t + b_xn + r ⊙ (W_hn h_{t-1} + b_hn)), h_t = (1 − z) ⊙ n_t + z ⊙ h_{t-1}.

    ``cho`` (Cho et al. 2014, eqs. 5–8): the reset gate acts before W_hn,
    n_t = tanh(W_xn x_t + W_hn (r ⊙ h_{t-1}) + b_n), and h_t = z ⊙ h_{t-1} + (1 − z) ⊙ n_t.
    ``colah`` (Olah's "Understanding LSTM Networks"): as ``cho`` with the roles of z
    swapped, h_t = (1 − z) ⊙ h_{t-1} + z ⊙ n_t.
    """
    p, q, h_prev = s.p, s.q, s.prev["h"]
    r = ("r", elementwise(sigmoid, _affine(s, "r")))
    z = ("z", elementwise(sigmoid, _affine(s, "z")))
    if s.variant == "standard":
        pre = p["W_xn"] * s.x + p["b_xn"] + hadamard(q("r"), p["W_hn"] * h_prev + p["b_hn"])
    else:
        pre = p["W_xn"] * s.x + p["W_hn"] * hadamard(q("r"), h_prev) + p["b_n"]
    new, old = (q("z"), ones_like(h_prev) - q("z")) if s.variant == "colah" else (ones_like(h_prev) - q("z"), q("z"))
    candidate = ("n", elementwise(sp.tanh, pre))
    return (r, z, candidate, ("h", hadamard(new, q("n")) + hadamard(old, h_prev)))


_GRU_GATES = _gate_params("r", "z") + (Param("W_xn", "n", "m"), Param("W_hn", "n", "n"))

GRU = CellDef(
    name="gru",
    summary="GRU, gates r, z, n; h_t = (1 − z) ⊙ n_t + z ⊙ h_{t-1}",
    states=("h",),
    params={
        "standard": _GRU_GATES + (Param("b_xn", "n"), Param("b_hn", "n")),
        "cho": _GRU_GATES + (Param("b_n", "n"),),
        "colah": _GRU_GATES + (Param("b_n", "n"),),
    },
    step=gru_step,
    memory={"standard": Memory("b_z"), "cho": Memory("b_z"), "colah": Memory("b_z", sign=-1)},
)


# --- The lecture's LSTM -------------------------------------------------------

STATQUEST = CellDef(
    name="statquest",
    summary="the lecture's one-unit LSTM with its weights fixed (StatQuest)",
    states=("h", "c"),
    params={"standard": _LSTM_PARAMS},
    step=lstm_step,
    fixed={
        "W_hf": "2.70", "W_xf": "1.63", "b_f": "1.62",
        "W_hi": "2.00", "W_xi": "1.65", "b_i": "0.62",
        "W_hg": "1.41", "W_xg": "0.94", "b_g": "-0.32",
        "W_ho": "4.38", "W_xo": "-0.19", "b_o": "0.59",
    },
    sigmoid_as_exp=True,
    carousel=("c",),
    output_meaning="the lecture's prediction for day {next} (Company A ends near 0, Company B near 1)",
    input_examples={"Company A": (0, 0.5, 0.25, 1), "Company B": (1, 0.5, 0.25, 1)},  # four days of prices
)

CELLS: dict[str, CellDef] = {c.name: c for c in (RNN, LSTM, GRU, STATQUEST)}
