"""One `.remote()` call, as the App hands it to a backend."""

from __future__ import annotations

from typing import Any

import attrs

from .spec import FunctionSpec


@attrs.frozen
class FunctionCall:
    app: str
    spec: FunctionSpec
    script: str  # absolute path of the job script on this machine
    args: list[Any]
    kwargs: dict[str, Any]
