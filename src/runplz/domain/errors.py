"""The one error tree of runplz.

`UsageError` marks a user mistake: the CLI prints its message on one line and
exits 2. `ConfigError` is also a `ValueError`, the type the public API promises
for invalid configs and decorations.
"""

from __future__ import annotations


class RunplzError(Exception):
    """Base of every error runplz raises on purpose."""


class UsageError(RunplzError):
    """The user asked for something invalid (bad flag, bad value, bad script)."""


class ConfigError(UsageError, ValueError):
    """An invalid config, decoration or Image; raised eagerly, names the field."""


class ImageMissing(ConfigError, TypeError):
    """``@app.function`` without a usable ``image=`` (the seed raised `TypeError`)."""


class ArgumentError(UsageError, TypeError):
    """``.remote()`` arguments JSON cannot carry (the seed raised `TypeError`)."""


class NoBackend(UsageError, RuntimeError):
    """``.remote()`` before any backend was bound (the seed raised `RuntimeError`)."""


class DirectCall(UsageError, TypeError, RuntimeError):
    """A runplz Function called directly instead of ``.remote()`` / ``.local()``."""


class ScriptError(UsageError):
    """The job script could not be loaded or holds no usable App."""


class NotBuiltError(UsageError):
    """A backend that exists in the CLI but is not implemented yet."""


class CommandError(RunplzError):
    """An external command could not be run as asked."""

    def __init__(self, message: str, argv: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.argv = tuple(argv)


class CommandNotFound(CommandError):
    """The executable does not exist on this machine."""


class CommandTimeout(CommandError):
    """The command ran past its time limit and was killed."""


class TransportError(RunplzError):
    """Talking to a remote machine failed; the message names the machine."""


class Unreachable(TransportError):
    """The machine did not answer within the wait allowed."""


class ConnectionLost(TransportError):
    """The connection broke while a command ran."""


class NoSpaceLeft(TransportError):
    """The target's disk is full; the message says how much is free where."""


def says_no_space(text: str) -> bool:
    """Whether a tool's or an exception's words mean a full disk (ENOSPC)."""
    text = text.lower()
    return "no space left on device" in text or "errno 28" in text or "os error 28" in text


class EngineUnavailable(RunplzError):
    """The container engine (Docker) is not installed or not answering."""


class ContainerError(RunplzError):
    """A container could not be started."""


class GpuUnavailable(ContainerError):
    """GPUs were asked of an engine that cannot provide them."""


class BuildError(RunplzError):
    """An image or environment could not be built."""


class ServiceError(RunplzError):
    """A hosted service (Modal) refused the run or could not be reached; one line."""


class ServiceUnreachable(ServiceError):
    """The service did not answer: no network, a wrong server URL, an outage."""


class ServiceAuthError(ServiceError):
    """The service refused our credentials (no token, a revoked token)."""


class MissingExtra(RunplzError):
    """A backend's optional package is not installed; the message names the pip extra."""


class RunTimeout(RunplzError, RuntimeError):
    """The function ran past its timeout and was stopped."""


class ProtocolError(RunplzError):
    """A dispatch payload or result record could not be read."""


class RemoteError(RunplzError, RuntimeError):
    """The function raised (or its process died) on the backend.

    Carries the remote exception's type name, message and traceback text and
    the process exit code, so the caller sees what happened over there.

    ``index`` is set when the call was one input of a ``.map()``: the input's
    position (counted from 0); the message then starts "input N: ".
    """

    def __init__(
        self, remote_type: str, message: str, traceback: str, exit_code: int, index: int | None = None
    ) -> None:
        text = f"{remote_type}: {message}" if message else remote_type
        super().__init__(text if index is None else f"input {index}: {text}")
        self.remote_type = remote_type
        self.remote_message = message
        self.remote_traceback = traceback
        self.exit_code = exit_code
        self.index = index

    def at_index(self, index: int) -> "RemoteError":
        """The same failure, as input ``index`` of a map."""
        return RemoteError(self.remote_type, self.remote_message, self.remote_traceback, self.exit_code, index)


class MapStopped(RunplzError, RuntimeError):
    """A ``.map()`` was stopped from outside (its App done or rebound, a stop from
    another thread) before giving all its results; raised at the caller's next
    ``next()``."""


class ItemCancelled(KeyboardInterrupt):
    """A ``.map()`` input stopped (or never started) because the map was cancelled:
    another input failed, the driver was interrupted, or the caller stopped
    iterating. An interrupt, so a run's record ends "interrupted"; the fan-out
    consumes it and never lets it reach the caller.
    """


class RunplzWarning(UserWarning):
    """Base of the warnings runplz gives through Python's `warnings` module."""


class StandInWarning(RunplzWarning):
    """Part of a return value JSON cannot carry came back as a stand-in (its ``repr``)."""
