"""Hostile argument and env strings survive a real ssh run byte-exact."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .test_e2e_ssh import Bound, write_job

pytestmark = pytest.mark.real

FRAGMENTS = ["'", '"', "$(id)", "`id`", "${HOME}", "\n", "\r\n", "\\", ";", "|", "&", "*", "~", "-", "--", "-e",
             "é", "中文", "🙂", "\t", " ", "%s", "{}", "\x1b[31m"]
TEXT = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8)),
    max_size=8,
).map("".join)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(arg=TEXT, env=TEXT)
def test_hostile_strings_round_trip_over_ssh(arg, env, tmp_path_factory, cache, ssh_boxes):
    root = tmp_path_factory.mktemp("hostile")
    bound = Bound(write_job(root / "repo", use_docker=False, extra_env=env), "runplz-near", root / "out", cache)
    assert bound.module.echo.remote(value=arg) == {"value": arg, "env": env}
