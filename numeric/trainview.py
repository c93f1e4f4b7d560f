"""Training and sweep results as text, JSON and arrays (the CLI prints these)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from derive.render import finite

from . import tasks
from .train import READOUT, Evaluation, Settings, TrainResult
from .weights import torch_names


def _score(task: str, value: float) -> str:
    return f"MSE {value:.4f}" if tasks.task(task).regression else f"accuracy {value:.3f}"


def _signal(e: Evaluation) -> str:
    return ", ".join(f"log10‖∂L/∂{s}_1‖ {v:.2f}" for s, v in e.log10_first.items())


def eval_line(s: Settings, e: Evaluation) -> str:
    """One evaluation, as a line of the log."""
    norm = "" if np.isnan(e.grad_norm) else f", ‖∇L‖ {e.grad_norm:.3g}"
    return f"update {e.update:>6}: held-out loss {e.loss:.4f}, {_score(s.task, e.score)}{norm}, {_signal(e)}"


def header(s: Settings) -> str:
    task = tasks.task(s.task)
    answer = "a number (squared error)" if task.regression else f"one of {task.classes} classes (cross-entropy)"
    return (f"training {s.cell} (hidden {s.hidden}) on {s.task}, lag {s.lag} ({tasks.steps(s.task, s.lag)} steps), "
            f"answer {answer}; {s.optimiser} lr {s.lr}, batch {s.batch}, clip {s.clip}"
            f"{'' if s.clip == 'none' else f' {s.threshold}'}, up to {s.updates} updates, seed {s.seed}; "
            f"target: {s.target}")


def summary(r: TrainResult) -> str:
    s, start, end = r.settings, r.curve[0], r.final
    outcome = {"target": "reached the target", "budget": "used the whole budget", "diverged": "diverged"}[r.stopped]
    lines = [f"{s.cell} on {s.task} at lag {s.lag}: {outcome} after {r.updates} updates in {r.seconds:.1f} s "
             f"({r.updates / max(r.seconds, 1e-9):.1f} updates/s)",
             f"  held-out {_score(s.task, end.score)} (at the start {_score(s.task, start.score)}); "
             f"{'succeeded' if r.succeeded else 'did not succeed'} ({s.target})",
             "  learning signal at the first input: "
             + "; ".join(f"log10‖∂L/∂{k}_1‖ {start.log10_first[k]:.2f} at the start, {end.log10_first[k]:.2f} at the end"
                         for k in start.log10_first)]
    return "\n".join(lines)


def to_json(r: TrainResult) -> dict:
    """The run as strict JSON data: NaN and infinities (no gradient yet at update 0, divergence) are null."""
    return finite({"settings": asdict(r.settings), "updates": r.updates, "seconds": round(r.seconds, 3),
            "succeeded": r.succeeded, "stopped": r.stopped,
            "final": asdict(r.final), "start": asdict(r.curve[0]),
            "curves": {"update": [e.update for e in r.curve], "loss": [e.loss for e in r.curve],
                       "score": [e.score for e in r.curve],
                       "grad_norm": [e.grad_norm for e in r.curve],
                       **{f"log10_first_{k}": [e.log10_first[k] for e in r.curve] for k in r.curve[0].log10_first}}})


def arrays(r: TrainResult) -> dict[str, np.ndarray]:
    """The trained weights under our names and PyTorch's (``rnn.weight_ih_l0``…, ``fc.weight``, ``fc.bias``),
    so ``numeric --params`` and ``derive --params`` read the trained model."""
    s = r.settings
    cell = {k: v for k, v in r.params.items() if k not in READOUT}
    variant = s.variant or "standard"
    torch = torch_names(s.cell, variant, cell, weights=True) if variant == "standard" else {}
    return {**r.params, **{f"rnn.{k}": v for k, v in torch.items()},
            "fc.weight": r.params["W_hq"], "fc.bias": r.params["b_q"]}


def sweep_table(result: dict) -> str:
    """Success rate (and median log10‖∂L/∂h_1‖ at initialisation) per cell and lag."""
    lags = result["lags"]
    head = f"{'cell':<6}" + "".join(f"{'L=' + str(lag):>10}" for lag in lags)
    lines = [f"{result['task']}: success rate over {result['seeds']} seeds ({result['target']}, "
             f"budget {result['settings']['updates']} updates)", head]
    for cell in result["cells"]:
        lines.append(f"{cell:<6}" + "".join(f"{result['table'][cell][str(lag)]['success_rate']:>10.2f}" for lag in lags))
    lines += ["", "median log10‖∂L/∂h_1‖ at initialisation", head]
    for cell in result["cells"]:
        lines.append(f"{cell:<6}" + "".join(f"{result['table'][cell][str(lag)]['median_log10_first_at_init']:>10.2f}"
                                             for lag in lags))
    lines.append(f"\n{len(result['runs'])} runs in {result['seconds']:.0f} s ({result['jobs']} workers)")
    return "\n".join(lines)
