"""Read a dispatch payload, call the function, write the result record."""

from __future__ import annotations

import errno
import os
import sys
import traceback
from typing import Any, Sequence

from ..domain.carry import carry_return
from ..domain.payload import PROTOCOL, Raised, Result, Returned
from ..domain.layout import RESULT_FILE
from .files import write


_RESERVE = 256 << 10  # room kept for the result record, in case the job fills the disk


def _reserve(path: str) -> None:
    """Hold some disk for the result record; a job that fills the disk must not lose its own error."""
    try:
        with open(path + ".reserve", "wb") as handle:
            handle.write(b"\0" * _RESERVE)
    except OSError:
        pass


def _write(path: str, result: Result) -> None:
    from ..protocol.wire import encode_result

    try:
        write(path, encode_result(result))
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        if os.path.exists(path + ".reserve"):
            os.unlink(path + ".reserve")
        try:
            write(path, encode_result(result))
        except OSError:
            small = Raised("OSError", f"the result record could not be written: {exc}", "", 1)
            write(path, encode_result(Result(result.protocol, result.run_id, small)))
    finally:
        if os.path.exists(path + ".reserve"):
            os.unlink(path + ".reserve")


def _raised(exc: BaseException, exit_code: int) -> Raised:
    kind = type(exc)
    name = kind.__qualname__ if kind.__module__ in ("builtins", "__main__") else f"{kind.__module__}.{kind.__qualname__}"
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Raised(name, str(exc), text, exit_code)


def _exit_code_of(exc: SystemExit) -> int:
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code & 0xFF
    return 1


def call(payload_path: str) -> int:
    """Run one dispatch; returns the process exit code."""
    from ..protocol.wire import decode_dispatch
    from ..loader import load_app

    result_path = os.path.join(os.path.dirname(os.path.abspath(payload_path)), RESULT_FILE)
    _reserve(result_path)
    run_id = "unknown"
    try:
        with open(payload_path, "rb") as handle:
            dispatch = decode_dispatch(handle.read())
        run_id = dispatch.run_id
        from .. import app as app_module

        app_module.in_runtime = True
        _, app = load_app(os.path.abspath(dispatch.script))
        function = app.registered_functions.get(dispatch.function)
        if function is None:
            raise LookupError(f"{dispatch.script} has no function {dispatch.function!r} on its App")
    except BaseException as exc:  # a broken payload or script is still reported
        _write(result_path, Result(PROTOCOL, run_id, _raised(exc, 2)))
        sys.stderr.write(f"runplz: could not start the job: {type(exc).__name__}: {exc}\n")
        return 2
    try:
        value: Any = function.local(*dispatch.args, **dispatch.kwargs)
    except SystemExit as exc:
        code = _exit_code_of(exc)
        if exc.code is not None and not isinstance(exc.code, int):
            sys.stderr.write(f"{exc.code}\n")
        outcome = Returned(None) if code == 0 else _raised(exc, code)
        _write(result_path, Result(PROTOCOL, run_id, outcome))
        return code
    except KeyboardInterrupt as exc:
        _write(result_path, Result(PROTOCOL, run_id, _raised(exc, 130)))
        return 130
    except BaseException as exc:
        _write(result_path, Result(PROTOCOL, run_id, _raised(exc, 1)))
        return 1
    _write(result_path, Result(PROTOCOL, run_id, _returned(value)))
    return 0


def _returned(value: Any) -> Returned:
    """The body finished, so the run stands: parts of ``value`` JSON cannot carry
    come back as stand-ins, noted for the caller's warning, never as a failure."""
    try:
        carried = carry_return(value)
    except Exception as exc:  # carry_return guards the value's own code; this guards carry_return
        note = (
            f"the return value could not be carried ({type(exc).__name__}); "
            ".remote() gave back None instead"
        )
        return Returned(None, (note,))
    return Returned(carried.value, carried.stand_ins)


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: runplz_boot.py PAYLOAD.json\n")
        return 2
    sys.stdout.flush()
    try:
        return call(argv[0])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
