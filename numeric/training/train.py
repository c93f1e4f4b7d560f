"""Training a recurrent layer and a linear readout on a long-term dependency task.

The model: the cell's layer over x_1..x_T, then y = W_hq h_T + b_q (d2l's names;
PyTorch's ``nn.Linear`` shape (q, n)), and softmax cross-entropy (a class) or
squared error (a number), averaged over the batch.  The readout's loss gives
∂L/∂s_T; ``numeric.engine.grad.bptt``, the one BPTT, carries it back through time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable, Mapping

import numpy as np

from derive.cells import CELLS
from derive.core import Layer, make_core
from derive.errors import InvalidValue

from . import tasks
from .clip import clip_by_norm, clip_by_value, global_norm
from ..init import check_init, default_init, default_t_max, describe, draw
from ..engine.grad import bptt
from ..engine.scan import scan
from ..engine.shapes import MAX_HIDDEN, MEMORY_LIMIT, check_dtype, memory_bytes, prepare
from ..engine.logmatrix import log10_norm
from .optim import optimiser

READOUT = ("W_hq", "b_q")
#: Success: held-out accuracy at least this (a class), or a mean squared error below this (a number).
TARGET_ACCURACY = 0.95
TARGET_MSE = 0.01
#: Held-out sequences every evaluation scores (drawn once, from their own seed).
HELD_OUT = 256


@dataclass(frozen=True)
class Settings:
    """One training run; the defaults are the sweep's."""

    cell: str = "lstm"
    variant: str | None = None
    task: str = "cuisine"
    lag: int = 10
    hidden: int = 16
    batch: int = 32
    updates: int = 2000
    optimiser: str = "adam"
    lr: float = 0.01
    momentum: float = 0.9
    clip: str = "norm"
    threshold: float = 1.0
    seed: int = 0
    every: int = 100
    gate_init: str | None = None      # ``numeric.init.GATE_INITS``; None: chrono for a gated cell, else pytorch
    forget_bias: float | None = None  # forget-bias: the keep gate's bias (default ``init.FORGET_BIAS``)
    t_max: int | None = None          # chrono: the longest memory (default: the task's sequence length)
    dtype: str = "float64"            # what the weights, the data and every value are in: float64 or float32

    @property
    def init(self) -> str:
        """The gate initialisation as a user reads it."""
        return describe(self.gate_init or "pytorch", self.forget_bias, self.t_max)

    @property
    def target(self) -> str:
        return (f"MSE < {TARGET_MSE}" if tasks.task(self.task).regression
                else f"held-out accuracy >= {TARGET_ACCURACY}")


@dataclass(frozen=True)
class Evaluation:
    """The held-out scores after ``update`` updates, and the learning signal at the first step."""

    update: int
    loss: float
    score: float              # accuracy, or MSE for a regression task
    grad_norm: float          # ‖∂L/∂θ‖₂ of the last training batch, before clipping
    log10_first: dict         # state -> log10 ‖∂L/∂s_1‖ on the held-out set (Frobenius over batch × n)


@dataclass(frozen=True)
class TrainResult:
    settings: Settings
    params: dict[str, np.ndarray]
    curve: tuple[Evaluation, ...]
    updates: int
    seconds: float
    succeeded: bool
    stopped: str = ""  # "target", "budget" or "diverged"

    @property
    def final(self) -> Evaluation:
        return self.curve[-1]


