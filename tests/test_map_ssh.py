"""`.map()` on the ssh backend, over the throwaway sshd (native mode on the box)."""

from __future__ import annotations

import pytest

from runplz import RemoteError

from .test_e2e_ssh import Bound, write_job

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("map-ssh-cache")


def test_ssh_map_in_order_each_input_its_own_folder_and_failure_in_place(tmp_path, cache, ssh_boxes):
    bound = Bound(write_job(tmp_path / "repo", use_docker=False), "runplz-near", tmp_path / "out", cache)
    results = list(bound.module.work.map([3, 1, 2]))
    assert [r["n"] for r in results] == [3, 1, 2]
    assert [(tmp_path / "out" / str(i) / "n.txt").read_text() for i in range(3)] == ["3", "1", "2"]
    mixed = list(bound.module.work.map([4, 5], [False, True], return_exceptions=True))
    assert mixed[0]["n"] == 4 and isinstance(mixed[1], RemoteError) and mixed[1].index == 1
    with pytest.raises(RemoteError) as caught:
        list(bound.module.work.map([6, 7, 8], [False, True, False], concurrency=1))
    assert caught.value.index == 1 and caught.value.remote_type == "RuntimeError"
    assert (tmp_path / "out" / "2" / "n.txt").read_text() == "2"  # the first map's: input 2 of this one never ran
