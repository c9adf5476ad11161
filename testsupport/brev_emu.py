"""Set up and inspect a `brev` emulator (testsupport/brev_emulator.py) for a test.

    emu = BrevEmulator.make(tmp_path / "brev", CATALOG, faults=BrevFaults(boot_polls=2))
    monkeypatch.setenv("PATH", emu.bin_dir + os.pathsep + os.environ["PATH"])
    brev = BrevCli(SubprocessRunner(), FakeClock())     # finds the emulator as `brev`

With ``boxes`` (testsupport.sshd's running boxes) each instance is a real sshd
reached as ``ssh NAME`` / ``ssh NAME-host`` after ``brev refresh`` (the tests'
ssh wrapper includes the emulator's ssh config); call ``shutdown()`` at the end.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from typing import Any, Iterable, Mapping

import attrs

from runplz.adapters.fake_brev import BrevFaults

from . import brev_emu_boxes

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "brev_emulator.py")


@attrs.define
class BrevEmulator:
    root: str
    boxes: Any = None  # testsupport.sshd.Boxes, when instances are real sshd boxes

    @classmethod
    def make(
        cls, root, catalog: Iterable[Mapping[str, Any]], faults: BrevFaults | None = None, boxes: Any = None
    ) -> "BrevEmulator":
        root = str(root)
        emu = cls(root, boxes)
        os.makedirs(emu.bin_dir, exist_ok=True)
        emu._write("catalog.json", [dict(row) for row in catalog])
        emu.set_faults(faults or BrevFaults())
        sshd = None
        if boxes is not None:
            sshd = {"keys_dir": boxes.keys_dir, "user": "runplz", "key": boxes.key, "env": dict(boxes.env)}
            boxes.include(emu.ssh_config)
        emu._write("config.json", {"sshd": sshd})
        with open(emu.brev, "w") as handle:
            handle.write(
                f"#!/bin/sh\nRUNPLZ_BREV_EMU_DIR={shlex.quote(root)}\nexport RUNPLZ_BREV_EMU_DIR\n"
                f'exec {shlex.quote(sys.executable)} {shlex.quote(SCRIPT)} "$@"\n'
            )
        os.chmod(emu.brev, 0o755)
        return emu

    @property
    def bin_dir(self) -> str:
        return os.path.join(self.root, "bin")

    @property
    def brev(self) -> str:
        return os.path.join(self.bin_dir, "brev")

    @property
    def ssh_config(self) -> str:
        return os.path.join(self.root, "ssh_config")

    def set_faults(self, faults: BrevFaults) -> None:
        self._write("faults.json", faults.to_json())

    def calls(self) -> list[dict]:
        try:
            with open(os.path.join(self.root, "calls.jsonl")) as handle:
                return [json.loads(line) for line in handle if line.strip()]
        except FileNotFoundError:
            return []

    def argvs(self) -> list[list[str]]:
        return [call["argv"] for call in self.calls()]

    def count(self, verb: str) -> int:
        """Calls of ``verb`` (``brev search --help`` counts as "search --help", not "search")."""
        def name(argv: list[str]) -> str:
            if argv[:1] == ["search"] and ("--help" in argv or "-h" in argv):
                return "search --help"
            return argv[0] if argv else ""

        return sum(name(argv) == verb for argv in self.argvs())

    def instances(self) -> dict:
        try:
            with open(os.path.join(self.root, "state.json")) as handle:
                return json.load(handle)["instances"]
        except FileNotFoundError:
            return {}

    def shutdown(self) -> None:
        """Kill every instance's box and drop the ssh config include."""
        for name, box in self.instances().items():
            brev_emu_boxes.stop(self.root, name, box["marker"], box.get("port"))
        if self.boxes is not None:
            self.boxes.exclude(self.ssh_config)

    def _write(self, name: str, value: Any) -> None:
        with open(os.path.join(self.root, name), "w") as handle:
            json.dump(value, handle, indent=1)
