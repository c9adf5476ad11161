"""What a run's backend says about a run whose driver is gone. Pure.

A run record written by a driver that died (SIGKILL, a lost laptop) stops at
its last event; the truth lives on the backend. `runplz ps` and `runplz
status` ask, only reading:

- a local Docker run: does a container labelled ``runplz.run=<run>`` exist,
  and does it run;
- an ssh or Brev run: the run folder ``~/.runplz/runs/<run>/`` on the box
  (`FOLDER_SCRIPT`, one ``sh`` call per box for all its runs): does its
  supervisor live, did it write an exit code, are outputs left in ``out/``;
- a Brev run: is the box still listed by `brev ls`, and in which state;
- a Slurm run: its job in squeue, else sacct, and its run folder on the
  cluster (domain/slurm_liveness.py).

Only runs whose record is not ended and whose driver is gone are asked about
(`probe_for`); the answer is a `BackendView`, one short phrase.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import attrs

from .run_summary import RunSummary

RUN_LABEL = "runplz.run"  # the label a local run's container carries: its run id
FOLDER_MARK = "@@runplz-ps "

# Reads each run folder named in "$@" (relative to the login folder) and prints
# one line per run: MARK RUN STATE OUTPUTS_LEFT [TIMED_OUT EXIT_CODE]. It
# changes nothing: test, find, head, tr, ps and /proc only. It reaches the box
# on stdin (`folder_argv`), so the login shell only parses `sh -s -- RUN...`
# (csh and tcsh too). A supervisor pid whose /proc cmdline reads empty (a
# kernel thread now has the pid, or /proc hides it: hidepid) is "unknown".
FOLDER_SCRIPT = r"""
for run in "$@"; do
  d=".runplz/runs/$run"; c="$d/ctl"
  if [ ! -d "$d" ]; then echo "@@runplz-ps $run missing no"; continue; fi
  left=no
  if [ -n "$(find "$d/out" -type f 2>/dev/null | head -n 1)" ]; then left=yes; fi
  if [ -f "$c/exit_code" ]; then
    t=no; if [ -f "$c/timed_out" ]; then t=yes; fi
    echo "@@runplz-ps $run ended $left $t $(head -c 16 "$c/exit_code" | tr -cd '0-9-')"
    continue
  fi
  pid=$(head -c 16 "$c/supervisor.pid" 2>/dev/null | tr -cd '0-9')
  if [ -z "$pid" ]; then echo "@@runplz-ps $run pending $left"; continue; fi
  if [ -d /proc/self ]; then
    if [ -d "/proc/$pid" ]; then
      cmd=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null)
      case "$cmd" in "") s=unknown ;; *"$run"*) s=running ;; *) s=orphaned ;; esac
    else s=orphaned; fi
  elif ps -p "$pid" >/dev/null 2>&1; then s=running
  else s=orphaned; fi
  echo "@@runplz-ps $run $s $left"
