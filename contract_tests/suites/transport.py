"""The `Transport` contract: ssh+rsync, the local folder transport and the fake agree."""

from __future__ import annotations

import json
import os
import stat
import uuid

import pytest

from runplz.domain.errors import ConnectionLost, TransportError
from runplz.ports.transport import Transport

# Runs as `python3 -c HELPER COMMAND ARGS...` on the target (self-contained).
HELPER = r"""
import json, os, sys, time
cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "argv":
    sys.stdout.write(json.dumps(args)); sys.stdout.write("\n")
elif cmd == "exit":
    sys.exit(int(args[0]))
elif cmd == "cat":
    sys.stdout.write(sys.stdin.read())
elif cmd == "cwd":
    print(os.getcwd())
elif cmd == "chunks":
    sys.stdout.write("a"); sys.stdout.flush(); time.sleep(0.2); sys.stdout.write("b\rc")
elif cmd == "err":
    sys.stderr.write("to-err\n")
"""


def fake_helper(inv) -> int:
    """The same helper for a fake transport's ``python3`` program."""
    cmd, args = inv.argv[3], list(inv.argv[4:])
    if cmd == "argv":
        inv.out(json.dumps(args))
    elif cmd == "exit":
        return int(args[0])
    elif cmd == "cat":
        inv.out(inv.stdin.decode(), end="")
    elif cmd == "cwd":
        inv.out(inv.cwd or "")
    elif cmd == "chunks":
        inv.out("a", end="")
        inv.sleep(0.2)
        inv.out("b\rc", end="")
    elif cmd == "err":
        inv.err("to-err")
    return 0


HOSTILE = [
    "plain", "", " ", "two words", "it's", 'say "hi"', "$(touch /tmp/runplz-pwned)", "`id`", "$HOME", "~",
    "a;b", "a|b", "a&&b", "*", "?", "back\\slash", "new\nline", "tab\tx", "-n", "--help", "é中🙂", "\r",
]


class TransportFixtures:
    """Provide ``transport`` (connected), ``home`` (its login folder, or None) and
    ``break_connection`` (a callable that drops the connection)."""

    @pytest.fixture
    def transport(self) -> Transport:
        raise NotImplementedError

    @pytest.fixture
    def home(self):
        return None

    @pytest.fixture
    def break_connection(self, transport):
        raise NotImplementedError

    @pytest.fixture
    def spot(self):
        """A fresh remote folder name per test (targets outlive test sessions)."""
        return f"contract/{uuid.uuid4().hex[:12]}"


def helper(*args: str) -> list[str]:
    return ["python3", "-c", HELPER, *args]


def make_tree(root):
    (root / "nested" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "top.txt").write_text("top")
    (root / "nested" / "deeper" / "x.bin").write_bytes(bytes(range(256)) * 4)
    (root / "ünïcode 中文.txt").write_text("u")
    tool = root / "tool.sh"
    tool.write_text("#!/bin/sh\necho tool\n")
    tool.chmod(0o755)
    (root / "big.bin").write_bytes(os.urandom(3 << 20))
    (root / ".env").write_text("SECRET=1")
    (root / "nested" / ".env").write_text("SECRET=2")
    (root / "out").mkdir()
    (root / "out" / "old.txt").write_text("old")
    (root / "nested" / "out").mkdir()
    (root / "nested" / "out" / "kept.txt").write_text("kept")
    return root


def listing(root) -> dict[str, tuple]:
    found = {}
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        for d in dirs:
            found[os.path.normpath(os.path.join(rel, d))] = ("dir",)
        for f in files:
            path = os.path.join(folder, f)
            with open(path, "rb") as handle:
                found[os.path.normpath(os.path.join(rel, f))] = (handle.read(), bool(os.stat(path).st_mode & stat.S_IXUSR))
    return found


