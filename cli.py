"""Unrolled's command line: thin adapters that parse, call one library function, print."""

from __future__ import annotations

import os
import signal
import sys

if __name__ == "__main__":
    # Until the handlers below take over, an interrupt has nothing to clean up:
    # one line and the usual code, never a traceback from inside an import.
    def _before_imports(signum, frame):
        os.write(2, b"Aborted.\n" if signum == signal.SIGINT else b"Terminated.\n")
        os._exit(128 + signum)

    signal.signal(signal.SIGINT, _before_imports)
    signal.signal(signal.SIGTERM, _before_imports)

import json
import shutil
import threading
import time
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from derive.errors import InvalidValue, UnrolledError, UsageError

__version__ = "0.1.0"


DEBUG = {"on": False}


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM, raised where the program is so every cleanup (temporaries) runs.

    Not a KeyboardInterrupt: Typer would turn that into a silent exit 130.
    """

    def __init__(self, signum: int):
        super().__init__("Aborted." if signum == signal.SIGINT else "Terminated.")
        self.code = 128 + signum


RECEIVED: list[int] = []


def _interrupt(signum, frame):
    RECEIVED.append(signum)
    raise Interrupted(signum)


@contextmanager
def _interrupts_unwind():
    """SIGINT and SIGTERM raise ``Interrupted`` while a command runs (main thread only).

    Python swallows an exception raised inside a weakref callback or ``__del__``
    (matplotlib has many); such an interrupt is remembered in ``RECEIVED`` and
    reported when the command ends, and its "Exception ignored" trace is not shown.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    RECEIVED.clear()
    old = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    hook = sys.unraisablehook
    sys.unraisablehook = lambda u: None if isinstance(u.exc_value, Interrupted) else hook(u)
    try:
        yield
        if RECEIVED:
            raise Interrupted(RECEIVED[0])
    finally:
        sys.unraisablehook = hook
        for s, handler in old.items():
            signal.signal(s, handler)


class OneLineErrors(TyperGroup):
    """Every error as one line on stderr: usage 2, run time 1, Ctrl-C 130, SIGTERM 143; a traceback only with --debug."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            with _interrupts_unwind():
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            if code == 130:  # a KeyboardInterrupt Typer caught itself
                typer.echo("Aborted.", err=True)
        except Interrupted as interrupt:
            typer.echo(str(interrupt), err=True)
            code = interrupt.code
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            code = 130
        except Exception as error:
            if hasattr(error, "format_message") and hasattr(error, "exit_code"):
                # the Click errors Typer vendors: they carry their own exit code
                typer.echo(f"Error: {error.format_message()}", err=True)
                code = error.exit_code
            elif DEBUG["on"]:
                raise
            else:
                typer.echo(f"Error: internal error, {type(error).__name__}: {error} (--debug shows where)", err=True)
                code = 1
        finally:
            DEBUG["on"] = False
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=OneLineErrors,
    help="See why gradients vanish or explode in recurrent networks, and prove every formula.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


#: The library names a bad value by its own field; these are the options that carry them.
OPTIONS = {"inputs": "--inputs-file", "inputs_text": "--inputs", "s0": "--h0/--c0", "model": "MODEL",
           "memory": "--hidden/--batch/--steps/--mode"}


def option(field: str) -> str:
    """The option that carries a library field: ``hidden`` -> ``--hidden``, ``inputs`` -> ``--inputs-file``."""
    return OPTIONS.get(field, "--" + field.replace("_", "-"))


@contextmanager
def reported():
    """Turn the library's errors into one line on stderr and exit code 2 (usage) or 1."""
    try:
        yield
    except UsageError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(2) from None
    except InvalidValue as error:
        typer.echo(f"Error: {option(error.field)}: {error}", err=True)
        raise typer.Exit(2) from None
    except UnrolledError as error:
        typer.echo(f"Error: {error}", err=True)
        raise typer.Exit(1) from None


def _version(value: bool):
    if value:
        typer.echo(f"unrolled {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")] = False,
):
    """Unrolled: derive, check and plot gradients through time."""
    DEBUG["on"] = debug


