"""Per-bind settings the composition root hands to a backend."""

from __future__ import annotations

import attrs

from ..domain.config import LocalConfig


@attrs.frozen
class LocalSettings:
    outputs_dir: str  # absolute
    build: bool
    config: LocalConfig
    uid: int
    gid: int
    python: str  # interpreter native environments are made from
    python_version: str
