"""Hand-written NumPy BPTT for the scalar tanh RNN and LSTM: the baseline to beat.

Written the way a practitioner would, batched over N settings; the tests also
use it as an independent reference for the compiled gradients.
"""

from __future__ import annotations

import numpy as np


def sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def rnn_tanh_grad(w, u, b, x):
    """∂(h_T)/∂(w, u, b) for h_t = tanh(w h_{t-1} + u x_t + b), h_0 = 0; x has shape (T,)."""
    T = len(x)
    h = np.zeros((T + 1,) + np.shape(w))
    for t in range(T):
        h[t + 1] = np.tanh(w * h[t] + u * x[t] + b)
    dw = du = db = 0.0
    dh = np.ones_like(h[0])
    for t in range(T, 0, -1):
        da = dh * (1 - h[t] ** 2)
        dw, du, db = dw + da * h[t - 1], du + da * x[t - 1], db + da
        dh = da * w
    return dw, du, db


def lstm_grad(p, x):
    """∂(h_T)/∂θ for the scalar LSTM (PyTorch's gates i, f, g, o), h_0 = c_0 = 0.

    ``p`` maps W_x*, W_h*, b_* to arrays of shape (N,); returns the same keys.
    """
    T = len(x)
    shape = np.shape(p["W_hi"])
    h, c = np.zeros((T + 1,) + shape), np.zeros((T + 1,) + shape)
    gates = []
    for t in range(T):
        pre = {k: p[f"W_x{k}"] * x[t] + p[f"W_h{k}"] * h[t] + p[f"b_{k}"] for k in "ifgo"}
        i, f, o = sigmoid(pre["i"]), sigmoid(pre["f"]), sigmoid(pre["o"])
        g = np.tanh(pre["g"])
        c[t + 1] = f * c[t] + i * g
        h[t + 1] = o * np.tanh(c[t + 1])
        gates.append((i, f, g, o))
    grads = {k: np.zeros(shape) for k in p}
    dh, dc = np.ones(shape), np.zeros(shape)
    for t in range(T, 0, -1):
        i, f, g, o = gates[t - 1]
        tc = np.tanh(c[t])
        do = dh * tc
        dc = dc + dh * o * (1 - tc**2)
        da = {"i": dc * g * i * (1 - i), "f": dc * c[t - 1] * f * (1 - f),
              "g": dc * i * (1 - g**2), "o": do * o * (1 - o)}
        dh = 0.0
        for k in "ifgo":
            grads[f"W_x{k}"] += da[k] * x[t - 1]
            grads[f"W_h{k}"] += da[k] * h[t - 1]
            grads[f"b_{k}"] += da[k]
            dh = dh + da[k] * p[f"W_h{k}"]
        dc = dc * f
    return grads
