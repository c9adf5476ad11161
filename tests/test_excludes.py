"""The exclude rules (pure): secrets, junk, noise, outputs and .runplzignore syntax."""

from __future__ import annotations

import pytest

from runplz.domain.excludes import Excludes
from runplz.domain.ignore_rules import parse_rule, parse_rules

SECRETS = [
    ".env", ".ENV", "app/.env", ".envrc", ".EnvRc", ".env.local", ".env.production", ".env.dev.local",
    ".Env.Prod", "cert.pem", "cert.PEM", "Cert.Pem", "deep/er/server.key", "KEY.KEY", "store.p12", "a.P12",
    "win.pfx", "krb5.keytab", "id_rsa", "id_rsa.pub", "ID_RSA", "keys/id_rsa_old", "id_ed25519",
    "id_ed25519.pub", "id_ecdsa", "id_dsa", "id_DSA.bak", ".npmrc", ".pypirc", ".pgpass", ".netrc",
    ".NETRC", ".git-credentials", "credentials.json", "Credentials.JSON", "cfg/credentials.json",
    ".docker/config.json", "home/.docker/config.json", ".Docker/Config.json", ".kube/config",
    "x/.kube/config", ".gnupg/pubring.kbx", ".aws/credentials", ".AWS/config", ".ssh/known_hosts",
    "a/b/.ssh/id_x", "terraform.tfstate", "terraform.tfstate.backup", "infra/Terraform.tfstate",
    "prod.tfvars", "x.auto.tfvars", "v.tfvars.json", "gcp-service-account.json",
    "my_service_account_key.json", "Service-Account.JSON", "keys/prod-service-account-key.json",
]

SHARED = [
    ".env.example", ".ENV.EXAMPLE", "cfg/.env.example", ".env.sample", ".Env.Sample", "env.py",
    "environment.yml", "README.md", "src/key.py", "keyboard.txt", "pem.txt", "cert.pem.txt",
    "my_id_rsa", "config.json", ".docker/daemon.json", "docker/config.json", ".kube/cache.txt",
    "kube/config", "credentials.py", "service-account.yaml", "terraform.tf", "tfvars.md",
    "build.py", "src/dist.py", "outline.md", "gnupg.txt", "aws/x.py",
]

JUNK = [
    ".git/HEAD", ".hg/store", ".svn/x", "pkg/__pycache__/m.cpython-311.pyc", "m.pyc", ".pytest_cache/v",
    ".mypy_cache/x", ".ruff_cache/x", ".hypothesis/examples/x", ".tox/py/x", ".nox/x", ".venv/bin/python",
    "nb/.ipynb_checkpoints/a.ipynb", ".DS_Store", "sub/.DS_Store",
]


@pytest.mark.parametrize("path", SECRETS)
def test_secrets_are_excluded_in_any_letter_case_and_at_any_depth(path):
    assert Excludes().excludes(path, False)
    assert Excludes().excludes("deeper/" + path, False)


@pytest.mark.parametrize("path", SHARED)
def test_look_alikes_and_shared_examples_are_kept(path):
    assert not Excludes().excludes(path, False)


@pytest.mark.parametrize("path", JUNK)
def test_caches_and_version_control_are_excluded(path):
    assert Excludes().excludes(path, False)


@pytest.mark.parametrize("name", ["build", "dist", "out", "pkg.egg-info", "My.egg-info"])
def test_noise_folders_are_excluded_at_any_depth_but_files_of_that_name_are_kept(name):
    excludes = Excludes()
    for where in ("", "a/", "a/b/"):
        assert excludes.excludes(where + name, True)
        assert excludes.excludes(where + name + "/x.txt", False)
    if name in ("build", "dist", "out"):
        assert not excludes.excludes(name, False)
        assert not excludes.excludes("a/" + name, False)


def test_secret_folders_are_excluded_as_files_too():
    for name in (".aws", ".ssh", ".gnupg", ".AWS"):
        assert Excludes().excludes(name, True) and Excludes().excludes(name, False)


def test_outputs_folder_is_excluded_as_an_anchored_path_only():
    excludes = Excludes.from_text("", frozenset({"runs/out1"}))
    assert excludes.excludes("runs/out1", True)
    assert excludes.excludes("runs/out1/model.bin", False)
    assert not excludes.excludes("other/runs/out1/model.bin", False)
    assert not excludes.excludes("runs/out10", True)
    assert Excludes.from_text("", frozenset({"/runs/"})).excludes("runs/x", False)


def test_user_rules_reinclude_noise_but_never_secrets_or_outputs():
    text = "!build/\n!.env\n!*.pem\n!.ssh/\n!id_rsa\n!.git/\n!out/\n"
    excludes = Excludes.from_text(text, frozenset({"out"}))
    assert not excludes.excludes("build/lib.py", False)
    assert not excludes.excludes(".git/HEAD", False)
    assert excludes.excludes("out/x", False)  # the outputs folder
    assert not excludes.excludes("a/out/x", False)
    for secret in (".env", "x/cert.pem", ".ssh/config", "id_rsa"):
        assert excludes.excludes(secret, False), secret


