"""Training and sweep results as text, JSON and arrays (the CLI prints these)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from derive.cells import CELLS
from derive.render import finite

from ..training import tasks
from ..io.arrayfiles import with_metadata
from ..init import memory
from ..training.sensitivity import Sensitivity
from ..training.train import READOUT, Evaluation, Settings, TrainResult, activation
from ..io.weights import GATES, TORCH_VARIANT, torch_names


def _score(task: str, value: float) -> str:
    return f"MSE {value:.4f}" if tasks.task(task).regression else f"accuracy {value:.3f}"


def _signal(e: Evaluation) -> str:
    return ", ".join(f"log10‖∂L/∂{s}_1‖ {v:.2f}" for s, v in e.log10_first.items())


def eval_line(s: Settings, e: Evaluation) -> str:
    """One evaluation, as a line of the log."""
    norm = "" if np.isnan(e.grad_norm) else f", ‖∇L‖ {e.grad_norm:.3g}"
    return f"update {e.update:>6}: held-out loss {e.loss:.4f}, {_score(s.task, e.score)}{norm}, {_signal(e)}"


def init_line(s: Settings, option: str = "gate init") -> str:
    """The first line of a run: the gate initialisation, why, and how to get the other one (``option``:
    how the caller spells the setting; the CLI passes its option).  The gates are named from the cell's
    own data (``derive.cell.Memory``: the LSTM's b_f and b_i, the GRU's b_z)."""
    gates = memory(CELLS[s.cell], s.variant or CELLS[s.cell].variants[0])
    if gates is None:
        return f"weights: PyTorch's default initialisation (the {s.cell} has no gates)"
    keep = f"the keep gate ({gates.keep})"
    if s.gate_init == "chrono":
        write = f" and the write gate ({gates.write}) closed" if gates.write else ""
        return (f"gates: {s.init}: {keep} starts keeping the state{write}, so the memory lasts from the start "
                f"({option} pytorch for PyTorch's default, which starts it near σ(0) = 0.5)")
    if s.gate_init == "forget-bias":
        return f"gates: {s.init}, on {keep} ({option} chrono for the literature's choice at long lags)"
    return (f"gates: PyTorch's default: {keep} starts near σ(0) = 0.5, so the memory fades like 0.5^t "
            f"({option} chrono starts it to carry)")


def header(s: Settings, init_option: str = "gate init") -> str:
    """The run's first two lines: the gate initialisation (``init_line``) and the settings."""
    task = tasks.task(s.task)
    answer = "a number (squared error)" if task.regression else f"one of {task.classes} classes (cross-entropy)"
    return (f"{init_line(s, init_option)}\n"
            f"training {s.cell} (hidden {s.hidden}) on {s.task}, lag {s.lag} ({tasks.steps(s.task, s.lag)} steps), "
            f"answer {answer}; {s.optimiser} lr {s.lr}, batch {s.batch}, clip {s.clip}"
            f"{'' if s.clip == 'none' else f' {s.threshold}'}, up to {s.updates} updates, seed {s.seed}"
            f"{'' if s.dtype == 'float64' else f', in {s.dtype}'}; "
            f"target: {s.target}")


def summary(r: TrainResult, seen: Sensitivity | None = None) -> str:
    """What the run did, the learning signal at the first input, and (``seen``) what the answer depends on."""
    s, start, end = r.settings, r.curve[0], r.final
    outcome = {"target": "reached the target", "budget": "used the whole budget", "diverged": "diverged"}[r.stopped]
    lines = [f"{s.cell} ({s.gate_init} init) on {s.task} at lag {s.lag}: {outcome} after {r.updates} updates in "
             f"{r.seconds:.1f} s ({r.updates / max(r.seconds, 1e-9):.1f} updates/s)",
             f"  held-out {_score(s.task, end.score)} (chance {tasks.chance(s.task):.2f}; at the start "
             f"{_score(s.task, start.score)}); "
             f"{'succeeded' if r.succeeded else 'did not succeed'} ({s.target})",
             "  learning signal at the first input: "
             + "; ".join(f"log10‖∂L/∂{k}_1‖ {start.log10_first[k]:.2f} at the start, {end.log10_first[k]:.2f} at the end"
                         for k in start.log10_first)]
    if seen is not None:
        lines.append("  what the answer depends on: " + sensitivity_line(seen))
    return "\n".join(lines)


