"""Loading trained weights: files read back exactly, PyTorch's stacked layout split into our
parameters and stacked again, and every refusal a one-line InvalidValue naming the value."""

from __future__ import annotations

import json
import os
import struct
import sys

import numpy as np
import pytest

from derive.cells import CELLS
from derive.errors import InvalidValue
from numeric.io.arrayfiles import MAX_JSON_BYTES, read_tensors
from numeric.io.weights import cell_params, torch_names

N, M = 3, 2
# PyTorch's documented gate order (nn.RNN, nn.LSTM, nn.GRU), written out here on purpose
ORDER = {"rnn": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}


# --- builders -----------------------------------------------------------------


def torch_state(cell: str, n: int = N, m: int = M, layers: int = 1, bias: bool = True,
                prefix: str = "", seed: int = 0) -> dict[str, np.ndarray]:
    """A state_dict in PyTorch's layout: layer k > 0 takes the layer below's h, so m = n."""
    rng, rows, out = np.random.default_rng(seed), len(ORDER[cell]) * n, {}
    for k in range(layers):
        out[f"{prefix}weight_ih_l{k}"] = rng.normal(size=(rows, m if k == 0 else n))
        out[f"{prefix}weight_hh_l{k}"] = rng.normal(size=(rows, n))
        if bias:
            out[f"{prefix}bias_ih_l{k}"] = rng.normal(size=rows)
            out[f"{prefix}bias_hh_l{k}"] = rng.normal(size=rows)
    return out


def save(tmp_path, tensors: dict[str, np.ndarray], suffix: str) -> str:
    path = str(tmp_path / f"weights{suffix}")
    if suffix == ".npz":
        np.savez(path, **tensors)
    elif suffix == ".json":
        with open(path, "w") as handle:
            json.dump({k: v.tolist() for k, v in tensors.items()}, handle)
    else:
        pytest.importorskip("safetensors.numpy").save_file(tensors, path)
    return path


def write(tmp_path, text: str, name: str = "weights.json") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def refused(field: str, call, *args, **kwargs) -> str:
    """The message of the InvalidValue ``call`` raises, checked to be one line on ``field``."""
    with pytest.raises(InvalidValue) as info:
        call(*args, **kwargs)
    message = str(info.value)
    assert info.value.field == field, message
    assert "\n" not in message and "--" not in message, message
    return message


def block(array: np.ndarray, k: int, n: int = N) -> np.ndarray:
    return array[k * n:(k + 1) * n]


# --- files read back exactly --------------------------------------------------


@pytest.mark.parametrize("suffix", [".npz", ".json", ".safetensors"])
def test_files_read_back_exactly(tmp_path, suffix):
    state = torch_state("lstm", prefix="encoder.lstm.")
    tensors = read_tensors(save(tmp_path, state, suffix))
    assert set(tensors) == set(state)
    for key, value in state.items():
        assert tensors[key].dtype == np.float64 and np.array_equal(tensors[key], value), key


def test_safetensors_float16_becomes_float64(tmp_path):
    state = {k: v.astype(np.float16) for k, v in torch_state("gru").items()}
    tensors = read_tensors(save(tmp_path, state, ".safetensors"))
    assert tensors["weight_hh_l0"].dtype == np.float64
    assert np.array_equal(tensors["weight_hh_l0"], state["weight_hh_l0"].astype(np.float64))


# --- PyTorch's layout split into our parameters ----------------------------------


