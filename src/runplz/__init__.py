"""runplz: one Python file, one decoration, four backends.

Names are imported lazily so `runplz --help` and the target-side runtime stay
light.
"""

from __future__ import annotations


__version__ = "0.1.0"

__all__ = [
    "App",
    "BrevConfig",
    "Function",
    "Image",
    "ImageOp",
    "LocalConfig",
    "ModalConfig",
    "RemoteError",
    "RunTimeout",
    "RunplzError",
    "RunplzWarning",
    "SlurmConfig",
    "SshConfig",
    "StandInWarning",
    "__version__",
]

_WHERE = {
    "App": "runplz.app",
    "Function": "runplz.app",
    "Image": "runplz.domain.image",
    "ImageOp": "runplz.domain.image",
    "BrevConfig": "runplz.domain.config",
    "LocalConfig": "runplz.domain.config",
    "ModalConfig": "runplz.domain.config",
    "SshConfig": "runplz.domain.config",
    "SlurmConfig": "runplz.domain.config",
    "RemoteError": "runplz.domain.errors",
    "RunplzError": "runplz.domain.errors",
    "RunTimeout": "runplz.domain.errors",
    "RunplzWarning": "runplz.domain.errors",
    "StandInWarning": "runplz.domain.errors",
}


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'runplz' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
