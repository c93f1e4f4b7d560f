"""Weights at initialisation, and the gate biases that decide whether a gated cell starts out remembering.

``GATE_INITS``, each PyTorch's draw for every weight, then:

- ``pytorch``: nothing more.  ``nn.RNN``/``nn.LSTM``/``nn.GRU`` draw every weight and
  bias from U(−k, k), k = 1/√n.  Our one bias a gate, b_g, stands for PyTorch's
  bias_ih[g] + bias_hh[g], so it is drawn as that sum (triangular on (−2k, 2k),
  variance 2k²/3); a bias PyTorch keeps apart (the GRU's b_xn, b_hn) is one draw.
  The forget gate then starts near σ(0) = 1/2, and the memory fades like 0.5^t.
- ``forget-bias``: the keep gate's bias set to B (the LSTM's b_f, the GRU's b_z):
  Gers, Schmidhuber & Cummins (2000); Jozefowicz et al. (2015) use B = 1.
- ``chrono``: Tallec & Ollivier (2018), b_keep ~ log U(1, T_max − 1) and
  b_write = −b_keep.  A forget gate σ(log u) = u/(1 + u) keeps a memory for about
  1 + u steps, so the units' memories span 2 to T_max steps, and the input gate
  starts as closed as the forget gate is open.

Which bias keeps and which writes is the cell's own data (``derive.cell.Memory``):
a new gated cell names its biases and every initialisation works for it.
"""

from __future__ import annotations

import numpy as np

from derive.cell import CellDef, Memory
from derive.core import Layer
from derive.errors import InvalidValue

GATE_INITS = ("pytorch", "forget-bias", "chrono")
#: The literature's forget-gate bias when ``forget-bias`` is asked without a value (Jozefowicz et al. 2015).
FORGET_BIAS = 1.0


def memory(definition: CellDef, variant: str) -> Memory | None:
    """The cell's keep and write biases, or None for a cell without gates."""
    return definition.memory.get(variant)


def default_init(definition: CellDef, variant: str) -> str:
    """What training starts from: ``chrono`` for a gated cell (the literature's choice for long lags), else ``pytorch``."""
    return "chrono" if memory(definition, variant) else "pytorch"


def check_init(definition: CellDef, variant: str, init: str, forget_bias: float | None = None,
               t_max: int | None = None) -> None:
    """``init`` known and meaningful for the cell; ``forget_bias`` and ``t_max`` only where they are used."""
    if init not in GATE_INITS:
        raise InvalidValue("gate_init", f"unknown gate initialisation {init!r}; allowed: {', '.join(GATE_INITS)}")
    if init != "pytorch" and memory(definition, variant) is None:
        raise InvalidValue("gate_init", f"{definition.name} has no gates to initialise; allowed: pytorch")
    if forget_bias is not None and (init != "forget-bias" or not np.isfinite(forget_bias)):
        raise InvalidValue("forget_bias", f"sets the keep gate's bias of the forget-bias initialisation: "
                           f"a finite number with that initialisation, got {forget_bias} with {init}")
    if t_max is not None and (init != "chrono" or isinstance(t_max, bool) or not isinstance(t_max, int)
                              or t_max < 3):
        raise InvalidValue("t_max", f"is chrono's longest memory: a whole number >= 3 with that initialisation, "
                           f"got {t_max!r} with {init}")


def default_t_max(steps: int) -> int:
    """chrono's T_max when none is given: the sequence length, and at least 3 (u ~ U(1, T_max − 1) needs
    T_max − 1 > 1 to spread the memories at all).

    >>> default_t_max(54), default_t_max(2)
    (54, 3)
    """
    return max(int(steps), 3)


def describe(init: str, forget_bias: float | None = None, t_max: int | None = None) -> str:
    """The initialisation as a user reads it: ``chrono (Tallec & Ollivier 2018), T_max = 54``."""
    if init == "chrono":
        return f"chrono (Tallec & Ollivier 2018), T_max = {t_max}"
    if init == "forget-bias":
        return f"forget-bias {FORGET_BIAS if forget_bias is None else forget_bias:g} (Gers et al. 2000)"
    return "PyTorch's default"


