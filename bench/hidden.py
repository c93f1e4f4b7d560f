"""Gradients of every parameter of a tanh RNN, LSTM and GRU layer at hidden size n, against PyTorch.

    python bench/hidden.py [--rounds 7] [--cells rnn lstm gru] [--quick]

Measured: ``numeric.engine.grad.value_and_grad`` (L = Σ_b Σ_i h_T[b, i], BPTT through
all T steps, the gradient of every weight and bias) against PyTorch's
``nn.RNN/LSTM/GRU`` with the same weights, ``out[:, -1].sum().backward()``, in
float64 and in float32 (the same model ``.float()``, as users train), and at
n <= 8 the C backend, ``gradient(..., mode="native", dtype="float32")`` (it runs
the batch as settings sharing the weights; its C is unrolled per unit, so a larger
n compiles too long).  Input size m = n; batch 64 and T = 100 (n = 1024: batch 16,
T = 50).

How:
- One thread against one thread: the OpenMP, MKL and OpenBLAS thread counts are
  set to 1 before NumPy or PyTorch loads, ``torch.set_num_threads(1)``, and
  ``threadpool_limits(1)`` around everything.  On a 2-core machine shared with
  other work, two threads a side measure the neighbours, not the code.
- First, once per (cell, n), our gradients and h_T are checked against PyTorch
  float64: max_p max|ours − torch| / max|torch| must stay below 1e-10, else the
  run stops.
- Then the contenders run interleaved, round by round (ours in float64, ours in
  float32 (``dtype="float32"``), torch64, torch32, ours native in float32, ours, …),
  after one warm-up call each (the native one compiles its kernel); medians are reported.
- First call: in a fresh process, ``make_core`` plus the first ``value_and_grad``
  (it compiles the kernels), median of 3 processes per (cell, n); compile = first
  call − median, so it also holds the first call's cold memory and caches.
- Peak memory: in a fresh process, one ``value_and_grad`` at n = 1024, batch 16,
  T = 50: the peak resident size during it (VmHWM, reset after imports and
  building params) minus the resident size then.  Linux only.  Not ru_maxrss:
  a child inherits its parent's peak through exec, which hid everything below it.

If OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set (they slow a current NumPy),
unset both for this command alone: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE
python bench/hidden.py``; the header shows the kernel OpenBLAS then runs.
"""

from __future__ import annotations

import os

# Before NumPy or PyTorch loads a thread pool: they read these once, at load.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
for _variable in THREAD_VARIABLES:
    os.environ[_variable] = "1"

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from derive.cells import CELLS
from derive.core import make_core
from numeric.engine.grad import value_and_grad
from numeric.engine.modes import gradient
from numeric.engine.shapes import memory_bytes

CELL_OPTIONS = {"rnn": {"activation": "tanh"}, "lstm": {}, "gru": {}}
#: PyTorch's gate blocks, top to bottom, in weight_ih_l0 and weight_hh_l0.
GATES = {"rnn": "h", "lstm": "ifgo", "gru": "rzn"}
SIZES = (1, 8, 64, 256, 1024)
QUICK_SIZES = (1, 8, 64)
TOLERANCE = 1e-10
FIRST_CALL_LIMIT = 2.0  # seconds
FIRST_CALL_SAMPLES = 3  # fresh processes per (cell, n); their median is reported
FIRST_CALL_SPREAD = 1.5  # n = 8 against n = 1024
MEMORY_LIMIT_MB = 2000.0
NATIVE_MAX = 8  # the largest n the native row runs at: its C is unrolled per unit


def workload(n: int) -> tuple[int, int]:
    """(batch, T) at hidden size n."""
    return (16, 50) if n >= 1024 else (64, 100)


def problem(core, n: int, seed: int = 0) -> tuple[dict, np.ndarray]:
    """Parameters drawn as PyTorch initialises them, U(−1/√n, 1/√n), and inputs x (B, T, n)."""
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(n)
    params = {name: rng.uniform(-bound, bound, shape) for name, shape in core.shapes(n, n).items()}
    batch, steps = workload(n)
    return params, rng.uniform(-1, 1, (batch, steps, n))


def core_of(cell: str):
    return make_core(CELLS[cell], **CELL_OPTIONS[cell])


# --- PyTorch ------------------------------------------------------------------------------


