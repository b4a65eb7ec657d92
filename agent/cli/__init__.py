"""The ``kefu`` command: thin over the library, one line per error, never a traceback.

Each command group lives in its own module and registers itself on :data:`app`. Only the module
of the command being run is imported (``kefu check`` never loads retrieval or Chroma); ``--help``
and unknown commands load them all.
Exit codes: 0 done; 1 the command found problems (findings, a failed validation, a
regression) or failed; 2 a usage error (bad option, bad input, unknown shop).
"""

from __future__ import annotations

import os
import sys

import click
import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from agent.errors import ConfigError, InputError, KefuError, UnknownShopError

app = typer.Typer(
    name="kefu",
    help="Draft replies for customer-service agents of Chinese online shops.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

USAGE_ERRORS = (InputError, UnknownShopError, ConfigError)


@app.callback()
def _group() -> None:
    """Draft replies for customer-service agents of Chinese online shops."""
    # A callback keeps ``kefu`` a group even when only one command's module was imported.


def fail(message: str, code: int = 1) -> None:
    """Print one error line and leave with ``code``."""
    typer.echo(f"kefu: error: {message}", err=True)
    raise typer.Exit(code)


# command -> the module that registers it (imported for its side effect on ``app``)
COMMANDS = {
    "check": "check_cmd",
    "audit": "audit_cmd",
    "corpus": "corpus_cmd",
    "init": "corpus_cmd",
    "draft": "draft_cmd",
    "index": "index_cmd",
    "eval": "eval_cmd",
    "serve": "serve_cmd",
    "keys": "serve_cmd",
    "feedback": "serve_cmd",
    "welcome": "tools_cmd",
    "phrases": "tools_cmd",
}


def _command(args: list[str]) -> str | None:
    """The command a command line names (its first argument that is not an option)."""
    return next((a for a in args if not a.startswith("-")), None)


def _register(args: list[str]) -> None:
    first = _command(args)
    wanted = [COMMANDS[first]] if first in COMMANDS else sorted(set(COMMANDS.values()))
    for name in wanted:
        try:
            __import__(f"agent.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"agent.cli.{name}":
                raise


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = argv if argv is not None else sys.argv[1:]
    _register(args)
    command: TyperGroup = typer.main.get_command(app)  # type: ignore[assignment]
    try:
        # Without standalone mode, click returns an Exit's code instead of raising it.
        result = command.main(args=args, prog_name="kefu", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (click.exceptions.Abort, typer.Abort):
        typer.echo("kefu: aborted", err=True)
        return 130
    except click.UsageError as exc:
        typer.echo(f"kefu: usage error: {exc.format_message()}", err=True)
        return 2
    except click.ClickException as exc:
        typer.echo(f"kefu: error: {exc.format_message()}", err=True)
        return exc.exit_code
    except TyperException as exc:  # typer >= 0.20 raises its own copy of click's exceptions
        code = int(getattr(exc, "exit_code", 1))
        kind = "usage error" if code == 2 else "error"
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        typer.echo(f"kefu: {kind}: {message}", err=True)
        return code
    except KefuError as exc:
        typer.echo(f"kefu: error: {exc.message}", err=True)
        return 2 if isinstance(exc, USAGE_ERRORS) else 1
    except KeyboardInterrupt:
        typer.echo("kefu: interrupted", err=True)
        return 130
    except Exception as exc:  # the last line of defence: no traceback at the user
        if os.environ.get("KEFU_DEBUG"):
            raise
        typer.echo(f"kefu: internal error: {type(exc).__name__}: {exc} (set KEFU_DEBUG=1 for details)", err=True)
        return 1
    return result if isinstance(result, int) else 0


# Commands that hold nothing to close when they return (no store, no server, no pool): after one,
# the process ends without the interpreter's teardown, a tenth of a second that is a third of a
# `kefu check` called once per draft from a script.
QUICK_EXIT = frozenset({"check"})


def run() -> None:
    """The console script: :func:`main`, then exit; at once after a quick command."""
    code = main()
    if _command(sys.argv[1:]) in QUICK_EXIT:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):  # a closed pipe: what could be written was
            code = code or 1
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