#: Every command's --help ends with these (\b keeps Click from re-wrapping them).
EXAMPLES = {
    'derive': (
        "python cli.py derive --steps 50                                  # the lecture's 2^50 and 0.5^50",
        'python cli.py derive --cell lstm --wrt c --steps 100 --format latex',
        'python cli.py derive --cell lstm --hidden 256 --params model.safetensors',
    ),
    'numeric': (
        'python cli.py numeric --cell lstm --hidden 64 --batch 8 --steps 100',
        'python cli.py numeric --cell gru --params model.pt --inputs-file x.npy --out grads.npz --torch-names',
        'python cli.py numeric --activation tanh --grid W_hh=0:2:201 --steps 100 --out grid.npz',
    ),
    'check': (
        'python cli.py check                                   # every cell, five references',
        'python cli.py check --cell custom --formula "tanh(w*h + u*x + b)"',
    ),
    'train': (
        'python cli.py train --cell lstm --task cuisine --lag 100 --seed 0 --out lstm.npz   # chrono gates: learns',
        'python cli.py train --cell lstm --task cuisine --lag 100 --gate-init pytorch     # forgets like 0.5^L',
        'python cli.py train --cell rnn --task cuisine --lag 100 --seed 0                 # the plain RNN fails',
        'python cli.py sensitivity lstm.npz                      # what the trained answer depends on',
    ),
    'sensitivity': (
        'python cli.py train --cell lstm --task cuisine --lag 50 --out lstm.npz',
        'python cli.py sensitivity lstm.npz',
        'python cli.py sensitivity lstm.npz --json --sequences 1024',
    ),
    'sweep': (
        'python cli.py sweep --out longterm.json            # the default: 150 runs, about 3 min on 2 cores',
        'python cli.py sweep --task latch --lags 5,20 --seeds 2 --updates 500',
        'python cli.py report --out DIR --only longterm --longterm-results longterm.json',
    ),
    'explore': (
        'python cli.py explore --out lecture.html            # open it in a browser',
        'python cli.py explore --cell lstm --steps 500 --out lstm.html',
        'python cli.py explore --cell custom --formula "tanh(w*h + u*x + b)" --out custom.html',
        'python cli.py explore --cell lstm --params lstm.npz --out trained.html   # a model from train --out',
    ),
    'report': (
        'python cli.py report --out DIR',
        'python cli.py report --out DIR --only explode --only longterm --format png --dpi 200',
    ),
}


def examples(command: str) -> str:
    return "\b\nExamples:\n" + "\n".join("  " + line for line in EXAMPLES[command])


# Options shared by several commands, declared once.
CellOption = Annotated[str, typer.Option(help="rnn, lstm, gru, statquest, or custom (with --formula).")]
ActivationOption = Annotated[Optional[str], typer.Option(help="rnn only: linear, tanh, sigmoid or relu.")]
VariantOption = Annotated[Optional[str], typer.Option(help="lstm: standard, peephole, coupled; gru: standard, cho, colah.")]
def _gate_init(gate_init: str | None, forget_bias: float | None) -> str:
    """--gate-init, where a --forget-bias alone asks for its initialisation; PyTorch's otherwise."""
    return gate_init or ("forget-bias" if forget_bias is not None else "pytorch")


def whole_number(text: str) -> int:
    """A whole number as people type one: 1000000, 1_000_000 or 1e6 (not 1.5, not 1e-3)."""
    text = str(text).strip()
    try:
        return int(text.replace("_", ""))
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a whole number (1000000, 1_000_000 and 1e6 are)") from None
    if not value.is_integer() or abs(value) > 10**18:
        raise typer.BadParameter(f"{text!r} is not a whole number (1000000, 1_000_000 and 1e6 are)")
    return int(value)


InputsFileOption = Annotated[Optional[str], typer.Option(
    help=".json, .npy or .npz: shape (T, m), or (B, T, m) for a batch.")]
BatchOption = Annotated[Optional[int], typer.Option(help="Draw B random input sequences, N(0, 1).")]
PrefixOption = Annotated[Optional[str], typer.Option(
    help="The module whose weights to read where a file holds several (encoder.lstm).")]
