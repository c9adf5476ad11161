"""Container runner: one fresh child process per input, chrooted into its own container root.

For each call the runner lays the function's files out under `<folder>/containers/<task>/root`
(see layout.py), then starts `unshare --mount --propagation private --pid --fork --kill-child python
launcher.py spec.json` (killing it kills every process of the container, as on Modal),
which bind-mounts the host system and Python runtime read-only, chroots and execs
`python -m modal._container_entrypoint` with `MODAL_IS_REMOTE=1`, the task id, the container
arguments file and the function's secrets as env. The child talks gRPC back to this fake over
127.0.0.1 (same network namespace). Its stdout/stderr are pumped into the log bus. The runner
enforces the function timeout, turns a death without output into a failure result and kills
whatever is left when the app disconnects or the fake stops.
"""

from __future__ import annotations

import asyncio
import codecs
import glob
import json
import os
import signal
import sys
import time
from dataclasses import dataclass, field

from modal_proto import api_pb2

from . import layout
from .logs import LogBus
from .state import Call, State

PY_ROOT = "/opt/modal-fake/python"
SYSTEM_DIRS = ["/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin", "/etc"]
DEFAULT_TIMEOUT_S = 300
LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.py")


@dataclass
class ContainerRun:
    """One container: what it ran, where its root is, how it ended, what it printed."""

    task_id: str
    app_id: str
    function_id: str
    call: Call
    root: str
    process: asyncio.subprocess.Process | None = None
    returncode: int | None = None
    timed_out: bool = False
    killed: bool = False
    task_result: api_pb2.GenericResult | None = None
    stdout: str = ""
    stderr: str = ""
    exited: asyncio.Event = field(default_factory=asyncio.Event)


def python_binds() -> tuple[list[list], list[str]]:
    """Binds that give the container this interpreter plus the venv's packages, and paths to hide."""
    base = os.path.realpath(sys.base_prefix)
    version = "python%d.%d" % sys.version_info[:2]
    site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    inner_site = f"{PY_ROOT}/lib/{version}/site-packages"
    binds = [[base, PY_ROOT, True], [site, inner_site, True]]
    hide = [
        inner_site + "/" + os.path.basename(p)
        for p in glob.glob(os.path.join(site, "__editable__*")) + glob.glob(os.path.join(site, "*.egg-link"))
    ]
    return binds, hide


