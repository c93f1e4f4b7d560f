"""Gradients of every parameter of a scalar cell, T = 50, N = 10^5 settings at once.

Prints a table: our default NumPy path (and forward mode) against the
hand-written NumPy BPTT, and PyTorch / JAX when they are installed.

    python bench/gradients.py [--N 100000] [--T 50] [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.handwritten import lstm_grad, rnn_tanh_grad  # noqa: E402
from derive.cell import make_cell  # noqa: E402
from derive.cells import CELLS  # noqa: E402
from numeric.batch import make_problem, random_params  # noqa: E402
from numeric import native  # noqa: E402
from numeric.unroll import gradient  # noqa: E402


def timed(fn, repeat: int) -> float:
    fn()  # warm-up: compilation and caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def cases(N: int, T: int):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, T)
    rnn = make_cell(CELLS["rnn"], activation="tanh")
    prn = random_params(rnn, (N,), seed=1)
    lstm = make_cell(CELLS["lstm"])
    pls = random_params(lstm, (N,), seed=2)
    flat = {k: v[:, 0, 0] for k, v in pls.items()}
    yield ("rnn tanh", make_problem(rnn, prn, x),
           lambda: rnn_tanh_grad(prn["W_hh"][:, 0, 0], prn["W_xh"][:, 0, 0], prn["b_h"][:, 0, 0], x))
    yield ("lstm", make_problem(lstm, pls, x), lambda: lstm_grad(flat, x))


def first_call(problem) -> float:
    """Seconds of the first native call in this process, with its compile cache cleared."""
    shutil.rmtree(Path(tempfile.gettempdir()) / "unrolled-native", ignore_errors=True)
    native.compiled.cache_clear()
    start = time.perf_counter()
    gradient(problem, "native")
    return time.perf_counter() - start


def jax_case(jax, label: str, params: dict, x):
    """JAX's jit(vmap(grad)) of the same cell in float64; returns (run, first-call seconds)."""
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    theta = {k: jnp.asarray(v[:, 0, 0]) for k, v in params.items()}
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
    leaves = {k: torch.tensor(v[:, 0, 0], requires_grad=True) for k, v in params.items()}
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--N", type=int, default=100_000)
    parser.add_argument("--T", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"{'cell':<10}{'T':>4}{'N':>8}  {'path':<26}{'median':>10}  {'vs hand-written NumPy':>22}")
    notes = []
    for label, problem, handwritten in cases(args.N, args.T):
        base = timed(handwritten, args.repeat)
        rows = [("hand-written NumPy BPTT", base),
                ("unrolled reverse (default)", timed(lambda: gradient(problem, "reverse"), args.repeat)),
                ("unrolled forward (tangent)", timed(lambda: gradient(problem, "forward"), args.repeat))]
        if native.compiler() is not None:
            compile_seconds = first_call(problem)
            rows.append(("unrolled native (C, gcc)", timed(lambda: gradient(problem, "native"), args.repeat)))
            notes.append(f"{label}: native first call, compiling included: {compile_seconds:.2f} s")
        jax = optional("jax")
        if jax is not None:
            run, compile_seconds = jax_case(jax, label, problem.params, problem.inputs[:, 0])
            rows.append((f"JAX {jax.__version__} jit(vmap(grad))", timed(run, args.repeat)))
            notes.append(f"{label}: JAX first call, compiling included: {compile_seconds:.2f} s")
        torch = optional("torch")
        if torch is not None:
            rows.append((f"PyTorch {torch.__version__.split('+')[0]} autograd",
                         timed(torch_case(torch, label, problem.params, problem.inputs[:, 0]), args.repeat)))
        for name, seconds in rows:
            print(f"{label:<10}{args.T:>4}{args.N:>8}  {name:<26}{seconds * 1e3:>8.1f} ms  {base / seconds:>21.2f}x")
    print("\n".join(notes))
    for lib in ("torch", "jax"):
        if optional(lib) is None:
            print(f"({lib} is not installed: its row is skipped)")


if __name__ == "__main__":
    main()
