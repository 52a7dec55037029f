"""The `testbed` command line, a package by command group. Every command turns bad input into a one-line message
and exit code 2 (never a traceback), Ctrl-C into one line and 130, and a closed output pipe into silence."""

from __future__ import annotations

import os
import sys
from typing import Optional

import typer
from typer.core import TyperGroup

try:  # typer >= 0.22 carries its own copy of click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer depends on click itself
    from click import exceptions as click_errors

import generators

from .. import __version__
from . import bench, data, figures, llm, memory, runs
from .common import experiments_dir, friendly

__all__ = ["app", "experiments_dir", "main"]


class OneLineErrors(TyperGroup):
    """Click's usage errors (an unknown option, a missing argument) in one line, like every other error."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.UsageError as e:
            hint = f" (see {e.ctx.command_path} --help)" if e.ctx is not None else ""
            typer.echo(f"error: {e.format_message()}{hint}", err=True)
            code = 2
        except click_errors.ClickException as e:
            typer.echo(f"error: {e.format_message()}", err=True)
            code = e.exit_code
        except (typer.Abort, KeyboardInterrupt):
            typer.echo("error: interrupted", err=True)
            code = 130
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    cls=OneLineErrors,
    help="A synthetic reasoning testbed: generate tasks, train small models, draw depth and capacity curves.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: Rich markup would eat the "[sweep]" and "[cluster]" in our texts
)
for group in (data, runs, figures, memory, bench, llm):
    group.register(app)


@app.callback(invoke_without_command=True)
@friendly
def _root(
    version: bool = typer.Option(False, "--version", help="print the version and exit"),
    max_memory: Optional[str] = typer.Option(None, "--max-memory", help="cap of what a command may allocate, e.g. "
                                             "8G (default: $TESTBED_MAX_MEMORY, else 80 % of RAM)"),
) -> None:
    if max_memory is not None:
        from ..limits import ENV, parse_size

        parse_size(max_memory)
        os.environ[ENV] = max_memory  # read by this process and inherited by its workers
    generators.core.registry.load_plugins()
    if version:
        typer.echo(f"testbed {__version__}")
        raise typer.Exit()


def main() -> None:
    app()
