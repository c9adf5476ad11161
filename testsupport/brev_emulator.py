"""An emulator of the `brev` CLI, per shared/spec/brev-cli.md (test infrastructure).

Run as ``python brev_emulator.py VERB ...`` (the ``brev`` wrapper that
`testsupport.brev_emu.BrevEmulator` writes does so) with its state in
``$RUNPLZ_BREV_EMU_DIR``:

- ``catalog.json``: the offers, as `brev search --json` rows (an optional
  ``manufacturer``, default NVIDIA, is the API field the CLI filters on and hides);
- ``state.json``: the instances; ``faults.json``: `BrevFaults` as JSON (counters
  are used up in place); ``config.json``: sshd settings for real boxes;
- ``calls.jsonl``: one line per invocation (argv, BREV_NO_ANALYTICS, tty);
- ``ssh_config``: what ``brev refresh`` writes.

Errors: exit 1, cobra-style ``Error: ...`` on stderr. Piped, create / start /
stop / delete print only instance names on stdout.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from testsupport import brev_emu_boxes as boxes  # noqa: E402

ROW_KEYS = (
    "type", "cloud", "provider", "gpu_name", "gpu_count", "vram_per_gpu_gb", "total_vram_gb", "capability",
    "vcpus", "memory", "ram_gb", "arch", "disk_min_gb", "disk_max_gb", "disk_price_per_gb_mo",
    "boot_time_seconds", "stoppable", "rebootable", "flex_ports", "target_disk_gb", "price_per_hour",
)
OMIT_WHEN_ZERO = ("disk_price_per_gb_mo", "target_disk_gb")
NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]*")
SEARCH = {
    "json": bool, "gpu-name": str, "provider": str, "min-vram": float, "min-total-vram": float,
    "min-vcpu": int, "min-ram": float, "min-disk": float, "max-boot-time": int, "stoppable": bool,
    "sort": str, "desc": bool,
}
FLAGS = {
    "search": SEARCH,
    "ls": {"json": bool},
    "create": {"type": str, "min-disk": int, "mode": str, "container-image": str, "detached": bool, "timeout": int},
    "start": {}, "stop": {}, "delete": {}, "refresh": {},
}
UNAUTHORIZED = "Error: unauthorized: your session has expired; run brev login"
BANNER = "A new version of brev is available (v0.6.999); upgrade: brew upgrade brev\n"


class Fail(Exception):
    """Exit 1 with this message on stderr."""


# ------------------------------------------------------------------ state


def _path(name: str) -> str:
    return os.path.join(os.environ["RUNPLZ_BREV_EMU_DIR"], name)


def load(name: str, default):
    try:
        with open(_path(name)) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


def save(name: str, value) -> None:
    with open(_path(name) + ".tmp", "w") as handle:
        json.dump(value, handle, indent=1)
    os.replace(_path(name) + ".tmp", _path(name))


# ------------------------------------------------------------------ flags, cobra-style


def _invalid(name: str, text: str, parser: str) -> Fail:
    return Fail(f'Error: invalid argument "{text}" for "--{name}" flag: {parser}: parsing "{text}": invalid syntax')


def _value(kind, name: str, text: str):
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise _invalid(name, text, "strconv.ParseBool")
        return text.lower() in ("true", "1")
    try:
        return kind(text)
    except ValueError:
        raise _invalid(name, text, "strconv.ParseInt" if kind is int else "strconv.ParseFloat") from None


def parse(verb: str, args: list[str]) -> tuple[list[str], dict]:
    spec, positional, flags, i = FLAGS[verb], [], {}, 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            positional += args[i + 1:]
            break
        if arg in ("-h", "--help"):
            flags["help"] = True
        elif arg.startswith("--"):
            name, eq, text = arg[2:].partition("=")
            if name not in spec:
                raise Fail(f"Error: unknown flag: --{name}")
            kind = spec[name]
            if kind is bool:
                flags[name] = _value(bool, name, text) if eq else True
            else:
                if not eq:
                    if i + 1 >= len(args):
                        raise Fail(f"Error: flag needs an argument: --{name}")
                    i += 1
                    text = args[i]
                flags[name] = _value(kind, name, text)
        elif arg.startswith("-") and len(arg) > 1:
            raise Fail(f"Error: unknown shorthand flag: '{arg[1]}' in {arg}")
        else:
            positional.append(arg)
        i += 1
    return positional, flags


def usage(verb: str) -> str:
    flags = "".join(f"      --{name}\n" for name in FLAGS.get(verb, {}))
    return f"Usage:\n  brev {verb} [flags]\n\nFlags:\n  -h, --help\n{flags}"


# ------------------------------------------------------------------ search


def _ram(row: dict) -> float:
    if "ram_gb" in row:
        return float(row["ram_gb"])
    match = re.match(r"(\d+(?:\.\d+)?)", str(row.get("memory", "")))
    return float(match.group(1)) if match else 0.0


def out_row(row: dict, min_disk: float) -> dict:
    full = dict(row)
    full.setdefault("total_vram_gb", row.get("vram_per_gpu_gb", 0) * row.get("gpu_count", 0))
    full.setdefault("ram_gb", _ram(row))
    full.setdefault("memory", f"{_ram(row):g}GiB")
    lo, hi = row.get("disk_min_gb", 0), row.get("disk_max_gb", 0)
    full["target_disk_gb"] = min_disk if lo != hi and min_disk > 0 and lo <= min_disk <= hi else lo
    defaults = {"cloud": "", "capability": 0, "arch": "x86_64", "rebootable": False, "flex_ports": False,
                "boot_time_seconds": 0, "disk_min_gb": 0, "disk_max_gb": 0, "disk_price_per_gb_mo": 0}
    shown = {key: full.get(key, defaults.get(key)) for key in ROW_KEYS}
    return {k: v for k, v in shown.items() if not (k in OMIT_WHEN_ZERO and not v)}


def _keeps(row: dict, kind: str, f: dict) -> bool:
    gpus = row.get("gpu_count", 0)
    if (kind == "gpu") != (gpus > 0):
        return False
    if gpus and "NVIDIA" not in str(row.get("manufacturer", "NVIDIA")).upper():
        return False
    boot, limit = row.get("boot_time_seconds", 0), f.get("max-boot-time", 0)
    return all((
        f.get("gpu-name", "").lower() in str(row.get("gpu_name", "")).lower(),
        f.get("provider", "").lower() in str(row.get("provider", "")).lower(),
        row.get("vram_per_gpu_gb", 0) >= f.get("min-vram", 0),
        row.get("vram_per_gpu_gb", 0) * gpus >= f.get("min-total-vram", 0),
        row.get("vcpus", 0) >= f.get("min-vcpu", 0),
        _ram(row) >= f.get("min-ram", 0),
        not f.get("min-disk") or row.get("disk_max_gb", 0) >= f["min-disk"],
        not limit or (boot and boot <= limit * 60),
        not f.get("stoppable") or row.get("stoppable") is True,
    ))


SORTS = {
    "gpu-count": "gpu_count", "vram": "vram_per_gpu_gb", "total-vram": "total_vram_gb", "vcpu": "vcpus",
    "type": "type", "capability": "capability", "provider": "provider", "disk": "disk_max_gb",
}


def search(positional: list[str], flags: dict, faults: dict) -> None:
    if len(positional) > 1 or (positional and positional[0] not in ("gpu", "cpu")):
        raise Fail(f'Error: unknown command "{positional[0]}" for "brev search"')
    kind = positional[0] if positional else "gpu"
    rows = [out_row(r, flags.get("min-disk", 0)) for r in load("catalog.json", []) if _keeps(r, kind, flags)]
    by = flags.get("sort", "price")
    if by == "boot-time":
        rows.sort(key=lambda r: (not r["boot_time_seconds"], r["boot_time_seconds"]), reverse=flags.get("desc", False))
    else:
        rows.sort(key=lambda r: r[SORTS.get(by, "price_per_hour")], reverse=flags.get("desc", False))
    if not flags.get("json") and sys.stdout.isatty():
        for r in rows:
            print(f"{r['type']:<40} {r['gpu_name']:<10} {r['gpu_count']:>3} ${r['price_per_hour']:.2f}")
        return
    sys.stdout.write((BANNER if faults.get("update_banner") else "") + json.dumps(rows, indent=2) + "\n")


# ------------------------------------------------------------------ instances


def settle(name: str, box: dict) -> None:
    """One `ls` poll of a booting box: count down, then finish (a RUNNING box gets its sshd)."""
    if box["status"] not in ("DEPLOYING", "STARTING"):
        return
    if box["polls_left"] > 0:
        box["polls_left"] -= 1
    elif box["fails"]:
        box["status"], box["build_status"] = "FAILURE", "CREATE_FAILED"
    else:
        box["port"] = boxes.start(os.environ["RUNPLZ_BREV_EMU_DIR"], name, box["marker"], box.get("port"))
        box["status"], box["build_status"] = "RUNNING", "COMPLETED"


def ls_row(name: str, box: dict) -> dict:
    ready = box["status"] == "RUNNING" and box["build_status"] == "COMPLETED"
    return {
        "name": name, "id": box["id"], "status": box["status"], "build_status": box["build_status"],
        "shell_status": "READY" if ready else "NOT READY", "health_status": "HEALTHY" if ready else "",
        "instance_type": box["instance_type"], "instance_kind": "gpu" if box["gpu"] else "cpu", "gpu": box["gpu"],
    }


def ls(positional: list[str], flags: dict, faults: dict, state: dict) -> None:
    for name, box in state["instances"].items():
        settle(name, box)
    rows = [ls_row(name, box) for name, box in state["instances"].items()]
    if flags.get("json"):
        text = json.dumps({"workspaces": rows or None}, indent=2)
        sys.stdout.write((BANNER if faults.get("update_banner") else "") + text + "\n")
    elif not rows:
        print("No instances in org. Create one with: brev create NAME")
    else:
        print(f"{'NAME':<24} {'STATUS':<10} {'BUILD':<14} {'SHELL':<10} {'ID':<12} MACHINE")
        for r in rows:
            print(f"{r['name']:<24} {r['status']:<10} {r['build_status']:<14} {r['shell_status']:<10} "
                  f"{r['id']:<12} {r['instance_type']}")


def _default_type(catalog: list[dict]) -> list[str]:
    fits = sorted((r for r in catalog if r.get("gpu_count") and r.get("vram_per_gpu_gb", 0) >= 20
                   and r.get("price_per_hour") and "NVIDIA" in str(r.get("manufacturer", "NVIDIA")).upper()),
                  key=lambda r: r["price_per_hour"])
    return [fits[0]["type"]] if fits else []


def create(positional: list[str], flags: dict, faults: dict, state: dict) -> list[str]:
    if len(positional) != 1:
        raise Fail("Error: A name field is required to create a workspace!")
    name = positional[0]
    if len(name) > 63 or not NAME.fullmatch(name):
        raise Fail(f"Error: invalid instance name {name!r}: use letters, digits, '.', '_' and '-' (at most 63)")
    mode = flags.get("mode", "vm")
    if mode not in ("vm", "container"):
        raise Fail(f'Error: invalid --mode "{mode}": use vm or container')
    if "container-image" in flags and mode != "container":
        raise Fail("Error: --container-image requires --mode container")
    catalog = load("catalog.json", [])
    types = flags["type"].split(",") if "type" in flags else _default_type(catalog)
    if faults.get("create_does_nothing"):
        return []
    if name in state["instances"]:
        raise Fail(f"Error: duplicate environment with name {name}")
    offered = {r["type"]: r for r in catalog}
    granted = None
    for kind in types:
        if kind in offered and kind not in faults.get("no_capacity", []):
            granted = offered[kind]
            break
        why = "is not offered" if kind not in offered else "has no capacity"
        sys.stderr.write(f"instance type {kind} {why}; trying the next one\n")
    if granted is None:
        raise Fail(f"Error: no capacity for any of the instance types {','.join(types)}")
    sys.stderr.write(f"Creating instance {name} of type {granted['type']}\n")
    box = {
        "id": uuid.uuid4().hex[:9], "instance_type": granted["type"], "gpu": granted.get("gpu_name", ""),
        "stoppable": bool(granted.get("stoppable")), "status": "DEPLOYING", "build_status": "PENDING",
        "polls_left": faults.get("boot_polls", 0), "fails": bool(faults.get("create_fails")),
        "mode": mode, "container_image": flags.get("container-image"),
        "min_disk": flags.get("min-disk", 500 if "type" not in flags else None),
        "marker": uuid.uuid4().hex, "port": None,
    }
    state["instances"][name] = box
    if box["polls_left"] == 0:
        settle(name, box)
    if faults.get("lost_create_replies", 0) > 0:
        faults["lost_create_replies"] -= 1
        save("faults.json", faults)
        raise Fail(faults.get("transient_words") or "rpc error: connection reset")
    return [name]


def _box(state: dict, name: str) -> dict:
    if name not in state["instances"]:
        raise Fail(f"Error: workspace {name} not found")
    return state["instances"][name]


def lifecycle(verb: str, positional: list[str], faults: dict, state: dict) -> list[str]:
    if not positional:
        raise Fail(f"Error: brev {verb} needs an instance name")
    root = os.environ["RUNPLZ_BREV_EMU_DIR"]
    for name in positional:
        box = _box(state, name)
        if verb == "delete":
            boxes.stop(root, name, box["marker"], box.get("port"))
            del state["instances"][name]
        elif verb == "stop":
            if not box["stoppable"]:
                kind = box["instance_type"]
                raise Fail(f"Error: instance type {kind} of {name} cannot be stopped; delete it instead")
            if box["status"] not in ("RUNNING", "STOPPED"):
                raise Fail(f"Error: cannot stop {name}: it is {box['status']}")
            boxes.stop(root, name, box["marker"], box.get("port"))
            box["status"] = "STOPPED"
        elif box["status"] == "STOPPED":
            box.update(status="STARTING", polls_left=faults.get("boot_polls", 0), fails=False)
            if box["polls_left"] == 0:
                settle(name, box)
        elif box["status"] != "RUNNING":
            raise Fail(f"Error: cannot start {name}: it is {box['status']}")
        sys.stderr.write(f"{verb}: {name}\n")
    return positional


# ------------------------------------------------------------------ main


def run(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write("brev (emulated)\n\nAvailable Commands:\n" + "".join(f"  {v}\n" for v in FLAGS))
        return
    verb, args = argv[0], argv[1:]
    faults = load("faults.json", {})
    if verb not in FLAGS or (verb == "search" and faults.get("old_cli")):
        raise Fail(f'Error: unknown command "{verb}" for "brev"\nRun \'brev --help\' for usage.')
    if verb == "ls" and faults.get("old_cli") and any(a.startswith("--json") for a in args):
        raise Fail("Error: unknown flag: --json")
    positional, flags = parse(verb, args)
    if flags.get("help"):
        sys.stdout.write(usage(verb))
        return
    if faults.get("unauthorized"):
        raise Fail(UNAUTHORIZED)
    if faults.get("transient", {}).get(verb, 0) > 0:
        faults["transient"][verb] -= 1
        save("faults.json", faults)
        raise Fail(faults.get("transient_words") or "rpc error: connection reset")
    if verb == "search":
        return search(positional, flags, faults)
    state = load("state.json", {"instances": {}})
    try:
        if verb == "ls":
            ls(positional, flags, faults, state)
        elif verb == "refresh":
            boxes.write_ssh_config(os.environ["RUNPLZ_BREV_EMU_DIR"], state["instances"])
            sys.stderr.write("ssh config refreshed\n")
        else:
            if verb == "create":
                names = create(positional, flags, faults, state)
            else:
                names = lifecycle(verb, positional, faults, state)
            for name in names:
                print(name if not sys.stdout.isatty() else f"{verb}: {name} done")
    finally:
        save("state.json", state)


def main() -> int:
    root = os.environ.get("RUNPLZ_BREV_EMU_DIR")
    if not root or not os.path.isdir(root):
        sys.stderr.write("Error: the brev emulator needs RUNPLZ_BREV_EMU_DIR (a folder)\n")
        return 1
    with open(os.path.join(root, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(os.path.join(root, "calls.jsonl"), "a") as log:
            entry = {"argv": sys.argv[1:], "analytics": os.environ.get("BREV_NO_ANALYTICS"), "tty": sys.stdout.isatty()}
            log.write(json.dumps(entry) + "\n")
        try:
            run(sys.argv[1:])
        except Fail as error:
            sys.stderr.write(f"{error}\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
