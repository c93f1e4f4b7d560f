"""One worked solution: a cell, T steps, one derivative, its closed form and its numbers.

``solve`` validates a request and returns an immutable ``Derivation`` (``derive.render``: the
record and how it reads, as text, LaTeX or JSON).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy as sp

from . import exact, reference
from .cell import Cell, check_sizes, make_cell
from .custom import cell_definition
from .chain import BpttForm, ChainForm, block, bptt_form, state_chain
from .errors import InvalidValue
from .graph import generic_equations, jacobian_step, nested, param_jacobian, step_equations
from .printing import text
from .logdomain import Magnitude, evaluate
from .regime import regime
from .render import Derivation, Evaluation
from .symbols import T as T_sym, k as k_sym, quantity
from .values import input_items, parameter_names, parse_initial_state, parse_inputs, parse_settings

#: Per-step equations shown at the start of the unrolled graph.
SHOWN_STEPS = 3
#: The forward pass is shown step by step up to this many steps.
FORWARD_SHOWN = 1000


def _resolve_wrt(cell: Cell, wrt: str | None) -> tuple[str, str]:
    """(``state`` or ``param``, name) for ``--wrt``: a state (h, h0, h_0) or a parameter."""
    if wrt is None:
        return "state", cell.output
    text = wrt.strip()
    for state in cell.states:
        if text in (state, f"{state}0", f"{state}_0"):
            return "state", state
    names = parameter_names(cell)
    if text in names:
        return "param", names[text]
    allowed = [*cell.states, *sorted(names)]
    raise InvalidValue("wrt", f"{cell.label} has no state or parameter {text!r}; allowed: {', '.join(allowed)}")


@dataclass(frozen=True)
class _Problem:
    """What is differentiated, over how many steps, from which start and inputs."""

    cell: Cell
    steps: int
    of: str
    wrt: str
    chain: ChainForm | None
    bptt: BpttForm | None
    truncate: int | None
    inputs: tuple | None
    s0: sp.ImmutableMatrix


def _settings_text(cell: Cell, values: dict) -> tuple[tuple[str, str], ...]:
    return tuple((cell.display_name(n), text(values[n])) for n in cell.param_names() if n in values)


def _closed_value(p: _Problem, values: dict):
    """(value, method, unevaluated form) from a closed form in parameters alone, else None."""
    cell, closed = p.cell, p.chain.closed if p.chain else None
    if closed is None or p.chain.scope != "exact" or closed.atoms(sp.Indexed):
        return None
    if isinstance(closed, sp.MatPow):
        name = next((n for n in cell.param_names() if cell.display_name(n) == str(closed.base)), None)
        if name not in values:
            return None
        return reference.matrix_power(values[name], p.steps), "closed form, repeated squaring at 30 digits", None
    horizon = {T_sym: sp.Integer(p.steps), k_sym: sp.Integer(0)}
    subs = dict(horizon)
    for name, v in values.items():
        subs.update(zip(cell.param(name), v))
    if closed.free_symbols - set(subs):
        return None
    at_horizon = closed.xreplace(horizon)
    with sp.evaluate(False):
        shown = at_horizon.xreplace(subs)
    magnitude = evaluate(closed, subs)
    method = "closed form, exact" if magnitude.exact is not None else "closed form, in log domain"
    return magnitude, method, shown


def _stepped(p: _Problem, values: dict):
    """(value, method, log10‖∂s_T/∂s_0‖ or None for BPTT): exact rational stepping where every value
    stays rational, else mpmath at 30 digits."""
    if p.bptt is not None:
        rational = exact.exact_bptt(p.cell, values, p.inputs, p.s0, p.wrt, p.truncate)
        if rational is not None:
            return rational, EXACT_STEPPED, None
        return reference.bptt(p.cell, values, p.inputs, p.s0, p.wrt, truncate=p.truncate), STEPPED, None
    full = exact.exact_state_jacobian(p.cell, values, p.inputs, p.s0)
    method = EXACT_STEPPED
    if full is None:
        full, method = reference.state_jacobian(p.cell, values, p.inputs, p.s0), STEPPED
    n, states = p.cell.n, p.cell.states
    r, c = states.index(p.of) * n, states.index(p.wrt) * n
    return full[r : r + n, c : c + n], method, reference.log10_norm(full)


STEPPED = "stepped through time at 30 digits (mpmath)"
EXACT_STEPPED = "stepped through time, exact (rational arithmetic)"


def _evaluate(p: _Problem, values: dict) -> Evaluation | str:
    """The derivative at one setting, or a sentence saying why it cannot be had."""
    cell = p.cell
    missing = [cell.display_name(n) for n in cell.param_names() if n not in values]
    closed = _closed_value(p, values)
    if closed is None and missing:
        return f"give {', '.join(missing)} a value to evaluate"
    if closed is None and p.steps > reference.REFERENCE_LIMIT:
        return (f"no closed form in the parameters alone, and stepping at 30 digits is limited to "
                f"T <= {reference.REFERENCE_LIMIT}; `python cli.py numeric` steps any T in float64 "
                "with log-domain magnitudes")
    whole = None  # log10‖∂s_T/∂s_0‖ of the whole state: what the regime is judged on, as in numeric
    if closed is not None and isinstance(closed[0], Magnitude):
        magnitude, method, shown = closed
        entries, shape, log10_norm = (magnitude,), (1, 1), magnitude.log10_abs
    else:
        if closed:
            (matrix, method), shown = closed[:2], None
        else:
            (matrix, method, whole), shown = _stepped(p, values), None
        entries = tuple(Magnitude.of(v) for v in matrix)
        shape, log10_norm = (matrix.rows, matrix.cols), reference.log10_norm(matrix)
    single = len(cell.states) == 1 and p.chain and p.bptt is None
    measured = whole if whole is not None and p.chain else (log10_norm if single else None)
    return Evaluation(_settings_text(cell, values), shape, entries, log10_norm, method,
                      regime(cell, p.steps, values, measured), shown, _forward_states(p, values))


def _forward_states(p: _Problem, values: dict) -> tuple[tuple[str, tuple[float, ...]], ...]:
    """Each state's value at every step of a one-unit cell (the lecture's worked examples), up to
    ``FORWARD_SHOWN`` steps: h_4 is Company A's day-5 prediction."""
    if p.cell.n != 1 or p.steps > FORWARD_SHOWN or any(n not in values for n in p.cell.param_names()):
        return ()
    trace = reference.states(p.cell, values, p.inputs, p.s0)
    return tuple((s, tuple(float(step[s][0]) for step in trace)) for s in p.cell.states)


