"""`runplz plan <backend> [options] SCRIPT [ENTRYPOINT ARGS]...`: what a run would do.

Registered by cli/main.py (``cli.add_command(plan)``). The options are the
run commands' own (cli/options.py), plus ``--json``. Nothing heavy is
imported until a plan is made: ``runplz --help`` stays light.
"""

from __future__ import annotations

from typing import Any

import click

from .options import ARGS as _ARGS
from .options import HOST_METAVAR, INSTANCE_METAVAR
from .options import OUTPUTS as _OUTPUTS
from .options import SCRIPT as _SCRIPT
from .options import SCRIPT_CONTEXT as _SCRIPT_CONTEXT
from .options import own_flags as _own_flags

_JSON = click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (schema: docs/plan.md).")


def _plan(ctx: click.Context, backend: str, script: str, args: tuple[str, ...], as_json: bool, **bind: Any) -> None:
    import os
    import sys

    from ..domain.bind import bind_request
    from ..domain.entry_args import HelpRequested
    from ..domain.plan_render import dumps, render_text
    from ..services.plan import PlanHost

    request = bind_request(backend, **bind)
    container = ctx.obj
    if container is None:
        from ..container import default_container

        container = default_container()
    host = PlanHost(os.getuid(), os.getgid(), f"{sys.version_info.major}.{sys.version_info.minor}")
    flags = _own_flags(ctx)
    result = container.plan_service().plan(script, args, request, host, f"runplz plan {backend} {script}", flags)
    if isinstance(result, HelpRequested):
        click.echo(result.text, nl=False)
        return
    click.echo(dumps(result) if as_json else render_text(result), nl=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def plan() -> None:
    """Show what `runplz <backend> SCRIPT ...` would do, doing none of it.

    No box is created, nothing is built, uploaded or run, and no file is
    written. Brev's catalog (`brev search`) and, with --instance, `brev ls`
    are read; `plan slurm` asks the login node and the scheduler nothing.
    """


@plan.command(context_settings=_SCRIPT_CONTEXT)
@_OUTPUTS
@click.option("--no-build", is_flag=True, help="Plan reusing the last image built for the function.")
@click.option("--native", is_flag=True, help="Plan a run in a cached venv on this machine (no Docker).")
@_JSON
@_SCRIPT
@_ARGS
@click.pass_context
def local(ctx: click.Context, outputs_dir: str, no_build: bool, native: bool, as_json: bool,
          script: str, args: tuple[str, ...]) -> None:
    """Plan `runplz local SCRIPT ...`."""
    _plan(ctx, "local", script, args, as_json, outputs_dir=outputs_dir, build=not no_build,
          native=True if native else None)


@plan.command(context_settings=_SCRIPT_CONTEXT)
@click.option("--host", required=True, metavar=HOST_METAVAR, help="Any ssh target (nothing connects to it).")
@_OUTPUTS
@_JSON
@_SCRIPT
@_ARGS
@click.pass_context
def ssh(ctx: click.Context, host: str, outputs_dir: str, as_json: bool, script: str, args: tuple[str, ...]) -> None:
    """Plan `runplz ssh --host HOST SCRIPT ...`."""
    _plan(ctx, "ssh", script, args, as_json, host=host, outputs_dir=outputs_dir)


@plan.command(context_settings=_SCRIPT_CONTEXT)
@click.option("--instance", default=None, metavar=INSTANCE_METAVAR, help="Plan a run on this Brev box (default: ephemeral).")
@_OUTPUTS
@_JSON
@_SCRIPT
@_ARGS
@click.pass_context
def brev(ctx: click.Context, instance: str | None, outputs_dir: str, as_json: bool,
         script: str, args: tuple[str, ...]) -> None:
    """Plan `runplz brev SCRIPT ...`: the Brev type, fallbacks and worst-case cost."""
    _plan(ctx, "brev", script, args, as_json, instance=instance, outputs_dir=outputs_dir)


@plan.command(context_settings=_SCRIPT_CONTEXT)
@_OUTPUTS
@_JSON
@_SCRIPT
@_ARGS
@click.pass_context
def modal(ctx: click.Context, outputs_dir: str, as_json: bool, script: str, args: tuple[str, ...]) -> None:
    """Plan `runplz modal SCRIPT ...` (modal is not imported)."""
    _plan(ctx, "modal", script, args, as_json, outputs_dir=outputs_dir)


@plan.command(context_settings=_SCRIPT_CONTEXT)
@click.option("--host", default=None, metavar=HOST_METAVAR,
              help="The login node (nothing connects to it; default: this machine is one).")
@_OUTPUTS
@_JSON
@_SCRIPT
@_ARGS
@click.pass_context
def slurm(ctx: click.Context, host: str | None, outputs_dir: str, as_json: bool,
          script: str, args: tuple[str, ...]) -> None:
    """Plan `runplz slurm SCRIPT ...`: the sbatch directives and batch script."""
    _plan(ctx, "slurm", script, args, as_json, host=host, outputs_dir=outputs_dir)
