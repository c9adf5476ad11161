"""The hexagon's walls, the public surface, and what stays off the hot paths."""

from __future__ import annotations

import ast
import inspect
import json
import pkgutil
import subprocess
import sys
from pathlib import Path
from typing import Protocol

import runplz
import runplz.ports

SRC = Path(runplz.__file__).parent
FORBIDDEN = {"subprocess", "time", "modal", "click", "cattrs", "dependency_injector", "socket", "shutil"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ("." * node.level) + (node.module or "")
            names.append(base)
    return names


def test_domain_and_ports_do_no_io_and_import_no_framework():
    for package in ("domain", "ports"):
        for path in (SRC / package).glob("*.py"):
            text = path.read_text()
            assert "os.environ" not in text and "getenv" not in text, path
            for name in _imports(path):
                top = name.lstrip(".").split(".")[0]
                assert top not in FORBIDDEN, f"{path.name} imports {name}"
                assert not name.startswith(("..adapters", "..services", "..cli", "..container")), f"{path.name}: {name}"
                assert not name.startswith("runplz.") or name.startswith(("runplz.domain", "runplz.ports")), name


def test_services_reach_adapters_only_through_ports():
    for path in (SRC / "services").glob("*.py"):
        for name in _imports(path):
            assert not name.startswith(("..adapters", "runplz.adapters", "..container", "..cli")), f"{path.name}: {name}"


def test_ports_are_runtime_checkable_protocols_with_a_contract():
    found = []
    for info in pkgutil.iter_modules(runplz.ports.__path__):
        module = __import__(f"runplz.ports.{info.name}", fromlist=["x"])
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__ and Protocol in cls.__mro__ and cls is not Protocol:
                assert getattr(cls, "_is_runtime_protocol", False), cls
                assert "Contract" in (cls.__doc__ or ""), cls
                found.append(cls.__name__)
    assert {"CommandRunner", "Clock", "Console", "ContainerEngine", "PythonEnvBuilder", "Backend"} <= set(found)


def test_public_api_is_pinned():
    assert runplz.__all__ == [
        "App", "BrevConfig", "Function", "Image", "ImageOp", "LocalConfig", "ModalConfig",
        "RemoteError", "RunTimeout", "RunplzError", "RunplzWarning", "SlurmConfig", "SshConfig", "StandInWarning",
        "__version__",
    ]
    for name in runplz.__all__:
        assert getattr(runplz, name) is not None


def test_testing_module_ships_the_fakes():
    import runplz.testing as testing

    for name in testing.__all__:
        assert getattr(testing, name)


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return {name.split(".")[0] for name in json.loads(out.strip().splitlines()[-1])}


def _help_modules(columns: int) -> set[str]:
    """Every module `runplz --help` loads on a terminal ``columns`` wide."""
    code = (
        f"import os, sys\nos.environ['COLUMNS'] = '{columns}'\nsys.argv=['runplz','--help']\n"
        "from runplz.cli import main\ntry:\n    main()\nexcept SystemExit:\n    pass\n"
        "print()\nprint(' '.join(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.strip().splitlines()[-1].split())


def test_help_path_imports_neither_modal_nor_the_heavy_machinery():
    for columns in (60, 100):  # click's own rendering on a narrow terminal; the fast path on a wide one
        loaded = _help_modules(columns)
        assert not {name.split(".")[0] for name in loaded} & {"modal", "dependency_injector", "cattrs", "attrs", "attr"}
    assert "click" in _help_modules(60)


def test_the_fast_help_path_imports_neither_click_nor_the_domain():
    loaded = _help_modules(100)
    assert not {name.split(".")[0] for name in loaded} & {"click", "json", "shutil", "datetime", "uuid"}
    assert {name for name in loaded if name.startswith("runplz")} == {"runplz", "runplz.cli", "runplz.cli.help_text"}


def test_target_side_needs_neither_click_nor_dependency_injector():
    loaded = _modules_after(
        "import runplz.runtime.entry, runplz.protocol.wire, runplz.loader, runplz.app\n"
        "from runplz import App, Image, BrevConfig"
    )
    assert not loaded & {"click", "dependency_injector", "modal"}


def test_no_module_is_past_400_lines():
    for path in SRC.rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path


def test_other_backends_never_import_modal():
    loaded = _modules_after("import runplz.container, runplz.testing, runplz.cli.main")
    assert not loaded & {"modal", "grpclib", "synchronicity"}


def test_the_modal_entry_file_is_stdlib_only():
    """Modal loads it in a container with no runplz: it may import nothing of ours."""
    import ast

    tree = ast.parse((Path(runplz.__file__).parent / "runtime" / "runplz_modal_entry.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module.split(".")[0] in sys.stdlib_module_names | {"__future__"}, node.module
        elif isinstance(node, ast.Import):
            assert all(alias.name.split(".")[0] in sys.stdlib_module_names for alias in node.names)
