"""Which backend a run goes to, with the checks `app.bind(...)` and the CLI share."""

from __future__ import annotations

import re
from typing import Any

import attrs

from .errors import ConfigError
from .host import parse_target
from .validate import show

BACKENDS = ("local", "ssh", "brev", "modal", "slurm")
_INSTANCE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{0,62}")


@attrs.frozen
class BindRequest:
    backend: str
    instance: str | None = None
    host: str | None = None
    outputs_dir: str = "out"
    build: bool = True
    native: bool | None = None  # CLI --native: overrides LocalConfig.use_docker


def bind_request(
    backend: Any,
    instance: Any = None,
    host: Any = None,
    outputs_dir: Any = "out",
    build: Any = True,
    native: Any = None,
) -> BindRequest:
    """Validate a bind; every mistake is a `ConfigError` naming the argument."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}; got {show(backend)}")
    if instance is not None:
        if backend != "brev":
            raise ConfigError("instance= (--instance) is only for the brev backend")
        if not isinstance(instance, str) or not _INSTANCE.fullmatch(instance):
            raise ConfigError(
                "instance must be a Brev instance name (letters, digits, '.', '_', '-'; "
                f"at most 63); got {show(instance)}"
            )
    if backend == "ssh" and host is None:
        raise ConfigError("the ssh backend needs host= (--host [user@]HOST[:PORT])")
    if host is not None:
        if backend not in ("ssh", "slurm"):
            raise ConfigError("host= (--host) is only for the ssh and slurm backends")
        if not isinstance(host, str):
            raise ConfigError(f"host must be [user@]HOST[:PORT] or an ssh alias; got {show(host)}")
        parse_target(host)
    if not isinstance(build, bool):
        raise ConfigError(f"build must be True or False; got {show(build)}")
    if not build and backend != "local":
        raise ConfigError("build=False (--no-build) is only for the local backend")
    if native is not None and (not isinstance(native, bool) or backend != "local"):
        raise ConfigError("native (--native) is only for the local backend")
    text = outputs_dir if isinstance(outputs_dir, str) else getattr(outputs_dir, "__fspath__", lambda: None)()
    if not isinstance(text, str) or not text.strip() or "\x00" in text:
        raise ConfigError(f"outputs_dir must be a folder path; got {show(outputs_dir)}")
    return BindRequest(backend, instance, host, text, build, native)