def _settings_to_try(cell: Cell, settings: tuple[str, ...], defaults: tuple[str, ...] = ()) -> list[dict]:
    """The user's ``--set`` over ``defaults``, or the cell's worked examples when nothing is set (1×1 only)."""
    values = {**parse_settings(cell, list(defaults)), **parse_settings(cell, list(settings))}
    examples = cell.definition.examples if not settings and not defaults and cell.n == cell.m == 1 else ()
    tried = [parse_settings(cell, [f"{k}={v}" for k, v in ex.items()]) for ex in examples]
    return tried or [values]


def _nested_display(cell: Cell, steps: int, of: str) -> sp.Expr | None:
    if steps > SHOWN_STEPS or cell.n != 1 or len(cell.states) != 1:
        return None
    return nested(cell, steps)[-1][quantity(of, str(steps), 1)[0]]


def _checked_only(inputs: str | None, steps: int, m: int) -> None:
    """Past the reference's horizon the inputs are not stepped through, but a typo is still an error."""
    if inputs is not None:
        input_items(inputs, steps, m)


def solve(
    cell: str = "rnn",
    *,
    variant: str | None = None,
    activation: str | None = None,
    hidden: int = 1,
    input_size: int = 1,
    steps: int = 50,
    wrt: str | None = None,
    settings: tuple[str, ...] = (),
    truncate: int | None = None,
    inputs: str | None = None,
    h0: str | None = None,
    c0: str | None = None,
    formulas: tuple[str, ...] = (),
    defaults: tuple[str, ...] = (),
    defaults_note: str = "",
    progress: Callable[[str], None] = lambda doing: None,
) -> Derivation:
    """Derive ∂s_T/∂s_0 (or ∂L/∂θ by BPTT) for a cell over ``steps`` steps; ``progress`` hears
    what is being done as each stage starts.  ``defaults`` (NAME=VALUE, as ``settings``) give the
    parameters ``settings`` leave out (drawn weights, say), and ``defaults_note`` says where they
    came from.

    >>> d = solve(steps=50)
    >>> d.chain.closed, d.evaluations[0].entries[0].exact
    (w**(T - k), 1125899906842624)
    """
    problem = _problem(cell_definition(cell, formulas), variant=variant, activation=activation, hidden=hidden,
                       input_size=input_size, steps=steps, wrt=wrt, truncate=truncate, inputs=inputs, h0=h0, c0=c0)
    progress(f"{problem.cell.label}: J_t and the chain rule over T = {steps}")
    results = []
    tried = _settings_to_try(problem.cell, tuple(settings), tuple(defaults))
    for i, values in enumerate(tried, 1):
        progress(f"{problem.cell.label}: the numbers over T = {steps} (setting {i} of {len(tried)})")
        results.append(_evaluate(problem, values))
    notes = tuple(dict.fromkeys([*(r for r in results if isinstance(r, str)),
                                 *([defaults_note] if defaults and defaults_note else [])]))
    return _derivation(problem, tuple(r for r in results if isinstance(r, Evaluation)), tried, notes)


