"""Port: the Brev catalog of instance types (`brev search`)."""

from __future__ import annotations

import math
import re
from typing import Protocol, runtime_checkable

import attrs

from ..domain.errors import ConfigError
from ..domain.offers import Offer
from ..domain.picker import Requirements
from ..domain.validate import show

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._:/+-]*")


def _floor(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"SearchQuery.{attribute.name} must be a number >= 0 or None; got {show(value)}")


def _count(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigError(f"SearchQuery.{attribute.name} must be a whole number >= 0 or None; got {show(value)}")


def _name(instance: object, attribute: attrs.Attribute, value: object) -> None:
    if value is not None and not (isinstance(value, str) and _TOKEN.fullmatch(value)):
        raise ConfigError(f"SearchQuery.gpu_name must be a GPU name like 'A100' or None; got {show(value)}")


@attrs.frozen(kw_only=True)
class SearchQuery:
    """What to ask `brev search` for; each field maps to one of the CLI's filters.

    ``gpu`` False asks for CPU-only types (`brev search cpu`); then ``gpu_name`` and
    ``min_vram_gb`` must be None. Floors left None are not sent.
    """

    gpu: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    gpu_name: str | None = attrs.field(default=None, validator=_name)  # --gpu-name (substring)
    min_vram_gb: float | None = attrs.field(default=None, validator=_floor)  # per GPU
    min_vcpus: int | None = attrs.field(default=None, validator=_count)
    min_ram_gb: float | None = attrs.field(default=None, validator=_floor)
    min_disk_gb: float | None = attrs.field(default=None, validator=_floor)
    stoppable: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    def __attrs_post_init__(self) -> None:
        if not self.gpu and (self.gpu_name is not None or self.min_vram_gb is not None):
            raise ConfigError("SearchQuery for CPU-only types cannot ask for a GPU name or GPU memory")

    @classmethod
    def for_requirements(cls, req: Requirements, stoppable: bool = False) -> "SearchQuery":
        """The server-side part of ``req``: kind and numeric floors. The GPU model is
        left to the picker (the CLI's name filter is a substring match, and its
        spelling of names need not be the picker's normalised one)."""
        return cls(
            gpu=req.gpu_count > 0,
            min_vram_gb=req.min_vram_gb,
            min_vcpus=None if req.min_vcpus is None else math.ceil(req.min_vcpus),
            min_ram_gb=req.min_ram_gb,
            min_disk_gb=req.min_disk_gb,
            stoppable=stoppable,
        )


@runtime_checkable
class Catalog(Protocol):
    """The instance types Brev offers, as `brev search --json` lists them.

    Contract:
    - ``search(query)`` returns the offers of the asked kind (``query.gpu``: types
      with GPUs; else CPU-only types), filtered the CLI's way: ``gpu_name`` is a
      case-insensitive SUBSTRING of the row's GPU name ("A10" also matches A100 and
      A10G); ``min_vram_gb`` (per GPU), ``min_vcpus``, ``min_ram_gb`` are inclusive
      floors; ``min_disk_gb`` keeps rows whose largest disk reaches it;
      ``stoppable`` keeps only stoppable types. There is no GPU-count filter: the
      caller filters exact models and counts (the domain picker does).
    - Offers come ordered by price, cheapest first, one per type, read by
      `offers_from_rows` (rows priced 0 skipped, ambiguous types dropped). Only
      NVIDIA GPUs are listed. Nothing matching is ``()``, not an error.
    - Transient CLI errors (network, 5xx) are retried after 1, 2 and 4 s on the
      Clock; then, and at once for any other failure (e.g. "unauthorized"),
      `BrevCommandError` carrying the CLI's own words.
    - A missing CLI is `BrevNotInstalled` (a one-line install hint); a CLI too old
      to have `brev search` is `BrevTooOld` (a one-line "upgrade brev").
    - A malformed listing is `BadOffer` (a `ProtocolError`).
    """

    def search(self, query: SearchQuery) -> tuple[Offer, ...]: ...