def sensitivity_line(seen: Sensitivity) -> str:
    """The key steps' share of ‖∂ℓ/∂x_t‖ against an average step's."""
    s = seen.settings
    what = tasks.KEY_STEPS[tasks.task(s.task).name]
    steps = seen.norms.shape[1]
    keys = float(seen.key.sum(axis=1).mean())
    return (f"{what} hold{'s' if keys == 1 else ''} {seen.key_share:.1%} of the loss's sensitivity to the "
            f"inputs (Σ_t ‖∂ℓ/∂x_t‖; {keys / steps:.1%} if every step counted alike), "
            + ("and no other step to compare with" if not np.isfinite(seen.key_ratio)
               else f"{seen.key_ratio:.3g}× the median other step's"))


def sensitivity_table(seen: Sensitivity, rows: int = 12) -> str:
    """‖∂ℓ/∂x_t‖ by step t, mean over the held-out sequences, with each step's share; long runs elided."""
    s = seen.settings
    names = tasks.roles(s.task, s.lag)
    T = len(names)
    shown = list(range(T)) if T <= rows else [*range(rows // 2), None, *range(T - rows // 2 + 1, T)]
    lines = [f"{s.cell} ({s.gate_init} init) on {s.task} at lag {s.lag}, {seen.norms.shape[0]} held-out sequences: "
             f"{'MSE' if tasks.task(s.task).regression else 'accuracy'} {seen.score:.3f}, loss {seen.loss:.4f}",
             f"{'step':>6}  {'holds':<9} {'mean ‖∂ℓ/∂x_t‖':>15}  {'share':>7}"]
    for t in shown:
        if t is None:
            lines.append(f"{'⋮':>6}")
            continue
        bar = "█" * int(round(40 * seen.share[t]))
        lines.append(f"{t + 1:>6}  {names[t]:<9} {seen.mean[t]:>15.3e}  {seen.share[t]:>7.2%} {bar}")
    lines.append(sensitivity_line(seen))
    return "\n".join(lines)


def sensitivity_json(seen: Sensitivity) -> dict:
    """One value per input step: the mean ‖∂ℓ/∂x_t‖ and its share, what the step holds, and the key steps' share."""
    s = seen.settings
    return finite({"settings": asdict(s), "sequences": int(seen.norms.shape[0]), "loss": seen.loss,
                   "score": seen.score, "key_share": seen.key_share,
                   "steps": list(range(1, seen.norms.shape[1] + 1)), "holds": list(tasks.roles(s.task, s.lag)),
                   "mean_norm": seen.mean.tolist(), "share": seen.share.tolist(),
                   "key_fraction": seen.key.mean(axis=0).tolist()})


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
    torch = torch_names(s.cell, variant, cell, weights=True) if variant == TORCH_VARIANT and s.cell in GATES else {}
    arrays = {**r.params, **{f"rnn.{k}": v for k, v in torch.items()},
              "fc.weight": r.params["W_hq"], "fc.bias": r.params["b_q"]}
    return with_metadata(arrays, {"written_by": "unrolled train", "settings": asdict(s),
                                  "activation": activation(s.cell)})


def sweep_table(result: dict) -> str:
    """Success rate, and the median log10‖∂L/∂s_1‖ at initialisation, per (cell, initialisation) and lag."""
    lags, table = result["lags"], result["table"]
    width = max(len(m) for m in result["models"]) + 2
    head = f"{'model':<{width}}" + "".join(f"{'L=' + str(lag):>9}" for lag in lags)
    lines = [f"{result['task']}: success rate over {result['seeds']} seeds ({result['target']}, "
             f"budget {result['settings']['updates']} updates)", head]
    lines += [f"{m:<{width}}" + "".join(f"{table[m][str(lag)]['success_rate']:>9.2f}" for lag in lags)
              for m in result["models"]]
    for state in ("h", "c"):
        key = f"median_log10_first_{state}_at_init"
        models = [m for m in result["models"] if key in table[m][str(lags[0])]]
        if models:
            lines += ["", f"median log10‖∂L/∂{state}_1‖ at initialisation", head]
            lines += [f"{m:<{width}}" + "".join(f"{table[m][str(lag)][key]:>9.2f}" for lag in lags) for m in models]
    lines.append(f"\n{len(result['runs'])} runs in {result['seconds']:.0f} s ({result['jobs']} workers)")
    return "\n".join(lines)
