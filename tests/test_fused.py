"""A layer's elementwise stages compiled as C (``numeric.engine.native.fused``) against the same stages
lambdified for NumPy: every cell the engine runs as a layer, float64 and float32, and each way back to
NumPy (no compiler, the switch, a grid, the complex step, an argument C does not take)."""

from __future__ import annotations

import numpy as np
import pytest

from derive.cells import CELLS
from derive.core import make_core
from derive.custom import cell_definition
from numeric.engine import stages
from numeric.engine.grad import bptt, loss_seed, value_and_grad
from numeric.engine.native import build, fused
from numeric.engine.scan import scan
from numeric.engine.shapes import prepare

pytestmark = pytest.mark.skipif(build.compiler() is None, reason="no C compiler")

B, T = 5, 7
TOLERANCE = {"float64": 1e-12, "float32": 2e-5}
#: A scalar cell whose equation reads x itself: its stage has x's cotangent kernel (x_vjp).
CUSTOM = make_core(cell_definition("custom", ("h = tanh(w*h + u*x + b) + 0.5*sigmoid(x)",)))


def _cores():
    for definition in CELLS.values():
        for variant in definition.variants:
            for activation in definition.activations or (None,):
                yield pytest.param(make_core(definition, variant, activation), bool(definition.fixed)
                                   or definition.scalar_only, id=f"{definition.name}-{variant}-{activation}")
    yield pytest.param(CUSTOM, True, id="custom")


CORES = list(_cores())


def problem(core, n: int, seed: int = 0):
    """Parameters, x (B, T, n) and s_0 (B, n), drawn at a scale where every gate moves."""
    rng = np.random.default_rng(seed)
    params = {name: 0.6 * rng.normal(size=shape) for name, shape in core.shapes(n, n).items()}
    return params, rng.normal(size=(B, T, n)), {s: 0.5 * rng.normal(size=(B, n)) for s in core.states}


def run(core, n: int, dtype: str, monkeypatch, kernels: str):
    """value_and_grad with C's kernels or NumPy's (``UNROLLED_KERNELS``), and the plan that ran."""
    monkeypatch.setenv(fused.SWITCH, kernels)
    params, x, s0 = problem(core, n)
    u = prepare(core, params, x, s0, dtype=dtype)
    result = value_and_grad(core, params, x, s0, dtype=dtype, every_step=True)
    return result, u.plan


def relative(got: np.ndarray, want: np.ndarray) -> float:
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300))


@pytest.fixture(scope="module", params=["float64", "float32"])
def dtype(request):
    return request.param


@pytest.mark.parametrize("core,scalar", CORES)
@pytest.mark.parametrize("n", [3, 17])
def test_compiled_gradients_are_numpys(core, scalar, n, dtype, monkeypatch):
    if scalar and n != 3:
        pytest.skip("a one-unit cell")
    n = 1 if scalar else n
    ours, plan = run(core, n, dtype, monkeypatch, "c")
    numpy, numpy_plan = run(core, n, dtype, monkeypatch, "numpy")
    assert plan is not numpy_plan and numpy_plan is stages.plan(core)
    for name, want in [*numpy.grads.items(), *numpy.states.items()]:
        got = ours.grads[name] if name in numpy.grads else ours.states[name]
        assert got.dtype == want.dtype, name
        assert relative(got, want) < TOLERANCE[dtype], name


@pytest.mark.parametrize("core,scalar", CORES)
def test_the_kernels_ran_in_c(core, scalar, dtype, monkeypatch):
    """Each stage's forward, called with a step's values, is C's (one (outputs, B, n) array, not
    NumPy's list) and gives NumPy's values; so does its VJP with every cotangent given."""
    n = 1 if scalar else 17
    monkeypatch.delenv(fused.SWITCH, raising=False)
    params, x, s0 = problem(core, n, seed=1)
    u = prepare(core, params, x, s0, dtype=dtype)
    env = scan(u).frames[2]
    for k, numpy in zip(u.plan.kernels, stages.plan(core).kernels):
        if k.forward is None:
            continue
        args = [env[w] for w in k.inputs]
        got, want = k.forward(*args), numpy.forward(*args)
        assert isinstance(got, np.ndarray) and got.shape == (len(k.outputs), B, n)
        assert max(relative(g, w) for g, w in zip(got, want)) < TOLERANCE[dtype]
        cots = [np.full((B, n), 0.5 + j, dtype) for j in range(len(k.received))]
        back = [*args, *(env[q] for q in k.outputs), *cots]
        got = k.vjp(*back)
        assert isinstance(got, np.ndarray)  # C's one array, not a NumPy fallback's list
        assert all(relative(g, w) < TOLERANCE[dtype] for g, w in zip(got, numpy.vjp(*back)))


