"""A `ServerlessPlatform` that runs each job on this machine, for tests with no Modal.

The job runs through the same container-side entry as on Modal
(``runtime/runplz_modal_entry.py``), in a private folder holding only the repo
files the job may see, with this Python. It records every job, and
`ModalFaults` makes it fail the way Modal can, with the same errors as the
real adapter.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import threading
from typing import Any, Sequence

import attrs

from ..domain.errors import ItemCancelled, RunTimeout, ServiceAuthError, ServiceError, ServiceUnreachable
from ..domain.limits import modal_timeout_message
from ..ports.backend import Cancel, ItemSink
from ..ports.serverless import ServerlessJob, ServerlessOutcome
from ..runtime import runplz_modal_entry


@attrs.frozen
class ModalFaults:
    """How the fake misbehaves: every run fails with this, before the job starts."""

    unreachable: bool = False
    unauthenticated: bool = False
    refuse: str | None = None  # any other refusal, in the service's words
    kill_at_timeout: bool = False  # the platform kills the container (no outputs come back)


class FakeModal:
    """Runs jobs locally; ``jobs`` lists every job asked of it, in order."""

    def __init__(self, faults: ModalFaults | None = None, python: str | None = None) -> None:
        self.faults = faults or ModalFaults()
        self.python = python or sys.executable
        self.jobs: list[ServerlessJob] = []

    def _refuse(self, job: ServerlessJob) -> None:
        where = "Modal (fake)"
        if self.faults.unreachable:
            raise ServiceUnreachable(f"{where} could not be reached: connection refused")
        if self.faults.unauthenticated:
            raise ServiceAuthError(f"{where} refused the credentials: token missing (run `modal token new`)")
        if self.faults.refuse:
            raise ServiceError(f"{where} failed the run of {job.function}: {self.faults.refuse}")

    def run(self, job: ServerlessJob) -> ServerlessOutcome:
        self.jobs.append(job)
        self._refuse(job)
        return self._execute(job, None)

    def map(
        self, job: ServerlessJob, payloads: Sequence[str], concurrency: int, sink: ItemSink, cancel: Cancel
    ) -> None:
        """Each payload as its own job, on up to ``concurrency`` threads, in order."""
        self._refuse(job)
        todo: "queue.Queue[int]" = queue.Queue()
        for index in range(len(payloads)):
            todo.put(index)

        def work() -> None:
            while not cancel.is_set():
                try:
                    index = todo.get_nowait()
                except queue.Empty:
                    return
                one = attrs.evolve(job, payload=payloads[index])
                self.jobs.append(one)
                sink.started(index)
                try:
                    outcome: Any = self._execute(one, cancel)
                except Exception as exc:
                    sink.failed(index, exc)
                    continue
                if cancel.is_set() and outcome.exit_code == runplz_modal_entry.EXIT_CANCELLED:
                    sink.failed(index, ItemCancelled(f"input {index} was cancelled"))
                else:
                    sink.finished(index, outcome)

        workers = [threading.Thread(target=work, daemon=True) for _ in range(min(concurrency, len(payloads)))]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def _execute(self, job: ServerlessJob, cancel: Cancel | None) -> ServerlessOutcome:
        folder = tempfile.mkdtemp(prefix="runplz-fake-modal-")
        try:
            repo = os.path.join(folder, "repo")
            _copy_kept(job.repo_root, job.repo_keep, repo)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": folder, "LANG": "C.UTF-8"}
            env.update(job.env)  # as in a Modal container: nothing of this machine's environment
            deadline = job.deadline if not self.faults.kill_at_timeout else job.resources.timeout
            reply = runplz_modal_entry.execute(
                job.payload, deadline, repo, job.bundle_dir, os.path.join(folder, "out"), self.python, env,
                grace=job.grace, cancel=cancel,
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if reply["timed_out"] and self.faults.kill_at_timeout:
            raise RunTimeout(modal_timeout_message(job.function, job.resources.timeout))
        return ServerlessOutcome(
            reply["exit_code"], reply["result"], reply["outputs"], reply["timed_out"], tuple(reply["notes"])
        )


def _copy_kept(root: str, keep: frozenset[str], dest: str) -> None:
    """Copy the kept files and folders of ``root`` into ``dest`` as Modal's
    upload lays them out: a link to a file arrives as that file's content, a
    link to a folder does not arrive."""
    os.makedirs(dest)
    for path in sorted(keep):
        source = os.path.join(root, *path.split("/"))
        target = os.path.join(dest, *path.split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.islink(source) and not os.path.isfile(source):
            continue
        if os.path.isdir(source):
            os.makedirs(target, exist_ok=True)
        elif os.path.isfile(source):
            shutil.copy2(source, target)
