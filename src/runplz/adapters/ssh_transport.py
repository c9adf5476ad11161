"""`Transport` over OpenSSH and rsync, all riding one private ControlMaster.

The master has its own ControlPath in a private temp folder (never the
user's shared one). Every later ssh and rsync call goes through it; if the
master is gone they fail fast (``ProxyCommand=false``) instead of quietly
opening a connection of their own. The master ends itself after
`PERSIST_SECONDS` without a session, so a driver killed with -9 leaves no
connection behind for long; the next transport sweeps its empty folder.
"""

from __future__ import annotations

import fcntl
import glob
import os
import posixpath
import re
import shlex
import shutil
import tempfile
import time
from typing import Callable, Sequence

from ..domain.errors import (
    CommandNotFound,
    CommandTimeout,
    ConnectionLost,
    NoSpaceLeft,
    TransportError,
    Unreachable,
    says_no_space,
)
from ..domain.host import SshTarget
from ..ports.clock import Clock
from ..ports.command_runner import CommandResult, CommandRunner, Input
from ..ports.transport import Pulled

PERSIST_SECONDS = 30
_EARLY_ATTEMPTS = {1: 5, 2: 10}  # ConnectTimeout of the first attempts while a wait has time left
CONNECT_TIMEOUT = 15  # ssh's ConnectTimeout for the master (`runplz ps` uses less: its checks have a budget)
_PREFIX = "runplz-ssh-"
_FATAL = (
    "permission denied",
    "host key verification failed",
    "remote host identification has changed",
    "could not resolve hostname",
    "no such file or directory",
    "bad configuration option",
    "too many authentication failures",
)
# ssh's own usage and config errors: final, wherever they appear in its output.
_USAGE = (
    "usage: ssh",
    "illegal option",
    "unknown option",
    "invalid option",
    "bad port",
    "no argument after keyword",
    "missing argument",
    "garbage at end of line",
    "terminating, ",
)
_PACKAGES = {"rsync": "rsync", "ssh": "openssh-client"}  # what to install when a tool is missing here
_LINKED = "runplz: the folder is a symlink on the box; not following it"
_IN_THE_WAY = re.compile(r'^could not make way for new [a-z ]+: (.*)$')
_UNSAFE = re.compile(r'^ignoring unsafe symlink "(.*)" -> "(.*)"$')
_NONREG = re.compile(r'^skipping non-regular file "(.*)"$')
_UNREADABLE = re.compile(r'^rsync: \[sender\] send_files failed to open "(.*)": (.*)$')
_RSYNC_EXIT = {
    1: "syntax or usage error",
    2: "protocol incompatibility",
    3: "errors selecting input/output files or folders",
    5: "error starting the rsync protocol",
    10: "socket I/O error",
    11: "file I/O error",
    12: "protocol data stream error",
    23: "some files could not be transferred",
    24: "some source files vanished",
    30: "timeout in data send/receive",
    35: "timeout waiting for daemon connection",
}


