"""Port: isolated Python environments for native runs."""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import attrs


@attrs.frozen
class PipStep:
    """One install step: requirement strings or local paths, in order."""

    packages: tuple[str, ...]
    index_url: str | None = None
    editable: bool = False


@attrs.frozen
class EnvRequest:
    key: str  # content hash of everything that goes into the environment
    python: str  # interpreter the environment is made from
    steps: tuple[PipStep, ...] = ()


@attrs.frozen
class PythonEnv:
    python: str  # the environment's interpreter
    created: bool  # False when an existing environment was reused


@runtime_checkable
class PythonEnvBuilder(Protocol):
    """Makes, once per key, an isolated environment with the steps applied.

    Contract:
    - ``ensure`` returns an interpreter that runs and that sees the packages
      of ``steps`` but not those of the interpreter it was made from.
    - The same ``key`` again returns the same environment, ``created=False``,
      without installing anything. A build that failed half-way is never
      reused.
    - A failing step raises `BuildError` with the end of the tool's log;
      tool output lines go to ``on_line``.
    """

    def ensure(self, request: EnvRequest, on_line: Callable[[str], None] | None = None) -> PythonEnv: ...
