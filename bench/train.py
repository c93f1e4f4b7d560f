"""Updates per second: training an LSTM (n = 32, batch 64, cuisine at lag 50) here and in PyTorch.

    python bench/train.py [--hidden 32] [--batch 64] [--rounds 7] [--updates 10]

One update = forward over T = 54 steps, the readout's cross-entropy, BPTT,
clipping by norm (1.0) and one Adam step.  Ours: ``numeric.training.train`` in float64 and in
float32 (the weights cast, as ``train --dtype float32`` runs).
PyTorch (optional, when installed): ``nn.LSTM`` + ``nn.Linear`` in float64 with
the same initial weights and the same batches, ``clip_grad_norm_`` and
``torch.optim.Adam``; PyTorch's redundant second bias (bias_hh) is frozen at 0, so
both models have one bias per gate.  One thread against one thread (set before NumPy and
PyTorch load), interleaved round by round; medians of ``--rounds`` rounds of
``--updates`` updates.  Before timing, both are stepped 5 updates from the same
start and their weights compared (max relative difference must be < 1e-9), so
the two are the same computation.  (At these batches ‖∇L‖ is 0.1–0.2, under the threshold, so
clipping's arithmetic is timed but not compared: PyTorch divides by ‖g‖ + 1e-6, we
by ‖g‖, as Pascanu et al. write it.)
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from numeric.training import tasks  # noqa: E402
from numeric.training.clip import clip_by_norm  # noqa: E402
from numeric.training.optim import AdamState, adam  # noqa: E402
from numeric.training.train import Settings, _core, cross_entropy, initial_params, loss_and_grad, resolve  # noqa: E402
from numeric.io.weights import torch_names  # noqa: E402

SETTINGS = resolve(Settings(cell="lstm", task="cuisine", lag=50, hidden=32, batch=64, seed=0))


def batches(count: int):
    rng = np.random.default_rng(7)
    return [tasks.draw(SETTINGS.task, SETTINGS.lag, SETTINGS.batch, rng) for _ in range(count)]


def ours(params, data):
    core, state = _core(SETTINGS), AdamState()
    params = dict(params)

    def run(batch_list):
        nonlocal params, state
        for x, target in batch_list:
            _, _, grads, _ = loss_and_grad(core, params, x, target, cross_entropy)
            params, state = adam(params, clip_by_norm(grads, 1.0, batch_ndim=0), state, 0.01)
        return params

    return run


def pytorch(params, dtype: str = "float64"):
    import torch

    torch.set_num_threads(1)
    n, m = SETTINGS.hidden, tasks.task(SETTINGS.task).input_size
    kind = getattr(torch, dtype)
    lstm = torch.nn.LSTM(m, n, batch_first=True).to(kind)
    fc = torch.nn.Linear(n, params["W_hq"].shape[0]).to(kind)
    cell = {k: v for k, v in params.items() if k not in ("W_hq", "b_q")}
    with torch.no_grad():
        for k, v in torch_names("lstm", "standard", cell, weights=True).items():
            getattr(lstm, k).copy_(torch.from_numpy(v).to(kind))
        fc.weight.copy_(torch.from_numpy(params["W_hq"]).to(kind))
        fc.bias.copy_(torch.from_numpy(params["b_q"]).to(kind))
    # One bias per gate, as ours: PyTorch's second bias (bias_hh) is redundant, and with Adam a pair of
    # biases moves twice as far as one; it stays at 0 and out of the optimiser.
    lstm.bias_hh_l0.requires_grad_(False)
    every = [p for p in [*lstm.parameters(), *fc.parameters()] if p.requires_grad]
    opt = torch.optim.Adam(every, lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run(batch_list):
        for x, target in batch_list:
            opt.zero_grad()
            out, _ = lstm(torch.from_numpy(x).to(kind))
            loss = loss_fn(fc(out[:, -1]), torch.from_numpy(target))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(every, 1.0)
            opt.step()
        return lstm, fc

    return run


def agree(params) -> float:
    """Max relative difference of the weights after 5 identical updates."""
    data = batches(5)
    mine = ours(params, data)(data)
    lstm, fc = pytorch(params)(data)
    cell = {k: v for k, v in mine.items() if k not in ("W_hq", "b_q")}
    theirs = {k: getattr(lstm, k).detach().numpy() for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0")}
    mine_t = torch_names("lstm", "standard", cell, weights=True)
    worst = max(np.max(np.abs(mine_t[k] - theirs[k])) / np.max(np.abs(theirs[k])) for k in theirs)
    return float(max(worst, np.max(np.abs(mine["W_hq"] - fc.weight.detach().numpy())) / np.max(np.abs(mine["W_hq"]))))


def main() -> None:
    global SETTINGS  # every contender reads the one setting: the options replace its size and batch
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=SETTINGS.hidden, help="the LSTM's hidden size n")
    parser.add_argument("--batch", type=int, default=SETTINGS.batch, help="sequences per update")
    args = parser.parse_args()
    SETTINGS = resolve(replace(SETTINGS, hidden=args.hidden, batch=args.batch))
    params = initial_params(SETTINGS)
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    if have_torch:
        difference = agree(params)
        print(f"same computation: weights after 5 updates differ by {difference:.1e} (relative)")
        if difference > 1e-9:
            sys.exit("ours and PyTorch disagree; not timing")
    data = batches(args.updates)
    narrow = {k: v.astype(np.float32) for k, v in params.items()}
    contenders = {"ours f64": ours(params, data), "ours f32": ours(narrow, data)}
    if have_torch:
        contenders["PyTorch f64"] = pytorch(params)
        contenders["PyTorch f32"] = pytorch(params, "float32")
    times = {name: [] for name in contenders}
    cpu = {name: [] for name in contenders}
    for name, run in contenders.items():
        run(data[:2])  # warm-up: compiles our kernels, PyTorch's first-call work
    for _ in range(args.rounds):
        for name, run in contenders.items():
            start, used = time.perf_counter(), time.process_time()
            run(data)
            times[name].append((time.perf_counter() - start) / args.updates)
            cpu[name].append((time.process_time() - used) / args.updates)
    print(f"LSTM n = {SETTINGS.hidden}, batch {SETTINGS.batch}, {SETTINGS.task} lag {SETTINGS.lag} "
          f"(T = {tasks.steps(SETTINGS.task, SETTINGS.lag)}), 1 thread; median of {args.rounds} rounds "
          f"of {args.updates} updates")
    print(f"{'':<20}{'ms/update':>10}{'CPU ms':>8}{'updates/s':>11}{'ratio':>8}")
    for name, values in times.items():
        median = statistics.median(values)
        peer = "PyTorch f32" if "f32" in name else "PyTorch f64"
        ratio = f"{median / statistics.median(times[peer]):.2f}" if peer in times else "-"
        print(f"{name:<20}{1000 * median:>10.1f}{1000 * statistics.median(cpu[name]):>8.1f}"
              f"{1 / median:>11.1f}{ratio:>8}")
    if have_torch:
        print("ratio: against PyTorch in the same dtype; goal: ours ≤ 1.0x PyTorch's time per update")


if __name__ == "__main__":
    main()
