"""Unrolled's command line: thin adapters that parse, call one library function, print."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from derive.errors import UnrolledError, UsageError

__version__ = "0.1.0"


class OneLineErrors(TyperGroup):
    """Report every usage error as one line on stderr (exit 2), with no usage box."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            code = 130
        except Exception as error:  # the Click errors Typer vendors: they carry their exit code
            if not hasattr(error, "format_message") or not hasattr(error, "exit_code"):
                raise
            typer.echo(f"Error: {error.format_message()}", err=True)
            code = error.exit_code
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


@contextmanager
def reported():
    """Turn the library's errors into one line on stderr and exit code 2 (usage) or 1."""
    try:
        yield
    except UsageError as error:
        typer.echo(f"Error: {error}", err=True)
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
):
    """Unrolled: derive, check and plot gradients through time."""


class Format(str, Enum):
    text = "text"
    latex = "latex"
    json = "json"


@app.command()
def derive(
    steps: Annotated[int, typer.Option(help="T, the number of unrolled steps (>= 1).")] = 50,
    cell: Annotated[str, typer.Option(help="rnn, lstm, gru or statquest.")] = "rnn",
    activation: Annotated[Optional[str], typer.Option(help="rnn only: linear, tanh, sigmoid or relu.")] = None,
    variant: Annotated[Optional[str], typer.Option(help="lstm: standard, peephole, coupled; gru: standard, cho.")] = None,
    hidden: Annotated[int, typer.Option(help="Hidden size n (1 to 8).")] = 1,
    input_size: Annotated[int, typer.Option(help="Input size m (1 to 8).")] = 1,
    wrt: Annotated[Optional[str], typer.Option(help="A state (h, c: ∂s_T/∂s_0) or a parameter (∂L/∂θ by BPTT).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="NAME=VALUE, repeatable; a number or a JSON list.")] = None,
    truncate: Annotated[Optional[int], typer.Option(help="BPTT through the last τ steps only.")] = None,
    inputs: Annotated[Optional[str], typer.Option(help="x_1..x_T: one value or T comma-separated values (default 1).")] = None,
    h0: Annotated[Optional[str], typer.Option("--h0", help="Initial hidden state (default 0).")] = None,
    c0: Annotated[Optional[str], typer.Option("--c0", help="Initial cell state (default 0).")] = None,
    format: Annotated[Format, typer.Option("--format", help="text, latex or json.")] = Format.text,
):
    """Derive ∂h_T/∂h_0 (or ∂L/∂θ by BPTT) for a cell unrolled over T steps, as a worked solution."""
    from derive.render import to_json, to_latex
    from derive.solution import solve
    from derive.story import story

    with reported():
        d = solve(cell, variant=variant, activation=activation, hidden=hidden, input_size=input_size,
                  steps=steps, wrt=wrt, settings=tuple(set_ or ()), truncate=truncate,
                  inputs=inputs, h0=h0, c0=c0)
    render = {Format.text: story, Format.latex: to_latex, Format.json: lambda d: json.dumps(to_json(d), indent=2)}
    typer.echo(render[format](d))


if __name__ == "__main__":
    app()
