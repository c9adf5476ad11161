"""click commands: parse, make one call, render."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click

from .. import __version__
from . import render

_SCRIPT_CONTEXT = {"allow_interspersed_args": False, "help_option_names": ["-h", "--help"]}
_OUTPUTS = click.option(
    "--outputs-dir",
    default="out",
    show_default=True,
    metavar="PATH",
    help="Where files the function writes to $RUNPLZ_OUT come back to.",
)
_SCRIPT = click.argument("script", metavar="SCRIPT", type=click.Path(dir_okay=False))
_ARGS = click.argument("args", nargs=-1, type=click.UNPROCESSED, metavar="[ENTRYPOINT ARGS]...")


_SIGNALS = {"SIGTERM": render.Terminated, "SIGHUP": render.HungUp}


def _raise(kind: type[KeyboardInterrupt]):
    def handler(signum: int, frame: Any) -> None:
        raise kind()

    return handler


def _install_warning_renderer() -> None:
    """runplz's own warnings (`RunplzWarning`) show as one ``runplz: warning:`` line."""
    import warnings

    from ..domain.errors import RunplzWarning

    shown = warnings.showwarning
    if getattr(shown, "runplz", False):
        return

    def show(message: Any, category: type, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        if issubclass(category, RunplzWarning):
            render.say(f"warning: {message}")
        else:
            shown(message, category, filename, lineno, file, line)

    show.runplz = True  # type: ignore[attr-defined]
    warnings.showwarning = show


def _install_signal_handlers() -> None:
    """SIGTERM and SIGHUP raise KeyboardInterrupt subclasses, so cleanup runs as on Ctrl-C.

    A signal already ignored (``nohup``) stays ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for name, kind in _SIGNALS.items():
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
            signal.signal(number, _raise(kind))


class _Interrupted(Exception):
    """Carries a KeyboardInterrupt past click, which would turn it into a bare Abort."""

    def __init__(self, interrupt: KeyboardInterrupt) -> None:
        super().__init__()
        self.interrupt = interrupt


class RunplzGroup(click.Group):
    """Every error becomes one readable line and an exit code (2 for user mistakes)."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        _install_signal_handlers()
        _install_warning_renderer()
        try:
            returned = super().main(args, prog_name or "runplz", complete_var, standalone_mode=False, **extra)
            code = returned if isinstance(returned, int) else 0
        except SystemExit:
            raise
        except _Interrupted as carried:
            code = render.error(carried.interrupt)
        except BaseException as exc:  # noqa: BLE001 - rendering is the point
            code = render.error(exc)
        try:
            sys.stdout.flush()
        except OSError:
            pass
        sys.exit(code)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:  # every cleanup below has run by now
            raise _Interrupted(exc) from exc


@click.group(cls=RunplzGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="runplz")
def cli() -> None:
    """Run one decorated Python function locally, over ssh, on Brev or on Modal.

    runplz's own options come before SCRIPT; everything after SCRIPT goes to the
    script's entrypoint (`runplz local job.py --help` lists its flags).
    """


def _own_flags(ctx: click.Context) -> dict[str, bool]:
    """This command's own long options (name -> takes a value), for the hint
    when one is written after SCRIPT."""
    flags = {}
    for param in ctx.command.params:
        if isinstance(param, click.Option):
            for opt in (*param.opts, *param.secondary_opts, "--help"):
                if opt.startswith("--"):
                    flags[opt[2:]] = not param.is_flag and opt != "--help"
    flags.pop("help", None)
    return flags


def _go(ctx: click.Context, backend: str, script: str, args: tuple[str, ...], **bind: Any) -> None:
    from ..domain.bind import bind_request
    from ..invoke import invoke

    request = bind_request(backend, **bind)
    container = ctx.obj
    if container is None:
        from ..container import default_container

        container = default_container()
    outcome = invoke(script, args, request, container, f"runplz {backend} {script}", _own_flags(ctx))
    if outcome.help_text is not None:
        click.echo(outcome.help_text, nl=False)
    elif outcome.show_value:
        render.value(outcome.value)


@cli.command(context_settings=_SCRIPT_CONTEXT)
@_OUTPUTS
@click.option("--no-build", is_flag=True, help="Reuse the last image built for the function.")
@click.option("--native", is_flag=True, help="No Docker: run in a cached venv on this machine.")
@_SCRIPT
@_ARGS
@click.pass_context
def local(ctx: click.Context, outputs_dir: str, no_build: bool, native: bool, script: str, args: tuple[str, ...]) -> None:
    """Run SCRIPT on this machine, in Docker (default) or natively."""
    _go(ctx, "local", script, args, outputs_dir=outputs_dir, build=not no_build, native=True if native else None)


@cli.command(context_settings=_SCRIPT_CONTEXT)
@click.option(
    "--host", required=True, metavar="[USER@]HOST[:PORT]",
    help="Any ssh target: host, user@host:port, or a ~/.ssh/config alias.",
)
@_OUTPUTS
@_SCRIPT
@_ARGS
@click.pass_context
def ssh(ctx: click.Context, host: str, outputs_dir: str, script: str, args: tuple[str, ...]) -> None:
    """Run SCRIPT on a box you own, over ssh (Docker or a venv there)."""
    _go(ctx, "ssh", script, args, host=host, outputs_dir=outputs_dir)


@cli.command(context_settings=_SCRIPT_CONTEXT)
@click.option("--instance", default=None, metavar="NAME", help="Attach to this Brev box (default: ephemeral).")
@_OUTPUTS
@_SCRIPT
@_ARGS
@click.pass_context
def brev(ctx: click.Context, instance: str | None, outputs_dir: str, script: str, args: tuple[str, ...]) -> None:
    """Run SCRIPT on a Brev box: ephemeral (made and deleted per call) or --instance NAME."""
    _go(ctx, "brev", script, args, instance=instance, outputs_dir=outputs_dir)


@cli.command(context_settings=_SCRIPT_CONTEXT)
@_OUTPUTS
@_SCRIPT
@_ARGS
@click.pass_context
def modal(ctx: click.Context, outputs_dir: str, script: str, args: tuple[str, ...]) -> None:
    """Run SCRIPT on Modal (needs the modal package: pip install 'runplz[modal]')."""
    _go(ctx, "modal", script, args, outputs_dir=outputs_dir)


def run(argv: list[str] | None = None, obj: Any = None) -> None:
    """The console entry point."""
    cli.main(args=argv, obj=obj)
