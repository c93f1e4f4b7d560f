"""Gradients of every parameter of a tanh RNN, LSTM and GRU layer at hidden size n, against PyTorch and JAX.

    python bench/hidden.py [--rounds 7] [--cells rnn lstm gru] [--quick]

Measured: ``numeric.engine.grad.value_and_grad`` (L = Σ_b Σ_i h_T[b, i], BPTT through
all T steps, the gradient of every weight and bias) against PyTorch's
``nn.RNN/LSTM/GRU`` with the same weights, ``out[:, -1].sum().backward()``, in
float64 and in float32 (the same model ``.float()``, as users train), and at
n <= 8 the C backend, ``gradient(..., mode="native", dtype="float32")`` (it runs
the batch as settings sharing the weights; its C is unrolled per unit, so a larger
n compiles too long).  JAX (optional, when installed): ``jax.jit(jax.grad(L))`` over
``jax.lax.scan`` of PyTorch's equations with PyTorch's four stacked tensors, in float64
(``jax_enable_x64``) and float32.  Input size m = n; batch 64 and T = 100 (n = 1024:
batch 16, T = 50).

How:
- One thread against one thread: the OpenMP, MKL, OpenBLAS and PJRT (XLA's CPU
  client) thread counts are set to 1 before NumPy, PyTorch or JAX loads,
  ``torch.set_num_threads(1)``, and ``threadpool_limits(1)`` around everything.
  XLA runs a call on the caller's thread and its pool's (PJRT_NPROC=1 leaves one
  worker; XLA_FLAGS' ``--xla_cpu_multi_thread_eigen=false`` alone left jaxlib
  0.10.2's products on two threads), so the process is pinned to one core
  (``sched_setaffinity``, Linux): every contender, and every thread and process
  it starts, shares that core.  The CPU-time table shows what each used.  On a
  2-core machine shared with other work, two threads a side measure the
  neighbours, not the code.
- First, once per (cell, n), our gradients and h_T are checked against PyTorch
  float64: max_p max|ours − torch| / max|torch| must stay below 1e-10, else the
  run stops.  So are JAX's gradients, against ours in float64: below 1e-10 in
  float64, below 1e-4 in float32 (float32's roundings through T steps).
- Then the contenders run interleaved, round by round (ours in float64, ours in
  float32 (``dtype="float32"``), torch64, torch32, JAX64, JAX32, ours native in
  float32, ours, …), after one warm-up call each (the native one compiles its
  kernel); medians of the wall time and of the process's CPU time per call are
  reported.  JAX's first call (tracing and compiling) is timed apart, before them.
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
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PJRT_NPROC")
for _variable in THREAD_VARIABLES:
    os.environ[_variable] = "1"
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

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

from bench.peers import (GATES, TOLERANCE, checked, jax_contenders, relative_error, torch_grads,  # noqa: E402
                         torch_layer, torch_run)

CELL_OPTIONS = {"rnn": {"activation": "tanh"}, "lstm": {}, "gru": {}}
SIZES = (1, 8, 64, 256, 1024)
QUICK_SIZES = (1, 8, 64)
FIRST_CALL_LIMIT = 2.0  # seconds
FIRST_CALL_SAMPLES = 3  # fresh processes per (cell, n); their median is reported
FIRST_CALL_SPREAD = 1.5  # n = 8 against n = 1024
MEMORY_LIMIT_MB = 2000.0
NATIVE_MAX = 8  # the largest n the native row runs at: its C is unrolled per unit


def one_core() -> None:
    """Pins this process to one core, before PyTorch or JAX starts a thread: new threads and
    child processes inherit it.  Without it JAX's LSTM at n = 64 used 1.3 cores (CPU / wall)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


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


def verify(cell: str, core, ours, x: np.ndarray, torch, layer) -> float:
    """max relative difference of h_T and every gradient against PyTorch float64; stops the run if ≥ 1e-10."""
    n = x.shape[-1]
    h_T = torch_run(layer, torch.from_numpy(x))().detach().numpy()
    theirs = torch_grads(cell, layer, n)
    errors = {name: relative_error(ours.grads[name], theirs[name]) for name in core.shapes(n, n)}
    errors["h_T"] = relative_error(ours.states[core.output][-1], h_T)
    return checked(f"{cell} n={n} against PyTorch", TOLERANCE, errors)


