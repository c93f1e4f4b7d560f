"""The C backend against the NumPy engine, setting by setting and for a layer's batch: every cell,
both sizes, each loss."""

from __future__ import annotations

import numpy as np
import pytest

from derive.cells import CELLS
from derive.core import Layer, make_core
from derive.custom import cell_definition
from derive.errors import InvalidValue, UnrolledError
from numeric.engine.grad import value_and_grad
from numeric.engine.modes import gradient
from numeric.engine.native import build, native_gradient
from numeric.init import draw

pytestmark = pytest.mark.skipif(build.compiler() is None, reason="no C compiler")

T = 7
LOSSES = {"last": {}, "every step": {"every_step": True}, "truncated": {"truncate": 3}}


def _cases():
    for definition in CELLS.values():
        for variant in definition.variants:
            for activation in definition.activations or (None,):
                core = make_core(definition, variant, activation)
                if not core.param_table():
                    continue  # nothing to differentiate (the lecture's fixed LSTM)
                scalar = bool(definition.fixed) or definition.scalar_only
                for n in (1,) if scalar else (1, 3):
                    yield pytest.param(core, n, id=f"{definition.name}-{variant}-{activation}-n{n}")


CASES = list(_cases())
CUSTOM = make_core(cell_definition("custom", ("h = w*sigmoid(h) + b",)))


def grid(core, n: int, m: int, lead: tuple[int, ...], seed: int = 0) -> dict[str, np.ndarray]:
    """Every other parameter drawn per setting (``lead`` in front), the others shared; scale 0.5."""
    rng = np.random.default_rng(seed)
    return {name: 0.5 * rng.normal(size=(lead if k % 2 == 0 else ()) + shape)
            for k, (name, shape) in enumerate(core.shapes(n, m).items())}


def reference(core, params, x, s0, lead, n: int, m: int, **loss) -> dict[str, np.ndarray]:
    """The NumPy engine's gradients, one setting at a time (B = 1), stacked to lead + shape."""
    shapes = core.shapes(n, m)
    out = {name: np.empty(lead + shape) for name, shape in shapes.items()}
    for index in np.ndindex(*lead):
        one = {name: v[index] if np.ndim(v) > len(shapes[name]) else v for name, v in params.items()}
        grads = value_and_grad(core, one, x, s0, **loss).grads
        for name in shapes:
            out[name][index] = grads[name]
    return out


def assert_close(got: dict, want: dict, rtol: float) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].shape == want[name].shape, name
        scale = max(np.max(np.abs(want[name])), 1e-300)
        np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=rtol * scale, err_msg=name)


def inputs(core, n: int, seed: int = 1):
    """(m, x, s0): m = 1 where x enters the equations elementwise (a scalar cell), else 2."""
    m = 1 if n == 1 and any(core.x in e.free_symbols for _, e in core.equations) else 2
    rng = np.random.default_rng(seed)
    return m, rng.normal(size=(T, m)), {s: 0.3 * rng.normal(size=n) for s in core.states}


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("core,n", CASES)
def test_every_cell_matches_the_numpy_engine(core, n, loss):
    m, x, s0 = inputs(core, n)
    params = grid(core, n, m, (5,))
    got = native_gradient(core, params, x, s0, lead=(5,), **LOSSES[loss])
    assert_close(got, reference(core, params, x, s0, (5,), n, m, **LOSSES[loss]), 1e-12)


@pytest.mark.parametrize("core,n", CASES)
def test_float32_follows_float64(core, n):
    m, x, s0 = inputs(core, n)
    params = grid(core, n, m, (5,))
    single = native_gradient(core, params, x, s0, lead=(5,), dtype=np.float32)
    assert all(v.dtype == np.float32 for v in single.values())
    assert_close({k: v.astype(float) for k, v in single.items()},
                 native_gradient(core, params, x, s0, lead=(5,)), 2e-5)


@pytest.mark.parametrize("loss", LOSSES)
def test_a_typed_formula_with_no_products(loss):
    x = np.random.default_rng(2).normal(size=(T, 1))
    params = {"w": np.linspace(-2, 2, 6).reshape(2, 3, 1), "b": np.array([0.1])}
    got = native_gradient(CUSTOM, params, x, {"h": np.array([0.2])}, lead=(2, 3), **LOSSES[loss])
    assert_close(got, reference(CUSTOM, params, x, {"h": np.array([0.2])}, (2, 3), 1, 1, **LOSSES[loss]), 1e-12)


def test_lead_of_any_rank_and_none():
    core = make_core(CELLS["gru"], "standard")
    m, x, s0 = inputs(core, 3)
    for lead in ((), (2, 1, 3)):
        params = grid(core, 3, m, lead, seed=3)
        assert_close(native_gradient(core, params, x, s0, lead=lead), reference(core, params, x, s0, lead, 3, m), 1e-12)


