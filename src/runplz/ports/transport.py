"""Port: a machine to run commands on and move folders to and from."""

from __future__ import annotations

from typing import Callable, Protocol, Sequence, runtime_checkable

import attrs

from .command_runner import CommandResult, Input


@attrs.frozen
class Pulled:
    """What a download brought back, and what it refused to bring."""

    received: int  # bytes of file data
    dropped: tuple[tuple[str, str], ...] = ()  # (path, why): unsafe links, special files


@runtime_checkable
class Transport(Protocol):
    """One target machine, reached over one connection.

    Paths on the target are relative to its login folder (or absolute).

    Contract:
    - ``connect(wait)`` opens the connection, retrying until the target answers
      or ``wait`` seconds pass (then `Unreachable`). A refused login, a host
      key problem or a usage/config error of the client is `TransportError` at
      once, never retried. Calling it again after the connection dropped opens
      a new one. ``close()`` ends it; closing twice is fine. Nothing of the
      connection outlives the process that made it by more than about a minute.
    - ``run(argv)`` runs ``argv`` on the target with its arguments passed
      byte-exact (no shell interprets them), in the login folder; returns the
      program's exit code (0-255) and output like `CommandRunner.run`
      (``input``, ``timeout``, ``on_output``). A connection that breaks
      raises `ConnectionLost`; `CommandNotFound` is not raised: a missing
      program is exit code 127.
    - ``push(local, remote, paths=None, basis=None)`` makes the new folder
      ``remote`` (parents created) hold the entries ``paths`` of ``local``
      ('/'-separated, relative: folders, regular files with their executable
      bit, symlinks copied as links), or all of ``local`` when ``paths`` is
      None. A symlink whose target leaves ``local`` never travels. Content is
      compared exactly (never by size and time alone): a file identical to the
      same path under the target folder ``basis`` is copied there, not sent.
      Returns the bytes sent.
    - ``pull(remote, local, move=False)`` copies ``remote`` into ``local``
      (made if needed), overwriting same-named files and keeping others; with
      ``move`` each file or link that arrived whole is removed from ``remote``
      (what was left behind stays there). What arrives
      is only folders, regular files and symlinks that stay inside: owned by
      the caller, readable and writable by them, executable bits kept, no
      set-id or sticky bits. Links that point outside ``remote`` (absolute,
      or climbing out) and special files (devices, FIFOs, sockets) are left
      behind and listed in `Pulled.dropped`. ``local``'s own mode and owner
      are never changed. A missing ``remote`` is `TransportError`.
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

    def push(
        self, local: str, remote: str, paths: Sequence[str] | None = None, basis: str | None = None
    ) -> int: ...

    def pull(self, remote: str, local: str, move: bool = False) -> Pulled: ...
