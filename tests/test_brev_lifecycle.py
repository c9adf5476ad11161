"""The Brev lifecycle policy: every path the seed lists, decided purely."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runplz import BrevConfig, Image
from runplz.domain.brev_instances import NAME_MAX, Instance, check_instance_name
from runplz.domain.brev_lifecycle import (
    BoxUnusable,
    NotStoppable,
    Target,
    TypoGuard,
    arrival,
    check_finish,
    check_image,
    ephemeral_name,
    finish,
    target_for,
)
from runplz.domain.errors import ConfigError, UsageError

NAMED = Target("my-box", ephemeral=False)
EPHEMERAL = Target("runplz-a-f-1", ephemeral=True)
READY = Instance("my-box", "RUNNING", "COMPLETED", "READY", "g5.xlarge")


def box(status: str, build: str = "COMPLETED", shell: str = "NOT READY") -> Instance:
    return Instance("my-box", status, build, shell, "g5.xlarge")


def test_ephemeral_is_created_and_always_deleted():
    for on_finish in ("stop", "delete", "leave"):
        config = BrevConfig(on_finish=on_finish)
        assert arrival(EPHEMERAL, None, config) == "create"
        assert finish(EPHEMERAL, config) == "delete"


def test_ephemeral_never_touches_a_box_of_the_same_name():
    with pytest.raises(UsageError, match="already exists"):
        arrival(EPHEMERAL, READY, BrevConfig())


def test_named_present_attaches_and_a_stopped_one_is_started_first():
    assert arrival(NAMED, READY, BrevConfig()) == "attach"
    assert arrival(NAMED, box("STOPPED", shell="NOT READY"), BrevConfig()) == "start"
    assert arrival(NAMED, box("STOPPING"), BrevConfig()) == "start"
    assert arrival(NAMED, box("STARTING"), BrevConfig()) == "wait"
    assert arrival(NAMED, box("RUNNING", shell="NOT READY"), BrevConfig()) == "wait"


@pytest.mark.parametrize("found", [box("FAILURE"), box("DEPLOYING", build="CREATE_FAILED"), box("DELETING")])
def test_a_failed_or_dying_named_box_is_refused(found):
    with pytest.raises(BoxUnusable, match="my-box"):
        arrival(NAMED, found, BrevConfig())


def test_typo_guard_unless_auto_create():
    with pytest.raises(TypoGuard, match="auto_create_instances=True"):
        arrival(NAMED, None, BrevConfig())
    assert arrival(NAMED, None, BrevConfig(auto_create_instances=True)) == "create"


@pytest.mark.parametrize("on_finish", ["stop", "delete", "leave"])
def test_on_finish_applies_to_named_boxes(on_finish):
    assert finish(NAMED, BrevConfig(on_finish=on_finish)) == on_finish


def test_stop_on_a_type_that_cannot_stop_is_refused_up_front():
    with pytest.raises(NotStoppable, match="cannot be stopped") as caught:
        check_finish(NAMED, BrevConfig(on_finish="stop"), False, "hyperstack_H100x8")
    assert "on_finish='delete'" in str(caught.value)
    check_finish(NAMED, BrevConfig(on_finish="stop"), True, "g5.xlarge")
    check_finish(NAMED, BrevConfig(on_finish="stop"), None, "unknown-type")  # catalog silent: allowed
    check_finish(NAMED, BrevConfig(on_finish="delete"), False, "hyperstack_H100x8")
    check_finish(EPHEMERAL, BrevConfig(on_finish="stop"), False, "hyperstack_H100x8")  # deleted anyway


def test_the_seeds_dispatch_time_image_checks():
    dockerfile = Image.from_dockerfile("Dockerfile")
    registry = Image.from_registry("python:3.11-slim")
    with pytest.raises(ConfigError, match="mode='container'"):
        check_image(BrevConfig(mode="container"), dockerfile, "train")
    with pytest.raises(ConfigError, match="use_docker=False"):
        check_image(BrevConfig(mode="vm", use_docker=False), dockerfile, "train")
    check_image(BrevConfig(mode="vm"), dockerfile, "train")
    for config in (BrevConfig(), BrevConfig(mode="vm"), BrevConfig(mode="vm", use_docker=False)):
        check_image(config, registry, "train")


def test_target_for_checks_names():
    assert target_for("my-box", "a", "f", "r") == NAMED
    assert target_for(None, "a", "f", "20261129-051849-d6c8eb").ephemeral
    with pytest.raises(ConfigError):
        target_for("-bad", "a", "f", "r")


@given(
    app=st.text(min_size=1, max_size=80),
    function=st.text(min_size=1, max_size=80),
    run=st.from_regex(r"[0-9]{8}-[0-9]{6}-[0-9a-f]{6}", fullmatch=True),
)
def test_ephemeral_names_are_valid_unique_per_run_and_marked(app, function, run):
    name = ephemeral_name(app, function, run)
    assert check_instance_name(name) == name and len(name) <= NAME_MAX
    assert name.startswith("runplz-") and name.endswith(run)