def test_sixteen_units():
    """Past the element path's old limit of 8 (a tanh RNN: an LSTM at n = 16 compiles for 40 s)."""
    core = make_core(CELLS["rnn"], activation="tanh")
    m, x, s0 = inputs(core, 16)
    params = draw(Layer(core, 16, m), (2,), seed=4)
    assert_close(native_gradient(core, params, x, s0, lead=(2,)), reference(core, params, x, s0, (2,), 16, m), 1e-12)


def test_a_grid_of_many_blocks():
    """The bench's setting (per-setting draws, T = 50) on enough settings for several blocks
    and a partial last one; a few settings checked, from each block."""
    core = make_core(CELLS["lstm"])
    x = np.random.default_rng(5).uniform(-1, 1, (50, 1))
    params = draw(Layer(core, 1, 1), (1000,), seed=2)
    got = native_gradient(core, params, x, {}, lead=(1000,))
    picked = [0, 300, 999]
    want = reference(core, {k: v[picked] for k, v in params.items()}, x, {}, (3,), 1, 1)
    assert_close({k: v[picked] for k, v in got.items()}, want, 1e-12)


def layer(core, n: int, seed: int = 6):
    """(params, x, s0) of a layer: weights shared, B = 5 sequences of 9 steps, s_0 drawn per sequence."""
    m = inputs(core, n)[0]
    rng = np.random.default_rng(seed)
    params = {name: 0.5 * rng.normal(size=shape) for name, shape in core.shapes(n, m).items()}
    return params, rng.normal(size=(5, 9, m)), {s: 0.3 * rng.normal(size=(5, n)) for s in core.states}


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 2e-5)], ids=["float64", "float32"])
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("core,n", CASES)
def test_a_layer_with_a_batch_matches_reverse_mode(core, n, loss, dtype, rtol):
    """L = Σ_b Σ_i (output)_T[b, i]: the C runs the batch as settings sharing the weights and sums."""
    params, x, s0 = layer(core, n)
    got, mode = gradient(core, params, x, s0, mode="native", dtype=dtype, **LOSSES[loss])
    want, _ = gradient(core, params, x, s0, mode="reverse", dtype=dtype, **LOSSES[loss])
    assert mode == "native" and all(v.dtype == dtype for v in got.values())
    assert_close(got, want, rtol)


def test_inputs_per_setting_with_the_grids_shape():
    """x (T, *lead, m) and s_0 per setting for one state, shared for the other: each setting is its
    own sequence (the layer's kernel of the test above, LSTM n = 3)."""
    core = make_core(CELLS["lstm"])
    params, x, s0 = layer(core, 3)
    x = x[:4].reshape(2, 2, 9, 2)
    s0 = {"h": s0["h"][:4].reshape(2, 2, 3), "c": s0["c"][0]}
    got = native_gradient(core, params, x.transpose(2, 0, 1, 3), s0, lead=(2, 2))
    for index in np.ndindex(2, 2):
        want = value_and_grad(core, params, x[index], {"h": s0["h"][index], "c": s0["c"]}).grads
        assert_close({k: v[index] for k, v in got.items()}, {k: want[k] for k in got}, 1e-12)


def test_a_grid_of_settings_takes_one_sequence():
    core = make_core(CELLS["rnn"], activation="tanh")
    with pytest.raises(InvalidValue, match="one input sequence, got a batch of 2") as error:
        gradient(core, grid(core, 1, 1, (3,)), np.ones((2, T, 1)), lead=(3,), mode="native")
    assert error.value.field == "batch" and "--" not in str(error.value)


def test_shapes_are_checked():
    core = make_core(CELLS["rnn"], activation="tanh")
    params = {"W_xh": np.zeros((4, 3, 2)), "W_hh": np.zeros((3, 3)), "b_h": np.zeros((5, 3))}
    with pytest.raises(InvalidValue, match="b_h has shape"):
        native_gradient(core, params, np.zeros((T, 2)), {}, lead=(4,))
    with pytest.raises(InvalidValue, match="inputs have shape"):
        native_gradient(core, {**params, "b_h": np.zeros(3)}, np.zeros((T, 3)), {}, lead=(4,))


def test_without_a_compiler_it_says_what_to_do(monkeypatch):
    monkeypatch.setattr(build, "compiler", lambda: None)
    build.compiled.cache_clear()
    core = make_core(CELLS["rnn"], activation="tanh")
    with pytest.raises(UnrolledError, match="needs a C compiler") as error:
        native_gradient(core, grid(core, 1, 1, (2,)), np.zeros((T, 1)), {}, lead=(2,))
    assert "--" not in str(error.value)
    build.compiled.cache_clear()
