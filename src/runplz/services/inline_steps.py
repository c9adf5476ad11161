"""Inline mode's box steps: the image's apt and shell steps applied on the box
itself, in order, once per box (a marker under ~/.runplz records them)."""

from __future__ import annotations

import collections
from typing import Callable, Sequence

from ..domain.errors import BuildError
from ..domain.inline_plan import APPLIED, BoxStep, InlinePlan, apt_argvs
from ..ports.clock import Clock
from ..ports.console import Console
from ..ports.transport import Transport

TAIL_LINES = 20
# Runs argv with its stderr joined to its stdout, so the output streams in order.
_JOINED = 'exec "$@" 2>&1'
# A run_commands line: in the run's repo copy, through sh -c, like a Dockerfile RUN.
_IN_REPO = 'cd -- "$1" && exec sh -c "$2" 2>&1'
_MARK = 'mkdir -p -- "$1" && cat > "$2"'


class _Lines:
    """Whole lines out of output chunks, handed to ``take``."""

    def __init__(self, take: Callable[[str], None]) -> None:
        self._take = take
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            self._take(line.decode("utf-8", "replace").rstrip("\r"))

    def flush(self) -> None:
        if self._partial:
            self.feed(b"\n")


class InlineSteps:
    def __init__(self, transport: Transport, console: Console, clock: Clock) -> None:
        self._transport = transport
        self._console = console
        self._clock = clock

    def ensure(self, plan: InlinePlan, root: bool, repo: str, applied: bool) -> None:
        """Apply ``plan``'s box steps (``repo``: the run's repo copy, where shell
        steps run; ``root``: the login is root, else apt goes through ``sudo -n``)
        unless ``applied`` (the box's marker says so). A failing step is a
        `BuildError` naming it, with the end of its output."""
        where = self._transport.name
        if not plan.steps:
            return
        if applied:
            self._console.info(f"{where} already has the image's apt/run steps ({plan.key[:12]}); skipping them")
            return
        started = self._clock.monotonic()
        updated = False
        for step in plan.steps:
            self._console.info(f"applying {step.label} on {where}")
            if step.command is not None:
                self._run(step, ("sh", "-c", _IN_REPO, "sh", repo, step.command))
                continue
            update, install = apt_argvs(step.packages, root)
            if not updated:
                self._run(step, ("sh", "-c", _JOINED, "sh", *update))
                updated = True
            self._run(step, ("sh", "-c", _JOINED, "sh", *install))
        self._mark(plan)
        self._console.info(
            f"applied {len(plan.steps)} image step(s) on {where} in {self._clock.monotonic() - started:.1f}s"
        )

    def _run(self, step: BoxStep, argv: Sequence[str]) -> None:
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

        def take(line: str) -> None:
            tail.append(line)
            self._console.output(line)

        lines = _Lines(take)
        result = self._transport.run(list(argv), on_output=lines.feed)
        lines.flush()
        if result.exit_code != 0:
            shown = [line for line in tail if line.strip()] + result.stderr.strip().splitlines()[-TAIL_LINES:]
            raise BuildError(
                f"{step.label} failed on {self._transport.name} (exit {result.exit_code}):\n"
                + ("\n".join(shown[-TAIL_LINES:]) or "(no output)")
            )

    def _mark(self, plan: InlinePlan) -> None:
        record = "\n".join(step.label for step in plan.steps) + "\n"
        result = self._transport.run(["sh", "-c", _MARK, "sh", APPLIED, plan.marker], input=record.encode())
        if result.exit_code != 0:
            self._console.warn(
                f"could not record the applied image steps on {self._transport.name} "
                f"({result.stderr.strip()[-200:]}); the next run applies them again"
            )
