"""What every part of one `runplz plan` is made from: this machine's facts, the
script's context, and an `ImageBuilder` that can only name images.

Shared by `plan` (the whole plan) and the per-backend planners (`plan_local`,
`plan_remote`, `plan_brev`, `plan_modal`).
"""

from __future__ import annotations

from typing import Any

import attrs

from ..domain.bind import BindRequest
from ..domain.host import parse_target
from ..domain.plan import NEW_RUN
from .bundle import RuntimeBundle
from .images import ImageBuilder
from .tree import Selection, TreeScanner


@attrs.frozen
class PlanHost:
    """Facts of this machine a run would use: the ids files are made as, and the
    Python version Modal's ``add_python="auto"`` follows."""

    uid: int
    gid: int
    python_version: str


@attrs.define
class PlanContext:
    """One plan's inputs: the loaded app, the bound request, and what was found
    from them (repo root, outputs folder, the mode, the repo's selection)."""

    app: Any
    request: BindRequest
    host: PlanHost
    repo_root: str
    outputs: str
    anchored: frozenset[str]
    mode: str
    selection: Selection | None = None

    def files(self) -> int:
        """How many files the run would upload (0 when nothing is)."""
        return len(self.selection.files) if self.selection is not None else 0

    def ssh_target(self) -> str:
        return str(parse_target(self.request.host, self.app.ssh_config))

    def login(self) -> str:
        return str(parse_target(self.request.host)) if self.request.host else "this machine"

    def where_text(self) -> str:
        if self.request.backend == "ssh":
            return self.ssh_target()
        return self.request.instance or f"runplz-<app>-<function>-{NEW_RUN}"


class _Refuses:
    """Stands in for the container engine and console of an `ImageBuilder` used
    only to name images: any call is a bug (plan runs no docker command)."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"runplz plan must not call {name}()")


def naming_images(bundle: RuntimeBundle, trees: TreeScanner) -> ImageBuilder:
    """An `ImageBuilder` for `base_request` only: it has no engine or console."""
    return ImageBuilder(engine=_Refuses(), console=_Refuses(), bundle=bundle, trees=trees)
