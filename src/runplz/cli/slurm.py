"""`runplz slurm`: run SCRIPT's function as a Slurm batch job (registered by cli/main.py)."""

from __future__ import annotations

from typing import Any

import click

from .options import ARGS, HOST_METAVAR, OUTPUTS, SCRIPT, SCRIPT_CONTEXT, driver_options


@click.command(context_settings=SCRIPT_CONTEXT)
@click.option(
    "--host", default=None, metavar=HOST_METAVAR,
    help="The cluster's login node (any ssh target); without it, this machine is the login node.",
)
@OUTPUTS
@driver_options
@SCRIPT
@ARGS
@click.pass_context
def slurm(ctx: click.Context, host: str | None, outputs_dir: str, script: str, args: tuple[str, ...], **driver: Any) -> None:
    """Run SCRIPT as a Slurm batch job, submitted on a login node (SlurmConfig)."""
    from .main import _go

    _go(ctx, "slurm", script, args, **driver, host=host, outputs_dir=outputs_dir)