def _problem(definition, *, variant, activation, hidden: int, input_size: int, steps: int, wrt, truncate,
             inputs, h0, c0) -> _Problem:
    """What ``solve`` is asked, checked: the cell, what is differentiated, the inputs and s_0."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InvalidValue("steps", f"must be a whole number >= 1, got {steps!r}")
    check_sizes(hidden, input_size)
    the_cell = make_cell(definition, variant, activation, hidden, input_size)
    kind, name = _resolve_wrt(the_cell, wrt)
    if truncate is not None and (kind != "param" or truncate < 1):
        raise InvalidValue("truncate", "needs wrt to be a parameter (BPTT) and a whole number >= 1")
    return _Problem(
        cell=the_cell, steps=steps, of=name if kind == "state" else the_cell.output, wrt=name,
        chain=state_chain(the_cell, name, name) if kind == "state" else None,
        bptt=bptt_form(the_cell, name, truncate) if kind == "param" else None, truncate=truncate,
        inputs=parse_inputs(inputs, steps, the_cell.m) if steps <= reference.REFERENCE_LIMIT
        else _checked_only(inputs, steps, the_cell.m),
        s0=parse_initial_state(the_cell, h0, c0),
    )


def _derivation(p: _Problem, evaluations: tuple[Evaluation, ...], tried, notes: tuple[str, ...]) -> Derivation:
    the_cell, steps, by_state = p.cell, p.steps, p.bptt is None
    last = (steps,) if steps > SHOWN_STEPS else ()
    return Derivation(
        cell=the_cell, steps=steps, wrt=p.wrt, of=p.of,
        step_equations=generic_equations(the_cell),
        unrolled=step_equations(the_cell, (*range(1, min(steps, SHOWN_STEPS) + 1), *last)),
        unrolled_elided=steps > SHOWN_STEPS + 1,
        nested=_nested_display(the_cell, steps, p.wrt) if by_state else None,
        jacobian_step=jacobian_step(the_cell),
        local=block(the_cell, jacobian_step(the_cell), p.wrt, p.wrt) if by_state
        else param_jacobian(the_cell, p.wrt),
        chain=p.chain, bptt=p.bptt, truncate=p.truncate, evaluations=evaluations,
        regime=evaluations[0].regime if evaluations else regime(the_cell, steps, tried[0] if tried else {}),
        notes=notes,
    )