def torch_layer(torch, cell: str, params: dict, n: int):
    """PyTorch's layer with our weights: gates stacked by rows.  Our b_g is bias_ih + bias_hh,
    so bias_hh is 0, but for the GRU's b_hn, which sits inside r ⊙ (W_hn h + b_hn)."""
    layer = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](
        n, n, batch_first=True, dtype=torch.float64)
    gates = GATES[cell]
    blocks = {
        "weight_ih_l0": [params[f"W_x{g}"] for g in gates],
        "weight_hh_l0": [params[f"W_h{g}"] for g in gates],
        "bias_ih_l0": [params[f"b_{g}"] if f"b_{g}" in params else params[f"b_x{g}"] for g in gates],
        "bias_hh_l0": [params.get(f"b_h{g}", np.zeros(n)) for g in gates],
    }
    with torch.no_grad():
        for name, parts in blocks.items():
            getattr(layer, name).copy_(torch.from_numpy(np.concatenate(parts)))
    return layer


def torch_grads(cell: str, layer, n: int) -> dict[str, np.ndarray]:
    """The layer's gradients under our names (the inverse of ``torch_layer``)."""
    grad = {name: p.grad.double().numpy() for name, p in layer.named_parameters()}
    out = {}
    for k, g in enumerate(GATES[cell]):
        rows = slice(k * n, (k + 1) * n)
        out[f"W_x{g}"], out[f"W_h{g}"] = grad["weight_ih_l0"][rows], grad["weight_hh_l0"][rows]
        if cell == "gru" and g == "n":
            out["b_xn"], out["b_hn"] = grad["bias_ih_l0"][rows], grad["bias_hh_l0"][rows]
        else:
            out[f"b_{g}"] = grad["bias_ih_l0"][rows]
    return out


def torch_run(layer, x) -> Callable[[], object]:
    """One forward and backward pass; returns h_T."""
    def run():
        layer.zero_grad(set_to_none=True)
        last = layer(x)[0][:, -1]
        last.sum().backward()
        return last
    return run


# --- checking and timing ------------------------------------------------------------------


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300))


def verify(cell: str, core, params: dict, x: np.ndarray, torch, layer) -> float:
    """max relative difference of h_T and every gradient against PyTorch float64; stops the run if ≥ 1e-10."""
    n = x.shape[-1]
    ours = value_and_grad(core, params, x)
    h_T = torch_run(layer, torch.from_numpy(x))().detach().numpy()
    theirs = torch_grads(cell, layer, n)
    errors = {name: relative_error(ours.grads[name], theirs[name]) for name in core.shapes(n, n)}
    errors["h_T"] = relative_error(ours.states[core.output][-1], h_T)
    worst = max(errors, key=errors.get)
    if not errors[worst] < TOLERANCE:
        raise SystemExit(f"MISMATCH {cell} n={n}: {worst} differs from PyTorch by {errors[worst]:.3g} "
                         f"(relative; allowed < {TOLERANCE:g}); all: {errors}")
    return errors[worst]