SetOption = Annotated[Optional[list[str]], typer.Option(
    "--set", help="NAME=VALUE, repeatable; a number (filling the parameter) or a JSON list.")]
GateInitOption = Annotated[Optional[str], typer.Option(
    help="How drawn gates start: pytorch (PyTorch's default; numeric's default), forget-bias (with --forget-bias B, "
         "default 1) or chrono (Tallec & Ollivier 2018; train's default for lstm and gru).")]
ForgetBiasOption = Annotated[Optional[float], typer.Option(
    help="With --gate-init forget-bias: the keep gate's bias (lstm b_f, gru b_z); default 1 (Jozefowicz et al. 2015).")]
FormulaOption = Annotated[Optional[list[str]], typer.Option(
    help="With --cell custom: STATE = formula (repeatable), e.g. 'tanh(w*h + u*x + b)'.")]


def _terminal_line(text: str) -> None:
    """``text`` over the current line of the terminal (stderr), cut to its width so it never wraps."""
    width = shutil.get_terminal_size((80, 24)).columns - 1
    typer.echo("\r\x1b[K" + text[:width], err=True, nl=False)


class Progress:
    """A bar on a terminal (stderr), nothing otherwise; the log lines go to stdout either way.
    A context: the bar is cleared on the way out, before any error is printed."""

    def __init__(self, total: int):
        self.total, self.tty = total, sys.stderr.isatty()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.clear()

    def __call__(self, done: int, note: str = "") -> None:
        if self.tty:
            filled = int(30 * done / self.total)
            _terminal_line(f"[{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} {note}")

    def clear(self) -> None:
        if self.tty:
            _terminal_line("")


class Status:
    """One line on a terminal (stderr) saying what a long run is doing and for how long (the clock
    ticks while a stage runs); nothing on a pipe.  A context: the line is cleared on the way out,
    before any error is printed."""

    def __enter__(self):
        self.tty, self.start, self.doing = sys.stderr.isatty(), time.monotonic(), ""
        self.lock, self.stopped = threading.Lock(), threading.Event()
        if self.tty:
            self.clock = threading.Thread(target=self._tick, daemon=True)
            self.clock.start()
        return self

    def _tick(self) -> None:
        while not self.stopped.wait(0.5):
            self._show()

    def _show(self) -> None:
        with self.lock:
            if not self.stopped.is_set():
                _terminal_line(f"{time.monotonic() - self.start:5.1f} s  {self.doing}")

    def __call__(self, doing: str) -> None:
        self.doing = doing
        if self.tty:
            self._show()

    def __exit__(self, *exc) -> None:
        if self.tty:
            with self.lock:
                self.stopped.set()
                _terminal_line("")
            self.clock.join()


class Format(str, Enum):
    text = "text"
    latex = "latex"
    json = "json"


