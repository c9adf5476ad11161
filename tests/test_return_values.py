"""Return values JSON cannot carry: the run stands, the value comes back carried or stood in for.

The first half runs the real runtime through the shipped fakes (no venv build);
the `real` half builds a native venv with numpy from the package index and goes
through the real CLI and the Python API.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings

import pytest

from runplz.adapters.fake_console import RecordingConsole
from runplz.container import make_container
from runplz.domain.errors import ArgumentError, RunplzWarning, StandInWarning
from runplz.loader import load_app
from runplz.testing import fake_container

from .jobs import make_repo

MODEL_NOTE = "the return value['model'] is a Model, which JSON cannot carry; .remote() gave back its repr() instead"

FAKED = '''
from runplz import App, Image

app = App("returns")


class Model:
    def __repr__(self):
        return "Model(layers=3)"


class Float32:  # numpy's float32, seen from outside
    def __init__(self, value):
        self.value = value

    def tolist(self):
        return self.value


class Broken:
    def __repr__(self):
        raise RuntimeError("no repr either")

    def item(self):
        raise ValueError("no item")


@app.function(image=Image.from_registry("python:3.11-slim"))
def give(kind: str = "metrics"):
    if kind == "metrics":
        return {"loss": Float32(0.125), "nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"),
                "tags": {"b", "a"}, "pair": (1, (2, 3)), "keys": {1: "one", None: "none"}}
    if kind == "model":
        return {"loss": 0.1, "model": Model()}
    if kind == "broken":
        loop = []
        loop.append(loop)
        return {"broken": Broken(), "loop": loop, "ok": 1}
    if kind == "nan":
        return float("nan")


@app.function(image=Image.from_registry("python:3.11-slim"))
def echo(*args, **kwargs):
    return {"args": args, "kwargs": kwargs}
'''


@pytest.fixture
def faked(tmp_path):
    script = make_repo(tmp_path / "repo", FAKED)
    module, app = load_app(str(script))
    app.bind("local", outputs_dir=str(tmp_path / "out"), native=True, container=fake_container(str(tmp_path / "cache")))
    return module


def test_metrics_nan_inf_sets_and_tuples_come_back_without_warnings(faked):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = faked.give.remote("metrics")
    assert math.isnan(value.pop("nan")) and value.pop("inf") == math.inf and value.pop("ninf") == -math.inf
    assert value == {"loss": 0.125, "tags": ["a", "b"], "pair": [1, [2, 3]], "keys": {"1": "one", "null": "none"}}


def test_an_object_comes_back_as_its_repr_with_a_warning_at_the_callers_line(faked):
    with pytest.warns(StandInWarning) as caught:
        value = faked.give.remote("model")  # the warning points here
    assert value == {"loss": 0.1, "model": "Model(layers=3)"}
    assert [str(w.message) for w in caught] == [MODEL_NOTE]
    assert caught[0].filename == __file__
    assert issubclass(StandInWarning, RunplzWarning) and issubclass(StandInWarning, UserWarning)


def test_raising_repr_and_cycles_do_not_fail_the_run(faked):
    with pytest.warns(StandInWarning) as caught:
        value = faked.give.remote("broken")
    assert value == {"broken": "<Broken object>", "loop": ["[[...]]"], "ok": 1}
    notes = sorted(str(w.message) for w in caught)
    assert notes[0].startswith("the return value['broken'] is a Broken whose .item() raised ValueError")
    assert notes[1].startswith("the return value['loop'][0] is a list that contains itself")


def test_a_stand_in_warning_can_be_filtered(faked):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=StandInWarning)
        assert faked.give.remote("model")["model"] == "Model(layers=3)"


def test_nan_comes_back_as_a_float(faked):
    value = faked.give.remote("nan")
    assert isinstance(value, float) and math.isnan(value)


def test_nan_and_inf_arguments_go_there_and_back(faked):
    value = faked.echo.remote(math.nan, [math.inf, (1, 2)], lr=-math.inf)
    assert math.isnan(value["args"][0])
    assert value["args"][1:] == [[math.inf, [1, 2]]] and value["kwargs"] == {"lr": -math.inf}


@pytest.mark.parametrize("bad", [{1, 2}, object(), b"bytes"])
def test_arguments_json_refuses_are_an_argument_error(faked, bad):
    with pytest.raises(ArgumentError, match=r"^echo\.remote\(\): argument 0 is a .*, which JSON cannot carry; arguments must be JSON$"):
        faked.echo.remote(bad)
    with pytest.raises(TypeError):
        faked.echo.remote(x=[bad])


# ---------------------------------------------------------------- real: numpy in a native venv

NUMPY_JOB = '''
from runplz import App, Image

app = App("numpy-returns")
image = Image.from_registry("python:3.11-slim").pip_install("numpy")


class Model:
    def __repr__(self):
        return "Model(layers=3)"


@app.function(image=image)
def metrics(kind: str = "numpy"):
    import numpy as np

    if kind == "model":
        return {"loss": np.float32(0.5), "model": Model()}
    if kind == "nan":
        return np.float32("nan")
    return {
        "loss": np.float32(0.125),
        "grid": np.arange(4, dtype=np.float32).reshape(2, 2),
        "steps": np.int64(7),
        "ok": np.bool_(True),
        "half": np.float16(1.5),
        "np_nan": np.float64("nan"),
        "nan": float("nan"),
        "inf": float("inf"),
        "tags": {"b", "a"},
    }
'''


@pytest.fixture(scope="module")
def numpy_cache(tmp_path_factory):
    """One cache for the module: numpy is installed into the run's venv once."""
    return tmp_path_factory.mktemp("numpy-cache")


