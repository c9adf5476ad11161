"""Where an ssh run goes: ``[user@]HOST[:PORT]`` merged with `SshConfig`."""

from __future__ import annotations

import re

import attrs

from .config import SshConfig
from .errors import ConfigError

_NAME = re.compile(r"[A-Za-z0-9_.%-]+")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")


@attrs.frozen
class SshTarget:
    host: str  # hostname, address or ~/.ssh/config alias
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        text = f"{self.user}@{self.host}" if self.user else self.host
        return f"{text}:{self.port}" if self.port else text


def parse_target(text: str, config: SshConfig | None = None) -> SshTarget:
    """Parse ``[user@]host[:port]`` (``[v6addr]:port`` too); SshConfig's user/port win."""
    original = text
    user = None
    if "@" in text:
        user, _, text = text.rpartition("@")
        if not _USER.fullmatch(user):
            raise ConfigError(f"host {original!r}: {user!r} is not a login name")
    port = None
    if text.startswith("["):
        host, close, rest = text[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise ConfigError(f"host {original!r} is not [user@]HOST[:PORT]")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, None
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ConfigError(f"host {original!r}: {port_text!r} is not a port number")
        port = int(port_text)
    if not host or not (_NAME.fullmatch(host) or ":" in host):
        raise ConfigError(f"host {original!r} is not [user@]HOST[:PORT] or an ssh alias")
    if config is not None:
        user = config.user or user
        port = config.port or port
    return SshTarget(host, user, port)
