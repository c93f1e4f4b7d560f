"""Success rate against lag: every cell, every lag, several seeds, one fixed update budget.

Each run is ``numeric.train.train`` with the sweep's settings; runs are
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

from derive.errors import InvalidValue, UnrolledError
from derive.render import finite

from . import workers
from .train import Settings, TrainResult, check, train

LAGS = (2, 5, 10, 20, 50, 100)
CELLS = ("rnn", "lstm", "gru")
SEEDS = 5


def runs(base: Settings, cells=CELLS, lags=LAGS, seeds: int = SEEDS) -> list[Settings]:
    """Every run of the sweep, longest first (so the pool's last runs are short ones)."""
    if seeds < 1:
        raise InvalidValue("seeds", f"must be a whole number >= 1, got {seeds}")
    out = [replace(base, cell=c, lag=lag, seed=seed) for c in cells for lag in lags for seed in range(seeds)]
    for s in out:
        check(s)
    return sorted(out, key=lambda s: -s.lag)


def summary(result: TrainResult) -> dict:
    """One run as JSON-ready data (a value that is not finite, as after divergence, is null)."""
    start, end = result.curve[0], result.final
    return finite({"cell": result.settings.cell, "lag": result.settings.lag, "seed": result.settings.seed,
            "succeeded": result.succeeded, "stopped": result.stopped, "updates": result.updates,
            "seconds": round(result.seconds, 3), "score": end.score, "loss": end.loss,
            "log10_first_start": start.log10_first, "log10_first_end": end.log10_first})



def _one(s: Settings) -> dict:
    return summary(train(s))


def sweep(base: Settings, cells=CELLS, lags=LAGS, seeds: int = SEEDS, jobs: int = 1,
          on_run: Callable[[dict, int, int], None] = lambda run, done, total: None) -> dict:
    """Train every (cell, lag, seed); returns the runs and, per cell and lag, the success rate and
    the median log10 ‖∂L/∂h_1‖ at initialisation."""
    todo = runs(base, cells, lags, seeds)
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
    table = {}
    for c in cells:
        table[c] = {}
        for lag in lags:
            mine = [r for r in results if r["cell"] == c and r["lag"] == lag]
            table[c][str(lag)] = {
                "success_rate": sum(r["succeeded"] for r in mine) / len(mine),
                "median_log10_first_at_init": float(np.median([r["log10_first_start"]["h"] for r in mine])),
                "median_updates": float(np.median([r["updates"] for r in mine])),
            }
    settings = {k: v for k, v in asdict(base).items() if k not in ("cell", "lag", "seed")}
    return {"task": base.task, "cells": list(cells), "lags": list(lags), "seeds": seeds,
            "settings": settings, "target": base.target, "seconds": round(time.perf_counter() - start, 1),
            "jobs": jobs, "table": table, "runs": sorted(results, key=lambda r: (r["cell"], r["lag"], r["seed"]))}


#: The sweep the report shows by default: ``python cli.py sweep --out reports/data/longterm-cuisine.json``.
BUNDLED = Path(__file__).resolve().parent.parent / "reports" / "data" / "longterm-cuisine.json"


def read_results(path: str | Path = BUNDLED) -> dict:
    """A results file ``sweep --out`` wrote, checked for what the figure reads."""
    path = Path(path)
    if not path.is_file():
        if path == BUNDLED:
            raise UnrolledError(f"the bundled sweep results {path} are missing; write them with "
                                f"`python cli.py sweep --out {path}`, or give --longterm-results")
        raise InvalidValue("longterm_results", f"{str(path)!r} is not a file a sweep wrote")
    if path.stat().st_size > 16 * 2**20:
        raise InvalidValue("longterm_results", f"{path} is over 16 MiB; a sweep's results are far smaller")
    try:
        data = json.loads(path.read_text())
        for cell in data["cells"]:
            for lag in data["lags"]:
                entry = data["table"][cell][str(lag)]
                float(entry["success_rate"]), float(entry["median_log10_first_at_init"])
        str(data["task"]), int(data["seeds"]), str(data["target"])
        int(data["settings"]["updates"]), float(data["settings"]["lr"]), int(data["settings"]["hidden"])
    except (ValueError, KeyError, TypeError, RecursionError):
        raise InvalidValue("longterm_results", f"{path} is not a results file of `sweep --out`") from None
    return data


def caption(result: dict) -> str:
    """What the sweep found, in numbers, for the report's page."""
    t, lags = result["table"], result["lags"]

    def rates(cell):
        return ", ".join(f"{t[cell][str(lag)]['success_rate']:.0%} at L = {lag}" for lag in lags)

    lines = [f"{result['task']}: success = {result['target']} within {result['settings']['updates']} updates "
             f"(Adam, lr {result['settings']['lr']}, hidden {result['settings']['hidden']}), "
             f"{result['seeds']} seeds per cell and lag."]
    lines += [f"{cell}: {rates(cell)}." for cell in result["cells"]]
    first = ", ".join(f"{cell} {t[cell][str(lags[-1])]['median_log10_first_at_init']:.1f}" for cell in result["cells"])
    lines.append(f"At L = {lags[-1]}, the median log10‖∂L/∂h_1‖ at initialisation is {first}: the signal that "
                 "reaches the first word before any training.")
    return " ".join(lines)