@app.command(epilog=examples("derive"))
def derive(
    steps: Annotated[int, typer.Option(parser=whole_number, help="T, the number of unrolled steps (>= 1; 1e6 is 1000000).")] = 50,
    cell: CellOption = "rnn",
    activation: ActivationOption = None,
    variant: VariantOption = None,
    hidden: Annotated[Optional[int], typer.Option(help="Hidden size n: up to 3 element by element, above in matrix form (to 4096; default: from --params, else 1).")] = None,
    input_size: Annotated[Optional[int], typer.Option(help="Input size m (default: 1, or n in matrix form).")] = None,
    wrt: Annotated[Optional[str], typer.Option(help="A state (h, c: ∂s_T/∂s_0) or a parameter (∂L/∂θ by BPTT).")] = None,
    set_: SetOption = None,
    params: Annotated[Optional[str], typer.Option("--params", help="Weights file (.json, .npz, .safetensors, .pt; ours or PyTorch's names): matrix form with their numbers.")] = None,
    layer: Annotated[int, typer.Option(help="Which layer of a stacked PyTorch model.")] = 0,
    prefix: PrefixOption = None,
    truncate: Annotated[Optional[int], typer.Option(help="BPTT through the last τ steps only.")] = None,
    inputs: Annotated[Optional[str], typer.Option(help="x_1..x_T: one value or T comma-separated values (default 1).")] = None,
    inputs_file: InputsFileOption = None,
    batch: BatchOption = None,
    h0: Annotated[Optional[str], typer.Option("--h0", help="Initial hidden state h_0 (default 0).")] = None,
    c0: Annotated[Optional[str], typer.Option("--c0", help="Initial cell state c_0 (default 0).")] = None,
    format: Annotated[Format, typer.Option("--format", help="text, latex or json.")] = Format.text,
    formula: FormulaOption = None,
    graph: Annotated[Optional[str], typer.Option(help="Also draw the cell unrolled over T steps to FILE.png, .svg or .pdf.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the weights drawn for parameters not --set (lstm, gru, custom).")] = 0,
    gate_init: GateInitOption = None,
    force: Annotated[bool, typer.Option(help="Replace --graph if it is a regular file.")] = False,
):
    """Derive ∂h_T/∂h_0 (or ∂L/∂θ by BPTT) for a cell unrolled over T steps, as a worked solution."""
    import numpy as np

    from numeric.present.derivation import derivation
    from numeric.io.request import Request

    with reported(), Status() as status, np.errstate(all="ignore"):
        if seed < 0:
            raise UsageError("--seed", f"must be a whole number >= 0, got {seed}")
        if graph is not None:
            _draw_unrolled(graph, force, cell, tuple(formula or ()), steps, variant, activation)
            typer.echo(f"the unrolled picture: {graph}", err=True)
        request = Request(cell=cell, variant=variant, activation=activation, formulas=tuple(formula or ()),
                          hidden=hidden, input_size=input_size, steps=steps, params_file=params, layer_index=layer,
                          prefix=prefix, inputs=inputs, inputs_file=inputs_file, batch=batch, h0=h0, c0=c0,
                          truncate=truncate, seed=seed, gate_init=_gate_init(gate_init, None))
        text = derivation(request, tuple(set_ or ()), wrt, format.value, status)
    typer.echo(text)


def _draw_unrolled(path: str, force: bool, cell: str, formulas: tuple[str, ...], steps: int, variant, activation):
    """``derive --graph``: the picture of the cell unrolled, written before the derivation is printed."""
    from pathlib import Path

    import numpy as np

    from derive.custom import cell_definition
    from numeric import studies
    from numeric.io.files import check_target, write_atomic
    from reports.build import figure_bytes
    from reports.figures import unrolled

    fmt = Path(path).suffix.lower().lstrip(".")
    if fmt not in ("png", "svg", "pdf"):
        raise UsageError("--graph", f"{path!r} must end in .png, .svg or .pdf")
    check_target(path, "graph", force)
    if steps < 1:
        raise InvalidValue("steps", f"must be a whole number >= 1, got {steps}")
    with np.errstate(all="ignore"):
        picture = studies.unrolled(cell_definition(cell, formulas), steps, variant=variant, activation=activation)
    data = figure_bytes(unrolled(picture), fmt, dpi=150)
    write_atomic(path, "graph", lambda f: f.write(data), force=force)


class Mode(str, Enum):
    auto = "auto"
    reverse = "reverse"
    forward = "forward"
    native = "native"


class Dtype(str, Enum):
    float64 = "float64"
    float32 = "float32"


DtypeOption = Annotated[Dtype, typer.Option(help="Compute in float64 (exact to about 1e-15) or float32 (what PyTorch users train in).")]


