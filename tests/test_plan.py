"""`runplz plan`: text and JSON per backend as golden files, the JSON schema, the cost."""

from __future__ import annotations

import json
import os

import pytest

from runplz.adapters.fake_brev import FakeBox
from runplz.domain.plan import worst_case_cost
from runplz.testing import FakeBrev, fake_container
from testsupport.brev_catalog import CATALOG

from .test_plan_support import TWO, check_golden, job_repo, normalize, run_plan

CASES = {
    # name: (config, timeout, plan args)
    "local_docker": ("", "timeout=3600,", ["local"]),
    "local_native": ("", "timeout=3600,", ["local", "--native"]),
    "ssh_docker": ("", "timeout=3600,", ["ssh", "--host", "runplz@gpu.example.org:2222"]),
    "ssh_native": ("ssh_config=SshConfig(use_docker=False)", "timeout=3600,", ["ssh", "--host", "trainbox"]),
    "brev_container": ("", "timeout=7200,", ["brev"]),
    "brev_vm": ('brev_config=BrevConfig(mode="vm")', "", ["brev"]),
    "brev_named": ('brev_config=BrevConfig(mode="vm", use_docker=False)', "timeout=1800,", ["brev", "--instance", "mybox"]),
    "brev_pinned": ('brev_config=BrevConfig(instance_type="g5.2xlarge")', "timeout=900,", ["brev"]),
    "modal": ('modal_config=ModalConfig(add_python="3.11")', "timeout=3600,", ["modal"]),
    "slurm_native": ('slurm_config=__import__("runplz").SlurmConfig(account="ml", partition="gpu")', "timeout=3600,",
                     ["slurm", "--host", "login.cluster.example.org"]),
}


def _brev() -> FakeBrev:
    box = FakeBox("mybox", "g5.xlarge", True, status="RUNNING", build_status="COMPLETED")
    return FakeBrev(CATALOG, boxes={"mybox": box})


@pytest.fixture
def host_ids(monkeypatch):
    monkeypatch.setattr(os, "getuid", lambda: 1000)
    monkeypatch.setattr(os, "getgid", lambda: 1000)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_plan_matches_its_golden_file(tmp_path, host_ids, case, as_json):
    config, timeout, args = CASES[case]
    repo = tmp_path / "repo"
    job_repo(repo, config, timeout)
    cache = tmp_path / "cache"
    container = fake_container(str(cache), brev=_brev())
    argv = args[:1] + (["--json"] if as_json else []) + args[1:] + ["job.py", "--steps", "3"]
    result = run_plan(container, *argv, cwd=repo)
    assert result.exit_code == 0, result.output
    text = normalize(result.output, repo, cache)
    check_golden(f"{case}.{'json' if as_json else 'txt'}", text)
    if as_json:
        check_schema(json.loads(result.output))


def test_every_function_is_planned_and_an_entrypoint_marks_none(tmp_path, host_ids):
    repo = tmp_path / "repo"
    job_repo(repo, script=TWO)
    result = run_plan(fake_container(str(tmp_path / "cache"), brev=_brev()), "brev", "--json", "job.py", "--n", "4", cwd=repo)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    check_schema(data)
    assert data["entrypoint"] == "main"
    assert [(f["name"], f["implicit"]) for f in data["functions"]] == [("prepare", False), ("train", False)]
    assert [f["brev"]["types"][0] for f in data["functions"]] == ["cpu-2x8-nostop"] * 2


def test_the_implicit_entrypoint_function_is_marked(tmp_path, host_ids):
    repo = tmp_path / "repo"
    job_repo(repo)
    result = run_plan(fake_container(str(tmp_path / "cache")), "local", "--json", "job.py", cwd=repo)
    data = json.loads(result.output)
    assert data["entrypoint"] is None and data["functions"][0]["implicit"] is True


