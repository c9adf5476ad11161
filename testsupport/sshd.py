"""Throwaway sshd boxes for the tests, per shared/spec/real-parts.md.

`start_boxes()` makes (as root, with sshd, ssh and rsync installed):
- a key pair and a client config with one alias per box, used through an
  ``ssh`` wrapper first on PATH (OpenSSH ignores $HOME for its config; rsync's
  ``-e ssh`` goes through the wrapper too);
- a non-root user ``runplz`` with passwordless sudo (like a cloud box),
  in the ``docker`` group;
- box "near": sshd on 127.0.0.1 (a free port), alias ``runplz-near``;
- box "far": sshd inside its own network namespace at 10.200.1.2, reached over
  a veth pair, alias ``runplz-far``; its link can be cut and restored.
Each sshd logs to its own file, so tests can count accepted connections.
"""

from __future__ import annotations

import fnmatch
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time

import attrs

USER = "runplz"
NETNS = "runplz-far"
HOST_VETH, BOX_VETH = "rpzfar0", "rpzfar1"
HOST_ADDR, BOX_ADDR = "10.200.1.1", "10.200.1.2"


@attrs.define
class Box:
    alias: str
    address: str
    port: int
    log: str
    pidfile: str
    netns: str | None = None

    def accepted(self) -> int:
        """How many connections sshd has accepted so far."""
        try:
            with open(self.log, errors="replace") as handle:
                return sum("Accepted publickey" in line for line in handle)
        except FileNotFoundError:
            return 0

    def pid(self) -> int | None:
        try:
            with open(self.pidfile) as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            return None

    def link(self, up: bool) -> None:
        subprocess.run(["ip", "link", "set", HOST_VETH, "up" if up else "down"], check=True)


@attrs.define
class Boxes:
    workdir: str
    wrapper_dir: str
    config: str
    key: str
    near: Box
    far: Box | None
    user_home: str
    env: dict = attrs.field(factory=dict)  # what every ssh session on the boxes gets

    @property
    def keys_dir(self) -> str:
        """Where sshd finds each user's authorized keys (one file per user)."""
        return os.path.join(self.workdir, "authorized")

    def include(self, path: str) -> None:
        """Make the wrapper's client config read ``path`` first (an ``Include`` at its
        top, so its Host blocks win; the ``Host *`` defaults still apply). Idempotent."""
        line = f"Include {path}\n"
        with open(self.config) as handle:
            text = handle.read()
        if line not in text:
            with open(self.config, "w") as handle:
                handle.write(line + text)

    def exclude(self, path: str) -> None:
        """Undo `include`."""
        with open(self.config) as handle:
            text = handle.read()
        with open(self.config, "w") as handle:
            handle.write(text.replace(f"Include {path}\n", ""))

    def ssh(self, alias: str, *command: str, user: str | None = None) -> subprocess.CompletedProcess:
        argv = [os.path.join(self.wrapper_dir, "ssh"), "-T", "-o", "StrictHostKeyChecking=accept-new"]
        if user:
            argv += ["-l", user]
        return subprocess.run([*argv, alias, *command], capture_output=True, text=True, timeout=60)

    def add_user(self, name: str, shell: str = "/bin/bash") -> str:
        """Another login on the boxes (same key), made if missing, with ``shell``
        as its login shell; in no extra group (not ``docker``). Returns its home."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            subprocess.run(["useradd", "-m", "-s", shell, name], check=True)
            subprocess.run(["usermod", "-p", "*", name], check=True)
            entry = pwd.getpwnam(name)
        if entry.pw_shell != shell:
            subprocess.run(["usermod", "-s", shell, name], check=True)
        shutil.copyfile(os.path.join(self.workdir, "authorized", USER), os.path.join(self.workdir, "authorized", name))
        return entry.pw_dir

    def allow_sudo(self, name: str, allowed: bool = True) -> None:
        """Give ``name`` passwordless sudo for everything (like a cloud box's
        user), or take it away. sudo resets the environment: the tests' dockerd
        is not on the default socket, so DOCKER_HOST crosses sudo only when the
        caller passes it on (runplz does, with --preserve-env)."""
        path = f"/etc/sudoers.d/{name}"
        if not allowed:
            if os.path.exists(path):
                os.unlink(path)
            return
        with open(path, "w") as handle:
            handle.write(f"{name} ALL=(ALL) NOPASSWD:ALL\n")
        os.chmod(path, 0o440)

    def limited_shell(self, label: str, without: tuple[str, ...]) -> str:
        """A login shell whose PATH is a folder of links to what /usr/bin and /bin
        hold, except the names matching the patterns ``without`` (fnmatch, e.g.
        ``"python3*"``); returns the shell's path (usable by any user)."""
        folder = os.path.join(self.workdir, f"limited-{label}")
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(os.path.join(folder, "bin"))
        for source in ("/usr/bin", "/bin"):
            for name in sorted(os.listdir(source)):
                link = os.path.join(folder, "bin", name)
                if any(fnmatch.fnmatch(name, pattern) for pattern in without) or os.path.lexists(link):
                    continue
                os.symlink(os.path.join(source, name), link)
        shell = os.path.join(folder, "shell")
        with open(shell, "w") as handle:
            handle.write(f'#!/bin/sh\nPATH={folder}/bin; export PATH\nexec /bin/sh "$@"\n')
        os.chmod(shell, 0o755)
        for path in (folder, os.path.join(folder, "bin")):
            os.chmod(path, 0o755)
        return shell

    def stop(self) -> None:
        for box in (self.near, self.far):
            if box is None:
                continue
            pid = box.pid()
            if pid:
                try:
                    os.kill(pid, 15)
                except ProcessLookupError:
                    pass
        if self.far is not None:
            subprocess.run(["ip", "link", "del", HOST_VETH], capture_output=True)
            subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ensure_user() -> str:
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "-m", "-s", "/bin/bash", USER], check=True)
        subprocess.run(["usermod", "-p", "*", USER], check=True)
        entry = pwd.getpwnam(USER)
    subprocess.run(["groupadd", "-f", "docker"], check=True)
    subprocess.run(["usermod", "-aG", "docker", USER], check=True)
    with open(f"/etc/sudoers.d/{USER}", "w") as handle:
        handle.write(f"{USER} ALL=(ALL) NOPASSWD:ALL\n")
    os.chmod(f"/etc/sudoers.d/{USER}", 0o440)
    return entry.pw_dir


