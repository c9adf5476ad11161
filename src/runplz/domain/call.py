"""One `.remote()` call, as the App hands it to a backend."""

from __future__ import annotations

from typing import Any

import attrs

from .spec import FunctionSpec


@attrs.frozen
class FunctionCall:
    """What to run. The last four are set for one input of a ``.map()``:

    - ``outputs``: the input's own outputs folder (absolute, ``<outputs>/<index>``),
      used instead of the bound one;
    - ``run_id``: the run id the backend must record the run under (the
      fan-out knows it before the run starts, to stop it);
    - ``map_id``, ``index``: the map's id and the input's position in it.
    """

    app: str
    spec: FunctionSpec
    script: str  # absolute path of the job script on this machine
    args: list[Any]
    kwargs: dict[str, Any]
    outputs: str | None = None
    run_id: str | None = None
    map_id: str | None = None
    index: int | None = None

    @property
    def label(self) -> str:
        """The function's name, with the input's index for a map item: ``square[3]``."""
        return self.spec.name if self.index is None else f"{self.spec.name}[{self.index}]"