class ContainerManager:
    """Starts, watches and stops the containers of every app; methods run on the server loop."""

    def __init__(self, state: State, logs: LogBus, server_url: str, folder: str):
        self.state = state
        self.logs = logs
        self.server_url = server_url
        self.folder = folder
        self.runs: dict[str, ContainerRun] = {}
        self._tasks: set[asyncio.Task] = set()

    def _spec(self, run: ContainerRun, function_def: api_pb2.Function, args_path: str) -> dict:
        env = {
            "PATH": f"{PY_ROOT}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "LD_LIBRARY_PATH": f"{PY_ROOT}/lib",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "MODAL_IS_REMOTE": "1",
            "MODAL_SERVER_URL": self.server_url,
            "MODAL_TASK_ID": run.task_id,
            "MODAL_IMAGE_ID": function_def.image_id,
            "MODAL_FUNCTION_ID": run.function_id,
            "MODAL_APP_ID": run.app_id,
            "MODAL_CONTAINER_ARGUMENTS_PATH": args_path,
            "MODAL_OVERRIDE_HEADERS": f"x-fake-task-id:{run.task_id}",
            "MODAL_ENVIRONMENT": "main",
            "MODAL_REGION": "fake",
            "MODAL_CLOUD_PROVIDER": "CLOUD_PROVIDER_FAKE",
        }
        for secret_id in function_def.secret_ids:
            env.update(self.state.secrets.get(secret_id, {}))
        cwd = layout.workdir(self.state, function_def)
        if cwd != "/root":  # the script mounts still land in /root; keep them importable
            env["PYTHONPATH"] = "/root"
        binds, hide = python_binds()
        for system_dir in SYSTEM_DIRS:
            if os.path.isdir(system_dir) and not os.path.islink(system_dir):
                binds.append([system_dir, system_dir, True])
        binds += [["/dev", "/dev", False], ["/proc", "/proc", False]]
        symlinks = [[d, os.readlink(d)] for d in SYSTEM_DIRS if os.path.islink(d)]
        version = "python%d.%d" % sys.version_info[:2]
        return {
            "root": run.root,
            "binds": binds,
            "symlinks": symlinks,
            "hide": hide,
            "empty_file": os.path.join(os.path.dirname(run.root), "empty"),
            "cwd": cwd,
            "env": env,
            "argv": [f"{PY_ROOT}/bin/{version}", "-m", "modal._container_entrypoint"],
        }

    async def launch(self, call: Call, app_id: str) -> ContainerRun:
        """Lay out a root for `call`'s function and start its container."""
        function_def = self.state.functions[call.function_id]
        task_id = self.state.new_id("ta")
        base = os.path.join(self.folder, task_id)
        run = ContainerRun(task_id=task_id, app_id=app_id, function_id=call.function_id, call=call,
                           root=os.path.join(base, "root"))
        self.runs[task_id] = run
        with self.state.lock:
            self.state.containers.append(run)
        for sub in ("root", "tmp", "__modal", layout.workdir(self.state, function_def).lstrip("/")):
            os.makedirs(os.path.join(run.root, sub), exist_ok=True)
        os.chmod(os.path.join(run.root, "tmp"), 0o1777)
        await asyncio.to_thread(layout.materialise, run.root, layout.container_files(self.state, function_def))
        container_args = api_pb2.ContainerArguments(
            task_id=task_id, function_id=call.function_id, app_id=app_id, function_def=function_def,
            environment_name="main", app_layout=self._app_layout(app_id, function_def),
        )
        with open(os.path.join(run.root, "__modal", "container_arguments.bin"), "wb") as f:
            f.write(container_args.SerializeToString())
        open(os.path.join(base, "empty"), "w").close()
        spec_path = os.path.join(base, "spec.json")
        with open(spec_path, "w") as f:
            json.dump(self._spec(run, function_def, "/__modal/container_arguments.bin"), f)
        await self.logs.container_started(app_id)
        try:
            run.process = await asyncio.create_subprocess_exec(
                "unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--",
                sys.executable, "-I", "-S", LAUNCHER, spec_path,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=True,
            )
        except Exception:
            await self.logs.container_exited(app_id)
            raise
        task = asyncio.get_running_loop().create_task(self._watch(run, function_def.timeout_secs or DEFAULT_TIMEOUT_S))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return run

    def _app_layout(self, app_id: str, function_def: api_pb2.Function) -> api_pb2.AppLayout:
        """The app's functions by tag, plus a handle for every object the function depends on."""
        app_layout = api_pb2.AppLayout()
        object_ids: list[str] = []
        for function_id, fn_app in self.state.function_app.items():
            if fn_app == app_id and function_id in self.state.functions:
                app_layout.function_ids[self.state.functions[function_id].function_name] = function_id
                object_ids.append(function_id)
        object_ids += [dep.object_id for dep in function_def.object_dependencies if dep.object_id not in object_ids]
        for object_id in object_ids:
            obj = api_pb2.Object(object_id=object_id)
            if object_id in self.state.handle_metadata:
                obj.function_handle_metadata.CopyFrom(self.state.handle_metadata[object_id])
            elif object_id in self.state.mounts:
                obj.mount_handle_metadata.content_checksum_sha256_hex = object_id
            app_layout.objects.append(obj)
        return app_layout

    async def _pump(self, run: ContainerRun, reader: asyncio.StreamReader, fd: int, attr: str) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            chunk = await reader.read(65536)
            text = decoder.decode(chunk, final=not chunk)
            if text:
                setattr(run, attr, getattr(run, attr) + text)
                await self.logs.write(run.app_id, text, fd=fd, task_id=run.task_id, function_id=run.function_id,
                                      input_id=run.call.input_id, function_call_id=run.call.call_id)
            if not chunk:
                return

    async def _watch(self, run: ContainerRun, timeout_s: float) -> None:
        proc = run.process
        assert proc is not None and proc.stdout is not None and proc.stderr is not None
        pumps = asyncio.gather(
            self._pump(run, proc.stdout, api_pb2.FILE_DESCRIPTOR_STDOUT, "stdout"),
            self._pump(run, proc.stderr, api_pb2.FILE_DESCRIPTOR_STDERR, "stderr"),
        )
        started = time.monotonic()
        try:
            await asyncio.wait_for(proc.wait(), timeout=timeout_s)
        except asyncio.TimeoutError:
            if not run.call.done.is_set():
                run.timed_out = True
            self._kill(run)
            await proc.wait()
        run.returncode = proc.returncode
        try:
            await asyncio.wait_for(pumps, timeout=5)
        except asyncio.TimeoutError:  # a grandchild holds the pipes open
            pass
        if not run.call.done.is_set():
            self._finish_without_output(run, time.monotonic() - started, timeout_s)
        run.exited.set()
        await self.logs.container_exited(run.app_id)

    def _finish_without_output(self, run: ContainerRun, elapsed: float, timeout_s: float) -> None:
        call = run.call
        if run.timed_out:
            result = api_pb2.GenericResult(
                status=api_pb2.GenericResult.GENERIC_STATUS_TIMEOUT,
                exception=f"Task's current input {call.input_id} hit its timeout of {timeout_s}s",
            )
        elif run.task_result is not None and run.task_result.status != api_pb2.GenericResult.GENERIC_STATUS_SUCCESS:
            result = run.task_result
        elif run.killed:
            result = api_pb2.GenericResult(
                status=api_pb2.GenericResult.GENERIC_STATUS_TERMINATED,
                exception=f"Container {run.task_id} was stopped before it returned a result",
            )
        else:
            result = api_pb2.GenericResult(
                status=api_pb2.GenericResult.GENERIC_STATUS_FAILURE,
                exception=(f"Container {run.task_id} exited with code {run.returncode} after {elapsed:.1f}s"
                           " without returning a result"),
            )
        self.state.finish(call, api_pb2.FunctionGetOutputsItem(
            result=result, input_id=call.input_id, task_id=run.task_id, data_format=api_pb2.DATA_FORMAT_PICKLE,
        ))

    def _kill(self, run: ContainerRun) -> None:
        if run.process is not None and run.process.returncode is None:
            run.killed = True
            try:
                os.killpg(run.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def finish_soon(self, run: ContainerRun, grace_s: float = 10.0) -> None:
        """After the output is in: give the container `grace_s` to exit on its own, then kill it."""
        try:
            await asyncio.wait_for(run.exited.wait(), timeout=grace_s)
        except asyncio.TimeoutError:
            self._kill(run)

    async def cancel_call(self, call_id: str) -> None:
        for run in list(self.runs.values()):
            if run.call.call_id == call_id:
                self._kill(run)

    async def stop_app(self, app_id: str, grace_s: float = 1.0) -> None:
        """Kill the app's containers that have not exited within `grace_s`, and wait for them."""
        runs = [r for r in self.runs.values() if r.app_id == app_id]
        if runs:
            _, pending = await asyncio.wait([asyncio.ensure_future(r.exited.wait()) for r in runs], timeout=grace_s)
            for run in runs:
                if not run.exited.is_set():
                    self._kill(run)
            for future in pending:
                await future

    async def close(self) -> None:
        """Kill every container and wait for the watchers to finish."""
        for run in self.runs.values():
            self._kill(run)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=10)