def _sshd_config(workdir: str, name: str, address: str, port: int, keys_dir: str, env: dict[str, str]) -> tuple[str, str, str]:
    host_key = os.path.join(workdir, f"{name}_host_key")
    if not os.path.exists(host_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", host_key], check=True)
    log = os.path.join(workdir, f"{name}.log")
    pidfile = os.path.join(workdir, f"{name}.pid")
    lines = [
        f"Port {port}",
        f"ListenAddress {address}",
        f"HostKey {host_key}",
        f"PidFile {pidfile}",
        f"AuthorizedKeysFile {keys_dir}/%u",
        "StrictModes no",
        "UsePAM no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "MaxStartups 100:30:200",
        "MaxSessions 50",
        "LogLevel INFO",
        "AcceptEnv LANG LC_*",
    ]
    if env:
        lines.append("SetEnv " + " ".join(f"{k}={v}" for k, v in env.items()))
    conf = os.path.join(workdir, f"{name}_sshd_config")
    with open(conf, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return conf, log, pidfile


_free_port = free_port


def start_sshd(workdir: str, name: str, port: int, keys_dir: str, env: dict[str, str]) -> tuple[str, str, str]:
    """Start one more sshd on 127.0.0.1:``port`` (files named after ``name`` in
    ``workdir``); returns (error or "", log, pidfile)."""
    conf, log, pidfile = _sshd_config(workdir, name, "127.0.0.1", port, keys_dir, env)
    started = subprocess.run(["/usr/sbin/sshd", "-f", conf, "-E", log], capture_output=True, text=True)
    if started.returncode != 0 or not _wait_port("127.0.0.1", port, None):
        return f"sshd did not start: {started.stderr.strip()}", log, pidfile
    return "", log, pidfile


def _wait_port(address: str, port: int, netns: str | None) -> bool:
    deadline = time.monotonic() + 10
    probe = ["python3", "-c", f"import socket; socket.create_connection(('{address}', {port}), 1)"]
    if netns:
        probe = ["ip", "netns", "exec", netns, *probe]
    while time.monotonic() < deadline:
        if subprocess.run(probe, capture_output=True).returncode == 0:
            return True
        time.sleep(0.05)
    return False


def _make_far(workdir: str, keys_dir: str, env: dict[str, str]) -> Box | None:
    subprocess.run(["ip", "link", "del", HOST_VETH], capture_output=True)
    subprocess.run(["ip", "netns", "del", NETNS], capture_output=True)
    steps = [
        ["ip", "netns", "add", NETNS],
        ["ip", "link", "add", HOST_VETH, "type", "veth", "peer", "name", BOX_VETH],
        ["ip", "link", "set", BOX_VETH, "netns", NETNS],
        ["ip", "addr", "add", f"{HOST_ADDR}/30", "dev", HOST_VETH],
        ["ip", "link", "set", HOST_VETH, "up"],
        ["ip", "netns", "exec", NETNS, "ip", "addr", "add", f"{BOX_ADDR}/30", "dev", BOX_VETH],
        ["ip", "netns", "exec", NETNS, "ip", "link", "set", BOX_VETH, "up"],
        ["ip", "netns", "exec", NETNS, "ip", "link", "set", "lo", "up"],
    ]
    for step in steps:
        if subprocess.run(step, capture_output=True).returncode != 0:
            return None
    conf, log, pidfile = _sshd_config(workdir, "far", BOX_ADDR, 22, keys_dir, env)
    if subprocess.run(["ip", "netns", "exec", NETNS, "/usr/sbin/sshd", "-f", conf, "-E", log]).returncode != 0:
        return None
    if not _wait_port(BOX_ADDR, 22, NETNS):
        return None
    return Box("runplz-far", BOX_ADDR, 22, log, pidfile, NETNS)


def start_boxes(env: dict[str, str] | None = None) -> tuple[Boxes | None, str]:
    """Start the boxes; returns (boxes, reason-if-none). ``env`` is set in every ssh session."""
    if os.geteuid() != 0:
        return None, "the sshd boxes need root (scripts/test.sh runs as root in CI)"
    for tool in ("/usr/sbin/sshd", shutil.which("ssh"), shutil.which("rsync"), shutil.which("ssh-keygen")):
        if not tool or not os.path.exists(tool):
            return None, "openssh-server, openssh-client and rsync are needed (scripts/test.sh installs them)"
    env = dict(env or {})
    home = _ensure_user()
    os.makedirs("/run/sshd", exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="runplz-sshd-")
    os.chmod(workdir, 0o755)
    key = os.path.join(workdir, "id_ed25519")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    keys_dir = os.path.join(workdir, "authorized")
    os.makedirs(keys_dir)
    public = open(key + ".pub").read()
    for user in ("root", USER):
        with open(os.path.join(keys_dir, user), "w") as handle:
            handle.write(public)
    port = free_port()
    error, log, pidfile = start_sshd(workdir, "near", port, keys_dir, env)
    if error:
        return None, error
    near = Box("runplz-near", "127.0.0.1", port, log, pidfile)
    far = _make_far(workdir, keys_dir, env)
    config = os.path.join(workdir, "ssh_config")
    known = os.path.join(workdir, "known_hosts")
    blocks = [
        f"Host runplz-near\n  HostName 127.0.0.1\n  Port {port}\n  User {USER}\n",
        f"Host runplz-far\n  HostName {BOX_ADDR}\n  Port 22\n  User {USER}\n",
        f"Host *\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n"
        "  ConnectTimeout 5\n  LogLevel ERROR\n",
    ]
    with open(config, "w") as handle:
        handle.write("\n".join(blocks))
    wrapper_dir = os.path.join(workdir, "bin")
    os.makedirs(wrapper_dir)
    real_ssh = shutil.which("ssh")
    with open(os.path.join(wrapper_dir, "ssh"), "w") as handle:
        handle.write(f'#!/bin/sh\nexec {real_ssh} -F {config} "$@"\n')
    os.chmod(os.path.join(wrapper_dir, "ssh"), 0o755)
    return Boxes(workdir, wrapper_dir, config, key, near, far, home, env), ""
