"""`Catalog` and `Instances` over the real `brev` CLI (shared/spec/brev-cli.md).

Every call is ``brev VERB ...`` through a `CommandRunner` with
``BREV_NO_ANALYTICS=1``; retries and waits sleep on a `Clock`. Before its first
call an adapter checks once that ``brev search --help`` works (older CLIs have
neither `brev search` nor `brev ls --json`).

Safe to use from several threads (a map's inputs, a box each): the short calls
(search, ls, start, stop, delete, refresh) run one at a time, so two `brev`
processes of one driver never race on the CLI's own files (its ssh config, its
login token, refreshed when it expires); ``create``, which waits for its box,
runs alongside them (a box per input is made in parallel). Retries and waits
sleep outside that turn.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Sequence

from ..domain.brev_instances import (
    INSTALL_HINT,
    UPGRADE_HINT,
    BadListing,
    BrevCommandError,
    BrevNotInstalled,
    BrevTooOld,
    CreateRequest,
    Instance,
    check_instance_name,
    create_request,
    find,
    instances_from_listing,
    is_transient,
    wait_until_usable,
    with_retries,
    words_of,
)
from ..domain.errors import CommandNotFound, CommandTimeout
from ..domain.offers import BadOffer, Offer, offers_from_rows
from ..ports.catalog import SearchQuery
from ..ports.clock import Clock
from ..ports.command_runner import CommandResult, CommandRunner

ENV = {"BREV_NO_ANALYTICS": "1"}
CALL_TIMEOUT = 600.0  # search, ls, start, stop, delete, refresh
CREATE_TIMEOUT = 3 * 3600.0  # brev create waits for the box itself


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def search_argv(query: SearchQuery) -> list[str]:
    argv = ["search", "gpu" if query.gpu else "cpu", "--json"]
    if query.gpu_name is not None:
        argv += ["--gpu-name", query.gpu_name]
    for flag, value in (
        ("--min-vram", query.min_vram_gb),
        ("--min-vcpu", query.min_vcpus),
        ("--min-ram", query.min_ram_gb),
        ("--min-disk", query.min_disk_gb),
    ):
        if value is not None and value > 0:
            argv += [flag, _number(value)]
    if query.stoppable:
        argv.append("--stoppable")
    return argv


def create_argv(request: CreateRequest) -> list[str]:
    argv = ["create", request.name, "--type", ",".join(request.types)]
    if request.min_disk_gb is not None:
        argv += ["--min-disk", str(request.min_disk_gb)]
    if request.mode is not None:
        argv += ["--mode", request.mode]
    if request.container_image is not None:
        argv += ["--container-image", request.container_image]
    return argv


def parse_json(stdout: str, what: str) -> Any:
    """The JSON value in ``stdout``, read from its first '[' or '{' (banners may precede it)."""
    starts = [i for i in (stdout.find("["), stdout.find("{")) if i >= 0]
    if not starts:
        raise BadListing(f"{what} printed no JSON: {words_of(stdout, '', 200)}")
    try:
        value, _ = json.JSONDecoder().raw_decode(stdout, min(starts))
    except ValueError as error:
        raise BadListing(f"{what} printed JSON runplz cannot read ({error})") from None
    return value


class BrevCli:
    """Both Brev ports over one ``brev`` executable (looked up on PATH)."""

    def __init__(self, runner: CommandRunner, clock: Clock, executable: str = "brev") -> None:
        self._runner = runner
        self._clock = clock
        self._executable = executable
        self._checked = False
        self._checking = threading.Lock()
        self._turn = threading.Lock()  # the short calls, one at a time

    # ------------------------------------------------------------ Catalog

    def search(self, query: SearchQuery) -> tuple[Offer, ...]:
        argv = search_argv(query)
        rows = parse_json(self._call("search", argv, retry=True).stdout, "brev search --json")
        if not isinstance(rows, list):
            raise BadOffer(f"brev search --json must give a JSON array; got {type(rows).__name__}")
        return offers_from_rows(rows)

    # ------------------------------------------------------------ Instances

    def list(self) -> tuple[Instance, ...]:
        listing = parse_json(self._call("ls", ["ls", "--json"], retry=True).stdout, "brev ls --json")
        return instances_from_listing(listing)

    def create(
        self,
        name: str,
        types: Sequence[str],
        *,
        mode: str | None = None,
        container_image: str | None = None,
        min_disk: float | None = None,
    ) -> None:
        argv = create_argv(create_request(name, types, mode, container_image, min_disk))
        self._check_cli()
        lost = False

        def attempt() -> None:
            nonlocal lost
            if lost and find(self.list(), name) is not None:
                return  # the failed reply hid a create that went through
            try:
                self._call("create", argv, timeout=CREATE_TIMEOUT)
            except BrevCommandError as error:
                lost = is_transient(error.words)
                raise

        with_retries(attempt, self._clock.sleep, "create")

    def start(self, name: str) -> None:
        self._lifecycle("start", name)

    def stop(self, name: str) -> None:
        self._lifecycle("stop", name)

    def delete(self, name: str) -> None:
        self._lifecycle("delete", name)

    def refresh(self) -> None:
        self._call("refresh", ["refresh"], retry=True)

    def wait_usable(self, name: str, within_seconds: float) -> Instance:
        check_instance_name(name)
        self._check_cli()
        return wait_until_usable(name, within_seconds, self.list, self._clock.sleep, self._clock.monotonic)

    # ------------------------------------------------------------ the CLI

    def _lifecycle(self, verb: str, name: str) -> None:
        check_instance_name(name)
        self._call(verb, [verb, name], retry=True)

    def _check_cli(self) -> None:
        if self._checked:
            return
        with self._checking:
            if self._checked:
                return
            result = self._run(["search", "--help"], CALL_TIMEOUT)
            if result.exit_code != 0:
                raise BrevTooOld(UPGRADE_HINT)
            self._checked = True

    def _call(self, verb: str, argv: list[str], retry: bool = False, timeout: float = CALL_TIMEOUT) -> CommandResult:
        self._check_cli()

        def attempt() -> CommandResult:
            result = self._run(argv, timeout)
            if result.exit_code != 0:
                raise BrevCommandError(verb, words_of(result.stdout, result.stderr))
            return result

        return with_retries(attempt, self._clock.sleep, verb) if retry else attempt()

    def _run(self, argv: list[str], timeout: float) -> CommandResult:
        if argv[0] == "create":
            return self._spawn(argv, timeout)
        with self._turn:
            return self._spawn(argv, timeout)

    def _spawn(self, argv: list[str], timeout: float) -> CommandResult:
        try:
            return self._runner.run([self._executable, *argv], env=ENV, timeout=timeout)
        except CommandNotFound:
            raise BrevNotInstalled(f"{self._executable} is not installed (not on PATH): {INSTALL_HINT}") from None
        except CommandTimeout:
            raise BrevCommandError(argv[0], f"brev gave no answer within {timeout:g}s; stopped it") from None
