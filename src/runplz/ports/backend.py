"""Port: somewhere a function call can run."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ..domain.call import FunctionCall


@runtime_checkable
class Backend(Protocol):
    """Runs one function call and returns its value.

    Contract:
    - Returns the function's return value (JSON: dict, list, str, int, float,
      bool or None) exactly as the function returned it, tuples as lists.
    - A function that raises, exits non-zero or dies raises `RemoteError`
      with the remote type, message, traceback text and exit code.
    - Files the function writes under ``$RUNPLZ_OUT`` are in the bound outputs
      folder afterwards, on success and on failure.
    - Past the function's timeout the run is stopped and `RunTimeout` raised.
    """

    def call(self, call: FunctionCall) -> Any: ...