class AbstractTransportTests:
    def test_is_a_transport(self, transport):
        assert isinstance(transport, Transport)
        assert transport.name

    @pytest.mark.parametrize("code", [0, 1, 42, 255])
    def test_exit_codes_are_exact(self, transport, code):
        assert transport.run(helper("exit", str(code))).exit_code == code

    def test_missing_program_is_127(self, transport):
        assert transport.run(["runplz-no-such-program-xyz"]).exit_code == 127

    def test_arguments_arrive_byte_exact(self, transport):
        result = transport.run(helper("argv", *HOSTILE))
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout) == HOSTILE
        assert not os.path.exists("/tmp/runplz-pwned")

    def test_stdin(self, transport):
        assert transport.run(helper("cat"), input="héllo\nthere".encode()).stdout == "héllo\nthere"

    def test_stderr_is_separate(self, transport):
        result = transport.run(helper("err"))
        assert result.stdout == "" and "to-err" in result.stderr

    def test_on_output_streams_raw_bytes(self, transport):
        chunks: list[bytes] = []
        transport.run(helper("chunks"), on_output=chunks.append)
        assert b"".join(chunks) == b"ab\rc"

    def test_runs_in_the_login_folder(self, transport, home):
        if home is None:
            pytest.skip("no login folder on this transport")
        assert transport.run(helper("cwd")).stdout.strip() == home

    def test_push_then_pull_round_trips(self, transport, tmp_path, spot):
        source = make_tree(tmp_path / "src")
        transport.push(str(source), f"{spot}/a/b")
        back = tmp_path / "back"
        transport.pull(f"{spot}/a/b", str(back))
        assert listing(back) == listing(source)

    def test_excludes_names_anywhere_and_anchored_paths(self, transport, tmp_path, spot):
        source = make_tree(tmp_path / "src")
        transport.push(str(source), f"{spot}/ex", excludes=[".env", "/out"])
        back = tmp_path / "back"
        transport.pull(f"{spot}/ex", str(back))
        got = listing(back)
        assert ".env" not in got and "nested/.env" not in got
        assert "out" not in got and "out/old.txt" not in got
        assert got["nested/out/kept.txt"] == (b"kept", False)

    def test_push_mirrors_deletions(self, transport, tmp_path, spot):
        source = make_tree(tmp_path / "src")
        transport.push(str(source), f"{spot}/mirror")
        (source / "top.txt").unlink()
        (source / "nested" / "deeper" / "x.bin").unlink()
        transport.push(str(source), f"{spot}/mirror")
        back = tmp_path / "back"
        transport.pull(f"{spot}/mirror", str(back))
        assert listing(back) == listing(source)

    def test_unchanged_files_are_not_sent_again(self, transport, tmp_path, spot):
        source = make_tree(tmp_path / "src")
        first = transport.push(str(source), f"{spot}/tree")
        assert first >= 3 << 20
        (source / "top.txt").write_text("changed")
        second = transport.push(str(source), f"{spot}/tree")
        assert second < first / 50
        back = tmp_path / "back"
        transport.pull(f"{spot}/tree", str(back))
        assert listing(back) == listing(source)

    def test_pull_merges_into_an_existing_folder(self, transport, tmp_path, spot):
        source = tmp_path / "src"
        source.mkdir()
        (source / "same.txt").write_text("new")
        transport.push(str(source), f"{spot}/merge")
        local = tmp_path / "local"
        local.mkdir()
        (local / "same.txt").write_text("old")
        (local / "mine.txt").write_text("mine")
        transport.pull(f"{spot}/merge", str(local))
        assert (local / "same.txt").read_text() == "new"
        assert (local / "mine.txt").read_text() == "mine"

    def test_pull_of_a_missing_folder_is_an_error_naming_the_target(self, transport, tmp_path, spot):
        with pytest.raises(TransportError) as caught:
            transport.pull(f"{spot}/absent-folder", str(tmp_path / "x"))
        assert transport.name in str(caught.value)

    def test_a_dropped_connection_is_reported_and_reconnect_works(self, transport, break_connection):
        break_connection()
        with pytest.raises(ConnectionLost):
            transport.run(helper("exit", "0"))
        transport.connect(wait=30)
        assert transport.run(helper("exit", "5")).exit_code == 5

    def test_close_twice(self, transport):
        transport.close()
        transport.close()