def _last(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _sweep(folder: str, older_than: float = 120.0) -> None:
    """Remove this user's master folders that no live transport holds (a driver
    killed with -9): each transport keeps a lock on its folder while it lives."""
    now = time.time()
    for path in glob.glob(os.path.join(folder, _PREFIX + "*")):
        try:
            info = os.lstat(path)
            if info.st_uid != os.getuid() or now - info.st_mtime < older_than:
                continue
            with open(os.path.join(path, "lock"), "a") as handle:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live transport
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue


def _only_unreadable(stderr: str) -> bool:
    """A partial download (rsync exit 23/24) that only left out files the box
    would not let us read, or that vanished: what did arrive is whole."""
    problems = [line.strip() for line in stderr.splitlines() if line.strip().startswith("rsync")]
    return bool(problems) and all(
        _UNREADABLE.match(line) or "vanished" in line or line.startswith("rsync error: some files")
        for line in problems
    )


def _bytes(stats: str, label: str) -> int:
    match = re.search(rf"{label}:\s*([\d,.]+)", stats)
    return int(match.group(1).replace(",", "").replace(".", "")) if match else 0


class SshTransport:
    def __init__(
        self,
        runner: CommandRunner,
        clock: Clock,
        target: SshTarget,
        *,
        ssh: str = "ssh",
        rsync: str = "rsync",
        connect_timeout: int = CONNECT_TIMEOUT,
    ) -> None:
        self._connect_timeout = max(1, int(connect_timeout))
        self._runner = runner
        self._clock = clock
        self._target = target
        self._ssh = ssh
        self._rsync = rsync
        self._folder: str | None = None
        self._lock = None  # held while this transport lives; see _sweep
        self.name = str(target)

    @property
    def control_path(self) -> str:
        if self._folder is None:
            _sweep(tempfile.gettempdir())
            self._folder = tempfile.mkdtemp(prefix=_PREFIX)
            self._lock = open(os.path.join(self._folder, "lock"), "w")
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        return os.path.join(self._folder, "master")

    def _options(self, master: bool = False, connect_timeout: int | None = None) -> list[str]:
        options = [
            "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=accept-new",
            "-o", f"ControlPath={self.control_path}",
            "-o", "ServerAliveInterval=5",
            "-o", "ServerAliveCountMax=3",
        ]
        if master:
            options += [
                "-o", "ControlMaster=yes", "-o", f"ControlPersist={PERSIST_SECONDS}",
                "-o", f"ConnectTimeout={connect_timeout or self._connect_timeout}",
            ]
        else:
            options += ["-o", "ControlMaster=no", "-o", "ProxyCommand=false"]
        if self._target.port:
            options += ["-p", str(self._target.port)]
        if self._target.user:
            options += ["-l", self._target.user]
        return options

    def _call(self, argv: list[str], **kwargs) -> CommandResult:
        try:
            return self._runner.run(argv, **kwargs)
        except CommandNotFound:
            tool = os.path.basename(argv[0])
            package = _PACKAGES.get(tool)
            hint = f" (Debian/Ubuntu: sudo apt-get install {package})" if package else ""
            raise TransportError(
                f"{tool} is not installed on this machine (needed to reach {self.name}); install it{hint}"
            ) from None

    def connect(self, wait: float = 0) -> None:
        deadline = self._clock.monotonic() + max(0.0, wait)
        delay, attempt = 0.5, 0
        while True:
            if self.alive():
                return
            if os.path.exists(self.control_path):
                os.unlink(self.control_path)  # a stale socket of a master that died
            attempt += 1
            options = self._options(master=True, connect_timeout=self._attempt_timeout(attempt, deadline))
            result = self._call([self._ssh, *options, "-N", "-f", self._target.host], timeout=120)
            if result.exit_code == 0:
                return
            reason = _last(result.stderr) or f"ssh exited {result.exit_code}"
            found = next((line for line in result.stderr.splitlines() if any(t in line.lower() for t in _USAGE)), None)
            if found is None and any(text in reason.lower() for text in _FATAL):
                found = reason
            if found is not None:
                raise TransportError(f"ssh to {self.name} failed: {found.strip()}")
            left = deadline - self._clock.monotonic()
            if left <= 0:
                raise Unreachable(f"{self.name} did not answer ssh within {wait:g}s: {reason}")
            self._clock.sleep(min(delay, left))
            delay = min(delay * 2, 10.0)

    def _attempt_timeout(self, attempt: int, deadline: float) -> int:
        """ssh's ConnectTimeout for this attempt. While waiting for a box that may
        still be booting (its address drops packets until it is up), the first
        attempts give up sooner (5 s, then 10 s) so a box that comes up is reached
        within seconds, not after a whole timeout; the last attempt, and every
        attempt once the early ones failed, get the full timeout."""
        left = deadline - self._clock.monotonic()
        early = _EARLY_ATTEMPTS.get(attempt)
        if early is None or left <= early:
            return self._connect_timeout
        return min(early, self._connect_timeout)

    def alive(self) -> bool:
        if self._folder is None or not os.path.exists(self.control_path):
            return False
        check = self._call([self._ssh, *self._options(), "-O", "check", self._target.host], timeout=30)
        return check.exit_code == 0

    def close(self) -> None:
        if self._folder is None:
            return
        if os.path.exists(self.control_path):
            self._call([self._ssh, *self._options(), "-O", "exit", self._target.host], timeout=30)
        shutil.rmtree(self._folder, ignore_errors=True)
        self._folder = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _lost_or(self, result: CommandResult, what: str) -> None:
        if not self.alive():
            raise ConnectionLost(f"lost the connection to {self.name} during {what}: {_last(result.stderr)}")

    def run(
        self,
        argv: Sequence[str],
        *,
        input: Input = None,
        timeout: float | None = None,
        on_output: Callable[[bytes], None] | None = None,
    ) -> CommandResult:
        remote = " ".join(shlex.quote(str(a)) for a in argv)
        result = self._call(
            [self._ssh, *self._options(), "-T", self._target.host, remote],
            input=input, timeout=timeout, on_output=on_output,
        )
        if result.exit_code == 255:
            self._lost_or(result, f"`{shlex.join(argv)[:60]}`")
        return CommandResult(tuple(argv), result.exit_code, result.stdout, result.stderr)

    def _ssh_command(self) -> str:
        return " ".join(shlex.quote(part) for part in [self._ssh, *self._options()])

    def _remote(self, path: str) -> str:
        host = self._target.host
        return f"[{host}]:{path}" if ":" in host else f"{host}:{path}"

    def _rsync_call(
        self, argv: list[str], what: str, data: bytes | None = None, *, pulling: bool = False
    ) -> CommandResult:
        try:
            result = self._call(argv, timeout=None, input=data)
        except CommandTimeout:
            raise TransportError(f"{what} timed out") from None
        if result.exit_code == 0 or (pulling and result.exit_code in (23, 24) and _only_unreadable(result.stderr)):
            return result
        if result.exit_code in (255, 12, 10):
            self._lost_or(result, what)
        text = result.stderr + result.stdout
        if _LINKED in text:
            raise TransportError(f"{what} failed: it is a symlink on {self.name} (the job replaced it); not following it")
        reason = _last(result.stderr) or _RSYNC_EXIT.get(result.exit_code, "")
        if "command not found" in text or "rsync: not found" in text:
            raise TransportError(
                f"{self.name} has no rsync; install it there (Debian/Ubuntu: sudo apt-get install rsync)"
            )
        elif says_no_space(text):
            raise NoSpaceLeft(f"{what} failed: no space left on {'this machine' if pulling else self.name}")
        elif "protocol" in text.lower() and result.exit_code in (2, 12):
            reason += (
                f"; does {self.name} print text for non-interactive logins (a banner in "
                "~/.bashrc)? rsync cannot work through that"
            )
        raise TransportError(f"{what} failed (rsync exit {result.exit_code}): {reason}")

    def push(
        self, local: str, remote: str, paths: Sequence[str] | None = None, basis: str | None = None
    ) -> int:
        remote = remote.rstrip("/")
        prepare = f"mkdir -p {shlex.quote(remote)}"
        if basis:
            # A shared lock on the basis for the whole transfer: the box refreshes it
            # (agent start) under the exclusive one, never while a copy reads it.
            lock = shlex.quote(basis.rstrip("/") + ".lock")
            prepare += (
                f" && mkdir -p {shlex.quote(posixpath.dirname(basis.rstrip('/')) or '.')} && exec 9>>{lock}"
                " && { ! command -v flock >/dev/null 2>&1 || flock -s 9; }"
            )
        argv = [
            self._rsync, "-ltcE", "--safe-links", "--no-devices", "--no-specials", "--stats",
            "-e", self._ssh_command(), f"--rsync-path={prepare} && rsync",
        ]
        if basis:
            argv.append(f"--copy-dest={basis if basis.startswith('/') else posixpath.relpath(basis, remote)}")
        data = None
        if paths is None:
            argv.append("-r")
        else:
            argv += ["--from0", "--files-from=-"]
            data = b"".join(path.encode("utf-8", "surrogateescape") + b"\0" for path in paths)
        argv += [local.rstrip("/") + "/", self._remote(remote + "/")]
        result = self._rsync_call(argv, f"uploading {local} to {self.name}:{remote}", data)
        return _bytes(result.stdout, "Total bytes sent")

    def pull(self, remote: str, local: str, move: bool = False) -> Pulled:
        os.makedirs(local, exist_ok=True)
        argv = [
            self._rsync, "-rltcv", "-O", "--safe-links", "-E", "--no-perms", "--no-owner", "--no-group",
            "--no-devices", "--no-specials", "--chmod=Du+rwx,Fu+rw", "--stats", "-e", self._ssh_command(),
            # never through a link put where the folder was: that would bring (and
            # with ``move`` delete) whatever it points at
            f"--rsync-path=test -L {shlex.quote(remote.rstrip('/'))} && {{ echo {shlex.quote(_LINKED)} >&2; exit 1; }}; rsync",
            *(["--remove-source-files"] if move else []),
            self._remote(remote.rstrip("/") + "/"), local.rstrip("/") + "/",
        ]
        what = f"downloading {self.name}:{remote}"
        result = self._rsync_call(argv, what, pulling=True)
        dropped = []
        root = remote.rstrip("/") + "/"
        for line in (result.stdout + result.stderr).splitlines():
            line = line.strip()
            unsafe, special, unreadable = _UNSAFE.match(line), _NONREG.match(line), _UNREADABLE.match(line)
            if unsafe:
                dropped.append((unsafe.group(1), "a link that points outside the outputs"))
            elif special:
                dropped.append((special.group(1), "not a regular file"))
            elif _IN_THE_WAY.match(line):
                dropped.append((_IN_THE_WAY.match(line).group(1), "a folder of that name is already in the outputs"))
            elif unreadable:
                path = unreadable.group(1)
                path = path.split("/" + root, 1)[-1] if ("/" + root) in path else path
                dropped.append((path, f"could not be read on {self.name}: {unreadable.group(2)}"))
        return Pulled(_bytes(result.stdout, "Total bytes received"), tuple(dropped))
