"""The `runplz` command. Kept light: only click is imported for ``--help``."""

from __future__ import annotations


def main() -> None:
    from .main import run

    run()
