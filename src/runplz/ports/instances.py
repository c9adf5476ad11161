"""Port: Brev boxes (`brev create`, `ls`, `start`, `stop`, `delete`, `refresh`)."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

from ..domain.brev_instances import Instance


@runtime_checkable
class Instances(Protocol):
    """The user's Brev boxes, driven through the brev CLI.

    Contract:
    - Every ``name`` is checked first (``^[a-zA-Z0-9][a-zA-Z0-9._-]*$``, at most
      63 characters): a bad one is `BadInstanceName` and nothing is called.
    - ``list()`` is every box, as `Instance` values (``{"workspaces": null}`` is
      ``()``). `Instance.usable` is RUNNING with shell READY; `Instance.failed`
      is FAILURE or CREATE_FAILED.
    - ``create(name, types, mode=, container_image=, min_disk=)`` asks ONCE for a
      box trying ``types`` in order (one comma-separated ``--type`` list: a type
      without capacity falls through to the next, and the box's
      ``instance_type`` says which one it got). ``types`` is non-empty, each a
      token without commas; ``mode`` is None, "vm" or "container";
      ``container_image`` needs mode "container"; ``min_disk`` (GB, rounded up)
      asks for at least that disk. Returning does NOT mean the box is usable:
      call ``wait_usable``. A name that exists already, or no capacity for any
      type, is `BrevCommandError`. A transient failure is retried only if the
      box is not listed afterwards (a create is never doubled).
    - ``start``, ``stop``, ``delete`` act on one existing box; an unknown name is
      `BrevCommandError`. ``stop`` on a type that cannot stop is refused
      (`BrevCommandError`: such a box must be deleted to stop its billing).
      A stopped box is unreachable; ``start`` brings it back (then wait_usable).
    - ``refresh()`` rewrites the ssh config so ``ssh NAME`` (the container, or
      the default target) and ``ssh NAME-host`` (the VM) reach each box; it is
      needed after ``create`` before the first ssh.
    - ``wait_usable(name, within_seconds)`` polls ``list()`` (after 2, 4, 8,
      then every 15 s on the Clock) and returns the box once usable. A failed
      box is `InstanceFailed` at once; a box not listed on 3 polls in a row is
      `InstanceMissing`; past ``within_seconds`` it is `InstanceNotReady`,
      naming the last status seen. Transient listing errors count as a missed poll.
    - CLI errors: transient words are retried after 1, 2 and 4 s on the Clock,
      then `BrevCommandError` (``transient`` True); any other failure (e.g.
      "unauthorized", "quota exceeded") is `BrevCommandError` at once, with the
      CLI's own words. A missing CLI is `BrevNotInstalled`; one too old for
      `brev search` / `ls --json` is `BrevTooOld`, found before the first call.
    - Every method may be called from several threads at once (a map's
      inputs, each with its own box); each call acts as one CLI call would.
    """

    def list(self) -> tuple[Instance, ...]: ...

    def create(
        self,
        name: str,
        types: Sequence[str],
        *,
        mode: str | None = None,
        container_image: str | None = None,
        min_disk: float | None = None,
    ) -> None: ...

    def start(self, name: str) -> None: ...

    def stop(self, name: str) -> None: ...

    def delete(self, name: str) -> None: ...

    def refresh(self) -> None: ...

    def wait_usable(self, name: str, within_seconds: float) -> Instance: ...
