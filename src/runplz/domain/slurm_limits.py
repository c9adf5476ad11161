"""A Slurm cluster's limits as they bear on a run (pure): what its scontrol and
squeue say, and the words runplz answers with.

- MaxArraySize (``scontrol show config``): an array's task indices run from 0
  to MaxArraySize-1, so a ``.map()`` of more inputs than MaxArraySize cannot be
  one job array; it is refused before anything is uploaded.
- A partition's DefaultTime and MaxTime (``scontrol show partition -o``): a job
  without ``--time`` gets the DefaultTime, or the MaxTime when the partition
  has no DefaultTime. UNLIMITED there means a job whose driver died runs
  until someone cancels it.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

import attrs

UNLIMITED = frozenset({"UNLIMITED", "INFINITE"})
_TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")


def config_value(text: str, key: str) -> str | None:
    """One value of ``scontrol show config`` (``Key = value`` lines)."""
    for line in text.splitlines():
        name, eq, value = line.partition("=")
        if eq and name.strip() == key:
            return value.strip()
    return None


def max_array_size(config: str) -> int | None:
    """MaxArraySize from ``scontrol show config``'s text; None when it does not say."""
    value = config_value(config, "MaxArraySize")
    return int(value) if value is not None and value.isdigit() else None


def array_refusal(count: int, limit: int, where: str) -> str | None:
    """Why a map of ``count`` inputs cannot be one job array on a cluster whose
    MaxArraySize is ``limit``; None when it can."""
    if count <= limit:
        return None
    return (
        f"a .map() of {count} inputs is more than the cluster's MaxArraySize of {limit} on {where} "
        f"(a job array's tasks are numbered 0-{limit - 1}); split it into .map() calls of at most "
        f"{limit} inputs each"
    )


def partitions(text: str) -> list[dict[str, str]]:
    """``scontrol show partition -o``: one partition a line, as its KEY=VALUE words."""
    found = []
    for line in text.splitlines():
        fields = dict(word.partition("=")[::2] for word in line.split() if "=" in word)
        if fields.get("PartitionName"):
            found.append(fields)
    return found


def time_seconds(text: str) -> float | None:
    """A Slurm time (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S) in seconds; None: UNLIMITED.
    `ValueError` for anything else (NONE included)."""
    word = text.strip().upper()
    if word in UNLIMITED:
        return None
    match = _TIME.fullmatch(word)
    if match is None:
        raise ValueError(f"not a Slurm time: {text!r}")
    days, first, second, third = match.groups()
    parts = [int(first)] + [int(part) for part in (second, third) if part is not None]
    if days is not None:
        hours, minutes, seconds = (parts + [0, 0])[:3]
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    else:
        hours, minutes, seconds = 0, parts[0], (parts[1] if len(parts) > 1 else 0)
    return float(((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds)


@attrs.frozen
class PartitionTime:
    """The time limit a job without ``--time`` gets in ``partition``: ``value`` as
    scontrol says it, from ``source`` ("DefaultTime" or "MaxTime"); ``seconds``
    None when it is UNLIMITED."""

    partition: str
    source: str
    value: str
    seconds: float | None


def partition_time(found: Iterable[Mapping[str, str]], name: str | None) -> PartitionTime | None:
    """The limit a job without ``--time`` gets in partition ``name`` (None: the
    default partition); None when that partition is not listed or says nothing
    readable."""
    rows = list(found)
    if name is None:
        row = next((r for r in rows if r.get("Default", "").upper() == "YES"), None)
    else:
        row = next((r for r in rows if r.get("PartitionName") == name), None)
    if row is None:
        return None
    for source in ("DefaultTime", "MaxTime"):
        value = row.get(source, "")
        try:
            seconds = time_seconds(value)
        except ValueError:  # NONE (no default), or missing: look at the next
            continue
        return PartitionTime(row["PartitionName"], source, value, seconds)
    return None


def time_notice(limit: PartitionTime, function: str, run: str) -> tuple[bool, str]:
    """What to say before submitting ``function``'s job (run ``run``) with no
    ``--time``: (whether it is a warning, the line)."""
    if limit.seconds is None:
        return True, (
            f"no timeout: if this driver dies, {function}'s Slurm job (run {run}) may run until "
            f"`runplz down {run}` or scancel, since partition {limit.partition} has no time limit "
            f"({limit.source}={limit.value}); set timeout= on the function or SlurmConfig(max_runtime_seconds=...)"
        )
    return False, (
        f"no timeout: {function}'s Slurm job gets partition {limit.partition}'s time limit "
        f"({limit.source}={limit.value})"
    )


def directive(script: str, name: str) -> str | None:
    """The value of ``--name=VALUE`` among a batch script's ``#SBATCH`` lines (the
    form runplz writes); None when it is not there."""
    for line in script.splitlines():
        if line.startswith("#SBATCH"):
            option = line[len("#SBATCH"):].strip()
            if option.startswith(f"--{name}="):
                return option[len(name) + 3:]
        elif line.strip() and not line.startswith("#"):
            break
    return None


def script_run(script: str) -> str:
    """The run a batch script belongs to: its ``--chdir`` is ``<runs>/<run>/repo``."""
    parts = (directive(script, "chdir") or "").rstrip("/").split("/")
    return parts[-2] if len(parts) >= 2 else "?"
