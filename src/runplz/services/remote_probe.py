"""One probe of a box before a remote run: what it has, in one round trip."""

from __future__ import annotations

from ..domain.errors import TransportError
from ..domain.machine import (
    Machine,
    banner_problem,
    docker_problem,
    missing_tools,
    parse_probe,
    probe_script,
    spec_warnings,
)
from ..domain.spec import FunctionSpec
from ..ports.console import Console
from ..ports.transport import Transport


def probe_box(
    transport: Transport, console: Console, spec: FunctionSpec, checks: dict[str, str], docker: bool
) -> Machine:
    """What the box has; one line (TransportError) for what a run cannot do
    without; warnings where it falls short of what ``spec`` asks for."""
    result = transport.run(["sh", "-c", probe_script(checks, docker=docker)], timeout=120)
    machine = parse_probe(result.stdout)
    where = transport.name
    problem = banner_problem(machine, where) or missing_tools(machine, where)
    if docker:
        problem = problem or docker_problem(machine, where)
    if problem:
        raise TransportError(problem)
    if docker and machine.docker_command[:1] == ("sudo",):
        console.info(f"{where}: docker needs sudo there; using `{' '.join(machine.docker_command)}`")
    for warning in spec_warnings(spec, machine, where):
        console.warn(warning)
    return machine