@app.command(epilog=examples("numeric"))
def numeric(
    cell: CellOption = "rnn",
    activation: ActivationOption = None,
    variant: VariantOption = None,
    hidden: Annotated[Optional[int], typer.Option(help="Hidden size n, 1 to 4096 (default: from --params, else 1).")] = None,
    input_size: Annotated[Optional[int], typer.Option(help="Input size m (default: from --params, else n).")] = None,
    steps: Annotated[Optional[int], typer.Option(parser=whole_number, help="T (default: the number of inputs, or 50; 1e6 is 1000000).")] = None,
    params: Annotated[Optional[str], typer.Option("--params", help="Weights: .json, .npz, .safetensors or .pt, in our names (W_hh, ...) or a PyTorch nn.RNN/LSTM/GRU state_dict.")] = None,
    layer: Annotated[int, typer.Option(help="Which layer of a stacked PyTorch model (weight_ih_l<K>).")] = 0,
    prefix: PrefixOption = None,
    seed: Annotated[int, typer.Option(help="Seed for random parameters (--gate-init) and --batch inputs.")] = 0,
    inputs: Annotated[Optional[str], typer.Option(help="x_1..x_T as comma-separated numbers (m = 1).")] = None,
    inputs_file: InputsFileOption = None,
    batch: BatchOption = None,
    h0: Annotated[Optional[str], typer.Option("--h0", help="Initial hidden state h_0 (default 0).")] = None,
    c0: Annotated[Optional[str], typer.Option("--c0", help="Initial cell state c_0 (default 0).")] = None,
    grid: Annotated[Optional[list[str]], typer.Option(help="NAME=START:STOP:COUNT, repeatable: sweep parameters (each setting its own weights, one input sequence).")] = None,
    mode: Annotated[Mode, typer.Option(help="How ∂L/∂θ is computed: reverse (BPTT, NumPy), forward (tangent mode, stores no steps), native (BPTT as generated C); auto: reverse unless its steps would not fit.")] = Mode.auto,
    dtype: DtypeOption = Dtype.float64,
    truncate: Annotated[Optional[int], typer.Option(help="Truncated BPTT through the last τ steps.")] = None,
    every_step: Annotated[bool, typer.Option(help="Loss on every step, L = Σ_t Σ_i h_t[i].")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    out: Annotated[Optional[str], typer.Option(help="Write every array to FILE.npz (gradients as grad_<name>).")] = None,
    torch_names: Annotated[bool, typer.Option(help="With --out: also write the gradients under PyTorch's keys (grad_weight_ih_l0, ...).")] = False,
    formula: FormulaOption = None,
    set_: SetOption = None,
    gate_init: GateInitOption = None,
    forget_bias: ForgetBiasOption = None,
    t_max: Annotated[Optional[int], typer.Option(help="With --gate-init chrono: the longest memory T_max (default: T).")] = None,
    force: Annotated[bool, typer.Option(help="Replace --out if it is a regular file (a symlink is replaced itself, not its target).")] = False,
):
    """Unroll a cell numerically over a batch of sequences or a grid of settings, with gradients through time."""
    import numpy as np

    from numeric.io.files import check_target, write_atomic
    from numeric.present.data import arrays, to_json
    from numeric.present.text import to_text
    from numeric.run import Request, run

    with reported(), np.errstate(all="ignore"):
        if torch_names and not out:
            raise UsageError("--torch-names", "names the arrays of --out FILE.npz; give --out too")
        if out is not None:
            check_target(out, "out", force)
        with Status() as status:
            r = run(Request(
                cell=cell, variant=variant, activation=activation, formulas=tuple(formula or ()), hidden=hidden,
                input_size=input_size, steps=steps, params_file=params, layer_index=layer, prefix=prefix, seed=seed, inputs=inputs,
                inputs_file=inputs_file, batch=batch, h0=h0, c0=c0, grid=tuple(grid or ()), mode=mode.value,
                truncate=truncate, every_step=every_step, settings=tuple(set_ or ()), gate_init=_gate_init(gate_init, forget_bias),
                forget_bias=forget_bias, t_max=t_max, dtype=dtype.value), progress=status)
        if out is not None:
            data = arrays(r, torch_names)
            write_atomic(out, "out", lambda f: np.savez(f, **data), force=force)
        typer.echo(json.dumps(to_json(r), indent=2) if json_ else to_text(r))


@app.command(epilog=examples("check"))
def check(
    seed: Annotated[int, typer.Option(help="Seed of the random test points.")] = 0,
    cell: Annotated[Optional[str], typer.Option(help="Check this cell only (default: every cell).")] = None,
    formula: FormulaOption = None,
    steps: Annotated[int, typer.Option(help="T for --cell (1 to 1000).")] = 100,
):
    """Check the compiled gradients against five references (finite differences, the complex step and
    mpmath.diff of the forward pass, independent of derive; forward mode and mpmath at 50 digits, which
    share derive's Jacobians) and the law slope = log10|w|; exit 1 if any fails."""
    from numeric.check import check_all, check_one
    from numeric.present.checks import check_table, law_passed

    import numpy as np

    with reported(), np.errstate(all="ignore"), Progress(1) as bar:
        def progress(done, total, label):
            bar.total = total
            bar(done, label)

        rows, laws = check_all(seed, progress) if cell is None and not formula else check_one(
            cell or "custom", tuple(formula or ()), steps, seed)
    typer.echo(check_table(rows, laws))
    failed = sum(not r.passed for r in rows) + (0 if law_passed(laws) else 1)
    typer.echo(f"\n{len(rows) - sum(not r.passed for r in rows)} passed, {failed} failed")
    if failed:
        raise typer.Exit(1)


TaskOption = Annotated[str, typer.Option(help="cuisine (the lecture's Dhaval and Bhavin), adding or latch.")]


@app.command(epilog=examples("train"))
def train(
    cell: Annotated[str, typer.Option(help="rnn (tanh), lstm, gru, or any cell of derive/cells.py with weights to learn.")] = "lstm",
    variant: VariantOption = None,
    task: TaskOption = "cuisine",
    lag: Annotated[int, typer.Option(help="Distance L the answer must be carried (adding: the sequence length).")] = 10,
    hidden: Annotated[int, typer.Option(help="Hidden size n.")] = 16,
    batch: Annotated[int, typer.Option(help="Sequences per update.")] = 32,
    updates: Annotated[int, typer.Option(help="Update budget (training stops earlier at the target).")] = 2000,
    optimiser: Annotated[str, typer.Option(help="adam or sgd (with momentum).")] = "adam",
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 0.01,
    momentum: Annotated[float, typer.Option(help="sgd's momentum.")] = 0.9,
    clip: Annotated[str, typer.Option(help="Gradient clipping: norm (Pascanu et al.), value, or none.")] = "norm",
    threshold: Annotated[float, typer.Option(help="The clipping threshold (norm) or bound (value).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the initialisation and the data.")] = 0,
    every: Annotated[int, typer.Option(help="Evaluate on the held-out set every this many updates.")] = 100,
    gate_init: GateInitOption = None,
    forget_bias: ForgetBiasOption = None,
    t_max: Annotated[Optional[int], typer.Option(help="chrono: the longest memory T_max (default: the sequence length).")] = None,
    dtype: DtypeOption = Dtype.float64,
    json_: Annotated[bool, typer.Option("--json", help="Print the summary and the curves as JSON.")] = False,
    out: Annotated[Optional[str], typer.Option(help="Save the trained weights to FILE.npz (our names and PyTorch's).")] = None,
    force: Annotated[bool, typer.Option(help="Replace --out if it is a regular file.")] = False,
):
    """Train a cell and a linear readout on a long-term dependency task, with Unrolled's own BPTT."""
    import numpy as np

    from numeric.present import trainview
    from numeric.io.files import check_target, write_atomic
    from numeric.training.sensitivity import sensitivity
    from numeric.training.train import Settings, resolve

    settings = Settings(cell=cell, variant=variant, task=task, lag=lag, hidden=hidden, batch=batch, updates=updates,
                        optimiser=optimiser, lr=lr, momentum=momentum, clip=clip, threshold=threshold, seed=seed,
                        every=every, gate_init=gate_init, forget_bias=forget_bias, t_max=t_max, dtype=dtype.value)
    with reported(), np.errstate(all="ignore"):
        settings = resolve(settings)
        if out is not None and not out.lower().endswith(".npz"):
            raise UsageError("--out", f"{out!r} must end in .npz (the weights and the settings, for numeric, derive "
                             "and sensitivity to read)")
        if out is not None:
            check_target(out, "out", force)
        result = _trained(settings, quiet=json_)
        if out is not None:
            data = trainview.arrays(result)
            write_atomic(out, "out", lambda f: np.savez(f, **data), force=force)
        seen = sensitivity(result.settings, result.params)
    typer.echo(json.dumps(trainview.to_json(result), indent=2, allow_nan=False) if json_
               else trainview.summary(result, seen))


def _trained(settings, quiet: bool):
    """Training with a progress line, each evaluation printed (unless ``quiet``); Ctrl-C says what was kept."""
    from numeric.present import trainview
    from numeric.training.train import train as run_training

    progress, done = Progress(settings.updates), [0]

    def on_update(update):
        done[0] = update
        if update % 10 == 0:
            progress(update)

    def on_eval(e):
        if not quiet:
            progress.clear()
            typer.echo(trainview.eval_line(settings, e))

    if not quiet:
        typer.echo(trainview.header(settings, "--gate-init"))
    with progress:
        try:
            return run_training(settings, on_eval, on_update)
        except Interrupted:
            progress.clear()
            typer.echo(f"stopped at update {done[0]} of {settings.updates}; nothing was saved", err=True)
            raise


@app.command(epilog=examples("sensitivity"))
def sensitivity(
    model: Annotated[str, typer.Argument(help="A model train --out saved (FILE.npz).")],
    sequences: Annotated[int, typer.Option(help="Held-out sequences to average over.")] = 256,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the held-out sequences (default: those training scored).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="One value per input step, as JSON.")] = False,
):
    """What a trained answer depends on: ‖∂ℓ/∂x_t‖ for every input step t (Madsen 2019)."""
    import numpy as np

    from numeric.present import trainview
    from numeric.training.sensitivity import saved_model, sensitivity as measure

    with reported(), np.errstate(all="ignore"):
        if not 1 <= sequences <= 4096:
            raise UsageError("--sequences", f"must be from 1 to 4096, got {sequences}")
        if seed is not None and seed < 0:
            raise UsageError("--seed", f"must be a whole number >= 0, got {seed}")
        settings, params = saved_model(model)
        seen = measure(settings, params, sequences, seed)
    typer.echo(json.dumps(trainview.sensitivity_json(seen), indent=2, allow_nan=False) if json_
               else trainview.sensitivity_table(seen))


