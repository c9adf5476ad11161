"""Brev boxes as `brev ls --json` lists them, and the rules for talking to the CLI.

Pure: the listing parser, the instance-name rule, which error words are worth a
retry, and the retry / wait loops, which take their sleeping and timing as
callables (a `Clock`'s methods) so the CLI adapter and the fake share them.
See shared/spec/brev-cli.md for the facts these encode.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Iterable, Mapping, TypeVar

import attrs

from .errors import ConfigError, ProtocolError, RunplzError, UsageError
from .validate import show

RUNNING, STARTING, STOPPING, DEPLOYING = "RUNNING", "STARTING", "STOPPING", "DEPLOYING"
STOPPED, DELETING, FAILURE, UNHEALTHY = "STOPPED", "DELETING", "FAILURE", "UNHEALTHY"
PENDING, BUILDING, COMPLETED, CREATE_FAILED = "PENDING", "BUILDING", "COMPLETED", "CREATE_FAILED"
READY, NOT_READY = "READY", "NOT READY"

VERBS = ("search", "ls", "create", "start", "stop", "delete", "refresh")
RETRY_DELAYS = (1.0, 2.0, 4.0)  # 4 tries in all
POLL_FIRST, POLL_MAX = 2.0, 15.0  # wait_usable: 2, 4, 8, 15, 15, ... seconds
MISSING_POLLS = 3  # polls in a row that may not list a box before it counts as never made

INSTALL_HINT = "install the Brev CLI (brew install brevdev/homebrew-brev/brev, or see Brev's docs)"
UPGRADE_HINT = (
    "this brev CLI is too old for runplz (`brev search --help` failed; runplz needs v0.6.317 or "
    "newer for `brev search` and `brev ls --json`): upgrade brev (brew upgrade brev, or see Brev's docs)"
)


class BrevError(RunplzError):
    """Brev could not do what was asked; the message carries the CLI's own words."""


class BrevCommandError(BrevError):
    """A `brev` call failed: `verb`, the CLI's `words`, and whether they were transient
    (then retries ran out)."""

    def __init__(self, verb: str, words: str, transient: bool = False) -> None:
        tail = " (still failing after retries)" if transient else ""
        super().__init__(f"brev {verb} failed{tail}: {words}")
        self.verb, self.words, self.transient = verb, words, transient


class BrevNotInstalled(UsageError):
    """No `brev` executable on PATH."""


class BrevTooOld(UsageError):
    """The installed brev CLI predates `brev search` / `brev ls --json`."""


class BadInstanceName(ConfigError):
    """A Brev instance name the CLI would refuse."""


class BadListing(ProtocolError):
    """`brev ls --json` printed something runplz cannot read."""


class InstanceFailed(BrevError):
    """The box ended FAILURE or CREATE_FAILED."""


class InstanceMissing(BrevError):
    """`brev ls` does not list the box (create made nothing, or it was deleted)."""


class InstanceNotReady(BrevError):
    """The box did not become usable within the wait allowed."""


@attrs.frozen
class Instance:
    """One Brev box as `brev ls --json` lists it."""

    name: str
    status: str
    build_status: str = ""
    shell_status: str = ""
    instance_type: str = ""

    @property
    def usable(self) -> bool:
        """RUNNING with its shell READY: ssh can reach it."""
        return self.status == RUNNING and self.shell_status == READY

    @property
    def failed(self) -> bool:
        """FAILURE or CREATE_FAILED: it will not become usable."""
        return self.status == FAILURE or self.build_status == CREATE_FAILED

    def describe(self) -> str:
        parts = [self.status or "no status"]
        if self.build_status:
            parts.append(f"build {self.build_status}")
        if self.shell_status:
            parts.append(f"shell {self.shell_status}")
        return ", ".join(parts)


_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*")
NAME_MAX = 63


def check_instance_name(name: object) -> str:
    """``name`` if the CLI accepts it (``^[a-zA-Z0-9][a-zA-Z0-9._-]*$``, at most 63
    characters); else `BadInstanceName`."""
    if isinstance(name, str) and len(name) <= NAME_MAX and _NAME.fullmatch(name):
        return name
    raise BadInstanceName(
        "a Brev instance name must start with a letter or digit, hold only letters, digits, "
        f"'.', '_' and '-', and have at most {NAME_MAX} characters; got {show(name)}"
    )


_TYPE = re.compile(r"[A-Za-z0-9][^,\s]*")
_IMAGE = re.compile(r"[A-Za-z0-9][^\s]*")
MODES = ("vm", "container")


@attrs.frozen
class CreateRequest:
    """A checked `brev create`: name, ordered fallback types, mode, image, disk (GB)."""

    name: str
    types: tuple[str, ...]
    mode: str | None = None
    container_image: str | None = None
    min_disk_gb: int | None = None