def resolve(s: Settings) -> Settings:
    """``s`` checked, every size and choice, before any work; the gate initialisation and
    chrono's T_max filled in where left to their defaults."""
    tasks.task(s.task)
    tasks.check_lag(s.task, s.lag)
    if s.cell not in trainable_cells():
        raise InvalidValue("cell", f"training takes a cell with weights to learn; allowed: "
                           f"{', '.join(trainable_cells())}, got {s.cell!r}")
    for name, value, low in (("hidden", s.hidden, 1), ("batch", s.batch, 1), ("updates", s.updates, 1),
                             ("every", s.every, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise InvalidValue(name, f"must be a whole number >= {low}, got {value!r}")
    if s.hidden > MAX_HIDDEN:
        raise InvalidValue("hidden", f"must be at most {MAX_HIDDEN}, got {s.hidden}")
    check_dtype(s.dtype)
    if not s.lr > 0 or not np.isfinite(s.lr):
        raise InvalidValue("lr", f"must be a number > 0, got {s.lr}")
    if not 0 <= s.momentum < 1:
        raise InvalidValue("momentum", f"must be from 0 to below 1, got {s.momentum}")
    if s.clip not in ("norm", "value", "none"):
        raise InvalidValue("clip", f"unknown clipping {s.clip!r}; allowed: norm, value, none")
    if s.clip != "none" and not s.threshold > 0:
        raise InvalidValue("threshold", f"must be > 0, got {s.threshold}")
    if s.seed < 0:
        raise InvalidValue("seed", f"must be a whole number >= 0, got {s.seed}")
    optimiser(s.optimiser)
    core = _core(s)
    # a forget bias alone asks for its initialisation
    gate_init = s.gate_init or ("forget-bias" if s.forget_bias is not None else default_init(core.definition, core.variant))
    check_init(core.definition, core.variant, gate_init, s.forget_bias, s.t_max)
    steps = tasks.steps(s.task, s.lag)
    need = memory_bytes(core, s.hidden, tasks.task(s.task).input_size, max(s.batch, HELD_OUT), steps)
    if need > MEMORY_LIMIT:
        raise InvalidValue("hidden", f"training would hold {need / 2**30:.1f} GiB (hidden {s.hidden}, lag {s.lag}: "
                           f"{steps} steps, batches of {max(s.batch, HELD_OUT)} including the held-out set); "
                           f"allowed: up to {MEMORY_LIMIT / 2**30:.0f} GiB (a smaller hidden size or lag)")
    return replace(s, variant=core.variant, gate_init=gate_init,
                   t_max=(s.t_max or default_t_max(steps)) if gate_init == "chrono" else None)


def trainable_cells() -> tuple[str, ...]:
    """The cells of the table with weights to learn: not the lecture's fixed LSTM, not a typed formula."""
    return tuple(name for name, d in CELLS.items() if not d.fixed and not d.scalar_only)


def readout_shapes(s: Settings) -> dict[str, tuple[int, ...]]:
    """y = W_hq h_T + b_q: one output per class, or one number."""
    outputs = max(tasks.task(s.task).classes, 1)
    return {"W_hq": (outputs, s.hidden), "b_q": (outputs,)}


def activation(cell: str) -> str | None:
    """The nonlinearity a trained cell uses where it takes one: tanh (nn.RNN's default), else none."""
    choices = CELLS[cell].activations
    return ("tanh" if "tanh" in choices else choices[0]) if choices else None


def _core(s: Settings):
    return make_core(CELLS[s.cell], s.variant, activation(s.cell))


def initial_params(s: Settings) -> dict[str, np.ndarray]:
    """The cell's weights as ``s.gate_init`` draws them (``numeric.init``), and the readout's
    PyTorch's way (``nn.Linear``: U(−1/√n, 1/√n), fan-in n).  ``s`` is resolved."""
    task = tasks.task(s.task)
    layer = Layer(_core(s), s.hidden, task.input_size)
    params = draw(layer, seed=s.seed, init=s.gate_init, forget_bias=s.forget_bias, t_max=s.t_max)
    rng = np.random.default_rng([s.seed, 1])
    bound = 1 / np.sqrt(s.hidden)
    params.update({name: rng.uniform(-bound, bound, shape) for name, shape in readout_shapes(s).items()})
    return {name: value.astype(s.dtype) for name, value in params.items()}


# --- Losses: (mean loss, ∂loss/∂y) for a batch of outputs y -------------------------


def cross_entropy(y: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """−mean log softmax(y)[target]; ∂/∂y = (softmax(y) − onehot) / B."""
    shifted = y - y.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(target))
    grad = np.exp(log_p)
    grad[rows, target] -= 1
    return float(-log_p[rows, target].mean()), grad / len(target)


def squared_error(y: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """mean (y − target)²; ∂/∂y = 2 (y − target) / B."""
    diff = y[:, 0] - target
    return float(np.mean(diff**2)), (2 * diff / len(target))[:, None]


def loss_function(task_name: str) -> Callable:
    return squared_error if tasks.task(task_name).regression else cross_entropy


def loss_and_grad(core, params: Mapping[str, np.ndarray], x: np.ndarray, target: np.ndarray, loss: Callable,
                  wrt_inputs: bool = False):
    """(loss, y, ∂L/∂θ for every parameter, readout included, and ∂L/∂s_1 per state).

    x is (B, T, m).  The readout's ∂L/∂h_T seeds ``numeric.engine.grad.bptt``.
    ``wrt_inputs`` adds ∂L/∂x as ``"x"``, (B, T, m).
    """
    B, n, dtype = x.shape[0], params["W_hq"].shape[1], params["W_hq"].dtype
    u = prepare(core, {name: params[name] for name, _, _ in core.param_table()}, x, dtype=dtype)
    tape = scan(u)
    h = tape.states[core.output][-1]
    y = h @ params["W_hq"].T + params["b_q"]
    value, dy = loss(y, target)
    seed = {s: dy @ params["W_hq"] if s == core.output else np.zeros((B, n), dtype) for s in core.states}
    first = {}

    def record(t, carry):
        if t == 2:  # carry is now ∂L/∂s_1: what reached the first input
            first.update({s: np.array(v) for s, v in carry.items()})
        return carry

    carry, grads = bptt(u, tape, seed, on_step=record, wrt_inputs=wrt_inputs)
    if wrt_inputs:
        grads["x"] = np.transpose(grads["x"], (1, 0, 2))
    if not first:  # T = 1: s_1 is s_T
        first.update(seed)
    grads["W_hq"] = dy.T @ h
    grads["b_q"] = dy.sum(axis=0)
    return value, y, grads, first


def score(task_name: str, y: np.ndarray, target: np.ndarray) -> float:
    """Accuracy (a class) or mean squared error (a number)."""
    if tasks.task(task_name).regression:
        return float(np.mean((y[:, 0] - target) ** 2))
    return float(np.mean(np.argmax(y, axis=1) == target))


def succeeded(task_name: str, value: float) -> bool:
    return value < TARGET_MSE if tasks.task(task_name).regression else value >= TARGET_ACCURACY


def clip(s: Settings, grads: dict) -> dict:
    if s.clip == "none":
        return grads
    if s.clip == "value":
        return clip_by_value(grads, s.threshold)
    return clip_by_norm(grads, s.threshold, batch_ndim=0)


def _evaluate(s: Settings, core, params, held, update: int, grad_norm: float) -> Evaluation:
    x, target = held
    value, y, _, first = loss_and_grad(core, params, x, target, loss_function(s.task))
    return Evaluation(update, value, score(s.task, y, target), grad_norm,
                      {k: float(log10_norm(v.reshape(1, -1))[0]) for k, v in first.items()})


def train(s: Settings, on_eval: Callable[[Evaluation], None] = lambda e: None,
          on_update: Callable[[int], None] = lambda update: None) -> TrainResult:
    """Train until the held-out target is met or ``s.updates`` are used; deterministic for ``s.seed``.

    Batches come from ``default_rng([seed, 2])``, the held-out set from ``[seed, 3]``:
    every run sees its own data, and the same seed sees the same data.
    """
    s = resolve(s)
    core = _core(s)
    params = initial_params(s)
    update_fn, state = optimiser(s.optimiser)
    extra = {"momentum": s.momentum} if s.optimiser == "sgd" else {}
    data = np.random.default_rng([s.seed, 2])
    held = tasks.draw(s.task, s.lag, HELD_OUT, np.random.default_rng([s.seed, 3]))
    loss = loss_function(s.task)
    start = time.perf_counter()
    curve = [_evaluate(s, core, params, held, 0, float("nan"))]
    on_eval(curve[-1])
    done, stopped = 0, "budget"
    for done in range(1, s.updates + 1):
        x, target = tasks.draw(s.task, s.lag, s.batch, data)
        _, _, grads, _ = loss_and_grad(core, params, x, target, loss)
        norm = float(global_norm(grads, batch_ndim=0))
        params, state = update_fn(params, clip(s, grads), state, s.lr, **extra)
        on_update(done)
        if done % s.every == 0 or done == s.updates:
            curve.append(_evaluate(s, core, params, held, done, norm))
            on_eval(curve[-1])
            if not np.isfinite(curve[-1].loss):
                stopped = "diverged"
                break
            if succeeded(s.task, curve[-1].score):
                stopped = "target"
                break
    return TrainResult(s, params, tuple(curve), done, time.perf_counter() - start,
                       succeeded(s.task, curve[-1].score), stopped)
