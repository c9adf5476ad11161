"""What `runplz <backend> SCRIPT ARGS...` does: load, bind, call the entrypoint."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import attrs

from .domain.bind import BindRequest
from .domain.entry_args import HelpRequested, params_of, parse
from .domain.errors import ScriptError
from .loader import load_app


@attrs.frozen
class Invocation:
    help_text: str | None = None
    value: Any = None
    show_value: bool = False


def invoke(
    script: str,
    argv: Sequence[str],
    request: BindRequest,
    container: Any,
    usage: str,
    runner_flags: Mapping[str, bool] | None = None,
) -> Invocation:
    """Import ``script``, parse ``argv`` for its entrypoint, bind and run it.

    ``runner_flags``: the CLI's own options (name -> takes a value), for the hint
    when one is written after the script."""
    _, app = load_app(script)
    entry = app.entrypoint
    function = None
    if entry is None:
        functions = list(app.registered_functions.values())
        if len(functions) != 1:
            raise ScriptError(
                f"{os.path.relpath(script)} has no @app.local_entrypoint() and "
                f"{len(functions)} functions; add an entrypoint that calls the one to run"
            )
        function = functions[0]
        entry = function.local
        owner = function.name
        params = params_of(function.__wrapped__)
    else:
        owner = entry.__name__
        params = params_of(entry)
    kwargs = parse(params, argv, owner, usage, runner_flags)
    if isinstance(kwargs, HelpRequested):
        return Invocation(help_text=kwargs.text)
    app._attach(request, container)
    try:
        if function is not None:
            return Invocation(value=function.remote(**kwargs), show_value=True)
        entry(**kwargs)
        return Invocation()
    finally:
        app._release()
