#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: prepares the real parts, then pytest.
#
#   bash scripts/test.sh [PYTEST ARGS...]
#
# With no arguments it runs the whole suite as two pytest processes at once: the
# real-part tests (marked `real`) and, beside them, the fast ones; with arguments,
# one plain pytest run with those arguments.
#
# On Debian/Ubuntu as root it installs what the real-part tests drive (docker.io,
# mmdebstrap, openssh-server, rsync, sudo, iptables; slurmctld, slurmd, slurm-client,
# slurmdbd, munge and mariadb-server for the throwaway Slurm cluster); the tests
# start their own throwaway daemons and stop them, so the packages' own services
# are kept from starting while they install. Elsewhere those tests skip with a reason;
# RUNPLZ_REQUIRE_REAL=1 (as in .ci/run) turns every such skip into a failure.
# Python packages go into ./.venv (made if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    missing=()
    for pair in dockerd:docker.io mmdebstrap:mmdebstrap sshd:openssh-server rsync:rsync sudo:sudo iptables:iptables \
        slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client slurmdbd:slurmdbd munged:munge \
        mariadbd:mariadb-server mariadb:mariadb-client; do
        tool=${pair%%:*}
        command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("${pair#*:}")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "scripts/test.sh: installing ${missing[*]}" >&2
        # A policy-rc.d answering 101 keeps the packages' scripts from starting system
        # services (MariaDB, munge, slurm*, ...); placed only if none is there, removed after.
        guard=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            guard=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\nexit 101\n' >"$guard" && chmod 755 "$guard"
            trap 'rm -f "$guard"' EXIT
        fi
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
        if [ -n "$guard" ]; then
            rm -f "$guard"
            trap - EXIT
        fi
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
if [ $# -gt 0 ]; then
    exec .venv/bin/python -m pytest "$@"
fi

# The whole suite: the real-part tests spend most of their time waiting on daemons,
# boxes and jobs, so the fast tests (fakes, properties) run beside them on the other
# core; their report follows the real tests' one. Either failing fails the run.
fast_log=$(mktemp)
fast=""
trap 'if [ -n "$fast" ]; then kill "$fast" 2>/dev/null || true; fi; rm -f "$fast_log"' EXIT
.venv/bin/python -m pytest -m "not real" -p no:cacheprovider >"$fast_log" 2>&1 &
fast=$!
real_rc=0
.venv/bin/python -m pytest -m real || real_rc=$?
fast_rc=0
wait "$fast" || fast_rc=$?
fast=""
echo
echo "=== the fast tests (run beside the real ones) ==="
cat "$fast_log"
if [ "$real_rc" -ne 0 ] || [ "$fast_rc" -ne 0 ]; then
    echo "scripts/test.sh: real tests exit $real_rc, fast tests exit $fast_rc" >&2
    exit $(( real_rc != 0 ? real_rc : fast_rc ))
fi
