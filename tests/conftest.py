"""Shared fixtures: every cell and variant, built once per session."""

from __future__ import annotations

import pytest

from derive.cell import make_cell
from derive.cells import CELLS

ALL_CELLS = [
    (name, variant, activation)
    for name, definition in CELLS.items()
    for variant in definition.variants
    for activation in (definition.activations or (None,))
]


def cell_id(spec) -> str:
    return "-".join(part for part in spec if part)


@pytest.fixture(params=ALL_CELLS, ids=cell_id)
def any_cell(request):
    name, variant, activation = request.param
    return make_cell(CELLS[name], variant, activation)
