"""Paths on a remote box, relative to the login user's home."""

from __future__ import annotations

ROOT = ".runplz"


def bundle_dir(digest: str) -> str:
    return f"{ROOT}/bundles/{digest[:24]}"


def run_dir(run_id: str) -> str:
    return f"{ROOT}/runs/{run_id}"


def repo_tree(repo_key: str) -> str:
    """The uploaded repo: each upload sends only what changed since the last;
    each run then gets its own copy of it."""
    return f"{ROOT}/repos/{repo_key[:24]}"


VENVS = f"{ROOT}/venvs"


# Inside a run folder.
REPO = "repo"
OUT = "out"
CTL = "ctl"
LOG = "ctl/job.log"

# Lines the agent prints for the driver to find among other output.
RESULT_MARK = "@@runplz-result "
ENV_MARK = "@@runplz-env "
