"""Gradients of every parameter of a scalar cell, T = 50, N = 10^5 settings at once.

Prints a table: our default NumPy path (and forward mode) against the
hand-written NumPy BPTT, and PyTorch / JAX when they are installed.

    python bench/gradients.py [--N 100000] [--T 50] [--repeat 5]

One thread against one thread (thread counts set before NumPy, PyTorch or JAX
load, ``torch.set_num_threads(1)``, ``threadpool_limits(1)``); the contenders
run interleaved, one call each per round, after one warm-up call each, and
medians are reported.  See bench/hidden.py for why.
"""

from __future__ import annotations

import os

# Before NumPy, PyTorch, JAX or the native kernels' OpenMP load a thread pool.
for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_variable] = "1"
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse
from dataclasses import dataclass
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.handwritten import lstm_grad, rnn_tanh_grad
from bench.hidden import header, interleaved, load
from derive.cells import CELLS
from derive.core import Layer, make_core
from numeric.engine.modes import gradient
from numeric.engine.native import build
from numeric.init import draw


@dataclass(frozen=True)
class Grid:
    """N settings of a one-unit cell, each its own weights, and one input sequence (T, 1)."""

    layer: Layer
    params: dict
    x: np.ndarray

    def gradient(self, mode: str) -> dict:
        settings = next(iter(self.params.values())).shape[0]
        return gradient(self.layer.core, self.params, self.x, lead=(settings,), mode=mode)[0]


def cases(N: int, T: int):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (T, 1))
    rnn = Layer(make_core(CELLS["rnn"], activation="tanh"), 1, 1)
    prn = draw(rnn, (N,), seed=1)
    lstm = Layer(make_core(CELLS["lstm"]), 1, 1)
    pls = draw(lstm, (N,), seed=2)
    flat = {k: v.reshape(N) for k, v in pls.items()}
    yield ("rnn tanh", Grid(rnn, prn, x),
           lambda: rnn_tanh_grad(prn["W_hh"][:, 0, 0], prn["W_xh"][:, 0, 0], prn["b_h"][:, 0], x[:, 0]))
    yield ("lstm", Grid(lstm, pls, x), lambda: lstm_grad(flat, x[:, 0]))


def first_call(grid: Grid) -> float:
    """Seconds of the first native call in this process, compiling included: an empty
    kernel cache of its own (XDG_CACHE_HOME), so the user's cached kernels are left alone."""
    saved = os.environ.get("XDG_CACHE_HOME")
    with tempfile.TemporaryDirectory() as folder:
        os.environ["XDG_CACHE_HOME"] = folder
        build.compiled.cache_clear()
        try:
            start = time.perf_counter()
            grid.gradient("native")
            return time.perf_counter() - start
        finally:
            if saved is None:
                del os.environ["XDG_CACHE_HOME"]
            else:
                os.environ["XDG_CACHE_HOME"] = saved


def jax_case(jax, label: str, params: dict, x):
    """JAX's jit(vmap(grad)) of the same cell in float64; returns (run, first-call seconds)."""
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    theta = {k: jnp.asarray(v.reshape(len(v))) for k, v in params.items()}
    xs = jnp.asarray(x, dtype=jnp.float64)

    def rnn(p):
        def body(h, xt):
            return jnp.tanh(p["W_hh"] * h + p["W_xh"] * xt + p["b_h"]), None
        return jax.lax.scan(body, 0.0, xs)[0]

    def lstm(p):
        def body(carry, xt):
            h, c = carry
            gate = {k: p[f"W_x{k}"] * xt + p[f"W_h{k}"] * h + p[f"b_{k}"] for k in "ifgo"}
            c = jax.nn.sigmoid(gate["f"]) * c + jax.nn.sigmoid(gate["i"]) * jnp.tanh(gate["g"])
            return (jax.nn.sigmoid(gate["o"]) * jnp.tanh(c), c), None
        return jax.lax.scan(body, (0.0, 0.0), xs)[0][0]

    grad = jax.jit(jax.vmap(jax.grad(rnn if label == "rnn tanh" else lstm)))
    start = time.perf_counter()
    jax.block_until_ready(grad(theta))
    compile_seconds = time.perf_counter() - start
    return (lambda: jax.block_until_ready(grad(theta))), compile_seconds


def optional(name: str):
    try:
        return __import__(name)
    except ImportError:
        return None


def torch_case(torch, label: str, params: dict, x):
    """PyTorch's batched autograd on the same cell, written with torch ops."""
    leaves = {k: torch.tensor(v.reshape(len(v)), requires_grad=True) for k, v in params.items()}
    xs = [float(v) for v in x]

    def rnn():
        p = leaves
        h = torch.zeros_like(p["W_hh"])
        for xt in xs:
            h = torch.tanh(p["W_hh"] * h + p["W_xh"] * xt + p["b_h"])
        return h

    def lstm():
        p = leaves
        h = c = torch.zeros_like(p["W_hi"])
        for xt in xs:
            gate = {k: p[f"W_x{k}"] * xt + p[f"W_h{k}"] * h + p[f"b_{k}"] for k in "ifgo"}
            i, f, o = torch.sigmoid(gate["i"]), torch.sigmoid(gate["f"]), torch.sigmoid(gate["o"])
            c = f * c + i * torch.tanh(gate["g"])
            h = o * torch.tanh(c)
        return h

    def run():
        for leaf in leaves.values():
            leaf.grad = None
        (rnn() if label == "rnn tanh" else lstm()).sum().backward()

    return run


def contenders(label: str, grid: Grid, handwritten, notes: list[str]) -> dict:
    """Every path for one cell, by its row name; the hand-written baseline first."""
    paths = {"hand-written NumPy BPTT": handwritten,
             "unrolled reverse (default)": lambda: grid.gradient("reverse"),
             "unrolled forward (tangent)": lambda: grid.gradient("forward")}
    if build.compiler() is not None:
        notes.append(f"{label}: native first call, compiling included: {first_call(grid):.2f} s")
        paths["unrolled native (C, gcc)"] = lambda: grid.gradient("native")
    jax = optional("jax")
    if jax is not None:
        run, compile_seconds = jax_case(jax, label, grid.params, grid.x[:, 0])
        paths[f"JAX {jax.__version__} jit(vmap(grad))"] = run
        notes.append(f"{label}: JAX first call, compiling included: {compile_seconds:.2f} s")
    torch = optional("torch")
    if torch is not None:
        paths[f"PyTorch {torch.__version__.split('+')[0]} autograd"] = torch_case(
            torch, label, grid.params, grid.x[:, 0])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=100_000)
    parser.add_argument("--T", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds; medians are reported")
    args = parser.parse_args()
    torch = optional("torch")
    if torch is not None:
        torch.set_num_threads(1)
    with threadpool_limits(1):
        print("\n".join([*header(torch), ""]))
        print(f"{'cell':<10}{'T':>4}{'N':>8}  {'path':<26}{'median':>10}  {'vs hand-written NumPy':>22}")
        notes = []
        for label, grid, handwritten in cases(args.N, args.T):
            medians = interleaved(contenders(label, grid, handwritten, notes), args.repeat)
            base = medians["hand-written NumPy BPTT"]
            for name, seconds in medians.items():
                print(f"{label:<10}{args.T:>4}{args.N:>8}  {name:<26}{seconds * 1e3:>8.1f} ms  "
                      f"{base / seconds:>21.2f}x")
    print("\n".join(notes))
    print(f"load average at the end: {load()}")
    for lib in ("torch", "jax"):
        if optional(lib) is None:
            print(f"({lib} is not installed: its row is skipped)")

if __name__ == "__main__":
    main()
