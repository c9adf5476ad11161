"""``.map()`` on the slurm backend as ONE job array, on the real single-node
cluster (slurmctld, slurmd, slurmdbd) reached through its login node over the
real sshd: one array job, results in input order, each input's outputs in
out/<index>, a failure reported by its index with the rest cancelled."""

from __future__ import annotations

import re
import time

import pytest

from runplz import RemoteError

from .jobs import make_repo

from .test_slurm_backend import Bound as SlurmBound, cache, cluster  # noqa: F401 (fixtures)

pytestmark = pytest.mark.real

JOB = '''
import os, sys, time
from runplz import App, Image, SlurmConfig

app = App("slurm-map", slurm_config=SlurmConfig(account="runplz", poll_seconds=0.3, max_poll_seconds=1))
image = Image.from_registry("python:3.11-slim")


@app.function(image=image, min_memory=0.1, timeout=600)
def square(x: int, fail_at: int = -1, slow: float = 0.0) -> dict:
    with open(os.path.join(os.environ["RUNPLZ_OUT"], "item.txt"), "w") as handle:
        handle.write(str(x))
    if x == fail_at:
        raise ValueError(f"input {x} is bad")
    if x > fail_at >= 0:
        time.sleep(slow)
    return {"x": x, "square": x * x, "array": os.environ["SLURM_ARRAY_JOB_ID"],
            "task": os.environ["SLURM_ARRAY_TASK_ID"]}
'''


class Bound(SlurmBound):
    def array_id(self) -> str:
        line = next(m for m in reversed(self.console.infos) if "as job array" in m)
        return re.search(r"as job array (\d+)", line).group(1)


@pytest.fixture
def bound(tmp_path, cache, cluster):
    return Bound(make_repo(tmp_path / "repo", JOB), tmp_path / "out", cache)


def sacct_rows(cluster, job: str, count: int, timeout: float = 60) -> dict[str, str]:
    """sacct's task rows of ``job`` (JobID -> State), once it lists ``count`` tasks
    and none is live (accounting lags the scheduler)."""
    deadline = time.monotonic() + timeout
    while True:
        text = cluster.run("sacct", "-n", "-P", "-X", "-j", job, "-o", "JobID,State").stdout
        rows = dict(line.split("|")[:2] for line in text.splitlines() if "|" in line)
        settled = not any(state in ("PENDING", "RUNNING", "COMPLETING") for state in rows.values())
        if (len(rows) >= count and settled) or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def test_eight_inputs_are_one_array_job_with_results_in_order_and_out_per_index(bound, cluster):
    results = list(bound.module.square.map(range(8), concurrency=3))
    array = bound.array_id()
    assert [r["square"] for r in results] == [x * x for x in range(8)]
    assert [r["task"] for r in results] == [str(x) for x in range(8)]
    assert {r["array"] for r in results} == {array}  # every input ran in the ONE array job
    shown = cluster.run("scontrol", "show", "job", array).stdout
    assert "ArrayTaskThrottle=3" in shown or "%3" in shown, shown
    rows = sacct_rows(cluster, array, 8)
    assert rows == {f"{array}_{x}": "COMPLETED" for x in range(8)}
    for x in range(8):
        assert (bound.outputs / str(x) / "item.txt").read_text() == str(x)
    assert sorted(p.name for p in bound.outputs.iterdir()) == sorted(str(x) for x in range(8))
    assert "done 8, running 0, pending 0, failed 0" in bound.console.progresses
    assert any(re.fullmatch(r"done 0, running [1-3], pending [5-7], failed 0", p) for p in bound.console.progresses)
    assert any(m.startswith("square.map: 8 done, 0 failed of 8") for m in bound.console.infos), bound.console.infos


def test_a_failure_at_index_5_raises_naming_it_and_cancels_the_array(bound, cluster):
    with pytest.raises(RemoteError) as caught:
        list(bound.module.square.map(range(8), kwargs={"fail_at": 5, "slow": 120}, concurrency=8))
    assert caught.value.index == 5
    assert "input 5" in str(caught.value) and "input 5 is bad" in str(caught.value)
    array = bound.array_id()
    assert cluster.queue() == []
    rows = sacct_rows(cluster, array, 3)
    assert rows[f"{array}_5"] == "FAILED"
    assert any(state.startswith("CANCELLED") for job, state in rows.items() if job != f"{array}_5"), rows
    assert (bound.outputs / "5" / "item.txt").read_text() == "5"


def test_with_return_exceptions_each_failure_is_in_its_place(bound, cluster):
    results = list(bound.module.square.map([0, 1, 2, 3], kwargs={"fail_at": 2}, return_exceptions=True))
    assert [r["square"] for r in results if isinstance(r, dict)] == [0, 1, 9]
    assert isinstance(results[2], RemoteError) and results[2].index == 2
    assert results[2].remote_type == "ValueError"
    assert cluster.queue() == []
    assert [(bound.outputs / str(x) / "item.txt").read_text() for x in range(4)] == ["0", "1", "2", "3"]