@app.command(epilog=examples("sweep"))
def sweep(
    task: TaskOption = "cuisine",
    lags: Annotated[str, typer.Option(help="Comma-separated lags.")] = "2,5,10,20,50,100",
    models: Annotated[str, typer.Option(help="Comma-separated CELL:INIT (INIT: pytorch, forget-bias or chrono; a CELL alone takes its training default).")] = "rnn:pytorch,lstm:pytorch,lstm:chrono,gru:pytorch,gru:chrono",
    seeds: Annotated[int, typer.Option(help="Seeds per model and lag.")] = 5,
    updates: Annotated[int, typer.Option(help="The fixed update budget of every run.")] = 2000,
    hidden: Annotated[int, typer.Option(help="Hidden size n.")] = 16,
    lr: Annotated[float, typer.Option(help="Adam's learning rate.")] = 0.01,
    batch: Annotated[int, typer.Option(help="Sequences per update.")] = 32,
    forget_bias: ForgetBiasOption = None,
    jobs: Annotated[int, typer.Option(help="Worker processes (one BLAS thread each).")] = 2,
    out: Annotated[Optional[str], typer.Option(help="Write the results to FILE.json (report --longterm-results reads it).")] = None,
    force: Annotated[bool, typer.Option(help="Replace --out if it is a regular file.")] = False,
):
    """Success rate against lag for each cell and gate initialisation over several seeds, with a fixed update budget."""
    import numpy as np

    from numeric.present import trainview
    from numeric.io.files import check_target, write_atomic
    from numeric.training.sweep import parse_models, sweep as run_sweep
    from numeric.training.train import Settings

    def numbers(text: str, option: str) -> list[int]:
        try:
            return [int(v) for v in text.split(",")]
        except ValueError:
            raise UsageError(option, f"{text!r} is not comma-separated whole numbers") from None

    with reported(), np.errstate(all="ignore"):
        if not 1 <= jobs <= 64:
            raise UsageError("--jobs", f"must be from 1 to 64, got {jobs}")
        if out is not None:
            check_target(out, "out", force)
        chosen, lag_list = parse_models(models), tuple(numbers(lags, "--lags"))
        try:
            with Progress(len(chosen) * len(lag_list) * max(seeds, 1)) as progress:
                result = run_sweep(Settings(task=task, updates=updates, hidden=hidden, lr=lr, batch=batch,
                                            forget_bias=forget_bias),
                                   models=chosen, lags=lag_list, seeds=seeds, jobs=jobs,
                                   on_run=lambda run, done, total: progress(done, f"{run['model']} L={run['lag']}"))
        except InvalidValue as error:  # the sweep's options are plural
            if error.field in ("cell", "lag", "gate_init"):
                raise UsageError({"cell": "--models", "gate_init": "--models", "lag": "--lags"}[error.field],
                                 str(error)) from None
            raise
        if out is not None:
            text = json.dumps(result, indent=1, allow_nan=False).encode()
            write_atomic(out, "out", lambda f: f.write(text), force=force)
    typer.echo(trainview.sweep_table(result))


