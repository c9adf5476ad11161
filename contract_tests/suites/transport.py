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
    def spot(self, transport):
        """A fresh remote folder per test, removed afterwards (targets outlive test sessions)."""
        name = f"contract/{uuid.uuid4().hex[:12]}"
        yield name
        try:
            transport.connect(wait=30)
            transport.run(["rm", "-rf", name])
        except Exception:
            pass

    @pytest.fixture
    def devices(self):
        """Whether this login may make device nodes (root)."""
        return False

    @pytest.fixture
    def make_link(self, transport):
        """Make a symlink on the target: ``make(path, target)``."""

        def make(path: str, target: str) -> None:
            assert transport.run(["ln", "-s", target, path]).exit_code == 0

        return make

    @pytest.fixture
    def make_hostile(self, transport):
        """Fill a remote folder with what a hostile job leaves in its outputs."""

        def make(folder: str, devices: bool) -> None:
            argv = ["python3", "-c", HOSTILE_OUTPUTS, folder] + (["devices"] if devices else [])
            result = transport.run(argv)
            assert result.exit_code == 0, result.stderr

        return make


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
    (root / "alias").symlink_to("top.txt")
    (root / "nested" / "up").symlink_to("../top.txt")
    return root


def listing(root) -> dict[str, tuple]:
    """Every entry under ``root``: folders, files (content, executable) and links (target)."""
    found = {}
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        for name in dirs + files:
            path = os.path.join(folder, name)
            key = os.path.normpath(os.path.join(rel, name))
            if os.path.islink(path):
                found[key] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                found[key] = ("dir",)
            else:
                with open(path, "rb") as handle:
                    found[key] = (handle.read(), bool(os.stat(path).st_mode & stat.S_IXUSR))
    return found


# Made on the target by ``python3 -c HOSTILE_OUTPUTS DIR [devices]``: what a hostile job leaves in $RUNPLZ_OUT.
HOSTILE_OUTPUTS = r"""
import os, sys
d = sys.argv[1]
os.makedirs(os.path.join(d, "sub"), exist_ok=True)
def put(rel, data, mode):
    path = os.path.join(d, rel)
    with open(path, "w") as f:
        f.write(data)
    os.chmod(path, mode)
put("setuid", "#!/bin/sh\n", 0o4755)
put("setgid", "g", 0o2644)
put("sub/locked", "locked", 0o400)
put("plain.txt", "plain", 0o644)
os.symlink("/etc/passwd", os.path.join(d, "abs"))
os.symlink("../../../../../etc", os.path.join(d, "sub", "climb"))
os.symlink("plain.txt", os.path.join(d, "ok"))
os.symlink("../plain.txt", os.path.join(d, "sub", "ok2"))
os.mkfifo(os.path.join(d, "fifo"))
if sys.argv[2:] == ["devices"]:
    os.mknod(os.path.join(d, "blk"), 0o600 | 0o060000, os.makedev(7, 200))
    os.mknod(os.path.join(d, "chr"), 0o666 | 0o020000, os.makedev(1, 3))
os.chmod(os.path.join(d, "sub"), 0o777)
os.chmod(d, 0o777)
"""


