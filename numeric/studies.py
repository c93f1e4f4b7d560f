"""The computations behind the report's figures: each returns plain arrays in a frozen record.

``reports`` only draws these; nothing here draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from derive.cells import CELLS
from derive.core import Layer, make_core
from derive.logdomain import evaluate
from derive.symbols import T as T_sym

from .training.clip import clip_by_norm, clip_by_value
from .engine.grad import contributions, value_and_grad
from .engine.jacobian import jacobian_norms, log10_by_step
from .engine.modes import gradient
from .engine.scan import scan
from .engine.shapes import prepare
from .init import draw


def _layer(name: str, n: int = 1, activation=None, variant=None) -> Layer:
    return Layer(make_core(CELLS[name], variant, activation), n, n)


@dataclass(frozen=True)
class ExplodeVanish:
    steps: np.ndarray
    weights: tuple[float, ...]
    log10: np.ndarray                 # (len(weights), len(steps)): log10|∂h_T/∂h_0|
    marks: tuple[tuple[float, int, str], ...]   # (w, T, w^T exactly)


def explode_vanish(horizon: int = 100, mark: int = 50) -> ExplodeVanish:
    """Linear RNN, |∂h_T/∂h_0| = |w|^T measured by stepping (lags of one run)."""
    weights = (0.5, 1.0, 2.0)
    params = {"W_hh": np.array(weights)[:, None, None], "W_xh": [[1.0]], "b_h": [0.0]}
    by_lag = jacobian_norms(prepare(_layer("rnn").core, params, np.ones((horizon, 1)), lead=(3,))).log10_by_lag
    w = sp.Symbol("w")
    marks = tuple(
        (wv, mark, str(evaluate(w ** T_sym, {w: sp.Rational(text), T_sym: sp.Integer(mark)}).exact))
        for wv, text in ((2.0, "2"), (0.5, "0.5")))
    return ExplodeVanish(np.arange(1, horizon + 1), weights, by_lag[1:].T, marks)


@dataclass(frozen=True)
class Heatmap:
    weights: np.ndarray
    steps: np.ndarray
    log10: np.ndarray   # (len(weights), len(steps)), mean over random input sequences
    gamma: float


def tanh_heatmap(horizon: int = 50, seed: int = 0, sequences: int = 32) -> Heatmap:
    """tanh RNN: log10|∂h_T/∂h_0| over (w, T), averaged over random inputs x_t ~ U(−1, 1)."""
    weights = np.linspace(0.1, 3.0, 59)
    x = np.random.default_rng(seed).uniform(-1, 1, (horizon, 1, sequences, 1))[:, 0].transpose(1, 0, 2)
    params = {"W_hh": weights[:, None, None], "W_xh": [[1.0]], "b_h": [0.0]}
    logs = log10_by_step(prepare(_layer("rnn", activation="tanh").core, params, x, lead=(len(weights),)))
    return Heatmap(weights, np.arange(1, horizon + 1), logs.mean(axis=-1).T, 1.0)


@dataclass(frozen=True)
class LagCurves:
    lags: np.ndarray
    cells: tuple[str, ...]
    median: np.ndarray   # (cells, lags)
    low: np.ndarray
    high: np.ndarray
    hidden: int


def lag_curves(horizon: int = 50, hidden: int = 8, seeds: int = 16, seed: int = 0) -> LagCurves:
    """‖∂s_T/∂s_{T−k}‖ against the lag k for random weights, over seeds: PyTorch's initialisation
    for the three cells, and the LSTM again with chrono gates (T_max = the horizon)."""
    rows = []
    models = (("rnn", "pytorch", "rnn (tanh)"), ("lstm", "pytorch", "lstm"), ("gru", "pytorch", "gru"),
              ("lstm", "chrono", "lstm (chrono)"))
    for name, init, _ in models:
        layer = Layer(make_core(CELLS[name], None, "tanh" if name == "rnn" else None), hidden, 1)
        # drawn step by step and then arranged (seeds, T, 1): the report's numbers stay those it has shown
        x = np.random.default_rng(seed).uniform(-1, 1, (horizon, seeds, 1)).transpose(1, 0, 2)
        params = draw(layer, (seeds,), seed, init=init, t_max=max(horizon, 3) if init == "chrono" else None)
        by_lag = [jacobian_norms(prepare(layer.core, _nth(params, i), x[i:i + 1])).log10_by_lag for i in range(seeds)]
        rows.append(np.percentile(by_lag, [10, 50, 90], axis=0))
    rows = np.array(rows)
    return LagCurves(np.arange(horizon + 1), tuple(label for _, _, label in models), rows[:, 1], rows[:, 0],
                     rows[:, 2], hidden)


def _nth(params: dict[str, np.ndarray], i: int) -> dict[str, np.ndarray]:
    """Setting i of a batch of layer parameters (each with a leading batch axis)."""
    return {name: value[i] for name, value in params.items()}


@dataclass(frozen=True)
class Lecture:
    days: np.ndarray
    quantities: tuple[str, ...]
    company: dict          # name -> (inputs, (T, Q) values)
    worked: tuple[tuple[str, float], ...]   # the first worked step: c=2, h=1, x=1


def _trace(core, x, s0=None) -> np.ndarray:
    """Every quantity of every step of a one-unit cell: (T, Q), in the step's order."""
    quantities = value_and_grad(core, {}, x, s0).quantities
    return np.stack([q[:, 0, 0] for q in quantities.values()], axis=-1)