@app.command(epilog=examples("explore"))
def explore(
    out: Annotated[str, typer.Option(help="The page to write, FILE.html: one self-contained file, no network needed.")],
    cell: CellOption = "rnn",
    activation: ActivationOption = None,
    variant: VariantOption = None,
    formula: FormulaOption = None,
    steps: Annotated[int, typer.Option(parser=whole_number, help="The T slider's range (1 to 10000).")] = 200,
    params: Annotated[Optional[str], typer.Option("--params", help="A model train --out saved (FILE.npz): the page also shows what its answer depends on.")] = None,
    force: Annotated[bool, typer.Option(help="Replace --out if it is a regular file.")] = False,
):
    """The lecture as one interactive page: the derivation as MathML, its numbers computed live as the sliders move."""
    import numpy as np

    from reports.explorer import write_page

    with reported(), np.errstate(all="ignore"):
        size = write_page(out, force=force, params=params, cell=cell, variant=variant, activation=activation,
                          formulas=tuple(formula or ()), steps=steps)
    typer.echo(f"{out}: {size / 1024:.0f} KB; open it in a browser (the settings live in its link)")


class ReportFormat(str, Enum):
    pdf = "pdf"
    png = "png"
    both = "both"


@app.command(epilog=examples("report"))
def report(
    out: Annotated[str, typer.Option(help="Folder to write unrolled-report.pdf and the PNGs into.")] = ".",
    only: Annotated[Optional[list[str]], typer.Option(help="Only this figure (repeatable): unrolled, explode, heatmap, lags, lecture, pascanu, carousel, sources, clipping, cliff, longterm, memory.")] = None,
    format: Annotated[ReportFormat, typer.Option("--format", help="pdf, png or both.")] = ReportFormat.both,
    steps: Annotated[int, typer.Option(help="Horizon T of the figures (2 to 1000).")] = 50,
    seed: Annotated[int, typer.Option(help="Seed of every random draw.")] = 0,
    dpi: Annotated[int, typer.Option(help="Resolution of the PNGs (10 to 600).")] = 100,
    force: Annotated[bool, typer.Option(help="Replace files that already exist, regular files only (a symlink is replaced itself, not its target).")] = False,
    longterm_results: Annotated[Optional[str], typer.Option(help="The sweep's results for the longterm and memory figures (sweep --out FILE.json; default: the bundled cuisine sweep).")] = None,
):
    """Write the figures as PNGs and one multi-page PDF (title, equations, figures, checks)."""
    import numpy as np

    from reports.build import build

    with reported(), np.errstate(all="ignore"), Status() as status:
        from numeric.training.sweep import BUNDLED

        paths = build(out, only=tuple(only or ()), fmt=format.value, steps=steps, seed=seed, dpi=dpi,
                      force=force, progress=status, longterm=longterm_results or BUNDLED)
    typer.echo("\n".join(str(p) for p in paths))


if __name__ == "__main__":
    app()
