"""The training sweep's figures: who learns the long dependency, and what the trained model
remembers (``numeric.training.sweep``'s results in, a ``Figure`` out)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from numeric.training import sweep

from .figures import COLORS, _canvas


def _number(value) -> float:
    """A results file's value, null (not defined) as NaN: a gap in the line, not a crash."""
    return float("nan") if value is None else float(value)


def _model_style(model: str) -> dict:
    """A (cell, initialisation)'s line: colour by cell, solid and filled for chrono, dashed and hollow for PyTorch's."""
    cell, _, init = model.partition(":")
    name = "rnn (tanh)" if cell == "rnn" else cell
    carry = init in ("chrono", "forget-bias")
    label = f"{name}, " + ("PyTorch's init" if init == "pytorch" else f"{init} init")
    return dict(color=COLORS.get(name), ls="-" if carry else "--", marker={"rnn": "s", "lstm": "o", "gru": "^"}.get(cell, "D"),
                mfc=None if carry else "white", ms=7, lw=2, label=label)


def _lag_axis(ax, lags, task: str) -> None:
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(lags, [str(lag) for lag in lags])
    ax.set_xlabel("lag L (words between the food and the question)" if task == "cuisine" else "lag L")
    ax.grid(alpha=0.3)


def longterm(result: dict, fig=None) -> Figure:
    """Success rate against lag per (cell, initialisation), and the memory's learning signal at initialisation."""
    fig = _canvas(fig, (10.0, 4.8))
    fig.suptitle(f"The lecture's long-term dependency ({result['task']}): who learns it, and the gradient "
                 "that reaches the first word", fontsize=11)
    left, right = fig.subplots(1, 2)
    lags, table = result["lags"], result["table"]
    for model in result["models"]:
        style = _model_style(model)
        left.plot(lags, [table[model][str(lag)]["success_rate"] for lag in lags], **style)
        right.plot(lags, [_number(sweep.memory_signal(table[model][str(lag)])) for lag in lags], **style)
    pytorch_lstm = "lstm:pytorch" if "lstm:pytorch" in table else None
    if pytorch_lstm:  # the lecture's 0.5^L, anchored at PyTorch's LSTM at the shortest lag
        start = sweep.memory_signal(table[pytorch_lstm][str(lags[0])])
        right.plot(lags, [start + (lag - lags[0]) * np.log10(0.5) for lag in lags], color="0.4", lw=1, ls=":",
                   label="slope of 0.5^L (the lecture's w = 0.5)")
    for ax in (left, right):
        _lag_axis(ax, lags, result["task"])
    left.set_ylim(-0.05, 1.05)
    left.set_ylabel(f"success rate ({result['seeds']} seed{'s' if result['seeds'] != 1 else ''})")
    left.set_title(f"within {result['settings']['updates']} updates", fontsize=10)
    left.legend(fontsize=8, loc="lower left")
    right.set_ylabel("median log10 ‖∂L/∂s_1‖ at initialisation\n(s = c for the LSTM, h otherwise)")
    right.set_title("the learning signal before any training", fontsize=10)
    right.legend(fontsize=8, loc="lower left")
    return fig


def memory(result: dict, fig=None) -> Figure:
    """What trained models depend on: each input step's share of ‖∂ℓ/∂x_t‖ at one lag, and the key step's
    sensitivity over a typical step's against lag."""
    fig = _canvas(fig, (10.0, 4.8))
    fig.suptitle("What the trained answer depends on: the loss's sensitivity to each input word", fontsize=11)
    left, right = fig.subplots(1, 2)
    lag, lags, table = sweep.profile_lag(result), result["lags"], result["table"]
    for model, share in sweep.profiles(result, lag).items():
        style = _model_style(model)
        style.update(marker=None)
        left.plot(np.arange(1, len(share) + 1), share, **style)
        right.plot(lags, [_number(table[model][str(k)]["median_key_ratio"]) for k in lags], **_model_style(model))
    left.set_yscale("log")
    if result["task"] == "cuisine":
        left.axvline(3, color="0.5", lw=6, alpha=0.25, zorder=0)
        left.annotate("the food word", (3, 0.5), xycoords=("data", "axes fraction"), xytext=(8, 0),
                      textcoords="offset points", fontsize=9, color="0.3")
    left.set_xlabel("input step t")
    left.set_ylabel("share of Σ_t ‖∂ℓ/∂x_t‖ (median over seeds)")
    left.set_title(f"trained at L = {lag}", fontsize=10)
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="lower center")
    _lag_axis(right, lags, result["task"])
    right.set_yscale("log")
    right.axhline(1, color="0.4", lw=1, ls=":")
    right.set_ylabel("food word's ‖∂ℓ/∂x‖ over the median other word's" if result["task"] == "cuisine"
                     else "key steps' ‖∂ℓ/∂x‖ over the median other step's")
    right.set_title("after training (median over seeds)", fontsize=10)
    return fig
