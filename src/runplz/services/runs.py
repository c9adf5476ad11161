"""What every backend does around a call: ids, the payload, the result."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile

from .. import __version__
from ..domain.call import FunctionCall
from ..domain.errors import ProtocolError, RemoteError
from ..domain.layout import PAYLOAD_FILE, RESULT_FILE
from ..domain.naming import run_id
from ..domain.payload import PROTOCOL, Dispatch, Result, settle
from ..ports.clock import Clock
from ..protocol.wire import decode_result, encode_dispatch
from .repo import relative_posix


# The job's own guard stops it at its time limit, driver or no driver; the
# driver's timeout is only a backup, this much later.
BACKUP_SECONDS = 30


def guarded(python: str, boot: str, payload: str, limit: float) -> tuple[str, ...]:
    """The job's command under the shipped agent's guard: stopped at ``limit``
    seconds even when the driver is gone."""
    return (python, boot, "agent", "guard", f"{float(limit):g}", python, boot, payload)


def new_run_id(clock: Clock) -> str:
    return run_id(clock.now(), secrets.token_hex(3))


def dispatch_for(call: FunctionCall, repo_root: str, run: str) -> Dispatch:
    return Dispatch(
        protocol=PROTOCOL,
        runplz_version=__version__,
        run_id=run,
        app=call.app,
        script=relative_posix(call.script, repo_root),
        function=call.spec.name,
        args=list(call.args),
        kwargs=dict(call.kwargs),
    )


class RunDir:
    """A private folder holding one call's payload and, afterwards, its result."""

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="runplz-run-")
        os.chmod(self.path, 0o700)

    def __enter__(self) -> "RunDir":
        return self

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    @property
    def payload(self) -> str:
        return os.path.join(self.path, PAYLOAD_FILE)

    def write(self, dispatch: Dispatch) -> None:
        with open(self.payload, "w", encoding="utf-8") as handle:
            handle.write(encode_dispatch(dispatch))

    def result(self) -> Result | None:
        path = os.path.join(self.path, RESULT_FILE)
        try:
            with open(path, "rb") as handle:
                return decode_result(handle.read())
        except FileNotFoundError:
            return None

    def settle(self, exit_code: int, run: str):
        try:
            result = self.result()
        except ProtocolError as exc:
            raise RemoteError("RunplzBadResult", str(exc), "", exit_code or 1) from None
        return settle(result, exit_code, run)


def settle_text(text: str | None, exit_code: int, run: str):
    """Like `RunDir.settle`, for a result record that arrived as text."""
    try:
        result = decode_result(text) if text else None
    except ProtocolError as exc:
        raise RemoteError("RunplzBadResult", str(exc), "", exit_code or 1) from None
    return settle(result, exit_code, run)
