"""`runplz ps`, `status RUN`, `logs RUN [-f]` and `down RUN`: the recorded runs.

They read the run records in runplz's state directory (``$RUNPLZ_STATE_DIR``,
else ``$XDG_STATE_HOME/runplz``, else ``~/.local/state/runplz``); `ps` and
`status` also ask the backends (only reading) about runs whose driver is gone;
only `down` acts, on the run it names.
"""

from __future__ import annotations

import sys
from typing import Any

import click

_RUN = click.argument("run", metavar="RUN", default="last")
_NO_CHECK = click.option(
    "--no-check", is_flag=True,
    help="Show the records only: do not ask Docker, the ssh boxes, Brev or Slurm about runs whose driver is gone.",
)


def _log_of(store: Any, run_id: str) -> str:
    """Where the run's driver log went: its record says ("" when none was kept)."""
    started = store.events(run_id)[0]
    recorded = getattr(started, "log", None)
    return store.log_path(run_id) if recorded is None else recorded


def _container(ctx: click.Context) -> Any:
    if ctx.obj is not None:
        return ctx.obj
    from ..container import default_container

    return default_container()


def _views(container: Any, rows: Any) -> dict:
    """What the backends say about the runs of ``rows`` whose driver is gone;
    one warning line on stderr per backend that could not be asked."""
    from .render import say

    checked = container.run_reconciler().check(rows)
    for warning in checked.warnings:
        say(f"warning: {warning}")
    return checked.views


@click.command()
@click.option("-n", "--limit", default=30, show_default=True, metavar="N", help="Show the N newest runs.")
@_NO_CHECK
@click.pass_context
def ps(ctx: click.Context, limit: int, no_check: bool) -> None:
    """List recent runs across backends, newest first, with their state.

    For a run whose driver is gone before the run ended, the backend is asked
    how it is doing (the run's container, its run folder on the ssh or Brev
    box, the Brev box itself, the Slurm job): the ON BACKEND column. Asking only reads; a
    backend that cannot be reached is a warning.
    """
    from ..services.run_views import ps_table, summaries

    container = _container(ctx)
    rows = summaries(container.run_store(), container.clock().now(), limit=limit)
    if not rows:
        click.echo("no runs recorded yet")
        return
    click.echo(ps_table(rows, None if no_check else _views(container, rows)), nl=False)


@click.command()
@_RUN
@_NO_CHECK
@click.pass_context
def status(ctx: click.Context, run: str, no_check: bool) -> None:
    """Show RUN's phase, last event, exit code, runtime and cost (RUN: an id, a unique prefix, or "last").

    If its driver is gone before the run ended, also what its backend says (see `runplz ps`).
    """
    from ..services.run_views import status_text, summary_of

    container = _container(ctx)
    store = container.run_store()
    run_id = store.resolve(run)
    log = _log_of(store, run_id) or "(none kept: --no-log-file)"
    summary = summary_of(store, run_id, container.clock().now())
    view = None if no_check else _views(container, [summary]).get(run_id)
    click.echo(status_text(summary, log, view), nl=False)


@click.command()
@_RUN
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the run ends (or its driver is gone).")
@click.pass_context
def logs(ctx: click.Context, run: str, follow: bool) -> None:
    """Print RUN's driver log: everything its run showed, with timestamps."""
    from ..services.run_views import follow_log

    from ..domain.errors import UsageError

    container = _container(ctx)
    store = container.run_store()
    run_id = store.resolve(run)
    log = _log_of(store, run_id)
    if not log:
        raise UsageError(f"run {run_id} kept no driver log (it ran with --no-log-file)")
    if log != store.log_path(run_id):  # --log-file: a file of the user's, maybe shared by several runs
        click.echo(f"runplz: run {run_id} wrote its log to {log} (--log-file)", err=True)
        try:
            with open(log, encoding="utf-8", errors="replace") as handle:
                sys.stdout.write(handle.read())
        except OSError as exc:
            raise UsageError(f"cannot read {log}: {exc.strerror or exc}") from None
        return
    follow_log(store, run_id, container.clock(), sys.stdout, follow=follow)


@click.command()
@click.argument("run", metavar="RUN")
@click.pass_context
def down(ctx: click.Context, run: str) -> None:
    """Stop RUN: its own job only, then the teardown it was due (an ephemeral Brev box is deleted)."""
    container = _container(ctx)
    click.echo(container.run_down().down(run))


COMMANDS = (ps, status, logs, down)
