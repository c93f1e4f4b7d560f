"""What ``numeric`` is asked, as the user gives it: names, numbers, text and paths."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Request:
    """Everything ``numeric`` is asked, as given: names, numbers, text and paths."""

    cell: str = "rnn"
    variant: str | None = None
    activation: str | None = None
    formulas: tuple[str, ...] = ()
    hidden: int | None = None
    input_size: int | None = None
    steps: int | None = None
    params_file: str | None = None
    layer_index: int = 0  # which layer of a stacked PyTorch model (weight_ih_l<K>)
    prefix: str | None = None         # the module whose weights to read, where a file holds several
    seed: int = 0
    inputs: str | None = None
    inputs_file: str | None = None
    batch: int | None = None
    h0: str | None = None
    c0: str | None = None
    grid: tuple[str, ...] = ()
    mode: str = "auto"
    truncate: int | None = None
    every_step: bool = False
    settings: tuple[str, ...] = ()    # NAME=VALUE over the drawn or read weights, as derive's
    gate_init: str = "pytorch"        # how drawn weights start (``numeric.init``)
    forget_bias: float | None = None
    t_max: int | None = None          # chrono: the longest memory, default T
    dtype: str = "float64"            # what the run is computed in: float64 or float32