def create_request(
    name: str, types: Iterable[str], mode: str | None, container_image: str | None, min_disk: float | None
) -> CreateRequest:
    """Check a create's arguments (see `Instances.create`); a bad one is `ConfigError`."""
    check_instance_name(name)
    if isinstance(types, str):
        raise ConfigError(f"brev create types must be a list of instance types, not one string; got {show(types)}")
    kinds = tuple(types)
    if not kinds or not all(isinstance(t, str) and _TYPE.fullmatch(t) for t in kinds):
        raise ConfigError(f"brev create needs instance types, each a token without commas; got {show(kinds)}")
    if mode not in (None, *MODES):
        raise ConfigError(f"brev create mode must be 'vm', 'container' or None; got {show(mode)}")
    if container_image is not None:
        if mode != "container":
            raise ConfigError("brev create: a container image needs mode 'container'")
        if not isinstance(container_image, str) or not _IMAGE.fullmatch(container_image):
            raise ConfigError(f"brev create: bad container image reference {show(container_image)}")
    disk = None
    if min_disk is not None:
        if isinstance(min_disk, bool) or not isinstance(min_disk, (int, float)) or not 0 < min_disk < math.inf:
            raise ConfigError(f"brev create min_disk must be a number of GB above 0; got {show(min_disk)}")
        disk = math.ceil(min_disk)
    return CreateRequest(name, kinds, mode, container_image, disk)


def _field(row: Mapping[str, Any], key: str, required: bool = False) -> str:
    value = row.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise BadListing(f"brev ls --json: a workspace's {key} must be a string; got {show(value)}")
    return value


def instance_from_row(row: Any) -> Instance:
    if not isinstance(row, Mapping):
        raise BadListing(f"brev ls --json: a workspace must be a JSON object; got {show(row)}")
    return Instance(
        name=_field(row, "name", required=True),
        status=_field(row, "status"),
        build_status=_field(row, "build_status"),
        shell_status=_field(row, "shell_status"),
        instance_type=_field(row, "instance_type"),
    )


def instances_from_listing(listing: Any) -> tuple[Instance, ...]:
    """Read `brev ls --json`'s ``{"workspaces": [...]}``; ``null`` is no boxes."""
    if not isinstance(listing, Mapping) or "workspaces" not in listing:
        raise BadListing(f'brev ls --json must give {{"workspaces": [...]}}; got {show(listing)}')
    rows = listing["workspaces"]
    if rows is None:
        return ()
    if not isinstance(rows, list):
        raise BadListing(f"brev ls --json: workspaces must be a list or null; got {show(rows)}")
    return tuple(instance_from_row(row) for row in rows)


def find(instances: Iterable[Instance], name: str) -> Instance | None:
    return next((box for box in instances if box.name == name), None)


_FINAL = re.compile(
    r"unauthori[sz]ed|\b401\b|\b403\b|quota exceeded|provider not enabled|provider is not configured"
    r"|cloudcredid or workspacegroupid must be specified",
    re.IGNORECASE,
)
_TRANSIENT = re.compile(
    r"context deadline exceeded|rpc error|connection reset|connection refused|i/o timeout"
    r"|temporary failure in name resolution|service unavailable|bad gateway|gateway timeout"
    r"|unexpected eof|\b50[0234]\b",
    re.IGNORECASE,
)


def is_transient(words: str) -> bool:
    """Whether the CLI's error words are worth a retry (final words never are)."""
    return not _FINAL.search(words) and bool(_TRANSIENT.search(words))


def words_of(stdout: str, stderr: str, limit: int = 2000) -> str:
    """The CLI's own error words: stderr (else stdout), trimmed to the last ``limit`` characters."""
    text = (stderr.strip() or stdout.strip()) or "no message"
    return text if len(text) <= limit else "..." + text[-limit:]


T = TypeVar("T")


def with_retries(attempt: Callable[[], T], sleep: Callable[[float], None], verb: str) -> T:
    """Run ``attempt``; a transient `BrevCommandError` is retried after 1, 2 and 4
    seconds; the last one is raised marked transient. Other errors go at once."""
    for delay in (*RETRY_DELAYS, None):
        try:
            return attempt()
        except BrevCommandError as error:
            if not is_transient(error.words):
                raise
            if delay is None:
                raise BrevCommandError(verb, error.words, transient=True) from None
            sleep(delay)
    raise AssertionError("unreachable")


def wait_until_usable(
    name: str,
    within_seconds: float,
    listing: Callable[[], tuple[Instance, ...]],
    sleep: Callable[[float], None],
    monotonic: Callable[[], float],
) -> Instance:
    """Poll ``listing`` until ``name`` is usable (see `Instances.wait_usable`)."""
    deadline = monotonic() + within_seconds
    delay, missing, last = POLL_FIRST, 0, None
    while True:
        try:
            last = find(listing(), name)
        except BrevCommandError as error:
            if not error.transient:
                raise
        else:
            if last is not None and last.usable:
                return last
            if last is not None and last.failed:
                raise InstanceFailed(f"Brev instance {name} failed to come up ({last.describe()})")
            missing = missing + 1 if last is None else 0
            if missing >= MISSING_POLLS:
                raise InstanceMissing(f"brev ls does not list instance {name} (was it created?)")
        left = deadline - monotonic()
        if left <= 0:
            state = last.describe() if last is not None else "not listed"
            raise InstanceNotReady(
                f"Brev instance {name} was not usable within {within_seconds:g}s (last seen: {state})"
            )
        sleep(min(delay, left))
        delay = min(delay * 2, POLL_MAX)
