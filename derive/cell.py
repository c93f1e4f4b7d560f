"""A recurrent cell as data plus one symbolic step, s_t = step(s_{t-1}, x_t; θ).

A ``CellDef`` is what a cell's author writes: its states, its parameter table
and one ``step`` function returning the ordered equations of one time step.
``make_cell`` resolves a definition at a hidden size n and input size m into a
``Cell``: the same equations over concrete symbols, checked once.  Everything
downstream (unrolling, Jacobians, BPTT, numbers) takes a ``Cell`` and never asks
which cell it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Mapping

import sympy as sp

from .activations import ACTIVATIONS, Activation
from .errors import InvalidValue
from .symbols import parameter, quantity

Equations = tuple[tuple[str, sp.ImmutableMatrix], ...]


@dataclass(frozen=True)
class Param:
    """A parameter's name and shape; each dimension is ``"n"``, ``"m"`` or ``"1"``."""

    name: str
    rows: str
    cols: str = "1"


@dataclass(frozen=True)
class StepInputs:
    """What a cell's ``step`` sees: s_{t-1}, x_t, θ, and the quantities it already defined."""

    prev: Mapping[str, sp.ImmutableMatrix]
    x: sp.ImmutableMatrix
    p: Mapping[str, sp.ImmutableMatrix]
    q: Callable[[str], sp.ImmutableMatrix]
    activation: Activation | None
    variant: str


@dataclass(frozen=True)
class Memory:
    """The biases that decide whether a gated cell starts out remembering.

    ``keep`` keeps the state when large: the LSTM's forget gate b_f
    (c_t = f ⊙ c_{t-1} + …), PyTorch's GRU update gate b_z (h_t = (1 − z) ⊙ n_t + z ⊙ h_{t-1}).
    ``write`` writes over it when large: the LSTM's input gate b_i.  ``sign`` is −1
    where a *small* keep bias keeps (Olah's GRU, h_t = (1 − z) ⊙ h_{t-1} + z ⊙ n_t).
    """

    keep: str
    write: str = ""
    sign: int = 1


@dataclass(frozen=True, eq=False)  # definitions compare by identity, so a Cell hashes
class CellDef:
    """A cell as its author defines it.

    ``params`` maps each variant to its parameter table (the first variant is
    the default); ``step`` returns the equations of one step in order, each
    later one free to use earlier quantities through ``StepInputs.q``.
    ``carousel`` names states whose path to themselves is elementwise (the
    LSTM's cell state), for which ∏ of the path's factors is a closed form.
    ``memory`` names, per variant, the gate biases that keep and write the
    memory (``Memory``): what a gate initialisation sets.
    ``fixed`` gives parameters a value baked into the step (the lecture's
    LSTM); ``scalar_names`` are the lecture's names for the 1×1 case;
    ``output_meaning`` says what the output state at T is (the lecture's prediction);
    ``input_examples`` are named input sequences x_1..x_T of the lecture (Company A's prices).
    """

    name: str
    summary: str
    states: tuple[str, ...]
    params: Mapping[str, tuple[Param, ...]]
    step: Callable[[StepInputs], Equations]
    activations: tuple[str, ...] = ()
    fixed: Mapping[str, str] = field(default_factory=dict)
    scalar_names: Mapping[str, str] = field(default_factory=dict)
    sigmoid_as_exp: bool = False
    carousel: tuple[str, ...] = ()
    scalar_only: bool = False
    examples: tuple[Mapping[str, str], ...] = ()
    output: str = ""
    memory: Mapping[str, Memory] = field(default_factory=dict)
    output_meaning: str = ""  # what the output state at T means, "{next}" standing for T + 1
    input_examples: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def output_state(self) -> str:
        """The state the loss is on, L = Σ_i (output)_T[i]: ``output``, else the first state."""
        return self.output or self.states[0]

    @property
    def variants(self) -> tuple[str, ...]:
        return tuple(self.params)


class Resolved:
    """What every resolved form of a definition (``Cell``, ``derive.core.Core``) reads from it."""

    definition: CellDef

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def states(self) -> tuple[str, ...]:
        return self.definition.states

    @property
    def output(self) -> str:
        """The state the loss is on: L = Σ_i (output)_T[i]."""
        return self.definition.output_state


@dataclass(frozen=True)
class Cell(Resolved):
    """A ``CellDef`` resolved at sizes n, m, a variant and an activation.

    ``equations`` define every quantity of step t from s_{t-1} (``prev``),
    x_t (``x``) and the parameter symbols (``params``).
    """

    definition: CellDef
    variant: str
    activation: Activation | None
    n: int
    m: int
    params: tuple[tuple[str, sp.ImmutableMatrix], ...]
    prev: tuple[tuple[str, sp.ImmutableMatrix], ...]
    x: sp.ImmutableMatrix
    equations: Equations

    @property
    def label(self) -> str:
        return label(self.definition, self.variant, self.activation.name if self.activation else None)

    def current(self, name: str) -> sp.ImmutableMatrix:
        """The symbols of quantity ``name`` at step t."""
        return quantity(name, "t", self.n)

    def state_prev(self) -> sp.ImmutableMatrix:
        """s_{t-1} stacked in the order of ``states``."""
        return sp.ImmutableMatrix.vstack(*(v for _, v in self.prev))

    def state_next(self) -> sp.ImmutableMatrix:
        """s_t stacked in the order of ``states``."""
        return sp.ImmutableMatrix.vstack(*(self.current(s) for s in self.states))

    def param(self, name: str) -> sp.ImmutableMatrix:
        return dict(self.params)[name]

    def param_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.params)

    def display_name(self, param_name: str) -> str:
        return display_name(self.definition, param_name, self.n, self.m)


