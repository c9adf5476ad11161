"""Port: a serverless platform (Modal) that runs dispatches in a container it builds."""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence, runtime_checkable

import attrs

from ..domain.image import Image
from ..domain.modal_resources import ModalResources
from .backend import Cancel, ItemSink


@attrs.frozen
class ServerlessJob:
    """One call, as the platform needs it.

    ``payload`` is the dispatch record (JSON text) the runplz runtime reads;
    ``repo_keep`` the repo paths ('/'-separated, relative to ``repo_root``)
    that may travel; ``deadline`` the seconds the job gets before the
    container side stops it itself, leaving time to pack its outputs (0: none).
    """

    app: str
    function: str
    image: Image
    resources: ModalResources
    env: Mapping[str, str]
    payload: str
    repo_root: str
    repo_keep: frozenset[str]
    bundle_dir: str
    add_python: str | None = None
    deadline: float = 0.0
    grace: float = 10.0  # seconds between SIGTERM and SIGKILL once the deadline passes


@attrs.frozen
class ServerlessOutcome:
    """What came back: the job's exit code, its result record (None when the
    job died before writing one), ``$RUNPLZ_OUT`` as a gzip'd tar archive, and
    notes on outputs that could not be packed."""

    exit_code: int
    result: str | None
    outputs: bytes
    timed_out: bool = False
    notes: tuple[str, ...] = ()


@runtime_checkable
class ServerlessPlatform(Protocol):
    """Runs a runplz dispatch in a container on a hosted platform.

    Contract:
    - ``run(job)`` builds (or reuses) an image from ``job.image`` with the kept
      repo files at ``/runplz/repo`` and the bundle at ``/runplz/bundle``,
      runs the runplz runtime on ``job.payload`` there with ``job.env`` set,
      ``RUNPLZ_OUT=/out`` and the repo as the working folder, and returns a
      `ServerlessOutcome`. Repo files outside ``job.repo_keep`` never reach it.
    - The function raising or exiting non-zero is NOT an error here: it is in
      the outcome (exit code and result record). Outputs come back on success
      and on failure.
    - Past ``job.deadline`` the job's processes get SIGTERM (SIGKILL
      ``job.grace`` seconds later), and the outcome says
      ``timed_out`` with exit code 124 and whatever outputs it wrote.
    - The job's stdout and stderr stream to this terminal while it runs.
    - The platform itself failing raises: `MissingExtra` (its client package is
      not installed), `ServiceAuthError` (credentials refused),
      `ServiceUnreachable` (it cannot be reached), `RunTimeout` (the platform
      killed the container at ``job.resources.timeout``), `ServiceError` (any
      other refusal); each message is one line.
    """

    def run(self, job: ServerlessJob) -> ServerlessOutcome: ...

    def map(
        self, job: ServerlessJob, payloads: Sequence[str], concurrency: int, sink: ItemSink, cancel: Cancel
    ) -> None:
        """Run ``job`` once per payload (``job.payload`` is not used), all in one
        app of the platform, with the platform's own fan-out.

        - Payloads are handed over in order, at most ``concurrency`` of them
          unfinished at a time; ``sink.started(i)`` when payload ``i`` is handed
          over, then exactly one of ``sink.finished(i, ServerlessOutcome)``
          (the job raising or exiting non-zero included, as in ``run``) or
          ``sink.failed(i, error)``: `RunTimeout` (the platform killed the
          container), `ServiceError` (the platform lost the input),
          `ItemCancelled` (stopped by ``cancel``). Reports may come from
          another thread.
        - Once ``cancel`` is set no more payloads are handed over (those are
          never reported), the running ones are stopped, and ``map`` returns
          promptly, every started payload reported.
        - The platform itself failing raises as in ``run``; payloads already
          started are first reported failed with that error.
        """
        ...
