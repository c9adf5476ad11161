"""The `ServerlessPlatform` port over the real ``modal`` client.

``modal`` is imported only when a run starts, never on the way to
``runplz --help`` or another backend. Every client exception is translated
here, at the edge, into runplz's own one-line errors.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from typing import Any, Sequence

from ..domain.errors import ItemCancelled, MissingExtra, RunTimeout, ServiceAuthError, ServiceError, ServiceUnreachable
from ..domain.limits import modal_timeout_message
from ..ports.log_sink import LogSink
from ..ports.backend import Cancel, ItemSink
from ..ports.serverless import ServerlessJob, ServerlessOutcome
from .stream_tee import teed
from .modal_image import ModalPlaces, modal_image
from .modal_map import ModalMap

ENTRY_MODULE = "runplz_modal_entry"  # Modal imports the entry file under its stem, from /root
_ENTRY_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runtime", "runplz_modal_entry.py")


SUPPORTED = ((1, 1), (2, 0))  # modal>=1.1,<2, the `modal` extra's range


def import_modal() -> Any:
    """The ``modal`` package in the supported range, or `MissingExtra` naming the pip extra."""
    try:
        import modal
    except ImportError as exc:
        raise MissingExtra(
            f"the modal backend needs the modal package ({exc.name or 'modal'} is missing): "
            "pip install 'runplz[modal]'"
        ) from None
    version = getattr(modal, "__version__", "0")
    parts = tuple(int(part) for part in re.findall(r"\d+", version)[:2])
    if not SUPPORTED[0] <= parts < SUPPORTED[1]:
        raise MissingExtra(
            f"modal {version} is installed; runplz needs modal>=1.1,<2: pip install 'runplz[modal]'"
        )
    return modal


def _entry_function():
    """The container-side ``run``, from a module Modal sees as the file ``runplz_modal_entry.py``.

    Loaded under its own top-level name (not as ``runplz.runtime.runplz_modal_entry``),
    so Modal ships that one file to ``/root`` instead of the whole runplz package.
    """
    module = sys.modules.get(ENTRY_MODULE)
    if module is None or getattr(module, "__file__", None) != _ENTRY_FILE:
        spec = importlib.util.spec_from_file_location(ENTRY_MODULE, _ENTRY_FILE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[ENTRY_MODULE] = module
        spec.loader.exec_module(module)
    return module.run


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def translate(exc: BaseException, modal: Any, job: ServerlessJob) -> Exception | None:
    """The runplz error for a client exception, or None for one we do not know."""
    errors = modal.exception
    where = f"Modal ({os.environ.get('MODAL_SERVER_URL') or 'api.modal.com'})"
    if isinstance(exc, errors.AuthError):
        return ServiceAuthError(f"{where} refused the credentials: {_first_line(exc)} (run `modal token new`)")
    if isinstance(exc, errors.FunctionTimeoutError):
        return RunTimeout(modal_timeout_message(job.function, job.resources.timeout))
    if isinstance(exc, (errors.ConnectionError, ConnectionError, TimeoutError)):
        return ServiceUnreachable(f"{where} could not be reached: {_first_line(exc)}")
    if isinstance(exc, errors.Error):
        return ServiceError(f"{where} failed the run of {job.function}: {type(exc).__name__}: {_first_line(exc)}")
    try:
        import grpclib
    except ImportError:  # pragma: no cover - modal depends on grpclib
        return None
    from grpclib.exceptions import ProtocolError, StreamTerminatedError

    if isinstance(exc, (StreamTerminatedError, ProtocolError)):  # the connection broke under the client
        return ServiceUnreachable(f"{where} could not be reached: {type(exc).__name__}: {_first_line(exc)}")
    if isinstance(exc, grpclib.GRPCError):
        return ServiceError(f"{where} failed the run of {job.function}: {exc.status.name}: {exc.message}")
    return None


class ModalPlatform:
    """Runs each job as an ephemeral Modal app: ``app.run()`` then ``.remote()``
    (a map: one app, then Modal's ``starmap``).
    What the client prints (its progress and the job's streamed logs) also goes
    to the driver ``log``."""

    def __init__(self, log: LogSink | None = None) -> None:
        self._log = log

    def run(self, job: ServerlessJob) -> ServerlessOutcome:
        modal = import_modal()
        try:
            with teed(self._log, "modal"):
                reply = self._run(modal, job)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            mapped = translate(exc, modal, job)
            if mapped is None:
                raise
            raise mapped from None
        return ServerlessOutcome(
            exit_code=int(reply["exit_code"]),
            result=reply["result"],
            outputs=reply["outputs"],
            timed_out=bool(reply.get("timed_out")),
            notes=tuple(reply.get("notes") or ()),
        )

    def map(
        self, job: ServerlessJob, payloads: Sequence[str], concurrency: int, sink: ItemSink, cancel: Cancel
    ) -> None:
        """One ephemeral app; Modal's own ``starmap`` over the payloads (see `ModalMap`)."""
        modal = import_modal()
        runner = ModalMap(modal, job, payloads, concurrency, sink, cancel, translate)
        try:
            with teed(self._log, "modal"):
                runner.run(*define(modal, job))
        except (KeyboardInterrupt, SystemExit):
            runner.give_up(ItemCancelled("the map was interrupted"))
            raise
        except BaseException as exc:
            mapped = translate(exc, modal, job)
            runner.give_up(mapped or exc)
            if mapped is None:
                raise
            raise mapped from None

    def _run(self, modal: Any, job: ServerlessJob) -> dict:
        app, function = define(modal, job)
        stopped: list[BaseException] = []
        with modal.enable_output(), app.run():
            try:
                return function.remote(job.payload, job.deadline, job.grace)
            except KeyboardInterrupt as exc:  # also runplz's SIGTERM and SIGHUP
                stopped.append(exc)
                raise
        # app.run() stops the app on an interrupt, then swallows it: raise it again
        raise stopped[0] if stopped else ServiceError(f"Modal returned nothing for {job.function}")


def define(modal: Any, job: ServerlessJob) -> tuple[Any, Any]:
    """The ephemeral app and its one function, the runplz entry, shaped by ``job``."""
    places = ModalPlaces(job.repo_root, job.repo_keep, job.bundle_dir, job.add_python)
    image = modal_image(job.image, places)
    app = modal.App(job.app)
    res = job.resources
    options: dict[str, Any] = {"image": image, "timeout": res.timeout, "name": job.function}
    if res.gpu is not None:
        options["gpu"] = res.gpu
    if res.cpu is not None:
        options["cpu"] = res.cpu
    if res.memory_mib is not None:
        options["memory"] = res.memory_mib
    if job.env:
        options["secrets"] = [modal.Secret.from_dict(dict(job.env))]
    return app, app.function(**options)(_entry_function())