def _definition(form) -> tuple[CellDef, str, dict[str, tuple[int, ...]], int]:
    """(definition, variant, parameter shapes, n) of a ``Layer`` (biases (n,)) or a ``Cell`` (biases (n, 1))."""
    if isinstance(form, Layer):
        return form.core.definition, form.variant, form.shapes(), form.n
    return form.definition, form.variant, {name: v.shape for name, v in form.params}, form.n


def summed(names) -> set[str]:
    """Our biases that stand for PyTorch's bias_ih + bias_hh: every b_* but a pair b_x{g}, b_h{g} kept apart.

    >>> sorted(summed(["W_xn", "b_r", "b_z", "b_xn", "b_hn"])), sorted(summed(["b_h"]))
    (['b_r', 'b_z'], ['b_h'])
    """
    names = set(names)
    apart = {b for b in names if b[:3] in ("b_x", "b_h") and len(b) > 3
             and {"b_x" + b[3:], "b_h" + b[3:]} <= names}
    return {b for b in names if b.startswith("b_") and b not in apart}


def draw(form, batch: tuple[int, ...] = (), seed: int = 0, scale: float | None = None, *, init: str = "pytorch",
         forget_bias: float | None = None, t_max: int | None = None) -> dict[str, np.ndarray]:
    """The parameters of a ``Layer`` or ``Cell`` as ``init`` draws them, with a batch shape in front.

    ``scale`` instead draws every parameter from U(−scale, scale) (a test's spread, not PyTorch's).
    The gate biases come from their own stream (``[seed, 4]``), so the initialisations share every
    other weight for the same seed.

    >>> from derive.cells import CELLS
    >>> from derive.core import make_core
    >>> layer = Layer(make_core(CELLS["lstm"]), 4, 2)
    >>> p = draw(layer, seed=0, init="chrono", t_max=50)
    >>> bool(np.all(p["b_i"] == -p["b_f"])), bool(np.all((p["b_f"] >= 0) & (p["b_f"] <= np.log(49))))
    (True, True)
    """
    definition, variant, shapes, n = _definition(form)
    check_init(definition, variant, init, forget_bias, t_max if init == "chrono" else None)
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(n) if scale is None else scale
    twice = summed(shapes) if scale is None else set()
    params = {}
    for name, shape in shapes.items():
        params[name] = rng.uniform(-k, k, batch + shape)
        if name in twice:
            params[name] += rng.uniform(-k, k, batch + shape)
    if init != "pytorch":
        _set_gates(params, memory(definition, variant), init, forget_bias, t_max, np.random.default_rng([seed, 4]))
    return params


def _set_gates(params: dict, gates: Memory, init: str, forget_bias, t_max, rng) -> None:
    shape = params[gates.keep].shape
    if init == "forget-bias":
        keep = np.full(shape, FORGET_BIAS if forget_bias is None else float(forget_bias))
    else:
        if t_max is None:
            raise InvalidValue("t_max", "chrono needs the longest memory T_max (a whole number >= 3)")
        keep = np.log(rng.uniform(1, t_max - 1, shape))
    params[gates.keep] = gates.sign * keep
    if gates.write and init == "chrono":
        params[gates.write] = -keep


def as_settings(params: dict[str, np.ndarray], digits: int = 4) -> tuple[str, ...]:
    """Parameters as ``NAME=VALUE`` settings (``derive --set``'s form), each number to ``digits``
    significant digits: readable, and exactly what a reader can type back.

    >>> as_settings({"w": np.array([[0.123456]]), "b": np.array([[1.0], [-2.5e-5]])})
    ('w=0.1235', 'b=[[1], [-2.5e-05]]')
    """
    def number(v: float) -> str:
        return f"{float(v):.{digits}g}"

    def text(a: np.ndarray) -> str:
        if a.size == 1:
            return number(a.ravel()[0])
        rows = a.reshape(a.shape[0], -1)
        return "[" + ", ".join("[" + ", ".join(number(v) for v in row) + "]" for row in rows) + "]"

    return tuple(f"{name}={text(np.asarray(value))}" for name, value in params.items())