def timed(contenders: dict[str, Callable], rounds: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall and CPU (this process's) seconds of each contender: one warm-up call each,
    then one call each per round."""
    wall: dict[str, list[float]] = {name: [] for name in contenders}
    cpu: dict[str, list[float]] = {name: [] for name in contenders}
    for run in contenders.values():
        run()
    for _ in range(rounds):
        for name, run in contenders.items():
            start, used = time.perf_counter(), time.process_time()
            run()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - used)
    return ({name: statistics.median(t) for name, t in wall.items()},
            {name: statistics.median(t) for name, t in cpu.items()})


def interleaved(contenders: dict[str, Callable], rounds: int) -> dict[str, float]:
    """Median wall seconds of each contender (``timed``)."""
    return timed(contenders, rounds)[0]


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


def measure(cell: str, n: int, rounds: int, torch, jax) -> dict:
    """One row: checked, timed in-process against PyTorch (and JAX), first call timed in a fresh process."""
    core = core_of(cell)
    params, x = problem(core, n)
    layer = torch_layer(torch, cell, params, n)
    ours = value_and_grad(core, params, x)
    error = verify(cell, core, ours, x, torch, layer)
    runs, jax_info = jax_contenders(jax, cell, core, params, x, ours) if jax is not None else ({}, {})
    x64 = torch.from_numpy(x)
    contenders = {
        "ours": lambda: value_and_grad(core, params, x),
        "ours32": lambda: value_and_grad(core, params, x, dtype="float32"),
        "torch64": torch_run(layer, x64),
        "torch32": torch_run(torch_layer(torch, cell, params, n).float(), x64.float()),
        **runs,
    }
    if n <= NATIVE_MAX:
        contenders["native"] = lambda: gradient(core, params, x, mode="native", dtype="float32")
    wall, cpu = timed(contenders, rounds)
    first = statistics.median(sum(fresh("first", cell, n).values()) for _ in range(FIRST_CALL_SAMPLES))
    batch, steps = workload(n)
    return {"cell": cell, "n": n, "batch": batch, "T": steps, "error": error, "native": None, "jax64": None,
            "jax32": None, **wall, "cpu": cpu, "jax": jax_info, "first": first}


# --- report -------------------------------------------------------------------------------


def load() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def header(torch, jax=None) -> list[str]:
    """The machine, the BLAS NumPy runs and its threads, PyTorch's and JAX's threads, and the load."""
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    threads = ", ".join(f"{v}={os.environ.get(v)}" for v in THREAD_VARIABLES)
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    lines = [f"- machine: {platform.machine()}, {os.cpu_count()} cores, this process on {cores}, "
             f"load average {load()} (1, 5, 15 min)",
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
    if jax is not None:
        lines.append(f"- JAX {jax.__version__} on {jax.devices()[0].platform}: PJRT_NPROC="
                     f"{os.environ.get('PJRT_NPROC')}, XLA_FLAGS={os.environ.get('XLA_FLAGS')!r}")
    return lines


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.1f}"


def ratio(ours: float, theirs: float | None) -> str:
    return "-" if theirs is None else f"{ours / theirs:.2f}x"


def table(rows: list[dict]) -> list[str]:
    """Wall times; "-" where JAX is not installed, blank where native does not run (n > NATIVE_MAX)."""
    out = [("| cell | n | batch | T | ours f64 (ms) | PyTorch f64 (ms) | ours / f64 | JAX f64 (ms) | ours / JAX f64 "
            "| ours f32 (ms) | PyTorch f32 (ms) | ours f32 / f32 | JAX f32 (ms) | ours f32 / JAX f32 "
            "| ours native f32 (ms) | native / f32 | first call (ms) | compile (ms) | max rel. diff |"),
           "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        native = (f"{ms(r['native'])} | {ratio(r['native'], r['torch32'])}" if r["native"] is not None
                  else " | ")
        out.append(f"| {r['cell']} | {r['n']} | {r['batch']} | {r['T']} | {ms(r['ours'])} "
                   f"| {ms(r['torch64'])} | {ratio(r['ours'], r['torch64'])} "
                   f"| {ms(r['jax64'])} | {ratio(r['ours'], r['jax64'])} | {ms(r['ours32'])} "
                   f"| {ms(r['torch32'])} | {ratio(r['ours32'], r['torch32'])} "
                   f"| {ms(r['jax32'])} | {ratio(r['ours32'], r['jax32'])} | {native} "
                   f"| {r['first'] * 1e3:.0f} | {(r['first'] - r['ours']) * 1e3:.0f} | {r['error']:.1e} |")
    return out


CPU_COLUMNS = {"ours": "ours f64", "torch64": "PyTorch f64", "jax64": "JAX f64", "ours32": "ours f32",
               "torch32": "PyTorch f32", "jax32": "JAX f32", "native": "ours native f32"}


def cpu_table(rows: list[dict]) -> list[str]:
    """This process's CPU time per call beside the wall time: CPU ≈ wall is one busy thread."""
    out = ["| cell | n | " + " | ".join(f"{c} CPU (ms)" for c in CPU_COLUMNS.values()) + " |",
           "|---|--:|" + "--:|" * len(CPU_COLUMNS)]
    for r in rows:
        out.append(f"| {r['cell']} | {r['n']} | " + " | ".join(ms(r["cpu"].get(k)) for k in CPU_COLUMNS) + " |")
    return out


def jax_table(rows: list[dict]) -> list[str]:
    """JAX's first calls (tracing and compiling; compile = first call − median) and its agreement with ours."""
    if not any(r["jax"] for r in rows):
        return ["(JAX is not installed: its columns say -)"]
    out = ["| cell | n | JAX f64 first call (ms) | compile (ms) | JAX f32 first call (ms) | compile (ms) "
           "| max rel. diff f64 | max rel. diff f32 (against ours f64) |",
           "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for r in rows:
        j = r["jax"]
        out.append(f"| {r['cell']} | {r['n']} | {j['jax64_first'] * 1e3:.0f} | {(j['jax64_first'] - r['jax64']) * 1e3:.0f} "
                   f"| {j['jax32_first'] * 1e3:.0f} | {(j['jax32_first'] - r['jax32']) * 1e3:.0f} "
                   f"| {j['jax64_error']:.1e} | {j['jax32_error']:.1e} |")
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
    return [*table(rows), "", *cpu_table(rows), "", *jax_table(rows), "", *memory_table(memory), "",
            *gemm_bound(rows), "", how, "", "Goals:",
            *goals(rows, memory), "", f"- load average at the end: {load()}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds; medians are reported")
    parser.add_argument("--cells", nargs="+", choices=list(GATES), default=list(GATES))
    parser.add_argument("--quick", action="store_true", help="n ∈ {1, 8, 64}, 3 rounds: a smoke run")
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "CELL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    one_core()
    with threadpool_limits(1):
        if args.worker:
            kind, cell, n = args.worker
            print(json.dumps(WORKERS[kind](cell, int(n))))
            return
        import torch
        torch.set_num_threads(1)
        try:
            import jax
            jax.config.update("jax_enable_x64", True)  # float64 where asked; float32 stays float32
        except ImportError:
            jax = None
        print("\n".join(["## Gradients through a layer, 1 thread against 1 thread", "", *header(torch, jax), ""]))
        sizes, rounds = (QUICK_SIZES, 3) if args.quick else (SIZES, args.rounds)
        rows = []
        for cell in args.cells:
            for n in sizes:
                rows.append(measure(cell, n, rounds, torch, jax))
                print(f"  measured {cell} n={n}", file=sys.stderr, flush=True)
        memory = {cell: fresh("memory", cell, 1024)["peak_mb"] for cell in args.cells}
        print("\n".join(report(rows, memory, rounds)))

if __name__ == "__main__":
    main()
