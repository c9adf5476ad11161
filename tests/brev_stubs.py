"""A brev backend over fakes for the lifecycle tests: FakeBrev, FakeLedger and a
stand-in for the remote run path that checks it was handed a usable,
ssh-reachable box and then does what the test says."""

from __future__ import annotations

import types
from typing import Any, Callable

from runplz import BrevConfig, Image
from runplz.adapters.fake_brev import FakeBrev
from runplz.adapters.fake_console import RecordingConsole
from runplz.adapters.fake_ledger import FakeLedger
from runplz.domain.call import FunctionCall
from runplz.domain.spec import function_spec
from runplz.services.brev_arrive import BrevArrival
from runplz.services.brev_backend import BrevBackend, BrevSettings
from runplz.services.brev_shape import BrevShapes
from runplz.services.brev_teardown import BrevTeardown

IMAGE = Image.from_registry("python:3.11-slim")


def spec_call(name: str = "train", app: str = "app", image: Image = IMAGE, **spec: Any) -> FunctionCall:
    return FunctionCall(app, function_spec(name, image=image, **spec), "/nowhere/job.py", [], {})


class StubRuns:
    """Stands in for `RemoteRunPath`: ``paths(transport=, settings=)`` gives a path
    whose ``call`` asserts the box is usable and in the ssh config, records
    (box, settings mode, function), then runs ``behaviour(call, box)``."""

    def __init__(self, brev: FakeBrev, behaviour: Callable[[FunctionCall, str], Any] | None = None) -> None:
        self.brev = brev
        self.behaviour = behaviour or (lambda call, box: {"ran": call.spec.name, "on": box})
        self.runs: list[tuple[str, str, str]] = []

    def transports(self, target):
        return types.SimpleNamespace(name=target.host)

    def paths(self, transport, settings):
        def call(function_call: FunctionCall, record: Any = None) -> Any:
            box = transport.name
            listed = self.brev.boxes.get(box)
            assert listed is not None and listed.instance().usable, f"{box} is not usable"
            assert box in self.brev.aliases, f"no refresh before ssh to {box}"
            self.runs.append((box, settings.mode, function_call.spec.name))
            return self.behaviour(function_call, box)

        return types.SimpleNamespace(call=call)


def backend(
    brev: FakeBrev,
    ledger: FakeLedger | None = None,
    config: BrevConfig | None = None,
    instance: str | None = None,
    runs: StubRuns | None = None,
    console: RecordingConsole | None = None,
    instances: Any = None,
    catalog: Any = None,
) -> BrevBackend:
    """A `BrevBackend` over ``brev`` (its ports may be wrapped: ``instances``, ``catalog``)."""
    ledger = ledger if ledger is not None else FakeLedger()
    console = console if console is not None else RecordingConsole()
    runs = runs or StubRuns(brev)
    boxes = instances if instances is not None else brev
    shapes = BrevShapes(catalog if catalog is not None else brev, console)
    return BrevBackend(
        BrevArrival(boxes, shapes, ledger, console, brev.clock),
        BrevTeardown(boxes, ledger, console),
        runs.paths,
        runs.transports,
        brev.clock,
        BrevSettings("/tmp/runplz-brev-test-out", config or BrevConfig(), instance),
    )


def ephemeral(brev: FakeBrev) -> list[str]:
    return sorted(name for name in brev.boxes if name.startswith("runplz-"))


def verbs(brev: FakeBrev) -> list[str]:
    return [verb for verb, _ in brev.calls]