done
"""


def folder_argv(runs: Iterable[str]) -> list[str]:
    """The read-only command that reports on the run folders of ``runs``;
    it reads `FOLDER_SCRIPT` on its stdin."""
    return ["sh", "-s", "--", *runs]


@attrs.frozen
class Probe:
    """Where a run is asked about: ``kind`` "docker" (this machine's engine),
    "ssh" (``target``: the ssh target text), "brev" (``target``: the box) or
    "slurm" (``target``: the login node's ssh target, or "local": this machine)."""

    kind: str
    target: str = ""


def probe_for(summary: RunSummary) -> Probe | None:
    """Which backend can tell how ``summary``'s run is doing, or None: the
    record says it ended, its driver lives (the driver knows best), or the
    backend keeps nothing runplz can read (native, Modal)."""
    if summary.state not in ("died", "detached") or summary.driver_alive:
        return None
    if summary.backend == "local" and summary.target == "docker":
        return Probe("docker")
    if summary.backend in ("ssh", "brev", "slurm") and summary.target:
        return Probe(summary.backend, summary.target)
    return None


@attrs.frozen
class BackendView:
    """What the backend said: ``text`` (one short phrase); ``live`` whether
    the job still runs there (None: cannot tell); ``hint`` what to do next."""

    text: str
    live: bool | None = None
    hint: str = ""

    def line(self) -> str:
        return f"{self.text}; {self.hint}" if self.hint else self.text


NOT_REACHED = BackendView("not reached (see the warning)")


@attrs.frozen
class FolderState:
    """A run folder on a box, as `FOLDER_SCRIPT` found it. ``state``:
    "missing" (no folder), "pending" (no job was started: the driver died
    before), "running", "ended" (an exit code is written), "orphaned" (the
    supervisor is gone and wrote no exit code) or "unknown" (its pid is
    taken, but the box would not say by what)."""

    state: str
    outputs_left: bool = False
    timed_out: bool = False
    exit_code: int | None = None


_STATES = ("missing", "pending", "running", "ended", "orphaned", "unknown")


def parse_folder_report(stdout: str) -> dict[str, FolderState]:
    """The `FolderState` of each run `FOLDER_SCRIPT` reported on; other lines
    (a login banner, say) are ignored, and so is a line it did not write."""
    found: dict[str, FolderState] = {}
    for line in stdout.splitlines():
        if not line.startswith(FOLDER_MARK):
            continue
        words = line[len(FOLDER_MARK):].split()
        if len(words) < 3 or words[1] not in _STATES:
            continue
        run, state, left = words[0], words[1], words[2] == "yes"
        if state == "ended":
            text = words[4] if len(words) > 4 else ""
            code = int(text) if text.lstrip("-").isdigit() else None
            found[run] = FolderState(state, left, len(words) > 3 and words[3] == "yes", code)
        else:
            found[run] = FolderState(state, left)
    return found


def _down(run: str) -> str:
    return f"run `runplz down {run}`"


def folder_view(run: str, folder: FolderState | None) -> BackendView:
    """The view of a run from its folder on the box (None: the box did not say)."""
    if folder is None:
        return BackendView("the box did not report on its run folder")
    if folder.state == "missing":
        return BackendView("no run folder on the box", live=False)
    if folder.state == "running":
        return BackendView("job running on the box", live=True)
    if folder.state == "unknown":
        return BackendView("cannot tell whether the job runs (its supervisor's pid shows no command line)")
    if folder.state == "pending":
        return BackendView("no job was started on the box", live=False)
    left = ", outputs not collected" if folder.outputs_left else ""
    if folder.state == "orphaned":
        return BackendView(f"job's supervisor died on the box, no exit code{left}", False, _down(run))
    how = "timed out" if folder.timed_out else "ended"
    code = "" if folder.exit_code is None else f" (exit {folder.exit_code})"
    return BackendView(f"job {how}{code}, driver gone{left}", False, _down(run))


def container_view(run: str, containers: Iterable[tuple[str, Mapping[str, str], str, int | None]]) -> BackendView:
    """The view of a local Docker run from the engine's containers, each
    (name, labels, state, exit code): the one labelled with ``run``, if any."""
    for name, labels, state, code in containers:
        if labels.get(RUN_LABEL) != run:
            continue
        if state == "running":
            return BackendView(f"container {name} running", live=True, hint=f"stop it: `runplz down {run}`")
        shown = f" (exit {code})" if code is not None and state == "exited" else ""
        return BackendView(f"container {name} {state}{shown}", live=False, hint=_down(run))
    return BackendView("container gone", live=False)


def box_view(name: str, status: str | None, usable: bool, described: str = "") -> BackendView | None:
    """The view of a Brev run from its box as `brev ls` lists it (``status``
    None: not listed); None when the box is usable and its run folder can tell."""
    if status is None:
        return BackendView(f"box {name} deleted", live=False)
    if usable:
        return None
    if status != "RUNNING" or not described:
        return BackendView(f"box {status or 'in no state'}", live=False if status == "STOPPED" else None)
    return BackendView(f"box {described}")  # RUNNING, but its shell is not ready
