"""What ``derive`` prints, from one request: the element forms (n ≤ 3, the lecture's symbols) or the
matrix form (any n, a weights file, or the user's inputs) with its numbers, as text, LaTeX or JSON."""

from __future__ import annotations

import json
from typing import Callable

from derive.custom import cell_definition
from derive.errors import InvalidValue
from derive.matrixstory import matrix_json, matrix_latex, matrix_text
from derive.render import to_json, to_latex
from derive.solution import solve
from derive.story import story

from ..explain import drawn_settings, explain, wants_matrix_form
from .data import power_json, to_json as numbers_json
from .text import power_text, summary
from ..io.request import Request

FORMATS = ("text", "latex", "json")


def derivation(req: Request, settings: tuple[str, ...] = (), wrt: str | None = None, fmt: str = "text",
               progress: Callable[[str], None] = lambda doing: None) -> str:
    """The worked solution for ``req`` in ``fmt``: the element forms unless the layer is larger than
    ``explain.ELEMENT_LIMIT``, its weights come from a file, or its inputs are the user's data."""
    if fmt not in FORMATS:
        raise InvalidValue("format", f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    data = req.inputs_file is not None or req.batch is not None
    if wants_matrix_form(1 if req.hidden is None else req.hidden, req.params_file) or data:
        return _matrix(req, settings, wrt, fmt, progress)
    return _elements(req, settings, wrt, fmt, progress)


def _elements(req: Request, settings, wrt, fmt: str, progress) -> str:
    n, m = 1 if req.hidden is None else req.hidden, req.input_size or 1
    defaults, note = drawn_settings(cell_definition(req.cell, req.formulas), req.variant, req.activation, n, m,
                                    req.steps, given=settings, seed=req.seed, gate_init=req.gate_init)
    d = solve(req.cell, variant=req.variant, activation=req.activation, hidden=n, input_size=m, steps=req.steps,
              wrt=wrt, settings=settings, truncate=req.truncate, inputs=req.inputs, h0=req.h0, c0=req.c0,
              formulas=req.formulas, defaults=defaults,
              defaults_note=note and f"{note} (set any of them to choose it)", progress=progress)
    render = {"text": story, "latex": to_latex, "json": lambda d: json.dumps(to_json(d), indent=2)}
    return render[fmt](d)


def _matrix(req: Request, settings, wrt, fmt: str, progress) -> str:
    e = explain(req, settings, wrt, progress=progress)
    if fmt == "json":
        data = matrix_json(e.layer, e.steps)
        data["numbers"] = numbers_json(e.numbers) if e.numbers is not None else None
        data["power"] = power_json(e.power) if e.power is not None else None
        return json.dumps(data, indent=2)
    if fmt == "latex":
        return matrix_latex(e.layer, e.steps)
    body = matrix_text(e.layer, e.steps, req.truncate)
    power = f"\n{power_text(e.power)}" if e.power is not None else ""
    if e.numbers is None:
        return (body + f"\n\n5. Numbers{power}\n   every gradient's numbers would step all {e.steps} steps: "
                "beyond what one run is allowed")
    return body + f"\n\n5. Numbers for these weights{power}\n{summary(e.numbers, steps_table=False)}"