def label(definition: CellDef, variant: str, activation: str | None) -> str:
    """``rnn (tanh)``, ``lstm (peephole)``, ``gru``: how a cell is named to users."""
    extra = [activation] if activation else []
    if variant != definition.variants[0]:
        extra.append(variant)
    return definition.name + (f" ({', '.join(extra)})" if extra else "")


def display_name(definition: CellDef, param_name: str, n: int, m: int) -> str:
    """The name a user sees: the lecture's ``w`` for a 1×1 ``W_hh``."""
    if n == m == 1:
        return definition.scalar_names.get(param_name, param_name)
    return param_name


#: The largest hidden or input size a command accepts: element-symbol matrices grow as n².
MAX_SIZE = 8


def check_sizes(hidden: int, input_size: int) -> None:
    """The element forms' sizes n and m within 1..MAX_SIZE, or an error naming which."""
    for name, value in (("hidden", hidden), ("input_size", input_size)):
        if not 1 <= value <= MAX_SIZE:
            raise InvalidValue(name, f"must be a whole number from 1 to {MAX_SIZE} element by element, got {value} "
                               "(a layer of any size is derived in matrix form, numeric.explain)")


def _dim(spec: str, n: int, m: int) -> int:
    return {"n": n, "m": m, "1": 1}[spec]


def _param_symbols(definition: CellDef, variant: str, n: int, m: int):
    table = []
    fixed = {}
    for p in definition.params[variant]:
        rows, cols = _dim(p.rows, n, m), _dim(p.cols, n, m)
        if p.name in definition.fixed:
            value = sp.Rational(Fraction(definition.fixed[p.name]))
            fixed[p.name] = sp.ImmutableMatrix(rows, cols, [value] * (rows * cols))
            continue
        shown = definition.scalar_names.get(p.name, p.name) if n == m == 1 else p.name
        table.append((p.name, parameter(shown, rows, cols)))
    return tuple(table), fixed


def _check_equations(definition: CellDef, equations: Equations, known: set, n: int) -> None:
    """A cell's invariants: states defined, quantities in order, every symbol known."""
    names = [name for name, _ in equations]
    if len(set(names)) != len(names):
        raise ValueError(f"cell {definition.name}: a quantity is defined twice in {names}")
    missing = [s for s in definition.states if s not in names]
    if missing:
        raise ValueError(f"cell {definition.name}: the step never defines state {missing[0]}")
    for name, expr in equations:
        if expr.shape != (n, 1):
            raise ValueError(f"cell {definition.name}: {name} has shape {expr.shape}, not ({n}, 1)")
        unknown = expr.free_symbols - known
        if unknown:
            raise ValueError(
                f"cell {definition.name}: {name} uses {sorted(map(str, unknown))[0]} "
                "before it is defined"
            )
        known |= set(quantity(name, "t", n))


def _one_of(field: str, value: str | None, allowed: tuple[str, ...], what: str) -> str:
    if value is None:
        return allowed[0]
    if value not in allowed:
        raise InvalidValue(field, f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")
    return value


def variant_and_activation(definition: CellDef, variant: str | None, activation: str | None) -> tuple[str, Activation | None]:
    """The variant and activation a request names (each defaulting to the definition's first),
    or an error naming the one that the definition does not have."""
    variant = _one_of("variant", variant, definition.variants, f"variant of {definition.name}")
    if definition.activations:
        return variant, ACTIVATIONS[_one_of("activation", activation, definition.activations, "activation")]
    if activation is not None:
        raise InvalidValue("activation", f"{definition.name} has fixed activations; drop it")
    return variant, None


def make_cell(
    definition: CellDef,
    variant: str | None = None,
    activation: str | None = None,
    n: int = 1,
    m: int = 1,
) -> Cell:
    """Resolve ``definition`` at hidden size ``n`` and input size ``m``.

    >>> from derive.cells import CELLS
    >>> make_cell(CELLS["rnn"], activation="tanh").equations
    (('h', Matrix([[tanh(b_h + h_{t-1}*w + u*x_t)]])),)
    """
    if (definition.fixed or definition.scalar_only) and (n, m) != (1, 1):
        name = "hidden" if n != 1 else "input_size"
        raise InvalidValue(name, f"{definition.name} is a one-unit (scalar) cell; allowed: 1")
    variant, act = variant_and_activation(definition, variant, activation)
    params, fixed = _param_symbols(definition, variant, n, m)
    prev = tuple((s, quantity(s, "t-1", n)) for s in definition.states)
    x = quantity("x", "t", m)
    inputs = StepInputs(
        prev=dict(prev), x=x, p={**dict(params), **fixed},
        q=lambda name: quantity(name, "t", n), activation=act, variant=variant,
    )
    equations = tuple((name, sp.ImmutableMatrix(expr)) for name, expr in definition.step(inputs))
    known = set(x) | {s for _, v in prev for s in v} | {s for _, v in params for s in v}
    _check_equations(definition, equations, known, n)
    return Cell(definition, variant, act, n, m, params, prev, x, equations)