def interleaved(contenders: dict[str, Callable], rounds: int) -> dict[str, float]:
    """Median seconds of each contender: one warm-up call each, then one call each per round."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for run in contenders.values():
        run()
    for _ in range(rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def fresh(kind: str, cell: str, n: int) -> dict:
    """Run ``--worker kind cell n`` in a new Python process (cold caches) and read its JSON."""
    result = subprocess.run([sys.executable, __file__, "--worker", kind, cell, str(n)],
                            check=False, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"worker {kind} {cell} {n} failed:\n{result.stderr}")
    return json.loads(result.stdout)


def first_call(cell: str, n: int) -> dict:
    """Seconds of ``make_core`` and of the first ``value_and_grad`` (compiling) in this fresh process."""
    start = time.perf_counter()
    core = core_of(cell)
    made = time.perf_counter()
    params, x = problem(core, n)
    called = time.perf_counter()
    value_and_grad(core, params, x)
    return {"make_core": made - start, "value_and_grad": time.perf_counter() - called}


def peak_memory(cell: str, n: int) -> dict:
    """MB the resident size grows by during one ``value_and_grad``, in this fresh process."""
    core = core_of(cell)
    params, x = problem(core, n)
    # Not ru_maxrss: a child keeps its parent's peak through exec.  VmHWM can be reset.
    Path("/proc/self/clear_refs").write_text("5")
    before = _status_kb("VmRSS")
    value_and_grad(core, params, x)
    return {"peak_mb": (_status_kb("VmHWM") - before) * 1024 / 1e6}


WORKERS = {"first": first_call, "memory": peak_memory}


def _status_kb(field: str) -> int:
    """A memory figure of this process from /proc/self/status (Linux), in KiB."""
    return int(re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE).group(1))


def measure(cell: str, n: int, rounds: int, torch) -> dict:
    """One row: checked, timed in-process against PyTorch, first call timed in a fresh process."""
    core = core_of(cell)
    params, x = problem(core, n)
    layer = torch_layer(torch, cell, params, n)
    error = verify(cell, core, params, x, torch, layer)
    x64 = torch.from_numpy(x)
    contenders = {
        "ours": lambda: value_and_grad(core, params, x),
        "ours32": lambda: value_and_grad(core, params, x, dtype="float32"),
        "torch64": torch_run(layer, x64),
        "torch32": torch_run(torch_layer(torch, cell, params, n).float(), x64.float()),
    }
    if n <= NATIVE_MAX:
        contenders["native"] = lambda: gradient(core, params, x, mode="native", dtype="float32")
    medians = {"native": None, **interleaved(contenders, rounds)}
    first = statistics.median(sum(fresh("first", cell, n).values()) for _ in range(FIRST_CALL_SAMPLES))
    batch, steps = workload(n)
    return {"cell": cell, "n": n, "batch": batch, "T": steps, "error": error, **medians, "first": first}


# --- report -------------------------------------------------------------------------------


def load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def header(torch) -> list[str]:
    """The machine, the BLAS NumPy runs and its threads, PyTorch's threads, and the load."""
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    threads = ", ".join(f"{v}={os.environ.get(v)}" for v in THREAD_VARIABLES)
    lines = [f"- machine: {platform.machine()}, {os.cpu_count()} cores, load average {load()} (1, 5, 15 min)",
             f"- Python {platform.python_version()}, NumPy {np.__version__}; {threads}"]
    for info in blas:
        lines.append(f"- NumPy's BLAS: {info['internal_api']} {info.get('version')}, kernel "
                     f"{info.get('architecture', '?')}, {info['num_threads']} thread(s) "
                     f"({Path(info['filepath']).name})")
    coretype = {v: os.environ[v] for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ}
    lines.append(f"- OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: {coretype or 'unset'}")
    if torch is not None:
        lines.append(f"- PyTorch {torch.__version__}: {torch.get_num_threads()} thread(s), "
                     f"interop {torch.get_num_interop_threads()}, MKL {torch.backends.mkl.is_available()}, "
                     f"oneDNN {torch.backends.mkldnn.is_available()}")
    return lines


def table(rows: list[dict]) -> list[str]:
    out = [("| cell | n | batch | T | ours f64 (ms) | PyTorch f64 (ms) | ours / f64 | ours f32 (ms) "
            "| PyTorch f32 (ms) | ours f32 / f32 | ours native f32 (ms) | native / f32 | first call (ms) "
            "| compile (ms) | max rel. diff |"),
           "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        native = (f"{r['native'] * 1e3:.1f} | {r['native'] / r['torch32']:.2f}x" if r["native"] is not None
                  else " | ")  # blank above NATIVE_MAX
        out.append(f"| {r['cell']} | {r['n']} | {r['batch']} | {r['T']} | {r['ours'] * 1e3:.1f} "
                   f"| {r['torch64'] * 1e3:.1f} | {r['ours'] / r['torch64']:.2f}x | {r['ours32'] * 1e3:.1f} "
                   f"| {r['torch32'] * 1e3:.1f} | {r['ours32'] / r['torch32']:.2f}x | {native} "
                   f"| {r['first'] * 1e3:.0f} | {(r['first'] - r['ours']) * 1e3:.0f} | {r['error']:.1e} |")
    return out


def memory_table(memory: dict[str, float]) -> list[str]:
    batch, steps = workload(1024)
    out = ["| cell | n | batch | T | peak RSS growth (MB) | engine memory_bytes estimate (MB) |",
           "|---|--:|--:|--:|--:|--:|"]
    for cell, mb in memory.items():
        estimate = memory_bytes(core_of(cell), 1024, 1024, batch, steps) / 1e6
        out.append(f"| {cell} | 1024 | {batch} | {steps} | {mb:.0f} | {estimate:.0f} |")
    return out


