"""`PythonEnvBuilder` on a remote machine: the shipped agent makes the venv there."""

from __future__ import annotations

import json
from typing import Callable

from ..domain.errors import BuildError, NoSpaceLeft
from ..domain.remote_layout import ENV_MARK, VENVS
from ..ports.python_env import EnvRequest, PythonEnv
from ..ports.transport import Transport

_MARK = ENV_MARK


class RemoteVenvBuilder:
    """``boot`` is the remote path of the runtime bundle's ``runplz_boot.py``;
    ``root`` the remote folder that holds the venvs."""

    def __init__(self, transport: Transport, boot: str, root: str = VENVS) -> None:
        self._transport = transport
        self._boot = boot
        self._root = root

    def ensure(self, request: EnvRequest, on_line: Callable[[str], None] | None = None) -> PythonEnv:
        payload = json.dumps({
            "key": request.key,
            "python": request.python,
            "root": self._root,
            "steps": [
                {"packages": list(s.packages), "index_url": s.index_url, "editable": s.editable}
                for s in request.steps
            ],
        })
        answer: dict = {}
        partial = b""

        def take(chunk: bytes) -> None:
            nonlocal partial
            partial += chunk
            *lines, partial = partial.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace")
                if line.startswith(_MARK):
                    answer.update(json.loads(line[len(_MARK):]))
                elif on_line is not None:
                    on_line(line)

        result = self._transport.run(
            ["python3", self._boot, "agent", "venv", payload], on_output=take
        )
        if partial:  # a last line without its newline
            take(b"\n")
        if "python" in answer:
            return PythonEnv(answer["python"], bool(answer.get("created")))
        if answer.get("nospace"):
            free = answer.get("free_kb")
            free_text = f"{int(free) // 1024} MB" if isinstance(free, int) else "almost nothing"
            raise NoSpaceLeft(
                f"no space left on {self._transport.name} ({free_text} free in ~/.runplz) while making "
                "the environment"
            )
        reason = answer.get("error") or result.stderr.strip()[-2000:] or f"exit {result.exit_code}"
        raise BuildError(f"making the environment on {self._transport.name} failed: {reason}")