def test_user_rules_exclude_on_top_and_can_drop_shared_examples():
    excludes = Excludes.from_text("data/\n*.ckpt\n.env.example\n")
    assert excludes.excludes("data/big.bin", False)
    assert excludes.excludes("a/model.ckpt", False)
    assert excludes.excludes(".env.example", False)
    assert not excludes.excludes("src/data.py", False)


def test_a_file_under_an_excluded_folder_cannot_be_reincluded():
    excludes = Excludes.from_text("logs/\n!logs/keep.txt\n")
    assert excludes.excludes("logs/keep.txt", False)
    assert excludes.excludes(".venv/keep.txt", False)
    assert Excludes.from_text("!.venv/keep.txt\n").excludes(".venv/keep.txt", False)


def test_reasons_name_the_layer():
    excludes = Excludes.from_text("*.log\n", frozenset({"o"}))
    assert excludes.reason("o", True) == "outputs"
    assert excludes.reason(".env", False) == "secret"
    assert excludes.reason("x.log", False) == "ignored"
    assert excludes.reason(".git", True) == "ignored"
    assert excludes.reason("x.py", False) is None


# --- gitignore syntax, rule by rule -------------------------------------------------

SYNTAX = [
    # (rules, path, is_dir, excluded?)
    ("# a comment", "# a comment", False, False),
    ("\\#hash", "#hash", False, True),
    ("", "anything", False, False),
    ("   ", "anything", False, False),
    ("foo   ", "foo", False, True),
    ("foo\\ ", "foo ", False, True),
    ("foo\\ ", "foo", False, False),
    ("foo \\ ", "foo  ", False, True),
    ("*.log\n!keep.log", "keep.log", False, False),
    ("*.log\n!keep.log", "a/other.log", False, True),
    ("!keep.log\n*.log", "keep.log", False, True),
    ("\\!bang", "!bang", False, True),
    ("logs/", "logs", True, True),
    ("logs/", "logs", False, False),
    ("logs/", "a/logs", True, True),
    ("logs", "a/b/logs", False, True),
    ("/top.txt", "top.txt", False, True),
    ("/top.txt", "a/top.txt", False, False),
    ("a/b.txt", "a/b.txt", False, True),
    ("a/b.txt", "x/a/b.txt", False, False),
    ("doc/*.txt", "doc/x.txt", False, True),
    ("doc/*.txt", "doc/sub/x.txt", False, False),
    ("*.txt", "doc/sub/x.txt", False, True),
    ("a?c", "abc", False, True),
    ("a?c", "a/c", False, False),
    ("a?c", "ac", False, False),
    ("x[0-9]", "x5", False, True),
    ("x[0-9]", "xa", False, False),
    ("x[!0-9]", "xa", False, True),
    ("x[^0-9]", "x5", False, False),
    ("x[]]", "x]", False, True),
    ("x[a-c-]", "x-", False, True),
    ("x[[:digit:]]", "x7", False, True),
    ("x[[:upper:]]", "xa", False, False),
    ("x[\\]]", "x]", False, True),
    ("x[", "x[", False, True),
    ("a[/]b", "a/b", False, False),
    ("**/foo", "foo", False, True),
    ("**/foo", "a/b/foo", False, True),
    ("**/foo/bar", "x/foo/bar", False, True),
    ("abc/**", "abc/x", False, True),
    ("abc/**", "abc/x/y", False, True),
    ("abc/**", "abc", True, False),
    ("a/**/b", "a/b", False, True),
    ("a/**/b", "a/x/y/b", False, True),
    ("a/**/b", "b", False, False),
    ("**", "anything/at/all", False, True),
    ("a**b", "axxb", False, True),
    ("a**b", "ax/xb", False, False),
    ("\\*star", "*star", False, True),
    ("\\*star", "xstar", False, False),
    ("\\[x]", "[x]", False, True),
    ("\\?", "?", False, True),
    ("\\?", "a", False, False),
    ("trailing\\", "trailing\\", False, False),
    ("Case.txt", "case.txt", False, False),
    ("/", "x", False, False),
    ("!", "x", False, False),
    ("dir/\n!dir/", "dir", True, False),
]


@pytest.mark.parametrize("text,path,is_dir,expected", SYNTAX)
def test_gitignore_syntax(text, path, is_dir, expected):
    assert bool(parse_rules(text).decide(path, is_dir)) is expected


def test_a_bom_and_crlf_line_ends_are_harmless():
    rules = parse_rules("\ufeff*.log\r\n!keep.log\r\n")
    assert rules.decide("x.log", False) and rules.decide("keep.log", False) is False


def test_blank_comment_and_invalid_lines_make_no_rule():
    for line in ("", "   ", "# x", "!", "/", "bad\\"):
        assert parse_rule(line) is None, line


def test_ignore_case_rules_match_any_letter_case():
    rules = parse_rules("*.pem\n[a-c]x\n", ignore_case=True)
    assert rules.decide("A.PEM", False) and rules.decide("Bx", False)
