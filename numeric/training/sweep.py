"""Success rate against lag: every (cell, gate initialisation), every lag, several seeds, one fixed budget.

Each run is ``numeric.training.train.train`` with the sweep's settings; runs are
independent and deterministic, so they are spread over worker processes and the
result does not depend on how many there are.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable

import numpy as np

from derive.cells import CELLS
from derive.errors import InvalidValue, UnrolledError
from derive.render import finite

from . import tasks, workers
from ..init import default_init
from .sensitivity import sensitivity
from .train import Settings, TrainResult, resolve, train, trainable_cells

LAGS = (2, 5, 10, 20, 50, 100)
#: (cell, gate initialisation): the plain RNN, and each gated cell started as PyTorch does and to carry.
MODELS = (("rnn", "pytorch"), ("lstm", "pytorch"), ("lstm", "chrono"), ("gru", "pytorch"), ("gru", "chrono"))
SEEDS = 5


def model_key(cell: str, init: str) -> str:
    """``lstm:chrono``: how a (cell, initialisation) is named in a sweep's table."""
    return f"{cell}:{init}"


def parse_models(text: str) -> tuple[tuple[str, str], ...]:
    """``"rnn,lstm:chrono"`` -> (("rnn", "pytorch"), ("lstm", "chrono")): a cell alone takes its training default.

    >>> parse_models("rnn, gru:pytorch")
    (('rnn', 'pytorch'), ('gru', 'pytorch'))
    """
    out = []
    for item in text.split(","):
        cell, _, init = (part.strip() for part in item.partition(":"))
        if cell not in trainable_cells():
            raise InvalidValue("models", f"unknown cell {cell!r} in {item.strip()!r}; allowed: "
                               f"{', '.join(trainable_cells())}, each optionally :pytorch, :forget-bias or :chrono")
        definition = CELLS[cell]
        out.append((cell, init or default_init(definition, definition.variants[0])))
    return tuple(out)


def runs(base: Settings, models=MODELS, lags=LAGS, seeds: int = SEEDS) -> list[Settings]:
    """Every run of the sweep, resolved, longest first (so the pool's last runs are short ones)."""
    if seeds < 1:
        raise InvalidValue("seeds", f"must be a whole number >= 1, got {seeds}")
    if len(set(models)) != len(models):
        raise InvalidValue("models", f"a (cell, initialisation) is named twice in {[model_key(*m) for m in models]}")
    # --forget-bias and --t-max belong to the models of their initialisation only
    out = [resolve(replace(base, cell=c, gate_init=init, lag=lag, seed=seed,
                           forget_bias=base.forget_bias if init == "forget-bias" else None,
                           t_max=base.t_max if init == "chrono" else None))
           for c, init in models for lag in lags for seed in range(seeds)]
    return sorted(out, key=lambda s: -s.lag)


def summary(result: TrainResult) -> dict:
    """One run as JSON-ready data (a value that is not finite, as after divergence, is null), with the
    trained model's sensitivity to each input step on the held-out set (``numeric.training.sensitivity``)."""
    s, start, end = result.settings, result.curve[0], result.final
    seen = sensitivity(s, result.params)
    return finite({"model": model_key(s.cell, s.gate_init), "cell": s.cell, "gate_init": s.gate_init,
                   "t_max": s.t_max, "lag": s.lag, "seed": s.seed,
                   "succeeded": result.succeeded, "stopped": result.stopped, "updates": result.updates,
                   "seconds": round(result.seconds, 3), "score": end.score, "loss": end.loss,
                   "log10_first_start": start.log10_first, "log10_first_end": end.log10_first,
                   "key_share": round(seen.key_share, 6), "key_ratio": float(f"{seen.key_ratio:.4g}"),
                   "share": [float(f"{v:.4g}") for v in seen.share]})


def _one(s: Settings) -> dict:
    return summary(train(s))


def _table(results: list[dict], models, lags) -> dict:
    """Per model and lag: the success rate, the medians of the learning signal at initialisation
    (log10‖∂L/∂s_1‖ per state), of the updates used and of the trained model's share on the key step."""
    table = {}
    for cell, init in models:
        key = model_key(cell, init)
        table[key] = {}
        for lag in lags:
            mine = [r for r in results if r["model"] == key and r["lag"] == lag]
            entry = {"success_rate": sum(r["succeeded"] for r in mine) / len(mine),
                     "median_updates": float(np.median([r["updates"] for r in mine])),
                     "median_key_share": _median([r["key_share"] for r in mine]),
                     "median_key_ratio": _median([r["key_ratio"] for r in mine])}
            for state in mine[0]["log10_first_start"]:
                entry[f"median_log10_first_{state}_at_init"] = _median(
                    [r["log10_first_start"][state] for r in mine])
            table[key][str(lag)] = entry
    return table


def _median(values) -> float | None:
    """The median of the values that are defined (a diverged run's, or a ratio with nothing to divide by,
    is null), or None if none is."""
    defined = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.median(defined)) if defined else None


