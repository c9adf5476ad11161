"""The options every run command shares (and `runplz plan` mirrors): one definition each."""

from __future__ import annotations

from typing import Any

import click

SCRIPT_CONTEXT = {"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]}
OUTPUTS = click.option(
    "--outputs-dir",
    default="out",
    show_default=True,
    metavar="PATH",
    help="Where files the function writes to $RUNPLZ_OUT come back to.",
)
SCRIPT = click.argument("script", metavar="SCRIPT", type=click.Path(dir_okay=False))
ARGS = click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[ENTRYPOINT ARGS]...")
HOST_METAVAR = "[USER@]HOST[:PORT]"
INSTANCE_METAVAR = "NAME"


def own_flags(ctx: click.Context) -> dict[str, bool]:
    """This command's own long options (name -> takes a value), for the hint
    when one is written after SCRIPT."""
    flags = {}
    for param in ctx.command.params:
        if isinstance(param, click.Option):
            for opt in (*param.opts, *param.secondary_opts):
                if opt.startswith("--") and opt != "--help":
                    flags[opt[2:]] = not param.is_flag
    return flags


def driver_options(command: Any) -> Any:
    """-q/-v and the driver log, shared by every run command."""
    for option in reversed((
        click.option("-q", "--quiet", is_flag=True, help="Show only warnings and errors from runplz (the job's output still shows)."),
        click.option("-v", "--verbose", is_flag=True, help="Also show every command runplz runs."),
        click.option("--log-file", metavar="PATH", default=None,
                     help="Write the driver log here (default: the run's folder in runplz's state directory)."),
        click.option("--no-log-file", is_flag=True, help="Keep no driver log."),
        click.option("--detach", is_flag=True,
                     help="Start the run in the background, print its id and return; "
                     "`runplz logs -f RUN` follows it, `runplz down RUN` stops it."),
    )):
        command = option(command)
    return command