@pytest.mark.parametrize(
    "args, words",
    [
        (["local", "job.py", "--nope", "1"], "train has no flag --nope"),
        (["local", "job.py", "--outputs-dir", "x"], "runplz's own --outputs-dir goes before SCRIPT"),
        (["brev", "--instance", "ghost", "job.py"], "no Brev instance named ghost"),
        (["local", "--outputs-dir", ".", "job.py"], "is the repo root"),
        (["modal", "missing.py"], "no such script"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(tmp_path, args, words):
    repo = tmp_path / "repo"
    job_repo(repo)
    result = run_plan(fake_container(str(tmp_path / "cache"), brev=_brev()), *args, cwd=repo)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("runplz: error:") and words in lines[0], result.output


def test_entrypoint_help_is_shown_not_run(tmp_path):
    repo = tmp_path / "repo"
    job_repo(repo)
    result = run_plan(fake_container(str(tmp_path / "cache")), "local", "job.py", "--help", cwd=repo)
    assert result.exit_code == 0 and "--steps" in result.output


def test_brev_plan_with_no_matching_type_is_refused(tmp_path):
    repo = tmp_path / "repo"
    job_repo(repo)
    result = run_plan(fake_container(str(tmp_path / "cache"), brev=FakeBrev([])), "brev", "job.py", cwd=repo)
    assert result.exit_code == 2 and "no offers" in result.output


# ---------------------------------------------------------------- the cost


@pytest.mark.parametrize(
    "price, seconds, cost",
    [(1.006, 3600, 1.006), (0.48, 7200, 0.96), (3.5, 900, 0.875), (2.0, 1, 2.0 / 3600), (1.0, None, None), (None, 60, None)],
)
def test_worst_case_cost_is_price_times_the_limit(price, seconds, cost):
    got = worst_case_cost(price, seconds)
    assert got == pytest.approx(cost) if cost is not None else got is None


def test_the_brev_plan_costs_the_dearest_type_for_the_timeout(tmp_path, host_ids):
    repo = tmp_path / "repo"
    job_repo(repo, timeout="timeout=7200,")
    result = run_plan(fake_container(str(tmp_path / "cache"), brev=_brev()), "brev", "--json", "job.py", cwd=repo)
    brev = json.loads(result.output)["functions"][0]["brev"]
    prices = [offer["price_per_hour"] for offer in brev["offers"]]
    assert len(prices) == 3 and brev["price_per_hour"] == max(prices)
    assert brev["limit_seconds"] == 7200
    assert brev["worst_case_usd"] == pytest.approx(max(prices) * 7200 / 3600)


def test_no_timeout_is_an_unbounded_cost(tmp_path, host_ids):
    repo = tmp_path / "repo"
    job_repo(repo, timeout="")
    result = run_plan(fake_container(str(tmp_path / "cache"), brev=_brev()), "brev", "job.py", cwd=repo)
    assert "worst-case cost: unbounded (no timeout)" in result.output and "per hour" in result.output


# ---------------------------------------------------------------- the documented schema

OPT = object()


def _opt(kind):
    return (OPT, kind)


OFFER = {"type": str, "provider": str, "gpu": str, "vcpus": int, "ram_gb": (int, float),
         "price_per_hour": (int, float), "boot_seconds": _opt(int), "stoppable": bool}
BREV = {
    "source": ("picked", "pinned", "named"), "how": ("create", "attach", "start", "wait"), "instance": str,
    "ephemeral": bool, "mode": ("container", "vm"), "on_finish": ("delete", "stop", "leave"),
    "types": [str], "offers": [OFFER], "instance_type": _opt(str), "status": _opt(str),
    "min_disk_gb": _opt((int, float)), "limit_seconds": _opt((int, float)), "limit_reason": _opt(str),
    "price_per_hour": _opt((int, float)), "worst_case_usd": _opt((int, float)),
}
MODAL = {"gpu": _opt(str), "cpu": _opt((int, float)), "memory_mib": _opt(int), "timeout": int, "add_python": _opt(str)}
SLURM = {"login": str, "workdir": str, "container": ("none", "apptainer", "pyxis"), "directives": [str],
         "script": str, "array": str, "map_concurrency": int, "limit_seconds": _opt((int, float)),
         "limit_reason": _opt(str)}
IMAGE = {"kind": ("dockerfile", "inline", "native", "modal", "registry"), "text": str, "base_tag": _opt(str),
         "run_tag": _opt(str), "warnings": [str]}
STEP = {"phase": ("provision", "connect", "probe", "upload", "env", "bundle", "build", "run", "follow", "collect", "teardown"),
        "command": str, "when": _opt(str)}
FUNCTION = {"name": str, "implicit": bool, "timeout": _opt(int), "target": str, "image": IMAGE, "steps": [STEP],
            "brev": _opt(BREV), "modal": _opt(MODAL), "slurm": _opt(SLURM)}
UPLOAD = {"kind": ("rsync", "modal", "build-context"), "root": str, "destination": str, "files": int, "bytes": int,
          "largest": [{"path": str, "bytes": int}], "excluded": [str], "links_dropped": [str]}
PLAN = {
    "schema": ("runplz.plan/1",), "backend": ("local", "ssh", "brev", "modal", "slurm"),
    "mode": ("docker", "native", "inline", "modal", "registry"), "script": str, "app": str, "entrypoint": _opt(str),
    "args": [str], "outputs_dir": str, "target": str, "upload": _opt(UPLOAD), "functions": [FUNCTION], "run_id": ("<new>",),
}


def check_schema(value, schema=PLAN, where="plan"):
    """A small checker for the schema docs/plan.md documents."""
    if isinstance(schema, tuple) and schema and schema[0] is OPT:
        if value is not None:
            check_schema(value, schema[1], where)
        return
    if isinstance(schema, dict):
        assert isinstance(value, dict) and list(value) == list(schema), f"{where}: keys {list(value)}"
        for key, sub in schema.items():
            check_schema(value[key], sub, f"{where}.{key}")
    elif isinstance(schema, list):
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            check_schema(item, schema[0], f"{where}[{i}]")
    elif isinstance(schema, tuple) and all(isinstance(s, str) for s in schema):
        assert value in schema, f"{where}: {value!r} not one of {schema}"
    else:
        assert isinstance(value, schema) and not (isinstance(value, bool) and schema is int), f"{where}: {value!r}"


def test_plan_field_order_is_the_documented_one():
    doc = open(os.path.join(os.path.dirname(__file__), "..", "docs", "plan.md")).read()
    for name in [*PLAN, *UPLOAD, *FUNCTION, *BREV, *OFFER, *MODAL, *SLURM, *IMAGE, *STEP]:
        assert f"`{name}`" in doc, name
