"""Brev offers: the rows of `brev search --json` that runplz reads, checked.

A row is one (instance type, GPU entry). The type string is an opaque token:
hardware is read from the row's fields, never from the type. `boot_time_seconds`
0 or missing means unknown (None here). `memory` ("180GiB") is read only where a
row lacks `ram_gb`.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping

import attrs

from .errors import ProtocolError
from .validate import show


class BadOffer(ProtocolError):
    """A `brev search --json` row runplz cannot read; the message names the field."""


@attrs.frozen
class Offer:
    """One Brev instance type as `brev search` lists it; gpu_count 0 is CPU-only."""

    type: str
    provider: str
    gpu_name: str
    gpu_count: int
    vram_per_gpu_gb: float
    vcpus: int
    ram_gb: float
    disk_min_gb: float  # 0 with disk_max_gb 0: the listing does not say
    disk_max_gb: float
    boot_time_seconds: int | None  # None: unknown
    stoppable: bool
    price_per_hour: float


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(TiB|TB|GiB|GB|MiB|MB)")
_GB_PER = {"TiB": 1024.0, "TB": 1000.0, "GiB": 1.0, "GB": 1.0, "MiB": 1 / 1024, "MB": 1 / 1000}


def _bad(row: Mapping[str, Any], field: str, wanted: str) -> BadOffer:
    kind = row.get("type")
    where = f" for type {kind!r}" if isinstance(kind, str) else ""
    got = show(row[field]) if field in row else "nothing"
    return BadOffer(f"brev search row{where}: {field} must be {wanted}; got {got}")


def _text(row: Mapping[str, Any], field: str, *, nonempty: bool = False) -> str:
    value = row.get(field)
    if not isinstance(value, str) or (nonempty and not value.strip()):
        raise _bad(row, field, "a non-empty string" if nonempty else "a string")
    return value


def _number(row: Mapping[str, Any], field: str, default: float | None = None) -> float:
    value = row.get(field, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise _bad(row, field, "a number >= 0")
    return float(value)


def _count(row: Mapping[str, Any], field: str, default: int | None = None) -> int:
    value = row.get(field, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(row, field, "a whole number >= 0")
    return value


def _ram_gb(row: Mapping[str, Any]) -> float:
    if "ram_gb" in row:
        return _number(row, "ram_gb")
    memory = row.get("memory")
    if isinstance(memory, str) and _SIZE.search(memory):
        return sum(float(n) * _GB_PER[unit] for n, unit in _SIZE.findall(memory))
    raise _bad(row, "ram_gb", "a number >= 0 (or memory a size like '180GiB')")


def _unpriced(row: Any) -> bool:
    price = row.get("price_per_hour") if isinstance(row, Mapping) else None
    return type(price) in (int, float) and price == 0


def offer_from_row(row: Mapping[str, Any]) -> Offer:
    """Read one `brev search --json` row; a malformed one raises `BadOffer`.

    `price_per_hour` must be positive: the CLI prints 0 where it has no price.
    """
    if not isinstance(row, Mapping):
        raise BadOffer(f"brev search row must be a JSON object; got {show(row)}")
    kind = _text(row, "type", nonempty=True)
    boot = _count(row, "boot_time_seconds", 0)
    stoppable = row.get("stoppable")
    if not isinstance(stoppable, bool):
        raise _bad(row, "stoppable", "true or false")
    price = _number(row, "price_per_hour")
    if price == 0:
        raise _bad(row, "price_per_hour", "a price above 0")
    disk_min, disk_max = _number(row, "disk_min_gb", 0), _number(row, "disk_max_gb", 0)
    if disk_min > disk_max:
        raise _bad(row, "disk_max_gb", f"at least disk_min_gb ({show(row['disk_min_gb'])})")
    return Offer(
        type=kind,
        provider=_text(row, "provider"),
        gpu_name=_text(row, "gpu_name"),
        gpu_count=_count(row, "gpu_count"),
        vram_per_gpu_gb=_number(row, "vram_per_gpu_gb", 0),
        vcpus=_count(row, "vcpus"),
        ram_gb=_ram_gb(row),
        disk_min_gb=disk_min,
        disk_max_gb=disk_max,
        boot_time_seconds=boot or None,
        stoppable=stoppable,
        price_per_hour=price,
    )


def offers_from_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[Offer, ...]:
    """One `Offer` per instance type, in the order the types first appear.

    - A row priced 0 (the CLI's word for "no price") is skipped.
    - Rows repeating the same type collapse when they read as the same offer.
      A type whose rows disagree (two GPU entries, say 1 x A100 and 1 x T4) is
      dropped: what such a box holds is ambiguous, and an offer runplz cannot
      describe is one it must not promise.
    - Any other malformed row raises `BadOffer`: the CLI's format has drifted.
    """
    if isinstance(rows, (str, bytes, Mapping)):
        raise BadOffer(f"brev search --json must give a JSON array; got {show(rows)}")
    seen: dict[str, Offer | None] = {}
    for row in rows:
        if _unpriced(row):
            continue
        offer = offer_from_row(row)
        if offer.type not in seen:
            seen[offer.type] = offer
        elif seen[offer.type] != offer:
            seen[offer.type] = None
    return tuple(offer for offer in seen.values() if offer is not None)