def sweep(base: Settings, models=MODELS, lags=LAGS, seeds: int = SEEDS, jobs: int = 1,
          on_run: Callable[[dict, int, int], None] = lambda run, done, total: None) -> dict:
    """Train every (cell, initialisation, lag, seed); returns the runs and, per model and lag,
    the success rate and the median learning signal at initialisation."""
    todo = runs(base, models, lags, seeds)
    start = time.perf_counter()
    results = []
    if jobs > 1:
        with workers.pool(jobs) as running:
            for run in running.imap(_one, todo):
                results.append(run)
                on_run(run, len(results), len(todo))
    else:
        for s in todo:
            results.append(_one(s))
            on_run(results[-1], len(results), len(todo))
    settings = {k: v for k, v in asdict(base).items() if k not in ("cell", "lag", "seed", "gate_init", "variant")}
    return {"task": base.task, "models": [model_key(*m) for m in models], "lags": list(lags), "seeds": seeds,
            "settings": settings, "target": base.target, "seconds": round(time.perf_counter() - start, 1),
            "jobs": jobs, "table": _table(results, models, lags),
            "runs": sorted(results, key=lambda r: (r["model"], r["lag"], r["seed"]))}


#: The sweep the report shows by default: ``python cli.py sweep --out reports/data/longterm-cuisine.json``.
BUNDLED = Path(__file__).resolve().parents[2] / "reports" / "data" / "longterm-cuisine.json"


def read_results(path: str | Path = BUNDLED) -> dict:
    """A results file ``sweep --out`` wrote, checked for what the figures read."""
    path = Path(path)
    if not path.is_file():
        if path == BUNDLED:
            raise UnrolledError(f"the bundled sweep results {path} are missing: they are a sweep's results file (docs/training.md says how to write it)")
        raise InvalidValue("longterm_results", f"{str(path)!r} is not a file a sweep wrote")
    if path.stat().st_size > 16 * 2**20:
        raise InvalidValue("longterm_results", f"{path} is over 16 MiB; a sweep's results are far smaller")
    try:
        data = json.loads(path.read_text())
        for model in data["models"]:
            for lag in data["lags"]:
                entry = data["table"][model][str(lag)]
                float(entry["success_rate"]), float(entry["median_log10_first_h_at_init"])
                float(entry["median_key_ratio"] if entry["median_key_ratio"] is not None else "nan")
        for run in data["runs"]:
            str(run["model"]), int(run["lag"]), [float("nan" if v is None else v) for v in run["share"]]
        str(data["task"]), int(data["seeds"]), str(data["target"])
        int(data["settings"]["updates"]), float(data["settings"]["lr"]), int(data["settings"]["hidden"])
    except (ValueError, KeyError, TypeError, RecursionError):
        raise InvalidValue("longterm_results", f"{path} is not a results file a sweep wrote "
                           "(one from before the sweep compared initialisations: write it again)") from None
    return data


def memory_signal(entry: dict) -> float:
    """The median log10‖∂L/∂s_1‖ at initialisation of the state that carries the memory: c if the cell has it."""
    return entry.get("median_log10_first_c_at_init", entry["median_log10_first_h_at_init"])


def profile_lag(result: dict) -> int:
    """The lag whose per-step sensitivities the report draws: the longest up to 50."""
    return max([lag for lag in result["lags"] if lag <= 50] or result["lags"][:1])


def profiles(result: dict, lag: int) -> dict[str, np.ndarray]:
    """Per model, the median over seeds of each input step's share of ‖∂ℓ/∂x_t‖ at ``lag``."""
    return {m: np.median([r["share"] for r in result["runs"] if r["model"] == m and r["lag"] == lag], axis=0)
            for m in result["models"]}


def _chance_text(task: str) -> str:
    if tasks.task(task).regression:
        return f"predicting the mean scores MSE {tasks.chance(task):.3f}"
    why = " (the cuisines' frequencies)" if task == "cuisine" else ""
    return f"chance is {tasks.chance(task):.2f}{why}"


def caption(result: dict) -> str:
    """What the sweep found, in numbers, for the report's longterm page."""
    t, lags, s = result["table"], result["lags"], result["settings"]

    def rates(model):
        return ", ".join(f"{t[model][str(lag)]['success_rate']:.0%}" for lag in lags)

    lines = [f"{result['task']}: success = {result['target']} within {s['updates']} updates (Adam, lr {s['lr']}, "
             f"hidden {s['hidden']}, batch {s['batch']}), {result['seeds']} seeds per model and lag; "
             f"{_chance_text(result['task'])}. Success at L = {', '.join(map(str, lags))}:"]
    lines += [f"{model} {rates(model)};" for model in result["models"]]
    last = str(lags[-1])
    signal = ", ".join(f"{m} {memory_signal(t[m][last]):.1f}" for m in result["models"])
    lines.append(f"At L = {last}, the median log10‖∂L/∂s_1‖ at initialisation (c for the LSTM, h otherwise) is "
                 f"{signal}. PyTorch's gates start with the forget gate near σ(0) = 0.5, so the memory fades "
                 "like the lecture's 0.5^L; chrono (Tallec & Ollivier 2018) starts it open and the input gate "
                 "closed, and the signal reaches the first word.")
    return " ".join(lines)


def _ratio(value) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.3g}×"


def memory_caption(result: dict) -> str:
    """What the trained models depend on, in numbers, for the report's memory page."""
    t, lag = result["table"], profile_lag(result)
    ratios = ", ".join(f"{m} {_ratio(t[m][str(lag)]['median_key_ratio'])}" for m in result["models"])
    return (f"What the trained answer depends on (after Madsen 2019): for each trained model and 256 held-out "
            f"sequences, ‖∂ℓ/∂x_t‖ of each sequence's own loss ℓ at every input step t, as a share of its sum; "
            f"medians over the seeds. At L = {lag}, the food word's sensitivity over the median other word's "
            f"is {ratios}. A model that learned reads the food {lag + 1} words back; one that did not "
            "depends on the last few words only.")
