"""click commands: parse, make one call, render."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import click

from .. import __version__
from . import render
from .options import ARGS as _ARGS
from .options import HOST_METAVAR, INSTANCE_METAVAR
from .options import OUTPUTS as _OUTPUTS
from .options import SCRIPT as _SCRIPT
from .options import SCRIPT_CONTEXT as _SCRIPT_CONTEXT
from .options import driver_options as _driver_options
from .options import own_flags as _own_flags

# The driver log of this invocation, for the line that names it after a failure.
_active_log: list[Any] = []


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


def _name_the_log(exc: BaseException) -> None:
    """After a failed run: the error goes into the driver log, whose path is shown."""
    from ..domain.errors import UsageError

    if not _active_log or isinstance(exc, (click.exceptions.Exit, click.UsageError, UsageError)):
        return  # a mistake in the command is its one line, nothing more
    log = _active_log[-1]
    stopped = isinstance(exc, KeyboardInterrupt)  # Ctrl-C, SIGTERM, SIGHUP: the person knows why
    what = type(exc).__name__ if stopped else f"error: {type(exc).__name__}: {exc}"
    log.record("runplz", f"runplz: {what}\n".encode("utf-8", "replace"))
    log.flush()
    if log.path and not stopped:
        render.say(f"the full log: {log.path}")


def _detach(container: Any) -> None:
    """``--detach``: the same command, as a driver in the background."""
    argv = list(_invocation)
    argv.remove("--detach")  # runplz's own (its options come before SCRIPT)
    started = container.launcher().start(argv, cwd=".")
    sys.stdout.write(started.early_output)  # what it said before it let go of this terminal
    sys.stderr.write(started.early_errors)
    if started.run_id is None:
        if started.exit_code is None:  # still going, but never said which run it is
            render.say(f"the background driver (pid {started.pid}) goes on; `runplz ps` lists its run")
            return
        raise click.exceptions.Exit(started.exit_code)
    render.say(
        f"run {started.run_id} goes on in the background; follow it: runplz logs -f {started.run_id}; "
        f"stop it: runplz down {started.run_id}"
    )


# The argv of this invocation (for --detach to start it again in the background).
_invocation: list[str] = []


class RunplzGroup(click.Group):
    """Every error becomes one readable line and an exit code (2 for user mistakes)."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        _install_signal_handlers()
        _install_warning_renderer()
        _invocation[:] = list(sys.argv[1:] if args is None else args)
        _active_log.clear()  # a command without a run of its own (ps, down...) names no earlier run's log
        try:
            returned = super().main(args, prog_name or "runplz", complete_var, standalone_mode=False, **extra)
            code = returned if isinstance(returned, int) else 0
        except SystemExit:
            raise
        except _Interrupted as carried:
            code = render.error(carried.interrupt)
            _name_the_log(carried.interrupt)
        except BaseException as exc:  # noqa: BLE001 - rendering is the point
            code = render.error(exc)
            _name_the_log(exc)
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
    """Run one decorated Python function locally, over ssh, on Brev, on Modal or on a Slurm cluster.

    runplz's own options come before SCRIPT; everything after SCRIPT goes to the
    script's entrypoint (`runplz local job.py --help` lists its flags).
    """


def _go(
    ctx: click.Context, backend: str, script: str, args: tuple[str, ...],
    quiet: bool = False, verbose: bool = False, log_file: str | None = None, no_log_file: bool = False,
    detach: bool = False, **bind: Any,
) -> None:
    from ..domain.bind import bind_request
    from ..invoke import invoke

    if quiet and verbose:
        raise click.UsageError("-q/--quiet and -v/--verbose contradict each other")
    if log_file and no_log_file:
        raise click.UsageError("--log-file and --no-log-file contradict each other")
    request = bind_request(backend, **bind)
    container = ctx.obj
    if container is None:
        from ..container import default_container

        container = default_container()
    if detach:
        _detach(container)
        return
    container.config.quiet.from_value(quiet)
    container.config.verbose.from_value(verbose)
    container.config.no_log_file.from_value(no_log_file)
    container.config.log_file.from_value(log_file)
    log = container.driver_log()
    _active_log[:] = [log]
    log.on_error = container.console().warn
    if log_file:
        log.pin(log_file)  # each run's first line names it
    outcome = invoke(script, args, request, container, f"runplz {backend} {script}", _own_flags(ctx))
    if outcome.help_text is not None:
        click.echo(outcome.help_text, nl=False)
    elif outcome.show_value:
        import json

        render.value(outcome.value)
        log.record("value", (json.dumps(outcome.value, ensure_ascii=False) + "\n").encode("utf-8", "replace"))


@cli.command(context_settings=_SCRIPT_CONTEXT)
@_OUTPUTS
@click.option("--no-build", is_flag=True, help="Reuse the last image built for the function.")
@click.option("--native", is_flag=True, help="No Docker: run in a cached venv on this machine.")
@_driver_options
@_SCRIPT
@_ARGS
@click.pass_context
def local(ctx: click.Context, outputs_dir: str, no_build: bool, native: bool, script: str, args: tuple[str, ...], **driver: Any) -> None:
    """Run SCRIPT on this machine, in Docker (default) or natively."""
    _go(ctx, "local", script, args, **driver, outputs_dir=outputs_dir, build=not no_build, native=True if native else None)


@cli.command(context_settings=_SCRIPT_CONTEXT)
@click.option(
    "--host", required=True, metavar=HOST_METAVAR,
    help="Any ssh target: host, user@host:port, or a ~/.ssh/config alias.",
)
@_OUTPUTS
@_driver_options
@_SCRIPT
@_ARGS
@click.pass_context
def ssh(ctx: click.Context, host: str, outputs_dir: str, script: str, args: tuple[str, ...], **driver: Any) -> None:
    """Run SCRIPT on a box you own, over ssh (Docker or a venv there)."""
    _go(ctx, "ssh", script, args, **driver, host=host, outputs_dir=outputs_dir)


@cli.command(context_settings=_SCRIPT_CONTEXT)
@click.option("--instance", default=None, metavar=INSTANCE_METAVAR, help="Attach to this Brev box (default: ephemeral).")
@_OUTPUTS
@_driver_options
@_SCRIPT
@_ARGS
@click.pass_context
def brev(ctx: click.Context, instance: str | None, outputs_dir: str, script: str, args: tuple[str, ...], **driver: Any) -> None:
    """Run SCRIPT on a Brev box: ephemeral (made and deleted per call) or --instance NAME."""
    _go(ctx, "brev", script, args, **driver, instance=instance, outputs_dir=outputs_dir)


@cli.command(context_settings=_SCRIPT_CONTEXT)
@_OUTPUTS
@_driver_options
@_SCRIPT
@_ARGS
@click.pass_context
def modal(ctx: click.Context, outputs_dir: str, script: str, args: tuple[str, ...], **driver: Any) -> None:
    """Run SCRIPT on Modal (needs the modal package: pip install 'runplz[modal]')."""
    _go(ctx, "modal", script, args, **driver, outputs_dir=outputs_dir)


from .plan import plan as _plan  # noqa: E402  (after the run commands it mirrors)
from .runs import COMMANDS as _RUN_COMMANDS  # noqa: E402
from .slurm import slurm as _slurm  # noqa: E402

cli.add_command(_plan)
cli.add_command(_slurm)
for _command in _RUN_COMMANDS:
    cli.add_command(_command)


def run(argv: list[str] | None = None, obj: Any = None) -> None:
    """The console entry point."""
    cli.main(args=argv, obj=obj)
