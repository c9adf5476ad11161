"""Turn outcomes and errors into what the terminal shows, and exit codes."""

from __future__ import annotations

import sys
from typing import Any

import click


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like an interrupt (cleanup runs) but exiting 143."""


class HungUp(KeyboardInterrupt):
    """SIGHUP, handled like an interrupt (cleanup runs) but exiting 129."""


def say(message: str) -> None:
    try:
        click.echo(f"runplz: {message}", err=True)
    except OSError:  # the terminal went away (SIGHUP): the exit code still tells
        pass


def value(result: Any) -> None:
    if result is not None:
        import json

        click.echo(json.dumps(result, ensure_ascii=False))


def error(exc: BaseException) -> int:
    """Report ``exc``; return the process exit code."""
    from ..domain.errors import RemoteError, RunplzError, UsageError

    if isinstance(exc, Terminated):
        say("terminated")
        return 143
    if isinstance(exc, HungUp):
        say("hung up")
        return 129
    if isinstance(exc, KeyboardInterrupt):
        say("interrupted")
        return 130
    if isinstance(exc, click.exceptions.Exit):
        return exc.exit_code
    if isinstance(exc, click.Abort):
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, KeyboardInterrupt):
            return error(cause)
        say("aborted")
        return 130
    if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
        return 2
    if isinstance(exc, click.UsageError):
        say(f"error: {exc.format_message()}")
        return 2
    if isinstance(exc, UsageError):
        say(f"error: {exc}")
        return 2
    if isinstance(exc, RemoteError):
        if exc.remote_traceback:
            sys.stderr.write(exc.remote_traceback.rstrip("\n") + "\n")
        say(f"error: the function failed with exit code {exc.exit_code}: {exc}")
        return exc.exit_code if 0 < exc.exit_code < 256 else 1
    if isinstance(exc, RunplzError):
        say(f"error: {exc}")
        return 1
    import traceback

    traceback.print_exception(type(exc), exc, exc.__traceback__)
    return 1
