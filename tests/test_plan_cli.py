"""`runplz plan <backend>` takes the options of `runplz <backend>`, plus --json."""

from __future__ import annotations

import click
import pytest

from runplz.cli.main import cli
from runplz.cli.plan import plan


# What a run command has and a plan needs: where (--host, --instance), how
# (--native, --no-build), --outputs-dir, SCRIPT and its args. Logging,
# progress and --detach options of the run commands do not apply to a plan.
PLANNED = {"host", "instance", "native", "no_build", "outputs_dir", "script", "args"}


def _shape(command: click.Command) -> list[tuple]:
    return [
        (p.name, tuple(p.opts), getattr(p, "is_flag", False), p.default, p.required, p.metavar, p.nargs)
        for p in command.params
        if p.name in PLANNED
    ]


@pytest.mark.parametrize("backend", ["local", "ssh", "brev", "modal"])
def test_plan_options_match_the_run_command(backend):
    assert {p.name for p in plan.commands[backend].params} - {"as_json"} <= PLANNED
    assert _shape(plan.commands[backend]) == _shape(cli.commands[backend])
    assert plan.commands[backend].context_settings == cli.commands[backend].context_settings
    assert [p.name for p in plan.commands[backend].params if p.name == "as_json"] == ["as_json"]
