"""Port: run an external program."""

from __future__ import annotations

from typing import BinaryIO, Callable, Mapping, Protocol, Sequence, Union, runtime_checkable

import attrs

Input = Union[bytes, BinaryIO, None]


@attrs.frozen
class CommandResult:
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str


@runtime_checkable
class CommandRunner(Protocol):
    """Runs one program and waits for it.

    Contract:
    - ``argv`` is executed directly, never through a shell; ``argv[0]`` is looked
      up on PATH. A missing program raises `CommandNotFound`; a missing ``cwd``
      raises `CommandError`. Neither returns an exit code.
    - ``exit_code`` is the program's own status (0-255); a program killed by
      signal N reports 128+N.
    - ``env`` entries are laid over the runner's environment (never replace it).
    - ``input`` (bytes or a readable binary file) is written to stdin, which is
      then closed; without it stdin is empty.
    - Output is decoded as UTF-8 (invalid bytes replaced). With ``on_line``
      every line of stdout and stderr, merged in arrival order and without its
      newline, goes to ``on_line`` as it arrives and the merged text is returned
      as ``stdout`` (``stderr`` is ""). With ``on_output`` the raw stdout bytes
      go to ``on_output`` as they arrive, partial lines included, and are not
      returned (``stdout`` is ""); stderr is captured. With ``inherit=True`` the program's
      output reaches the caller's stdout/stderr as it comes (straight, or passed through
      the runner when it keeps a driver log) and both come back "". Otherwise
      both are captured separately. Returned text keeps at most the last MiB.
    - ``timeout`` (seconds): past it the program and everything it started are
      killed and `CommandTimeout` is raised.
    - An interrupt (KeyboardInterrupt) while waiting interrupts the program and
      everything it started, then propagates.
    """

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        input: Input = None,
        timeout: float | None = None,
        on_line: Callable[[str], None] | None = None,
        inherit: bool = False,
        on_output: Callable[[bytes], None] | None = None,
    ) -> CommandResult: ...
