"""What runplz does to a Brev box before and after a run: the lifecycle policy.

Pure decisions, no calls:

- **Ephemeral** (no instance name): an auto-named box per ``.remote()`` call,
  created for the call and deleted when it ends, however it ends.
- **Named, present**: attach; `brev start` it first when it is stopped.
- **Named, missing**: the typo guard refuses, unless
  ``BrevConfig(auto_create_instances=True)``; then the first function to run
  pins the box's shape.
- ``on_finish`` applies to named boxes only: "stop", "delete" or "leave".
  "stop" on a type that cannot be stopped is refused before anything is
  created or started: deleting a named box the user meant to keep is worse.
- The seed's dispatch-time image checks: container mode has no Dockerfile
  step; vm mode without Docker (a native venv) cannot use a Dockerfile either.
"""

from __future__ import annotations

import re
from typing import Literal

import attrs

from .brev_instances import NAME_MAX, Instance, check_instance_name
from .config import BrevConfig
from .errors import ConfigError, UsageError
from .image import Image

Arrive = Literal["create", "attach", "start", "wait"]
Finish = Literal["delete", "stop", "leave"]

# A box in these states becomes usable on its own; wait for it.
_COMING = ("STARTING", "DEPLOYING")
# A box in these states needs `brev start` (STOPPING: once it has stopped).
_STOPPED = ("STOPPED", "STOPPING")


class TypoGuard(UsageError):
    """A named box that does not exist, without ``auto_create_instances=True``."""


class BoxUnusable(UsageError):
    """A named box in a state runplz cannot run on (failed, being deleted)."""


class NotStoppable(ConfigError):
    """``on_finish="stop"`` for a box whose type Brev cannot stop."""


@attrs.frozen
class Target:
    """The box a call runs on: its name, and whether runplz owns it (ephemeral)."""

    name: str
    ephemeral: bool


def ephemeral_name(app: str, function: str, run_id: str) -> str:
    """``runplz-<app>-<function>-<run id>``, cut to Brev's 63 characters keeping the
    run id (which makes it unique) whole."""
    slug = re.sub(r"[^a-zA-Z0-9-]+", "-", f"{app}-{function}").strip("-").lower() or "job"
    tail = re.sub(r"[^a-zA-Z0-9-]+", "-", run_id).strip("-").lower()
    room = NAME_MAX - len("runplz--") - len(tail)
    return check_instance_name(f"runplz-{slug[:max(room, 1)].strip('-') or 'job'}-{tail}")


def target_for(instance: str | None, app: str, function: str, run_id: str) -> Target:
    if instance is None:
        return Target(ephemeral_name(app, function, run_id), ephemeral=True)
    return Target(check_instance_name(instance), ephemeral=False)


def check_image(config: BrevConfig, image: Image, function: str) -> None:
    """The seed's dispatch-time checks of the image against the mode."""
    if not image.is_dockerfile:
        return
    if config.mode == "container":
        raise ConfigError(
            f"{function}: BrevConfig(mode='container') runs the Image DSL on the box and has no "
            "Dockerfile step; use Image.from_registry(...) or BrevConfig(mode='vm')"
        )
    if not config.use_docker:
        raise ConfigError(
            f"{function}: BrevConfig(use_docker=False) runs in a venv on the box and cannot use "
            "Image.from_dockerfile(...); use Image.from_registry(...) or use_docker=True"
        )


def arrival(target: Target, found: Instance | None, config: BrevConfig) -> Arrive:
    """What to do to reach ``target``, given what `brev ls` lists under its name."""
    if target.ephemeral:
        if found is not None:  # a run id is unique: this is someone else's box
            raise UsageError(f"a Brev instance named {target.name} already exists; runplz will not touch it")
        return "create"
    if found is None:
        if config.auto_create_instances:
            return "create"
        raise TypoGuard(
            f"no Brev instance named {target.name} (check `brev ls`); runplz does not create a "
            "named box unless BrevConfig(auto_create_instances=True), or omit --instance for "
            "an ephemeral one"
        )
    if found.failed or found.status in ("DELETING", "FAILURE"):
        raise BoxUnusable(f"Brev instance {target.name} is {found.describe()}; runplz cannot run on it")
    if found.usable:
        return "attach"
    if found.status in _STOPPED:
        return "start"
    return "wait"  # RUNNING but not READY yet, STARTING, DEPLOYING, UNHEALTHY: give it the ready wait


def finish(target: Target, config: BrevConfig) -> Finish:
    """What to do to the box when the call ends (success or failure)."""
    return "delete" if target.ephemeral else config.on_finish


def check_finish(target: Target, config: BrevConfig, stoppable: bool | None, instance_type: str) -> None:
    """Refuse, before anything is created or started, an ``on_finish="stop"`` that
    Brev could not carry out. ``stoppable`` None: the catalog does not say."""
    if target.ephemeral or config.on_finish != "stop" or stoppable is not False:
        return
    raise NotStoppable(
        f"Brev instance type {instance_type} cannot be stopped, so on_finish='stop' would leave "
        f"{target.name} billing; use BrevConfig(on_finish='delete') or on_finish='leave', "
        "or pick a stoppable type"
    )
