"""An in-memory Brev: `Catalog` and `Instances` with the CLI's behaviour, no CLI.

Give it catalog rows shaped like `brev search --json` rows (an optional
``manufacturer`` key, default NVIDIA, stands for the API's field the CLI hides)
and `BrevFaults` chosen up front::

    brev = FakeBrev(rows, faults=BrevFaults(boot_polls=2, no_capacity=("g5.xlarge",)))

Boxes live in ``brev.boxes`` (pass ``boxes=`` to share one account's boxes
between several fakes, say one per driver, each with its own faults); every simulated CLI call is appended to
``brev.calls`` as ``(verb, detail)``; ``brev.aliases`` holds the ssh aliases the
last ``refresh()`` wrote. Retries and waits sleep on ``brev.clock``. Like the
CLI, it may be called from several threads at once: each simulated call is
atomic (retries and waits sleep between calls, outside it).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterable, Mapping, Sequence

import attrs

from ..domain.brev_instances import (
    COMPLETED,
    CREATE_FAILED,
    DEPLOYING,
    FAILURE,
    NOT_READY,
    PENDING,
    READY,
    RUNNING,
    STARTING,
    STOPPED,
    UPGRADE_HINT,
    BrevCommandError,
    BrevTooOld,
    Instance,
    check_instance_name,
    create_request,
    find,
    is_transient,
    wait_until_usable,
    with_retries,
)
from ..domain.offers import Offer, offer_from_row, offers_from_rows
from ..ports.catalog import SearchQuery
from ..ports.clock import Clock
from .fake_clock import FakeClock

UNAUTHORIZED = "Error: unauthorized: your session has expired; run brev login"


def _counts(value: Mapping[str, int]) -> dict[str, int]:
    return {str(verb): int(count) for verb, count in dict(value).items()}


@attrs.frozen(kw_only=True)
class BrevFaults:
    """Failures to play, shared by `FakeBrev` and the test emulator of the CLI."""

    transient: Mapping[str, int] = attrs.field(factory=dict, converter=_counts)  # verb -> next N calls fail
    transient_words: str = "rpc error: code = Unavailable desc = connection refused"
    lost_create_replies: int = 0  # create makes the box, then reports a transient error
    create_fails: bool = False  # create exits 0; the box ends FAILURE / CREATE_FAILED
    create_does_nothing: bool = False  # create exits 0 and makes nothing
    no_capacity: tuple[str, ...] = attrs.field(default=(), converter=tuple)  # types never granted
    boot_polls: int = 0  # `ls` polls a new or started box stays DEPLOYING / STARTING
    unauthorized: bool = False  # every call: "unauthorized", exit 1
    old_cli: bool = False  # `brev search --help` fails: a CLI older than v0.6.317
    update_banner: bool = False  # the CLI prints an update notice before its JSON (emulator)

    def to_json(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["no_capacity"] = list(self.no_capacity)
        return data


@attrs.define
class FakeBox:
    name: str
    instance_type: str
    stoppable: bool
    status: str = DEPLOYING
    build_status: str = PENDING
    polls_left: int = 0
    fails: bool = False
    mode: str | None = None
    container_image: str | None = None
    min_disk_gb: int | None = None

    def instance(self) -> Instance:
        shell = READY if self.status == RUNNING and self.build_status == COMPLETED else NOT_READY
        return Instance(self.name, self.status, self.build_status, shell, self.instance_type)

    def settle(self) -> None:
        """One `ls` poll: count down a boot, then finish it."""
        if self.status not in (DEPLOYING, STARTING):
            return
        if self.polls_left > 0:
            self.polls_left -= 1
        elif self.fails:
            self.status, self.build_status = FAILURE, CREATE_FAILED
        else:
            self.status, self.build_status = RUNNING, COMPLETED


def _cli_filter(row: Mapping[str, Any], query: SearchQuery) -> bool:
    offer = offer_from_row(row)
    if (offer.gpu_count > 0) != query.gpu:
        return False
    if query.gpu and "NVIDIA" not in str(row.get("manufacturer", "NVIDIA")).upper():
        return False
    checks = (
        query.gpu_name is None or query.gpu_name.lower() in offer.gpu_name.lower(),
        not query.min_vram_gb or offer.vram_per_gpu_gb >= query.min_vram_gb,
        not query.min_vcpus or offer.vcpus >= query.min_vcpus,
        not query.min_ram_gb or offer.ram_gb >= query.min_ram_gb,
        not query.min_disk_gb or offer.disk_max_gb >= query.min_disk_gb,
        not query.stoppable or offer.stoppable,
    )
    return all(checks)


def _priced(row: Mapping[str, Any]) -> bool:
    price = row.get("price_per_hour")
    return not (type(price) in (int, float) and price == 0)


class FakeBrev:
    def __init__(
        self,
        catalog: Iterable[Mapping[str, Any]] = (),
        *,
        faults: BrevFaults = BrevFaults(),
        clock: Clock | None = None,
        boxes: dict[str, FakeBox] | None = None,
    ) -> None:
        self.catalog = [dict(row) for row in catalog]
        self.faults = faults
        self.clock = clock or FakeClock()
        self.boxes: dict[str, FakeBox] = {} if boxes is None else boxes
        self.calls: list[tuple[str, Any]] = []
        self.aliases: frozenset[str] = frozenset()
        self._transient = dict(faults.transient)
        self._lost_replies = faults.lost_create_replies
        self._checked = False
        self._lock = threading.RLock()  # one simulated CLI call at a time

    # ------------------------------------------------------------ Catalog

    def search(self, query: SearchQuery) -> tuple[Offer, ...]:
        def act() -> tuple[Offer, ...]:
            rows = [row for row in self.catalog if _priced(row) and _cli_filter(row, query)]
            rows.sort(key=lambda row: row["price_per_hour"])
            return offers_from_rows({k: v for k, v in row.items() if k != "manufacturer"} for row in rows)

        return self._retried("search", query, act)

    # ------------------------------------------------------------ Instances

    def list(self) -> tuple[Instance, ...]:
        def act() -> tuple[Instance, ...]:
            for box in self.boxes.values():
                box.settle()
            return tuple(box.instance() for box in self.boxes.values())

        return self._retried("ls", None, act)

    def create(
        self,
        name: str,
        types: Sequence[str],
        *,
        mode: str | None = None,
        container_image: str | None = None,
        min_disk: float | None = None,
    ) -> None:
        request = create_request(name, types, mode, container_image, min_disk)
        self._check_cli()
        lost = False

        def attempt() -> None:
            nonlocal lost
            if lost and find(self.list(), name) is not None:
                return
            try:
                self._call("create", request, lambda: self._create(request))
            except BrevCommandError as error:
                lost = is_transient(error.words)
                raise

        with_retries(attempt, self.clock.sleep, "create")

    def start(self, name: str) -> None:
        self._retried("start", check_instance_name(name), lambda: self._start(name))

    def stop(self, name: str) -> None:
        self._retried("stop", check_instance_name(name), lambda: self._stop(name))

    def delete(self, name: str) -> None:
        self._retried("delete", check_instance_name(name), lambda: self.boxes.pop(self._box(name).name))

    def refresh(self) -> None:
        def act() -> None:
            self.aliases = frozenset(alias for name in self.boxes for alias in (name, f"{name}-host"))

        self._retried("refresh", None, act)

    def wait_usable(self, name: str, within_seconds: float) -> Instance:
        check_instance_name(name)
        self._check_cli()
        return wait_until_usable(name, within_seconds, self.list, self.clock.sleep, self.clock.monotonic)

    # ------------------------------------------------------------ what the CLI does

    def _create(self, request) -> None:
        if self.faults.create_does_nothing:
            return
        if request.name in self.boxes:
            raise BrevCommandError("create", f"Error: duplicate environment with name {request.name}")
        offered = {row["type"]: bool(row.get("stoppable")) for row in self.catalog}
        granted = next((t for t in request.types if t in offered and t not in self.faults.no_capacity), None)
        if granted is None:
            raise BrevCommandError(
                "create", f"Error: no capacity for any of the instance types {','.join(request.types)}"
            )
        box = FakeBox(
            request.name, granted, offered[granted], polls_left=self.faults.boot_polls,
            fails=self.faults.create_fails, mode=request.mode,
            container_image=request.container_image, min_disk_gb=request.min_disk_gb,
        )
        self.boxes[request.name] = box
        if box.polls_left == 0:
            box.settle()
        if self._lost_replies > 0:
            self._lost_replies -= 1
            raise BrevCommandError("create", self.faults.transient_words)

    def _box(self, name: str) -> FakeBox:
        box = self.boxes.get(name)
        if box is None:
            raise BrevCommandError("lookup", f"Error: workspace {name} not found")
        return box

    def _start(self, name: str) -> None:
        box = self._box(name)
        if box.status == RUNNING:
            return
        if box.status != STOPPED:
            raise BrevCommandError("start", f"Error: cannot start {name}: it is {box.status}")
        box.status, box.polls_left, box.fails = STARTING, self.faults.boot_polls, False
        if box.polls_left == 0:
            box.settle()

    def _stop(self, name: str) -> None:
        box = self._box(name)
        if not box.stoppable:
            raise BrevCommandError(
                "stop", f"Error: instance type {box.instance_type} of {name} cannot be stopped; delete it instead"
            )
        if box.status == STOPPED:
            return
        if box.status != RUNNING:
            raise BrevCommandError("stop", f"Error: cannot stop {name}: it is {box.status}")
        box.status = STOPPED

    # ------------------------------------------------------------ one simulated call

    def _check_cli(self) -> None:
        with self._lock:
            if not self._checked:
                self.calls.append(("search --help", None))
                if self.faults.old_cli:
                    raise BrevTooOld(UPGRADE_HINT)
                self._checked = True

    def _retried(self, verb: str, detail: Any, act: Callable[[], Any]) -> Any:
        self._check_cli()
        return with_retries(lambda: self._call(verb, detail, act), self.clock.sleep, verb)

    def _call(self, verb: str, detail: Any, act: Callable[[], Any]) -> Any:
        with self._lock:
            return self._act(verb, detail, act)

    def _act(self, verb: str, detail: Any, act: Callable[[], Any]) -> Any:
        self.calls.append((verb, detail))
        if self.faults.unauthorized:
            raise BrevCommandError(verb, UNAUTHORIZED)
        if self._transient.get(verb, 0) > 0:
            self._transient[verb] -= 1
            raise BrevCommandError(verb, self.faults.transient_words)
        try:
            return act()
        except BrevCommandError as error:
            raise BrevCommandError(verb, error.words) from None
