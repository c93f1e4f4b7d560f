"""Parameters, inputs and states as NumPy arrays with a batch shape in front.

A parameter is an array of shape B + (rows, cols) (a bias is (n, 1)); an
input sequence is (T, m) or (T,) + B + (m,); a state is B + (S,).  Any batch
axes broadcast, so a grid over w and a batch of random seeds combine freely.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Mapping

import numpy as np

from derive.cell import Cell
from derive.chain import loss_gradient as symbolic_loss_gradient


@dataclass(frozen=True)
class Problem:
    """One batched unrolling: a cell, its parameters, inputs x_1..x_T and s_0."""

    cell: Cell
    params: Mapping[str, np.ndarray]
    inputs: np.ndarray
    s0: np.ndarray

    @property
    def steps(self) -> int:
        return self.inputs.shape[0]

    @cached_property
    def batch_shape(self) -> tuple[int, ...]:
        shapes = [v.shape[:-2] for v in self.params.values()]
        shapes += [self.inputs.shape[1:-1], self.s0.shape[:-1]]
        return np.broadcast_shapes(*shapes)

    def theta(self) -> list[np.ndarray]:
        """Every parameter element, in the cell's table order (row-major within a parameter)."""
        return list(self._theta)

    @cached_property
    def _theta(self) -> tuple[np.ndarray, ...]:
        return tuple(
            self.params[name][..., i, j]
            for name, value in self.cell.params
            for i in range(value.shape[0])
            for j in range(value.shape[1])
        )

    def chunks(self, size: int) -> list["Problem"]:
        """The batch flattened and cut into problems of at most ``size`` settings.

        Elementwise kernels on arrays that fit in cache run up to twice as fast,
        and reverse mode then stores the states of one chunk at a time.
        """
        shape = self.batch_shape
        total = int(np.prod(shape, dtype=np.int64))
        if total <= size:
            return [self]
        params = {k: np.broadcast_to(v, shape + v.shape[-2:]).reshape((total,) + v.shape[-2:]) for k, v in self.params.items()}
        batched_x = self.inputs.ndim > 2
        x = np.broadcast_to(self.inputs, self.inputs.shape[:1] + shape + self.inputs.shape[-1:]).reshape(
            (self.inputs.shape[0], total, self.inputs.shape[-1])) if batched_x else self.inputs
        s0 = np.broadcast_to(self.s0, shape + self.s0.shape[-1:]).reshape(total, -1)
        return [
            Problem(self.cell, {k: v[i : i + size] for k, v in params.items()},
                    x[:, i : i + size] if batched_x else x, s0[i : i + size])
            for i in range(0, total, size)
        ]

    def x(self, t: int) -> list[np.ndarray]:
        """x_t (t from 1) as m arrays."""
        return [self.inputs[t - 1][..., j] for j in range(self.cell.m)]


def loss_gradient(p: Problem) -> np.ndarray:
    """∂L/∂s_T as floats, from the one definition of the loss (``derive.chain.loss_gradient``)."""
    return np.array([float(v) for v in symbolic_loss_gradient(p.cell)])


def split(p: Problem, flat: np.ndarray) -> dict[str, np.ndarray]:
    """A gradient over all parameter elements -> parameter name -> batch + shape."""
    out, start = {}, 0
    for name, symbols in p.cell.params:
        size = len(symbols)
        out[name] = flat[..., start : start + size].reshape(flat.shape[:-1] + symbols.shape)
        start += size
    return out


def make_problem(cell: Cell, params: Mapping[str, object], inputs, s0=None) -> Problem:
    """Check shapes and build a ``Problem``; ``s0`` defaults to zeros."""
    arrays = {}
    for name, symbols in cell.params:
        if name not in params:
            raise ValueError(f"parameter {name} is missing")
        value = np.asarray(params[name], dtype=float if not np.iscomplexobj(params[name]) else complex)
        rows, cols = symbols.shape
        if cols == 1 and value.shape[-1:] == (rows,) and value.shape[-2:] != (rows, 1):
            value = value[..., None]
        if value.shape[-2:] != (rows, cols):
            raise ValueError(f"parameter {name} has shape {value.shape}, expected (..., {rows}, {cols})")
        arrays[name] = value
    extra = set(params) - set(arrays)
    if extra:
        raise ValueError(f"{cell.label} has no parameter {sorted(extra)[0]}")
    x = np.asarray(inputs)
    x = x.astype(np.result_type(x, float))
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[-1] != cell.m:
        raise ValueError(f"inputs have size {x.shape[-1]}, the cell's input size is {cell.m}")
    S = len(cell.states) * cell.n
    state = np.zeros(S) if s0 is None else np.asarray(s0, dtype=np.result_type(np.asarray(s0), float))
    if state.shape[-1:] != (S,):
        raise ValueError(f"the initial state has size {state.shape[-1:]}, expected {S}")
    return Problem(cell, arrays, x, state)
