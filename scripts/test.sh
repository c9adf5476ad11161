#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: prepares the real parts, then pytest.
#
#   bash scripts/test.sh [PYTEST ARGS...]
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
exec .venv/bin/python -m pytest "$@"