def test_x_cotangent_where_x_is_read_directly(dtype, monkeypatch):
    """∂L/∂x through the stage that reads x (``x_vjp``), C against NumPy."""
    out = {}
    for kernels in ("c", "numpy"):
        monkeypatch.setenv(fused.SWITCH, kernels)
        u = prepare(CUSTOM, *problem(CUSTOM, 1), dtype=dtype)
        assert (u.plan is stages.plan(CUSTOM)) == (kernels == "numpy")
        _, out[kernels] = bptt(u, scan(u), loss_seed(u), wrt_inputs=True)
    assert relative(out["c"]["x"], out["numpy"]["x"]) < TOLERANCE[dtype]


def test_numpy_runs_without_a_compiler(monkeypatch):
    core = make_core(CELLS["lstm"])
    params, x, s0 = problem(core, 3)
    monkeypatch.delenv(fused.SWITCH, raising=False)
    with_c = value_and_grad(core, params, x, s0).grads
    monkeypatch.setattr(build, "compiler", lambda: None)
    u = prepare(core, params, x, s0)
    assert u.plan is stages.plan(core)
    without = value_and_grad(core, params, x, s0).grads
    assert all(relative(without[name], with_c[name]) < 1e-12 for name in with_c)


def test_grids_and_the_complex_step_keep_numpy(monkeypatch):
    monkeypatch.delenv(fused.SWITCH, raising=False)
    core = make_core(CELLS["gru"])
    params, x, _ = problem(core, 3)
    assert prepare(core, params, x, dtype="float32").plan is not stages.plan(core)
    grid = {name: np.stack([v, v]) for name, v in params.items()}
    assert prepare(core, grid, x[0], lead=(2,)).plan is stages.plan(core)
    complex_params = {name: v + 1e-30j for name, v in params.items()}
    assert prepare(core, complex_params, x).plan is stages.plan(core)


def test_arguments_c_does_not_take_go_to_numpy(dtype, monkeypatch):
    """A cotangent with rows of its own (a pullback of a Jacobian's rows), one that never reached its
    quantity (0.0), and a broadcast one: each kernel answers as NumPy's."""
    monkeypatch.delenv(fused.SWITCH, raising=False)
    core = make_core(CELLS["lstm"])
    u = prepare(core, *problem(core, 4), dtype=dtype)
    env = scan(u).frames[0]
    k = next(k for k in u.plan.kernels if k.vjp is not None)
    numpy = next(k for k in stages.plan(core).kernels if k.vjp is not None)
    args = [*(env[w] for w in k.inputs), *(env[q] for q in k.outputs)]
    rows = np.ones((3, B, 4), dtype)
    for cots in ([rows, rows], [0.0, np.ones((B, 4), dtype)], [np.broadcast_to(np.ones(4, dtype), (B, 4))] * 2):
        got, want = k.vjp(*args, *cots), numpy.vjp(*args, *cots)
        assert all(g.shape == w.shape and relative(g, w) < TOLERANCE[dtype] for g, w in zip(got, want))


def test_loading_the_kernels_keeps_subnormals(monkeypatch):
    """The kernels are compiled with -ffast-math but not linked with it: loading them must not set
    flush-to-zero for the whole process (gcc's crtfastmath.o), which would read 1e-310 as 0 everywhere."""
    monkeypatch.delenv(fused.SWITCH, raising=False)
    core = make_core(CELLS["rnn"], activation="tanh")
    value_and_grad(core, *problem(core, 2)[:2])
    assert prepare(core, *problem(core, 2)[:2]).plan is not stages.plan(core)
    tiny = np.array([1e-310])
    assert tiny[0] * 3.0 == 3e-310 and np.all(tiny * 0.5 > 0) and 5e-324 * 1.0 > 0
