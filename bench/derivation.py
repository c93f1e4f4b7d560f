"""Derivation time: Unrolled's general-T chain rule against SymPy's diff of the nested expression.

Each case runs in a fresh process with a time limit, so a cache or a blow-up
in one case cannot touch another.  Prints a table of medians and ratios.

    python bench/derivation.py [--limit SECONDS] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = [("rnn", "tanh", T) for T in (5, 10, 20, 50)] + [("lstm", None, T) for T in (2, 3, 4, 5)]


def worker(method: str, cell: str, activation: str | None, T: int) -> float:
    """Time one derivation of ∂h_T/∂h_0 in this (fresh) process."""
    sys.path.insert(0, str(ROOT))
    import sympy as sp

    from derive.cell import make_cell
    from derive.cells import CELLS
    from derive.graph import expanded
    from derive.solution import solve
    from derive.symbols import quantity

    start = time.perf_counter()
    if method == "unrolled":
        solve(cell, activation=activation, steps=T)
    else:
        c = make_cell(CELLS[cell], activation=activation)
        step = [expanded(c)[s] for s in c.state_next()]
        state = [quantity(name, "0", 1)[0] for name in c.states]
        for t in range(1, T + 1):  # the fully nested expression, no size limit
            values = dict(zip(c.state_prev(), state)) | {c.x[0]: quantity("x", str(t), 1)[0]}
            state = [e.xreplace(values) for e in step]
        sp.diff(state[0], quantity("h", "0", 1)[0])
    return time.perf_counter() - start


def run(method: str, case, limit: float) -> str | float:
    cell, activation, T = case
    args = [sys.executable, __file__, "--worker", method, cell, activation or "-", str(T)]
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return f"> {limit:g} s"
    if out.returncode != 0:
        return out.stderr.strip().splitlines()[-1].split(":")[0] if out.stderr else "failed"
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=60.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        method, cell, activation, T = args.worker
        sys.setrecursionlimit(10_000)
        print(json.dumps(worker(method, cell, None if activation == "-" else activation, int(T))))
        return
    print(f"{'cell':<12}{'T':>4}  {'Unrolled (median)':>18}  {'SymPy nested diff':>18}  {'ratio':>8}")
    for case in CASES:
        ours = statistics.median(run("unrolled", case, args.limit) for _ in range(args.repeat))
        theirs = run("sympy", case, args.limit)
        ratio = f"{theirs / ours:7.0f}x" if isinstance(theirs, float) else "-"
        shown = f"{theirs * 1000:15.1f} ms" if isinstance(theirs, float) else f"{theirs:>18}"
        label = f"{case[0]} {case[1] or ''}".strip()
        print(f"{label:<12}{case[2]:>4}  {ours * 1000:15.1f} ms  {shown}  {ratio:>8}", flush=True)


if __name__ == "__main__":
    main()
