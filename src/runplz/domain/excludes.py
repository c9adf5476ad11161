"""What never leaves the user's machine, and what is not worth shipping.

Three layers decide a repo path, in this order:

1. anchored paths (the outputs folder) and **secrets**: always excluded,
   matched case-insensitively; nothing re-includes them;
2. **junk and noise** (caches, version control, build output);
3. the user's ``.runplzignore`` (gitignore syntax) on top of layer 2, so
   ``!build/`` re-includes ``build/``.

A folder that is excluded takes everything under it along.
"""

from __future__ import annotations

import attrs

from .ignore_rules import RuleSet, parse_rules

IGNORE_FILE = ".runplzignore"

SECRET_PATTERNS: tuple[str, ...] = (
    ".env",
    ".envrc",
    ".env.*",
    "*.pem",
    "*.key",
    "*.p12",
    "*.pfx",
    "*.keytab",
    "id_rsa*",
    "id_ed25519*",
    "id_ecdsa*",
    "id_dsa*",
    ".npmrc",
    ".pypirc",
    ".pgpass",
    ".netrc",
    ".git-credentials",
    "credentials.json",
    "*service-account*.json",
    "*service_account*.json",
    "**/.docker/config.json",
    "**/.kube/config",
    ".gnupg",
    ".aws",
    ".ssh",
    "terraform.tfstate*",
    "*.tfvars",
    "*.tfvars.json",
)

# Names the secret patterns above would catch but that are meant to be shared.
SECRET_KEPT: tuple[str, ...] = (".env.example", ".env.sample")

JUNK_PATTERNS: tuple[str, ...] = (
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    "*.pyc",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    ".tox",
    ".nox",
    ".venv",
    ".ipynb_checkpoints",
    ".DS_Store",
)

NOISE_PATTERNS: tuple[str, ...] = ("build/", "dist/", "*.egg-info/", "out/")

SECRETS = parse_rules(SECRET_PATTERNS + tuple("!" + name for name in SECRET_KEPT), ignore_case=True)
DEFAULTS = parse_rules(JUNK_PATTERNS + NOISE_PATTERNS)


@attrs.frozen
class Excludes:
    """The rules for one repo: its ``.runplzignore`` and its anchored paths (repo-relative)."""

    user: RuleSet = RuleSet()
    anchored: frozenset[str] = frozenset()
    _soft: RuleSet = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_soft", DEFAULTS + self.user)

    @classmethod
    def from_text(cls, ignore_text: str = "", anchored: frozenset[str] = frozenset()) -> "Excludes":
        """Rules from the text of a ``.runplzignore`` (empty when there is none)."""
        return cls(parse_rules(ignore_text), frozenset(a.strip("/") for a in anchored))

    def reason(self, path: str, is_dir: bool) -> str | None:
        """Why ``path`` itself is excluded ("outputs", "secret", "ignored"), or None.

        Folders above ``path`` are not looked at (see `excludes`).
        """
        if path in self.anchored:
            return "outputs"
        if SECRETS.decide(path, is_dir):
            return "secret"
        if self._soft.decide(path, is_dir):
            return "ignored"
        return None

    def excludes(self, path: str, is_dir: bool) -> bool:
        """True when a '/'-separated repo path, or any folder above it, is excluded."""
        parts = path.split("/")
        for depth in range(1, len(parts)):
            if self.reason("/".join(parts[:depth]), True):
                return True
        return self.reason(path, is_dir) is not None
