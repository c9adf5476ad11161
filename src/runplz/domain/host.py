"""Where an ssh run goes: ``[user@]HOST[:PORT]`` merged with `SshConfig`.

The host string ends up as an ssh argument, so the parser refuses anything ssh
could read as an option (a leading '-'), whitespace, control characters, and
brackets around anything but an IPv6 literal.
"""

from __future__ import annotations

import ipaddress
import re

import attrs

from .config import SshConfig
from .errors import ConfigError

_NAME = re.compile(r"[A-Za-z0-9_.%][A-Za-z0-9_.%-]*")
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_PORT = re.compile(r"[0-9]{1,5}")
_ZONE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_FORM = "[USER@]HOST[:PORT], [USER@][IPV6]:PORT or an ssh alias"


@attrs.frozen
class SshTarget:
    host: str  # hostname, address or ~/.ssh/config alias
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if self.port and ":" in self.host else self.host
        text = f"{self.user}@{host}" if self.user else host
        return f"{text}:{self.port}" if self.port else text


def parse_target(text: str, config: SshConfig | None = None) -> SshTarget:
    """Parse ``[user@]host[:port]`` (``[v6addr]:port`` too); SshConfig's user/port win.

    Every malformed or option-like value raises `ConfigError`.
    """
    if not isinstance(text, str) or not text:
        raise ConfigError(f"host must be {_FORM}; got {text!r}")
    if any(c.isspace() or not c.isprintable() for c in text):
        raise ConfigError(f"host {text!r} holds whitespace or a control character")
    user, host_port = _split_user(text)
    host, port = _split_port(text, host_port)
    if config is not None:
        user = config.user or user
        port = config.port or port
    return SshTarget(host, user, port)


def _split_user(text: str) -> tuple[str | None, str]:
    if "@" not in text:
        return None, text
    user, _, rest = text.rpartition("@")
    if user.startswith("-"):
        raise ConfigError(f"host {text!r}: the login name may not start with '-' (ssh would read an option)")
    if not _USER.fullmatch(user):
        raise ConfigError(f"host {text!r}: {user!r} is not a login name")
    return user, rest


def _split_port(original: str, text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        inner, close, rest = text[1:].partition("]")
        if not close or (rest and not rest.startswith(":")):
            raise ConfigError(f"host {original!r} is not {_FORM}")
        if not _ipv6(inner):
            raise ConfigError(f"host {original!r}: brackets are only for IPv6 addresses; {inner!r} is not one")
        return inner, _port(original, rest[1:]) if rest else None
    colons = text.count(":")
    if colons > 1:
        if not _ipv6(text):
            raise ConfigError(
                f"host {original!r} is not a valid IPv6 address; write [ADDRESS]:PORT for one with a port"
            )
        return text, None
    host, _, port_text = text.partition(":")
    if host.startswith("-"):
        raise ConfigError(f"host {original!r} may not start with '-' (ssh would read an option)")
    if _NAME.fullmatch(host):
        return host, _port(original, port_text) if colons else None
    raise ConfigError(f"host {original!r} is not {_FORM}")


def _ipv6(text: str) -> bool:
    address, percent, zone = text.partition("%")
    if percent and not _ZONE.fullmatch(zone):
        return False
    try:
        ipaddress.IPv6Address(address)
    except ValueError:
        return False
    return True


def _port(original: str, text: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise ConfigError(f"host {original!r}: {text!r} is not a port number (1-65535)")
    return int(text)
