"""The brev emulator's instances as real sshd boxes (test infrastructure).

Each instance is its own sshd on 127.0.0.1 (a free port, the same login user
and key as the tests' other boxes). Stopping or deleting one kills its sshd and
every process its sessions started (found by parentage and by a marker
variable each session gets), so a stopped box is really gone. ``refresh``
writes ``<root>/ssh_config`` with ``Host NAME`` and ``Host NAME-host`` per
instance, shaped like the real CLI's (RequestTTY yes, ControlMaster auto).
Without sshd settings in ``<root>/config.json`` instances have no box.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time

MARKER = "RUNPLZ_BREV_EMU_BOX"


def settings(root: str) -> dict | None:
    try:
        with open(os.path.join(root, "config.json")) as handle:
            return json.load(handle).get("sshd")
    except FileNotFoundError:
        return None


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.5):
            return True
    except OSError:
        return False


def start(root: str, name: str, marker: str, port_hint: int | None) -> int | None:
    """Start the box of instance ``name``; returns its port (None: no sshd configured)."""
    conf = settings(root)
    if not conf:
        return None
    from testsupport import sshd

    port = port_hint if port_hint and not _answers(port_hint) else sshd.free_port()
    workdir = os.path.join(root, "boxes")
    os.makedirs(workdir, exist_ok=True)
    env = {**conf.get("env", {}), MARKER: marker}
    error, _, _ = sshd.start_sshd(workdir, name, port, conf["keys_dir"], env)
    if error:
        raise RuntimeError(f"emulated box {name}: {error}")
    return port


def _processes() -> dict[int, int]:
    """pid -> parent pid, for every process."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return parents


def _marked(pid: int, tag: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return tag in handle.read().split(b"\0")
    except OSError:
        return False


def stop(root: str, name: str, marker: str, port: int | None) -> None:
    """Kill the box of instance ``name`` and everything its sessions started."""
    pidfile = os.path.join(root, "boxes", f"{name}.pid")
    try:
        with open(pidfile) as handle:
            listener = int(handle.read().strip())
    except (OSError, ValueError):
        listener = None
    parents = _processes()
    doomed: set[int] = set()
    if listener in parents:
        frontier = [listener]
        while frontier:
            pid = frontier.pop()
            doomed.add(pid)
            frontier += [child for child, parent in parents.items() if parent == pid and child not in doomed]
    tag = f"{MARKER}={marker}".encode()
    doomed |= {pid for pid in parents if _marked(pid, tag)}
    doomed.discard(os.getpid())
    for pid in sorted(doomed):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    deadline = time.monotonic() + 5
    while port and _answers(port) and time.monotonic() < deadline:
        time.sleep(0.02)


def write_ssh_config(root: str, instances: dict) -> str:
    conf = settings(root) or {}
    user = conf.get("user", "runplz")
    blocks = []
    for name in sorted(instances):
        port = instances[name].get("port") or 1  # no sshd: nothing answers there
        for alias in (name, f"{name}-host"):
            lines = [f"Host {alias}", "  HostName 127.0.0.1", f"  Port {port}", f"  User {user}"]
            if conf.get("key"):
                lines += [f"  IdentityFile {conf['key']}", "  IdentitiesOnly yes"]
            lines += [
                "  UserKnownHostsFile /dev/null",
                "  StrictHostKeyChecking no",
                "  ServerAliveInterval 30",
                "  RequestTTY yes",
                "  ControlMaster auto",
                "  ControlPath /tmp/runplz-brev-emu-%C",
                "  LogLevel ERROR",
            ]
            blocks.append("\n".join(lines) + "\n")
    path = os.path.join(root, "ssh_config")
    with open(path + ".tmp", "w") as handle:
        handle.write("\n".join(blocks))
    os.replace(path + ".tmp", path)
    return path