def lecture_example() -> Lecture:
    core = make_core(CELLS["statquest"])
    company = {}
    for name, inputs in CELLS["statquest"].input_examples.items():
        company[name] = (np.array(inputs, float), _trace(core, np.array(inputs, float)[:, None]))
    first = _trace(core, np.array([[1.0]]), {"h": [1.0], "c": [2.0]})[0]  # h_0 = 1, c_0 = 2
    names = tuple(f"{name}_t" for name, _ in core.equations)
    worked = (("previous long-term memory", 2.0), ("previous short-term memory", 1.0), ("input", 1.0),
              *((n, float(v)) for n, v in zip(names, first)))
    return Lecture(np.arange(1, 5), names, company, worked)


@dataclass(frozen=True)
class Pascanu:
    sigma1: np.ndarray
    measured: np.ndarray   # (len(sigma1), seeds): log10‖∂h_T/∂h_0‖
    bound: np.ndarray      # log10 (γσ₁)^T
    lag: int
    hidden: int


def pascanu(lag: int = 50, hidden: int = 16, seeds: int = 8, seed: int = 0) -> Pascanu:
    """Random W_hh scaled to σ₁ in [0.5, 1.5]: the measured Jacobian norm against (γσ₁)^T."""
    core = make_core(CELLS["rnn"], None, "tanh")
    rng = np.random.default_rng(seed)
    raw = rng.normal(size=(seeds, hidden, hidden))
    raw /= np.linalg.norm(raw, 2, axis=(-2, -1))[:, None, None]
    sigma1 = np.linspace(0.5, 1.5, 21)
    shared = {"W_xh": rng.uniform(-0.25, 0.25, (hidden, 1)), "b_h": np.zeros(hidden)}
    x = rng.uniform(-1, 1, (lag, 1))
    measured = np.array([[jacobian_norms(prepare(core, {**shared, "W_hh": s * w}, x), lags=()).log10_by_lag[lag]
                          for w in raw] for s in sigma1])
    return Pascanu(sigma1, measured, lag * np.log10(sigma1), lag, hidden)


@dataclass(frozen=True)
class Carousel:
    steps: np.ndarray
    biases: tuple[float, ...]
    full: np.ndarray    # (biases, steps): log10|∂c_T/∂c_0|
    path: np.ndarray    # (biases, steps): log10 ∏ f_t


