"""Names runplz gives things: run ids, image tags, container names."""

from __future__ import annotations

import re
from datetime import datetime, timezone

_UNSAFE = re.compile(r"[^a-z0-9_.-]+")


def slug(name: str, limit: int = 40) -> str:
    text = _UNSAFE.sub("-", name.lower()).strip("-._")[:limit].strip("-._")
    return text or "app"


def run_id(now: float, entropy: str) -> str:
    """Sortable and unique: UTC time of the run plus random hex."""
    return datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y%m%d-%H%M%S") + "-" + entropy


def image_repo(app: str) -> str:
    return f"runplz-{slug(app)}"


def base_tag(app: str, content: str) -> str:
    return f"{image_repo(app)}:base-{content[:16]}"


def run_tag(app: str, content: str) -> str:
    return f"{image_repo(app)}:run-{content[:16]}"


def container_name(app: str, function: str, run: str) -> str:
    return f"runplz-{slug(app, 24)}-{slug(function, 24)}-{run}"