@pytest.fixture
def numpy_repo(tmp_path):
    return make_repo(tmp_path / "repo", NUMPY_JOB).parent


def _cli(repo, cache, *args):
    env = {**os.environ, "RUNPLZ_CACHE_DIR": str(cache)}
    return subprocess.run(
        [sys.executable, "-m", "runplz", "local", "--native", "job.py", *args],
        cwd=repo, capture_output=True, text=True, timeout=600, env=env,
    )


def _printed(result):
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.real
def test_cli_numpy_nan_inf_and_a_set_come_back_as_json(numpy_repo, numpy_cache):
    result = _cli(numpy_repo, numpy_cache, "--kind=numpy")
    assert result.returncode == 0, result.stderr
    value = _printed(result)
    assert math.isnan(value.pop("nan")) and math.isnan(value.pop("np_nan")) and value.pop("inf") == math.inf
    assert value == {"loss": 0.125, "grid": [[0.0, 1.0], [2.0, 3.0]], "steps": 7, "ok": True, "half": 1.5, "tags": ["a", "b"]}
    assert "warning" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.real
def test_cli_an_object_is_a_repr_stand_in_with_a_warning(numpy_repo, numpy_cache):
    result = _cli(numpy_repo, numpy_cache, "--kind=model")
    assert result.returncode == 0, result.stderr
    assert _printed(result) == {"loss": 0.5, "model": "Model(layers=3)"}
    assert MODEL_NOTE in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.real
def test_python_api_nan_is_a_float_and_the_warning_is_catchable(numpy_repo, numpy_cache, tmp_path):
    module, app = load_app(str(numpy_repo / "job.py"))
    container = make_container(str(numpy_cache))
    container.console.override(RecordingConsole())
    app.bind("local", outputs_dir=str(tmp_path / "out"), native=True, container=container)
    value = module.metrics.remote(kind="nan")
    assert isinstance(value, float) and math.isnan(value)
    with pytest.warns(StandInWarning, match=r"the return value\['model'\] is a Model") as caught:
        value = module.metrics.remote(kind="model")
    assert value == {"loss": 0.5, "model": "Model(layers=3)"}
    assert caught[0].filename == __file__