def fake_hostile(transport, folder: str, devices: bool) -> None:
    """The same hostile outputs, in a fake transport's in-memory filesystem."""
    folder = folder.strip("/")
    transport.folders.update({folder, f"{folder}/sub"})
    for rel, data, executable in (("setuid", b"#!/bin/sh\n", True), ("setgid", b"g", False),
                                  ("sub/locked", b"locked", False), ("plain.txt", b"plain", False)):
        transport.files[f"{folder}/{rel}"] = (data, executable)
    transport.links.update({f"{folder}/abs": "/etc/passwd", f"{folder}/sub/climb": "../../../../../etc",
                            f"{folder}/ok": "plain.txt", f"{folder}/sub/ok2": "../plain.txt"})
    transport.specials[f"{folder}/fifo"] = "fifo"
    if devices:
        transport.specials.update({f"{folder}/blk": "block device", f"{folder}/chr": "character device"})


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
        (source / "escape").symlink_to("/etc/hostname")
        (source / "nested" / "climb").symlink_to("../../outside")
        transport.push(str(source), f"{spot}/a/b")
        back = tmp_path / "back"
        transport.pull(f"{spot}/a/b", str(back))
        expected = listing(source)
        del expected["escape"], expected["nested/climb"]
        assert listing(back) == expected

    def test_push_sends_exactly_the_listed_paths(self, transport, tmp_path, spot):
        source = make_tree(tmp_path / "src")
        chosen = ["empty", "nested", "nested/deeper", "nested/deeper/x.bin", "top.txt", "alias", "tool.sh"]
        transport.push(str(source), f"{spot}/ex", chosen)
        back = tmp_path / "back"
        transport.pull(f"{spot}/ex", str(back))
        got = listing(back)
        assert sorted(got) == sorted(chosen)
        assert got["alias"] == ("link", "top.txt")
        assert got["tool.sh"] == (b"#!/bin/sh\necho tool\n", True)
        assert got["empty"] == ("dir",)

    def test_files_identical_to_the_basis_are_not_sent(self, transport, tmp_path, spot):
        source = make_tree(tmp_path / "src")
        first = transport.push(str(source), f"{spot}/one")
        assert first >= 3 << 20
        (source / "top.txt").write_text("changed")
        second = transport.push(str(source), f"{spot}/two", basis=f"{spot}/one")
        assert second < first / 50
        back = tmp_path / "back"
        transport.pull(f"{spot}/two", str(back))
        assert listing(back) == listing(source)

    def test_a_same_size_same_time_edit_is_sent(self, transport, tmp_path, spot):
        source = make_tree(tmp_path / "src")
        target = source / "nested" / "deeper" / "x.bin"
        transport.push(str(source), f"{spot}/one")
        before = os.stat(target)
        target.write_bytes(bytes(reversed(range(256))) * 4)
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
        transport.push(str(source), f"{spot}/two", basis=f"{spot}/one")
        back = tmp_path / "back"
        transport.pull(f"{spot}/two", str(back))
        assert (back / "nested" / "deeper" / "x.bin").read_bytes() == target.read_bytes()

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

    def test_pull_brings_only_plain_files_folders_and_safe_links(self, transport, tmp_path, spot, make_hostile, devices):
        transport.push(str(tmp_path), f"{spot}/h", [])
        make_hostile(f"{spot}/h", devices)
        local = tmp_path / "out"
        local.mkdir()
        os.chmod(local, 0o700)
        before = os.stat(local)
        pulled = transport.pull(f"{spot}/h", str(local))
        after = os.stat(local)
        assert (stat.S_IMODE(after.st_mode), after.st_uid, after.st_gid) == (0o700, before.st_uid, before.st_gid)
        got = listing(local)
        assert sorted(got) == ["ok", "plain.txt", "setgid", "setuid", "sub", "sub/locked", "sub/ok2"]
        assert got["ok"] == ("link", "plain.txt") and got["sub/ok2"] == ("link", "../plain.txt")
        assert got["setuid"] == (b"#!/bin/sh\n", True) and got["sub/locked"] == (b"locked", False)
        for folder, dirs, files in os.walk(local):
            for name in dirs + files:
                info = os.lstat(os.path.join(folder, name))
                assert info.st_uid == os.getuid() and info.st_gid == os.getgid(), name
                assert not info.st_mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX), name
                assert stat.S_ISLNK(info.st_mode) or info.st_mode & stat.S_IRUSR and info.st_mode & stat.S_IWUSR, name
        dropped = dict(pulled.dropped)
        assert {"abs", "sub/climb", "fifo"} <= set(dropped)
        assert "outside" in dropped["abs"] and "outside" in dropped["sub/climb"]
        if devices:
            assert {"blk", "chr"} <= set(dropped)

    def test_a_moving_pull_leaves_only_what_did_not_come(self, transport, tmp_path, spot, make_hostile, devices):
        source = make_tree(tmp_path / "src")
        transport.push(str(source), f"{spot}/m")
        make_hostile(f"{spot}/m/hostile", devices)
        moved = tmp_path / "moved"
        transport.pull(f"{spot}/m", str(moved), move=True)
        expected = listing(source)
        assert {k: v for k, v in listing(moved).items() if not k.startswith("hostile")} == expected
        again = tmp_path / "again"
        pulled = transport.pull(f"{spot}/m", str(again))
        assert all(v == ("dir",) for v in listing(again).values()), listing(again)
        assert {"hostile/abs", "hostile/sub/climb", "hostile/fifo"} <= {path for path, _ in pulled.dropped}

    def test_a_folder_replaced_by_a_link_is_never_followed(self, transport, tmp_path, spot, make_link):
        source = tmp_path / "src"
        (source / "victim").mkdir(parents=True)
        (source / "victim" / "data.txt").write_text("not yours to take")
        transport.push(str(source), spot)
        make_link(f"{spot}/out", "victim")
        with pytest.raises(TransportError, match="symlink"):
            transport.pull(f"{spot}/out", str(tmp_path / "local"), move=True)
        back = tmp_path / "back"
        transport.pull(f"{spot}/victim", str(back))
        assert (back / "data.txt").read_text() == "not yours to take"
        assert not (tmp_path / "local" / "data.txt").exists()

    def test_a_dropped_connection_is_reported_and_reconnect_works(self, transport, break_connection):
        break_connection()
        with pytest.raises(ConnectionLost):
            transport.run(helper("exit", "0"))
        transport.connect(wait=30)
        assert transport.run(helper("exit", "5")).exit_code == 5

    def test_close_twice(self, transport):
        transport.close()
        transport.close()
