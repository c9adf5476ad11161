"""Port: a machine to run commands on and move folders to and from."""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, runtime_checkable

from .command_runner import CommandResult, Input


@runtime_checkable
class Transport(Protocol):
    """One target machine, reached over one connection.

    Paths on the target are relative to its login folder (or absolute).

    Contract:
    - ``connect(wait)`` opens the connection, retrying until the target answers
      or ``wait`` seconds pass (then `Unreachable`). A refused login or host
      key is `TransportError` at once. Calling it again after the connection
      dropped opens a new one. ``close()`` ends it; closing twice is fine.
    - ``run(argv)`` runs ``argv`` on the target with its arguments passed
      byte-exact (no shell interprets them), in the login folder; returns the
      program's exit code (0-255) and output like `CommandRunner.run`
      (``input``, ``timeout``, ``on_output``). A connection that breaks
      raises `ConnectionLost`; `CommandNotFound` is not raised: a missing
      program is exit code 127.
    - ``push(local, remote, excludes=())`` makes ``remote`` hold exactly the
      files of ``local`` (nested and empty folders, any names, executable
      bits), minus ``excludes`` (patterns for a name at any depth, or a path
      from ``local`` when they start with '/'), creating parent folders.
      Files already there unchanged are not sent again. Returns bytes sent.
    - ``pull(remote, local)`` copies the files of ``remote`` into ``local``
      (made if needed), overwriting same-named files and keeping others. A
      missing ``remote`` is `TransportError`. Returns bytes received.
    - Failures name the target and what failed (`TransportError`).
    """

    name: str

    def connect(self, wait: float = 0) -> None: ...

    def close(self) -> None: ...

    def run(
        self,
        argv: Sequence[str],
        *,
        input: Input = None,
        timeout: float | None = None,
        on_output: Callable[[bytes], None] | None = None,
    ) -> CommandResult: ...

    def push(self, local: str, remote: str, excludes: Sequence[str] = ()) -> int: ...

    def pull(self, remote: str, local: str) -> int: ...
