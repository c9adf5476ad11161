"""The `runplz` command.

Help is the one fast path: `runplz --help`, `runplz COMMAND --help` (or
``-h``), and a bare `runplz` or `runplz plan` (help on stderr, exit 2, as
click does) print texts rendered ahead of time from the click commands
(help_text.py, made by help_gen.py and checked against click by the tests),
without loading click, when the terminal is wide enough for click to wrap
them the same way. Everything else goes to the click commands in main.py.
"""

from __future__ import annotations

import os
import sys


def _columns() -> int:
    """The terminal's width, found as click finds it (`shutil.get_terminal_size`)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def _ready_help(args: list[str]) -> tuple[str, bool] | None:
    """(text, on stderr) when ``args`` ask only for help rendered ahead that is
    right for this terminal; else None (click answers)."""
    if "_RUNPLZ_COMPLETE" in os.environ:  # shell completion: click's business
        return None
    if args and args[-1] in ("--help", "-h"):
        path, to_stderr = tuple(args[:-1]), False
    elif len(args) <= 1:  # a group called with nothing to do: click shows its help
        path, to_stderr = tuple(args), True
    else:
        return None
    if path and (path[0].startswith("-") or path not in _GROUPS and to_stderr):
        return None
    from .help_text import HELP, WIDTH

    text = HELP.get(path)
    if text is None or not text.isascii() or _columns() < WIDTH:
        return None
    return text, to_stderr


_GROUPS = {(), ("plan",)}  # the commands that show their help when given nothing


def main() -> None:
    ready = _ready_help(sys.argv[1:])
    if ready is not None:
        text, to_stderr = ready
        stream = sys.stderr if to_stderr else sys.stdout
        stream.write(text + "\n")
        stream.flush()
        sys.exit(2 if to_stderr else 0)
    from .main import run

    run()


# The console entry under a name of its own: once the submodule runplz.cli.main
# is imported, the package's ``main`` attribute is that module, not this function.
entry = main
