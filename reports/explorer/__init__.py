"""The explorer: the lecture as one self-contained interactive HTML page, generated from the derivation.

Every equation on the page is derive's own expression printed as MathML; every number is computed
in the browser by JavaScript that ``derive.javascript`` prints from the same expressions.  Nothing
is fetched: the page's only code is its own inline scripts, which its Content-Security-Policy
names by hash, so no other script (nor an inline event handler) can run.

    >>> html = page(steps=60)
    >>> html.startswith(b"<!DOCTYPE html>"), b"https://" in html
    (True, False)
"""

from __future__ import annotations

import base64
import hashlib
import html
import json

import sympy as sp
from importlib import resources
from string import Template

from derive.cell import variant_and_activation
from derive.cells import CELLS
from derive.custom import cell_definition
from derive.errors import InvalidValue
from derive.regime import NEUTRAL_DECADES, judge, measured
from derive.values import NUMBER

from .lessons import choices, key, lesson

#: The T slider's largest range: one slider move steps through T cells in the browser.
MAX_STEPS = 10_000
#: Where the page opens: T, unless the slider's range is shorter.
OPENING_T = 50


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def _script_safe(text: str) -> str:
    """JSON inside a <script>: no "</script>", no "<!--", whatever the strings hold."""
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _hash(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"


def regime_words() -> dict[str, list[str]]:
    """derive's verdict and reason where no rate was measured (a derivative of exactly 0), by where
    γσ₁ stands against 1, and for a cell without Pascanu's bound: the page says them as derive does."""
    words = {side: judge("W_hh", sp.Integer(1), sigma1, 1) for side, sigma1 in (("below", 0.5), ("above", 2.0),
                                                                                ("at", 1.0))}
    words["unmeasured"] = measured(None, 1)
    return {side: [r.verdict, r.reason] for side, r in words.items()}


def _derivation(data: dict) -> str:
    """One cell's derivation as static MathML (shown while that cell is chosen)."""
    block = '<math display="block">{}</math>'.format
    parts = [f'<section class="derivation" data-cell="{html.escape(data["key"])}" hidden>',
             f'<h3>{html.escape(data["label"])}: {html.escape(data["summary"])}</h3>',
             "<h4>One step</h4>", *map(block, data["math"]["step"]),
             "<h4>The local Jacobian</h4>", block(data["math"]["jacobian"]),
             "<h4>The chain rule over T steps, and its closed forms</h4>", *map(block, data["math"]["chain"]),
             "</section>"]
    return "\n".join(parts) + "\n"


def _lessons(cell: str, variant: str | None, activation: str | None, formulas: tuple[str, ...]):
    """Every built-in choice, and the custom cell when asked for; and the one the page opens on."""
    opening = cell_definition(cell, formulas)
    variant, act = variant_and_activation(opening, variant, activation)
    start = key(opening, variant, act.name if act else None)
    definitions = list(CELLS.values()) + ([opening] if cell == "custom" else [])
    return [lesson(d, v, a) for d in definitions for v, a in choices(d)], start


def page(cell: str = "rnn", variant: str | None = None, activation: str | None = None,
         formulas: tuple[str, ...] = (), steps: int = 200, trained: dict | None = None) -> bytes:
    """The explorer as UTF-8 bytes, the same bytes for the same arguments.

    ``cell``, ``variant``, ``activation`` and ``formulas`` choose the cell the page opens on (every
    built-in cell is offered too); ``steps`` is the T slider's range; ``trained`` is a trained
    model's sensitivity (``trained_view``), drawn when given.
    """
    if not 1 <= steps <= MAX_STEPS:
        raise InvalidValue("steps", f"must be a whole number from 1 to {MAX_STEPS}, got {steps}")
    lessons, start = _lessons(cell, variant, activation, formulas)
    cells = "const CELLS = {\n" + "".join(
        f"{_script_safe(json.dumps(data['key']))}: {data['code']},\n" for data in lessons) + "};"
    public = [{k: v for k, v in data.items() if k not in ("code", "math")} for data in lessons]
    data = {"lessons": public, "start": start, "steps": steps, "T": min(OPENING_T, steps),
            "neutral_decades": NEUTRAL_DECADES, "regime": regime_words(), "number": NUMBER.pattern,
            "trained": trained}
    runtime = _asset("explorer.js")
    text = Template(_asset("page.html")).substitute(
        style=_asset("explorer.css"), script_hashes=" ".join(map(_hash, (cells, runtime))),
        version=html.escape(_version()), derivations="".join(map(_derivation, lessons)),
        data=_script_safe(json.dumps(data, sort_keys=True, allow_nan=False)), cells=cells, runtime=runtime)
    return text.encode("utf-8")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unrolled")
    except PackageNotFoundError:
        return "(not installed)"


def trained_view(path: str, sequences: int = 256) -> dict:
    """A model saved by ``train --out``: its held-out sensitivity ‖∂ℓ/∂x_t‖ per input step, for the page."""
    from numeric.training.sensitivity import saved_model, sensitivity

    settings, params = saved_model(path, "params")
    s = sensitivity(settings, params, sequences=sequences, seed=0)
    note = (f"{settings.cell} trained on {settings.task} (lag {settings.lag}): accuracy {s.score:.2f}; "
            f"{s.key_share:.0%} of the sensitivity falls on the steps that carry the answer")
    return {"note": note, "mean": [float(v) for v in s.mean]}


def write_page(out: str, *, force: bool = False, params: str | None = None, **options) -> int:
    """Write ``page(**options)`` to ``out`` (through a temporary file, moved into place), with the
    trained model at ``params`` drawn when given; returns the file's size in bytes."""
    from numeric.io.files import check_target, write_atomic

    check_target(out, "out", force)
    data = page(trained=None if params is None else trained_view(params), **options)
    write_atomic(out, "out", lambda f: f.write(data), force=force)
    return len(data)


__all__ = ["page", "trained_view", "write_page", "MAX_STEPS"]