def carousel(horizon: int = 100, seed: int = 0) -> Carousel:
    """LSTM: ∂c_T/∂c_0 for forget-gate biases 0, 1, 2, and the path product ∏ f_t."""
    layer = _layer("lstm")
    biases = (0.0, 1.0, 2.0)
    params = draw(layer, seed=seed)
    params["b_f"] = np.array(biases)[:, None]
    x = np.random.default_rng(seed).uniform(-1, 1, (horizon, 1))
    c = layer.states.index("c")
    full = log10_by_step(prepare(layer.core, params, x, lead=(3,)), slice(c, c + 1), slice(c, c + 1))[..., 0]
    f = value_and_grad(layer.core, params, x, lead=(3,)).quantities["f"][:, :, 0, 0]
    return Carousel(np.arange(1, horizon + 1), biases, full.T, np.cumsum(np.log10(f), axis=0).T)


@dataclass(frozen=True)
class Sources:
    cells: tuple[str, ...]
    log10: np.ndarray   # (cells, T, k): log10 |term of source step k in ∂L/∂W_h*| at horizon T


def sources(horizon: int = 40, seed: int = 0) -> Sources:
    """Where the gradient comes from: each source step's BPTT term, for every horizon T."""
    out = []
    for name, weights in (("rnn", ("W_hh",)), ("lstm", ("W_hi", "W_hf", "W_hg", "W_ho"))):
        layer = _layer(name, activation="tanh" if name == "rnn" else None)
        params = draw(layer, seed=seed, scale=1.5)
        x = np.random.default_rng(seed).uniform(-1, 1, (horizon, 1))
        grid = np.full((horizon, horizon), np.nan)
        for T in range(1, horizon + 1):
            by_step = contributions(layer.core, params, x[:T])
            terms = np.stack([by_step[w].reshape(T) for w in weights], axis=-1)
            with np.errstate(divide="ignore"):
                grid[T - 1, :T] = np.log10(np.linalg.norm(terms, axis=-1))
        out.append(grid)
    return Sources(("rnn (tanh), W_hh", "lstm, W_h* (i, f, g, o)"), np.array(out))


@dataclass(frozen=True)
class Clipping:
    names: tuple[str, ...]
    before: np.ndarray
    by_norm: np.ndarray
    by_value: np.ndarray
    threshold: float
    bound: float
    steps: int


def clipping(horizon: int = 50, threshold: float = 1.0, bound: float = 5.0) -> Clipping:
    """An exploding gradient (linear RNN, w = 1.2) before and after both kinds of clipping."""
    layer = _layer("rnn")
    g, _ = gradient(layer.core, {"W_hh": [[1.2]], "W_xh": [[1.0]], "b_h": [0.1]}, np.ones((horizon, 1)))
    flat = lambda d: np.array([float(d[n].ravel()[0]) for n in layer.param_names()])
    return Clipping(tuple(layer.display_name(n) for n in layer.param_names()), flat(g),
                    flat(clip_by_norm(g, threshold)), flat(clip_by_value(g, bound)), threshold, bound, horizon)


@dataclass(frozen=True)
class Unrolled:
    """The lecture's picture of a cell unrolled: what one box holds, and the arrows between boxes."""

    label: str
    quantities: tuple[str, ...]       # one step's quantities in the order the cell computes them
    states: tuple[str, ...]           # what flows from box to box (h; h and c)
    output: str                       # the state drawn going up
    steps: tuple[int | None, ...]     # the steps drawn; None is the ellipsis
    log10_jacobian: dict              # step t -> log10‖∂s_t/∂s_{t−1}‖₂ at random weights (PyTorch's init)