@pytest.mark.parametrize("suffix", [".npz", ".json", ".safetensors"])
def test_lstm_blocks_in_order_i_f_g_o(tmp_path, suffix):
    state = torch_state("lstm")
    params, n, m = cell_params(read_tensors(save(tmp_path, state, suffix)), "lstm", "standard")
    ih, hh, b_ih, b_hh = (state[f"{kind}_l0"] for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    assert (n, m) == (N, M)
    assert list(params) == [p.name for p in CELLS["lstm"].params["standard"]]
    assert np.array_equal(params["W_xf"], ih[N:2 * N])
    assert np.array_equal(params["W_hg"], hh[2 * N:3 * N])
    assert np.array_equal(params["W_xo"], ih[3 * N:])
    assert np.array_equal(params["b_f"], b_ih[N:2 * N] + b_hh[N:2 * N])
    assert np.array_equal(params["b_i"], b_ih[:N] + b_hh[:N])


def test_gru_keeps_the_candidate_biases_apart():
    state = torch_state("gru")
    params, n, m = cell_params(state, "gru", "standard")
    b_ih, b_hh = state["bias_ih_l0"], state["bias_hh_l0"]
    assert (n, m) == (N, M)
    assert np.array_equal(params["W_xz"], state["weight_ih_l0"][N:2 * N])
    assert np.array_equal(params["W_hn"], state["weight_hh_l0"][2 * N:])
    assert np.array_equal(params["b_r"], b_ih[:N] + b_hh[:N])
    assert np.array_equal(params["b_z"], b_ih[N:2 * N] + b_hh[N:2 * N])
    assert np.array_equal(params["b_xn"], b_ih[2 * N:]) and np.array_equal(params["b_hn"], b_hh[2 * N:])


def test_rnn_is_one_block():
    state = torch_state("rnn", n=4, m=1)
    params, n, m = cell_params(state, "rnn", "standard")
    assert (n, m) == (4, 1)
    assert np.array_equal(params["W_xh"], state["weight_ih_l0"]) and params["W_xh"].shape == (4, 1)
    assert np.array_equal(params["b_h"], state["bias_ih_l0"] + state["bias_hh_l0"])


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def torch_step(cell, state, x, h, c):
    """One step exactly as PyTorch's documentation writes it, on the stacked arrays."""
    w_ih, w_hh, b_ih, b_hh = (state[f"{kind}_l0"] for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    gi, gh = w_ih @ x + b_ih, w_hh @ h + b_hh
    if cell == "rnn":
        return np.tanh(gi + gh), None
    if cell == "lstm":
        i, f, g, o = np.split(gi + gh, 4)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        return _sigmoid(o) * np.tanh(c), c
    (i_r, i_z, i_n), (h_r, h_z, h_n) = np.split(gi, 3), np.split(gh, 3)
    r, z = _sigmoid(i_r + h_r), _sigmoid(i_z + h_z)
    return (1 - z) * np.tanh(i_n + r * h_n) + z * h, None


def our_step(cell, p, x, h, c):
    """One step as derive/cells.py's docstrings write it, on our named parameters."""
    def affine(g):
        return p[f"W_x{g}"] @ x + p[f"W_h{g}"] @ h + p[f"b_{g}"]
    if cell == "rnn":
        return np.tanh(affine("h")), None
    if cell == "lstm":
        c = _sigmoid(affine("f")) * c + _sigmoid(affine("i")) * np.tanh(affine("g"))
        return _sigmoid(affine("o")) * np.tanh(c), c
    r, z = _sigmoid(affine("r")), _sigmoid(affine("z"))
    n = np.tanh(p["W_xn"] @ x + p["b_xn"] + r * (p["W_hn"] @ h + p["b_hn"]))
    return (1 - z) * n + z * h, None


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_split_parameters_compute_what_pytorch_computes(cell):
    state, rng = torch_state(cell, seed=1), np.random.default_rng(2)
    x, h, c = rng.normal(size=M), rng.normal(size=N), rng.normal(size=N)
    params, _, _ = cell_params(state, cell, "standard")
    expected, ours = torch_step(cell, state, x, h, c), our_step(cell, params, x, h, c)
    np.testing.assert_allclose(ours[0], expected[0], rtol=1e-13, atol=1e-14)
    if cell == "lstm":
        np.testing.assert_allclose(ours[1], expected[1], rtol=1e-13, atol=1e-14)


def test_second_layer_takes_h_of_the_first(tmp_path):
    tensors = read_tensors(save(tmp_path, torch_state("gru", layers=2), ".npz"))
    first, n0, m0 = cell_params(tensors, "gru", "standard", layer=0)
    second, n1, m1 = cell_params(tensors, "gru", "standard", layer=1)
    assert (n0, m0, n1, m1) == (N, M, N, N)
    assert np.array_equal(second["W_xr"], tensors["weight_ih_l1"][:N])
    assert not np.array_equal(first["W_hr"], second["W_hr"])


def test_no_bias_keys_mean_zero_biases():
    params, _, _ = cell_params(torch_state("gru", bias=False), "gru", "standard")
    for name in ("b_r", "b_z", "b_xn", "b_hn"):
        assert params[name].shape == (N,) and not params[name].any(), name


def test_one_module_prefix_is_used_and_other_keys_ignored():
    state = torch_state("lstm", prefix="encoder.lstm.")
    state |= {"encoder.embedding.weight": np.ones((5, 2)), "head.bias": np.ones(1)}
    params, n, m = cell_params(state, "lstm", "standard")
    assert (n, m) == (N, M)
    assert np.array_equal(params["W_hi"], state["encoder.lstm.weight_hh_l0"][:N])


# --- our names --------------------------------------------------------------------


def test_our_names_with_shapes_inferred(tmp_path):
    rng = np.random.default_rng(3)
    table = CELLS["lstm"].params["peephole"]
    given = {p.name: rng.normal(size=(4, 1) if p.cols == "1" else (4, 4 if p.cols == "n" else 2)) for p in table}
    params, n, m = cell_params(read_tensors(save(tmp_path, given, ".json")), "lstm", "peephole")
    assert (n, m) == (4, 2)
    assert params["b_o"].shape == (4,) and np.array_equal(params["b_o"], given["b_o"][:, 0])
    assert np.array_equal(params["W_xg"], given["W_xg"])


def test_lecture_aliases_w_and_u(tmp_path):
    params, n, m = cell_params(read_tensors(write(tmp_path, '{"w": 2, "u": 0.5, "b_h": 0}')), "rnn", "standard")
    assert (n, m) == (1, 1)
    assert params["W_hh"].tolist() == [[2.0]] and params["W_xh"].tolist() == [[0.5]] and params["b_h"].tolist() == [0.0]


def test_missing_and_unknown_names():
    given = {"W_xh": np.ones((3, 2)), "W_hh": np.ones((3, 3))}
    assert "missing b_h" in refused("params", cell_params, given, "rnn", "standard")
    message = refused("params", cell_params, {**given, "b_h": np.ones(3), "b_n": np.ones(3)}, "rnn", "standard")
    assert "'b_n'" in message and "W_hh (or w)" in message
    assert "twice" in refused("params", cell_params, {**given, "b_h": np.ones(3), "w": np.ones((3, 3))}, "rnn", "standard")


def test_our_names_with_inconsistent_shapes():
    given = {"W_xh": np.ones((3, 2)), "W_hh": np.ones((2, 2)), "b_h": np.ones(3)}
    message = refused("params", cell_params, given, "rnn", "standard")
    assert "W_hh has shape (2, 2)" in message and "(3, 3)" in message and "n = 3 from W_xh" in message
    message = refused("params", cell_params, {**given, "W_hh": np.ones((3, 3)), "b_h": np.ones((3, 2))}, "rnn", "standard")
    assert "b_h has shape (3, 2)" in message


def test_layer_of_an_our_names_file():
    given = {"W_xh": np.ones((1, 1)), "W_hh": np.ones((1, 1)), "b_h": np.ones(1)}
    assert "available: 0" in refused("layer", cell_params, given, "rnn", "standard", layer=1)


# --- back to PyTorch's names --------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_torch_names_stacks_the_split_back(cell):
    state = torch_state(cell, layers=2)
    params, _, _ = cell_params(state, cell, "standard", layer=1)
    back = torch_names(cell, "standard", params, layer=1)
    assert set(back) == {f"{kind}_l1" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    for kind in ("weight_ih", "weight_hh"):
        assert np.array_equal(back[f"{kind}_l1"], state[f"{kind}_l1"]), kind


def test_gradient_of_a_summed_bias_goes_to_both():
    grads, _, _ = cell_params(torch_state("gru", seed=4), "gru", "standard")
    grads = {k: v[:, None] if v.ndim == 1 else v for k, v in grads.items()}  # numeric's (n, 1) biases
    out = torch_names("gru", "standard", grads)
    assert np.array_equal(block(out["bias_ih_l0"], 1), grads["b_z"][:, 0])
    assert np.array_equal(block(out["bias_hh_l0"], 1), grads["b_z"][:, 0])
    assert np.array_equal(block(out["bias_ih_l0"], 2), grads["b_xn"][:, 0])
    assert np.array_equal(block(out["bias_hh_l0"], 2), grads["b_hn"][:, 0])


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_torch_names_is_the_adjoint_of_the_split(cell):
    """The split t -> θ is linear, so ∂L/∂t = splitᵀ ∂L/∂θ: <G, split(t)> = <torch_names(G), t>."""
    t = torch_state(cell, seed=5)
    grads, _, _ = cell_params(torch_state(cell, seed=6), cell, "standard")  # any G of the right shapes
    theta, _, _ = cell_params(t, cell, "standard")
    stacked = torch_names(cell, "standard", grads)
    ours = sum(float(np.sum(grads[k] * theta[k])) for k in grads)
    theirs = sum(float(np.sum(stacked[k] * t[k])) for k in t)
    assert ours == pytest.approx(theirs, rel=1e-12)


# --- refusals: the file ---------------------------------------------------------------


@pytest.mark.parametrize("text, named", [
    ('{"W_hh": 1, "W_hh": 2}', "'W_hh' appears twice"),
    ('{"W_hh": [[1e999]]}', "W_hh holds 1e999"),
    ('{"b_h": [1, NaN]}', "b_h holds NaN"),
    ('{"b_h": -Infinity}', "b_h holds -Infinity"),
    ('{"W_hh": "2"}', 'W_hh holds "2", which is not a number'),
    ('{"W_hh": [true]}', "W_hh holds true"),
    ('{"W_hh": [[[[1]]]]}', "W_hh nests lists deeper than 3"),
    ('{"W_hh": [[1, 2], [3]]}', "W_hh is a ragged list"),
    ('[[1, 2]]', "holds a JSON array, not an object"),
    ('{"W_hh": [1,', "is not valid JSON"),
    ("[" * 100_000, "nests too deeply"),
])
def test_json_refusals(tmp_path, text, named):
    assert named in refused("params", read_tensors, write(tmp_path, text))


def test_json_three_deep_is_allowed(tmp_path):
    assert read_tensors(write(tmp_path, '{"a": [[[1, 2]]], "b": 3}'))["a"].shape == (1, 1, 2)


def test_special_files_are_not_read(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)  # reading would wait for a writer forever
    assert "named pipe, not a regular file" in refused("params", read_tensors, str(fifo))
    (tmp_path / "folder.npz").mkdir()
    assert "folder" in refused("params", read_tensors, str(tmp_path / "folder.npz"))
    if os.path.exists("/dev/zero"):  # endless: a suffix would not make it a file
        os.symlink("/dev/zero", tmp_path / "zero.json")
        assert "character device" in refused("params", read_tensors, str(tmp_path / "zero.json"))


def test_json_larger_than_the_limit(tmp_path):
    path = tmp_path / "big.json"
    with open(path, "wb") as handle:
        handle.truncate(MAX_JSON_BYTES + 1)  # sparse: no disk used
    assert f"is {MAX_JSON_BYTES + 1} bytes" in refused("params", read_tensors, str(path))


def test_unknown_suffix_and_missing_file(tmp_path):
    message = refused("params", read_tensors, str(tmp_path / "w.h5"))
    assert "'.h5'" in message and ".json, .npz, .safetensors, .pt, .pth" in message
    assert "No such file" in refused("params", read_tensors, str(tmp_path / "absent.npz"))


def test_npz_refusals(tmp_path):
    assert "W_hh[0, 1] is nan" in refused("params", read_tensors, save(tmp_path, {"W_hh": np.array([[1, np.nan]])}, ".npz"))
    assert "dtype complex128" in refused("params", read_tensors, save(tmp_path, {"W_hh": np.ones(2) * 1j}, ".npz"))
    with open(tmp_path / "one.npz", "wb") as handle:
        np.save(handle, np.ones(3))
    assert "one unnamed array" in refused("params", read_tensors, str(tmp_path / "one.npz"))
    assert "as .npz" in refused("params", read_tensors, write(tmp_path, "not a zip", "junk.npz"))


def test_safetensors_bfloat16_is_widened_and_an_unknown_dtype_named(tmp_path):
    pytest.importorskip("safetensors")
    header = json.dumps({"W_hh": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x80\x3f\x00\x40")  # bfloat16 1.0, 2.0
    assert read_tensors(str(path))["W_hh"].tolist() == [1.0, 2.0]
    header = json.dumps({"W_hh": {"dtype": "F8_E4M3", "shape": [2], "data_offsets": [0, 2]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00\x00")
    assert "F8_E4M3" in refused("params", read_tensors, str(path))


def test_missing_optional_packages_are_named(tmp_path, monkeypatch):
    for module in ("safetensors", "safetensors.numpy", "torch"):
        monkeypatch.setitem(sys.modules, module, None)  # import now fails as if not installed
    message = refused("params", read_tensors, write(tmp_path, "", "w.safetensors"))
    assert "pip install 'unrolled[weights]'" in message
    message = refused("params", read_tensors, write(tmp_path, "", "w.pt"))
    assert "needs PyTorch" in message and ".safetensors or .npz" in message


def test_pytorch_file_round_trip(tmp_path):
    torch = pytest.importorskip("torch")
    module = torch.nn.GRU(M, N, num_layers=2)
    torch.save(module.state_dict(), tmp_path / "gru.pt")
    params, n, m = cell_params(read_tensors(str(tmp_path / "gru.pt")), "gru", "standard", layer=1)
    assert (n, m) == (N, N)
    assert np.array_equal(params["W_hz"], module.weight_hh_l1.detach().double().numpy()[N:2 * N])


# --- refusals: the state_dict ------------------------------------------------------


def test_bidirectional_and_projected_models():
    state = torch_state("lstm") | {"weight_ih_l0_reverse": np.ones((12, 2))}
    assert "weight_ih_l0_reverse" in refused("params", cell_params, state, "lstm", "standard")
    state = torch_state("lstm") | {"weight_hr_l0": np.ones((2, 3))}
    assert "weight_hr_l0" in refused("params", cell_params, state, "lstm", "standard")


def test_several_module_prefixes():
    state = torch_state("lstm", prefix="encoder.rnn.") | torch_state("lstm", prefix="decoder.rnn.")
    message = refused("prefix", cell_params, state, "lstm", "standard")
    assert "'decoder.rnn'" in message and "'encoder.rnn'" in message
    assert cell_params(state, "lstm", "standard", prefix="decoder.rnn")[1:] == cell_params(
        torch_state("lstm"), "lstm", "standard")[1:]


def test_layer_out_of_range():
    state = torch_state("rnn", layers=2)
    assert "available: 0..1" in refused("layer", cell_params, state, "rnn", "standard", layer=2)
    assert "available: 0..1" in refused("layer", cell_params, state, "rnn", "standard", layer=-1)


def test_wrong_shapes_name_the_key():
    message = refused("cell", cell_params, torch_state("gru"), "lstm", "standard")  # 3 blocks, not 4
    assert "weight_hh_l0 has shape (9, 3)" in message and "(12, 3)" in message and "look like nn.GRU" in message
    state = torch_state("lstm") | {"bias_hh_l0": np.ones(11)}
    assert "bias_hh_l0 has shape (11,)" in refused("params", cell_params, state, "lstm", "standard")
    state = torch_state("lstm")
    del state["bias_hh_l0"]
    assert "bias_ih_l0 is given without bias_hh_l0" in refused("params", cell_params, state, "lstm", "standard")
    del state["weight_ih_l0"]
    assert "weight_ih_l0 is missing" in refused("params", cell_params, state, "lstm", "standard")


@pytest.mark.parametrize("cell, variant", [("lstm", "peephole"), ("lstm", "coupled"), ("gru", "cho"), ("gru", "colah")])
def test_variants_without_a_pytorch_layout(cell, variant):
    message = refused("variant", cell_params, torch_state(cell), cell, variant)
    assert f"{cell} standard only" in message and variant in message
    grads = {p.name: np.ones((1, 1)) for p in CELLS[cell].params[variant]}
    assert f"{cell} standard only" in refused("variant", torch_names, cell, variant, grads)


def test_unknown_cell_and_variant():
    assert "rnn, lstm, gru" in refused("cell", cell_params, {}, "statquest", "standard")
    assert "standard, peephole, coupled" in refused("variant", cell_params, {}, "lstm", "bidirectional")
