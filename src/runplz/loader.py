"""Import a job script by path and find its one App."""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from types import ModuleType

from .domain.errors import ConfigError, ScriptError


def _module_name(path: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem.isidentifier() and stem not in sys.modules:
        return stem
    base = "".join(c if c.isalnum() else "_" for c in stem)
    return f"_runplz_script_{base}"


def _where(exc: BaseException, path: str) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if os.path.abspath(f.filename) == path]
    frame = (mine or frames or [None])[-1]
    return f"{os.path.relpath(frame.filename)}:{frame.lineno}" if frame else os.path.relpath(path)


def import_script(path: str) -> ModuleType:
    """Import ``path`` as a module, its folder first on sys.path (like ``python path``)."""
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise ScriptError(f"no such script: {os.path.relpath(path)}")
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ScriptError(f"cannot import {os.path.relpath(path)} as Python")
    module = importlib.util.module_from_spec(spec)
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        raise ScriptError(
            f"{os.path.relpath(exc.filename or path)}:{exc.lineno}: SyntaxError: {exc.msg}"
        ) from None
    except ConfigError as exc:
        sys.modules.pop(name, None)
        raise ConfigError(f"{_where(exc, path)}: {exc}") from None
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ScriptError(f"{_where(exc, path)}: {type(exc).__name__}: {exc}") from exc
    return module


def find_app(module: ModuleType, path: str):
    from .app import App

    apps = []
    for value in vars(module).values():
        if isinstance(value, App) and all(value is not a for a in apps):
            apps.append(value)
    shown = os.path.relpath(path)
    if not apps:
        raise ScriptError(f"{shown} defines no runplz App (add app = App('name') at module level)")
    if len(apps) > 1:
        names = ", ".join(repr(a.name) for a in apps)
        raise ScriptError(f"{shown} defines {len(apps)} Apps ({names}); use one App per script")
    app = apps[0]
    app.script = os.path.abspath(path)
    return app


def load_app(path: str):
    """Import the script and return ``(module, app)``."""
    module = import_script(path)
    return module, find_app(module, path)