def unrolled(definition=None, steps: int = 6, seed: int = 0, variant=None, activation=None) -> Unrolled:
    """All steps up to T = 6, else the first three, an ellipsis and the last; the cell's own quantities."""
    definition = definition or CELLS["lstm"]
    layer = Layer(make_core(definition, variant, activation if definition.activations else None), 1, 1)
    shown = tuple(range(1, steps + 1)) if steps <= 6 else (1, 2, 3, None, steps)
    norms = {}
    if layer.param_names():
        x = np.random.default_rng(seed).uniform(-1, 1, (steps, 1))
        params = draw(layer, seed=seed)
        states = scan(prepare(layer.core, params, x)).states
        for t in (t for t in shown if t is not None):  # ‖J_t‖ = ‖∂s_t/∂s_{t−1}‖: one step from s_{t−1}
            before = {s: states[s][t - 1, 0] for s in layer.states}
            norms[t] = float(jacobian_norms(prepare(layer.core, params, x[t - 1:t], before)).log10_by_lag[1])
    return Unrolled(layer.label, tuple(name for name, _ in layer.core.equations), layer.states, layer.core.output,
                    shown, norms)


#: Pascanu, Mikolov & Bengio (2013), Fig. 6: x_t = w σ(x_{t−1}) + b, no input, from x_0, trained so
#: that x_50 hits a target.  The cell is typed as a formula, like any custom cell.
CLIFF_FORMULA = "h = w*sigmoid(h) + b"


@dataclass(frozen=True)
class Cliff:
    w: np.ndarray                  # grid axes
    b: np.ndarray
    log10_loss: np.ndarray         # (len(b), len(w)): log10 (x_T − target)²
    plain: np.ndarray              # (starts, updates + 1, 2): (w, b) along plain gradient descent
    clipped: np.ndarray            # the same with norm clipping
    steps: int
    x0: float
    target: float
    lr: float
    threshold: float


def _cliff_loss_and_grad(core, w: np.ndarray, b: np.ndarray, steps: int, x0: float, target: float):
    """(loss, ∂loss/∂w, ∂loss/∂b) for every (w, b), by the grid's BPTT of x_T (chain rule through the loss)."""
    shapes = core.shapes(1, 1)
    params = {"w": w.reshape(-1, *shapes["w"]), "b": b.reshape(-1, *shapes["b"])}
    result = value_and_grad(core, params, np.zeros((steps, 1)), {"h": [x0]}, lead=(w.size,))
    x_T = result.states["h"][-1, :, 0, 0]
    g = result.grads  # ∂x_T/∂θ, since L = Σ x_T for a one-unit cell
    residual = x_T - target
    return residual**2, 2 * residual * g["w"].reshape(-1), 2 * residual * g["b"].reshape(-1)


def cliff(*, steps: int = 50, x0: float = 0.5, target: float = 0.7, lr: float = 1.0, threshold: float = 1.0,
          updates: int = 40, size: int = 161) -> Cliff:
    """The loss surface over (w, b) and gradient descent on it, plain and with norm clipping."""
    from derive.custom import cell_definition

    core = make_core(cell_definition("custom", (CLIFF_FORMULA,)))
    w_axis, b_axis = np.linspace(-2.0, 14.0, size), np.linspace(-9.0, 3.0, size)
    W, B = np.meshgrid(w_axis, b_axis)
    loss, _, _ = _cliff_loss_and_grad(core, W.ravel(), B.ravel(), steps, x0, target)
    with np.errstate(divide="ignore"):
        log10_loss = np.log10(loss).reshape(W.shape)
    starts = np.array([[6.0, -2.0], [8.0, -3.0], [10.0, -4.5], [12.0, -5.5]])
    paths = []
    for clip in (False, True):
        theta, path = starts.copy(), [starts.copy()]
        for _ in range(updates):
            _, gw, gb = _cliff_loss_and_grad(core, theta[:, 0], theta[:, 1], steps, x0, target)
            g = {"w": gw, "b": gb}
            if clip:
                g = clip_by_norm(g, threshold, batch_ndim=1)  # Pascanu et al., Algorithm 1, per start
            theta = theta - lr * np.stack([g["w"], g["b"]], axis=-1)
            path.append(theta.copy())
        paths.append(np.stack(path, axis=1))
    return Cliff(w_axis, b_axis, log10_loss, paths[0], paths[1], steps, x0, target, lr, threshold)
