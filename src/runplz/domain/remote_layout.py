"""Paths on a remote box, relative to the login user's home."""

from __future__ import annotations

ROOT = ".runplz"


def bundle_dir(digest: str) -> str:
    return f"{ROOT}/bundles/{digest[:24]}"


def run_dir(run_id: str) -> str:
    return f"{ROOT}/runs/{run_id}"


def repo_tree(repo_key: str) -> str:
    """The upload basis of a repo: a mirror of the last run's uploaded code, that the
    next upload compares against (``agent start`` refreshes it; it is only a cache)."""
    return f"{ROOT}/repos/{repo_key[:24]}"


VENVS = f"{ROOT}/venvs"


# Inside a run folder.
REPO = "repo"
OUT = "out"
CTL = "ctl"

# Exit codes of the agent and of the runs it records.
EXIT_TIMED_OUT = 124
EXIT_NOSPACE = 28

# Lines the agent prints for the driver to find among other output.
RESULT_MARK = "@@runplz-result "
ENV_MARK = "@@runplz-env "
PENDING_MARK = "@@runplz-pending"  # follow: still running after MAX_SECONDS; follow again
NOSPACE_MARK = "@@runplz-nospace "  # start: the disk is full; followed by the free KiB
