"""Entry point of the ``dodil`` executable: runs the command tree and turns
every failure into one line on stderr and an exit code (see
:mod:`dodil_cli.errors` for the table)."""

from __future__ import annotations

import os
import sys
import traceback

import click

from dodil_cli.cli import COMPLETE_VAR, cli
from dodil_cli.errors import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE, CliError
from dodil_cli.output import style
from dodil_cli.session import Session


def _error(message: str, details: list[str] | None = None) -> None:
    # The contract is one line per error; a multi-line message from a server
    # or a library is folded rather than spilled across the terminal.
    message = " ".join(message.split())
    click.echo(style("error:", sys.stderr, fg="red", bold=True) + " " + message, err=True)
    for line in details or ():
        click.echo(f"  {line}", err=True)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return the exit code."""
    session = Session()
    try:
        result = cli.main(
            args=argv,
            prog_name="dodil",
            obj=session,
            standalone_mode=False,
            complete_var=COMPLETE_VAR,
        )
        return result if isinstance(result, int) else 0
    except CliError as exc:
        _error(exc.headline(), exc.details if session.verbose else None)
        return exc.exit_code
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _error(exc.format_message().rstrip(".") + hint)
        return EXIT_USAGE
    except click.Abort:
        # click raises Abort for Ctrl-C at a prompt and for a declined confirm.
        _error("aborted")
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        _error(exc.format_message())
        return exc.exit_code
    except KeyboardInterrupt:
        click.echo("", err=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`dodil ... | head`): not an error of ours.
        _silence_stdout()
        return EXIT_FAILURE
    except Exception as exc:  # a bug in dodil: one line, the traceback only on request
        _error(f"internal error in dodil: {type(exc).__name__}: {exc}")
        if session.verbose:
            traceback.print_exc()
        else:
            click.echo("  (run again with --verbose for the traceback)", err=True)
        return EXIT_FAILURE
    finally:
        session.close()


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would report the broken pipe again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main() -> None:
    """The ``dodil`` console script."""
    sys.exit(run())


if __name__ == "__main__":
    main()