def goals(rows: list[dict], memory: dict[str, float]) -> list[str]:
    """Each goal, met or not, with the rows that miss it."""
    def verdict(name: str, misses: list[str], measured: bool = True) -> str:
        state = "not measured" if not measured else "met" if not misses else "NOT met: " + ", ".join(misses)
        return f"- {name}: {state}"

    first = {(r["cell"], r["n"]): r["first"] for r in rows}
    cells = sorted({r["cell"] for r in rows}, key=list(GATES).index)
    spread = {c: max(first[c, 8], first[c, 1024]) / min(first[c, 8], first[c, 1024])
              for c in cells if (c, 8) in first and (c, 1024) in first}
    compile_ms = {(r["cell"], r["n"]): (r["first"] - r["ours"]) * 1e3 for r in rows}
    compiles = ", ".join(f"{c} {compile_ms[c, 8]:.0f} / {compile_ms[c, 1024]:.0f} ms" for c in spread)
    return [
        verdict("ours ≤ 1.0x PyTorch float64 at n ≥ 64",
                [f"{r['cell']} n={r['n']} ({r['ours'] / r['torch64']:.2f}x)" for r in rows
                 if r["n"] >= 64 and r["ours"] > r["torch64"]]),
        verdict(f"first call ≤ {FIRST_CALL_LIMIT:g} s at every n",
                [f"{c} n={n} ({s:.2f} s)" for (c, n), s in first.items() if s > FIRST_CALL_LIMIT]),
        verdict(f"first calls at n = 8 and n = 1024 within {FIRST_CALL_SPREAD}x",
                [f"{c} ({s:.2f}x)" for c, s in spread.items() if s > FIRST_CALL_SPREAD], bool(spread)),
        *([f"  (their compile parts, first call − median, n = 8 / n = 1024: {compiles})"] if spread else []),
        verdict(f"peak memory < {MEMORY_LIMIT_MB / 1000:g} GB at n = 1024",
                [f"{c} ({mb:.0f} MB)" for c, mb in memory.items() if mb >= MEMORY_LIMIT_MB], bool(memory)),
    ]


def gemm_rate(dtype, size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of one large matrix product in this process (1 thread), the best of ``repeats``."""
    a = np.random.default_rng(0).standard_normal((size, size)).astype(dtype)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def gemm_bound(rows: list[dict]) -> list[str]:
    """At n = 1024: the products' flops (forward, and backward's two per product: 3 · 2 · T · B · k·n · (n + m)
    with k the gates) at the GEMM rate measured here, as a fraction of each run's median."""
    rates = {"ours": gemm_rate(np.float64), "ours32": gemm_rate(np.float32)}
    out = [f"GEMM rate measured here, 2048 × 2048, 1 thread: {rates['ours'] / 1e9:.1f} GFLOP/s float64, "
           f"{rates['ours32'] / 1e9:.1f} float32"]
    for r in rows:
        if r["n"] == 1024:
            flops = 6 * r["T"] * r["batch"] * len(GATES[r["cell"]]) * 1024 * 2048
            share = {k: flops / rates[k] / r[k] for k in rates}
            out.append(f"- {r['cell']} n = 1024: the GEMM bound is {flops / rates['ours'] * 1e3:.0f} ms in float64, "
                       f"{share['ours']:.0%} of ours; {flops / rates['ours32'] * 1e3:.0f} ms in float32, "
                       f"{share['ours32']:.0%} of ours")
    return out


def report(rows: list[dict], memory: dict[str, float], rounds: int) -> list[str]:
    how = (f"Medians of {rounds} interleaved rounds.  First call: median of {FIRST_CALL_SAMPLES} fresh processes; "
           "compile = first call − median (compiling, cold memory and caches).")
    return [*table(rows), "", *memory_table(memory), "", *gemm_bound(rows), "", how, "", "Goals:",
            *goals(rows, memory), "", f"- load average at the end: {load()}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds; medians are reported")
    parser.add_argument("--cells", nargs="+", choices=list(GATES), default=list(GATES))
    parser.add_argument("--quick", action="store_true", help="n ∈ {1, 8, 64}, 3 rounds: a smoke run")
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "CELL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    with threadpool_limits(1):
        if args.worker:
            kind, cell, n = args.worker
            print(json.dumps(WORKERS[kind](cell, int(n))))
            return
        import torch
        torch.set_num_threads(1)
        print("\n".join(["## Gradients through a layer, 1 thread against 1 thread", "", *header(torch), ""]))
        sizes, rounds = (QUICK_SIZES, 3) if args.quick else (SIZES, args.rounds)
        rows = []
        for cell in args.cells:
            for n in sizes:
                rows.append(measure(cell, n, rounds, torch))
                print(f"  measured {cell} n={n}", file=sys.stderr, flush=True)
        memory = {cell: fresh("memory", cell, 1024)["peak_mb"] for cell in args.cells}
        print("\n".join(report(rows, memory, rounds)))

if __name__ == "__main__":
    main()
