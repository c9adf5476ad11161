"""Modal's outputs archive: size limits, and unpacking that never reaches past the outputs folder."""

from __future__ import annotations

import errno
import io
import os
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runplz.services import outputs_archive
from runplz.services.outputs_archive import ExtractReport, extract_outputs
from runplz.domain.errors import RunplzError
from runplz.domain.outputs_limits import (
    REFUSE_BYTES, WARN_BYTES, DamagedOutputs, OutputsTooLarge, check_archive_size, member_verdict,
)

MB = 10**6


# ---- archives built by hand -------------------------------------------------------------

def F(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple:
    return ("file", name, data, mode)


def D(name: str, mode: int = 0o755) -> tuple:
    return ("dir", name, mode)


def L(name: str, target: str) -> tuple:
    return ("sym", name, target)


def H(name: str, target: str) -> tuple:
    return ("hard", name, target)


def S(name: str, kind: bytes) -> tuple:
    return ("special", name, kind)


def archive(*members: tuple, gz: bool = True) -> bytes:
    """A tar (gzip'd unless ``gz`` is False) holding exactly ``members``, in order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w", format=tarfile.PAX_FORMAT) as tar:
        for what, name, *rest in members:
            info = tarfile.TarInfo(name)
            data = None
            if what == "file":
                data, info.mode = rest
                info.size = len(data)
            elif what == "dir":
                info.type, info.mode = tarfile.DIRTYPE, rest[0]
            elif what in ("sym", "hard"):
                info.type = tarfile.SYMTYPE if what == "sym" else tarfile.LNKTYPE
                info.linkname = rest[0]
            else:
                info.type = rest[0]
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def snapshot(top: Path, skip: Path) -> dict[str, tuple]:
    """Every path under ``top`` except ``skip``'s subtree: its kind, size and link target."""
    seen = {}
    for folder, dirs, files in os.walk(top):
        if Path(folder) == skip or skip in Path(folder).parents:
            continue
        for name in dirs + files:
            path = Path(folder, name)
            if path == skip:
                continue
            st_ = path.lstat()
            seen[str(path)] = (stat.S_IFMT(st_.st_mode), st_.st_size,
                               os.readlink(path) if path.is_symlink() else None)
    return seen


@pytest.fixture
def box(tmp_path):
    """A sentinel parent with a file and a folder in it, and the outputs folder two levels down."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "keep.txt").write_text("precious")
    dest = tmp_path / "a" / "out"
    dest.parent.mkdir()
    return tmp_path, dest


# ---- size limits ------------------------------------------------------------------------

@pytest.mark.parametrize("size, warns", [(0, False), (199 * MB, False), (WARN_BYTES - 1, False),
                                         (200 * MB, True), (255 * MB, True), (256 * MB - 1, True)])
def test_size_under_the_cap_warns_from_200_mb(size, warns):
    text = check_archive_size(size)
    assert (text is not None) is warns
    if warns:
        assert "MB" in text and "modal.Volume" in text
    if size == 256 * MB - 1:
        assert "255.9 MB" in text  # rounded down: never claims the cap before it is reached


@pytest.mark.parametrize("size", [256 * MB, REFUSE_BYTES + 1, 10**10])
def test_size_at_the_cap_raises_a_runtime_error_naming_the_kept_archive(size):
    with pytest.raises(OutputsTooLarge) as caught:
        check_archive_size(size, kept_at="/tmp/runplz-out.tar.gz")
    error = caught.value
    assert isinstance(error, RuntimeError) and isinstance(error, RunplzError)
    assert "/tmp/runplz-out.tar.gz" in str(error) and "256 MB" in str(error) and "modal.Volume" in str(error)
    assert (error.size, error.limit, error.kept_at) == (size, REFUSE_BYTES, "/tmp/runplz-out.tar.gz")


def test_a_too_big_archive_file_is_refused_before_anything_is_written(tmp_path):
    saved = tmp_path / "outputs.tar.gz"
    with open(saved, "wb") as handle:
        handle.truncate(REFUSE_BYTES)  # sparse: no real data
    with pytest.raises(OutputsTooLarge, match=str(saved)):
        extract_outputs(str(saved), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_the_warning_comes_back_in_the_report(tmp_path, monkeypatch):
    monkeypatch.setattr(outputs_archive, "check_archive_size", lambda size, kept_at=None: "big")
    report = extract_outputs(archive(F("f")), str(tmp_path / "out"))
    assert report == ExtractReport(files=1, bytes=1, refused=(), warning="big")


# ---- member verdicts (pure) -------------------------------------------------------------

@pytest.mark.parametrize("name, kind, target, safe", [
    ("a/b.txt", "file", None, True), ("./a/", "dir", None, True), (".", "dir", None, True),
    ("a//b", "file", None, True), ("", "file", None, False), (".", "file", None, False),
    ("/etc/x", "file", None, False), ("../x", "file", None, False), ("a/../b", "file", None, False),
    ("l", "symlink", "a/b", True), ("d/l", "symlink", "../b", True), ("l", "symlink", "../b", False),
    ("l", "symlink", "/etc/passwd", False), ("l", "symlink", "", False), ("l", "symlink", "a/../b", False),
    ("h", "hardlink", "a/f", True), ("h", "hardlink", "./a/f", True), ("h", "hardlink", "a/g", False),
    ("a/f", "hardlink", "a/f", False), ("h", "hardlink", "/etc/passwd", False), ("h", "hardlink", "../a/f", False),
    ("c", "chardev", None, False), ("b", "blockdev", None, False), ("p", "fifo", None, False),
    ("x", "other", None, False),
])
def test_member_verdict(name, kind, target, safe):
    verdict = member_verdict(name, kind, target, earlier_files={"a/f"})
    assert (verdict is None) is safe, verdict


# ---- unpacking --------------------------------------------------------------------------

def test_a_tree_comes_back_whole(tmp_path):
    src = tmp_path / "src"
    (src / "nested" / "deeper").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "nested" / "deeper" / "weights.bin").write_bytes(os.urandom(300_000))
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    (src / "résumé – 結果.txt").write_text("ünïcode")
    (src / "latest").symlink_to("nested/deeper")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(src, arcname=".")
    dest = tmp_path / "out"
    report = extract_outputs(buffer.getvalue(), str(dest))
    assert report.refused == () and report.files == 3 and report.bytes == 300_000 + 10 + len("ünïcode".encode())
    assert (dest / "nested" / "deeper" / "weights.bin").read_bytes() == (src / "nested" / "deeper" / "weights.bin").read_bytes()
    assert (dest / "empty").is_dir() and not any((dest / "empty").iterdir())
    assert os.access(dest / "run.sh", os.X_OK)
    assert (dest / "résumé – 結果.txt").read_text() == "ünïcode"
    assert os.readlink(dest / "latest") == "nested/deeper"


def test_a_saved_archive_path_and_a_plain_tar_both_work(tmp_path):
    saved = tmp_path / "o.tar"
    saved.write_bytes(archive(D("d"), F("d/f", b"hi"), H("d/g", "d/f"), gz=False))
    report = extract_outputs(str(saved), str(tmp_path / "out"))
    assert (report.files, report.refused) == (2, ())
    assert (tmp_path / "out" / "d" / "g").read_bytes() == b"hi"


def test_links_that_stay_inside_are_kept(tmp_path):
    dest = tmp_path / "out"
    report = extract_outputs(archive(F("data/x", b"1"), L("latest", "data"), L("data/up", "../data/x"),
                                     H("copy", "./data/x"), H("copy", "copy")), str(dest))
    assert [name for name, _ in report.refused] == ["copy"]  # the second one: a link to itself
    assert os.readlink(dest / "latest") == "data" and (dest / "data" / "up").read_bytes() == b"1"
    assert (dest / "copy").read_bytes() == b"1" and report.files == 2


def _attacks(top: Path) -> list[tuple[list[tuple], list[str]]]:
    return [
        ([F("../evil")], ["../evil"]),
        ([F("a/../../evil")], ["a/../../evil"]),
        ([F(f"{top}/outside/evil"), F("/etc/runplz-evil")], [f"{top}/outside/evil", "/etc/runplz-evil"]),
        ([L("pw", "/etc/passwd")], ["pw"]),
        ([L("up", "../../x")], ["up"]),
        ([L("link", f"{top}/outside"), F("link/evil")], ["link", "link/evil"]),
        ([L("link", "../.."), D("link/sub"), F("link/sub/evil")], ["link", "link/sub", "link/sub/evil"]),
        ([H("hard", "/etc/passwd")], ["hard"]),
        ([H("hard", "../../outside/keep.txt")], ["hard"]),
        ([H("hard", "not-in-the-archive")], ["hard"]),
        ([S("tty", tarfile.CHRTYPE), S("disk", tarfile.BLKTYPE), S("pipe", tarfile.FIFOTYPE)],
         ["tty", "disk", "pipe"]),
    ]


@pytest.mark.parametrize("case", range(11))
def test_each_attack_is_refused_and_the_rest_still_lands(box, case):
    top, dest = box
    members, refused = _attacks(top)[case]
    before = snapshot(top, dest)
    report = extract_outputs(archive(*members, F("ok.txt", b"fine")), str(dest))
    assert [name for name, _ in report.refused] == refused
    assert all(reason for _, reason in report.refused)
    assert (dest / "ok.txt").read_bytes() == b"fine" and report.files == 1
    assert snapshot(top, dest) == before
    assert not os.path.lexists("/etc/runplz-evil")
    assert sorted(p.name for p in dest.iterdir()) == ["ok.txt"]


def test_special_bits_and_group_write_are_stripped(tmp_path):
    dest = tmp_path / "out"
    extract_outputs(archive(F("suid", b"#!", 0o6777), D("sticky", 0o1777), F("ro", b"r", 0o400)), str(dest))
    assert stat.S_IMODE((dest / "suid").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "sticky").stat().st_mode) == 0o755
    assert stat.S_IMODE((dest / "ro").stat().st_mode) == 0o600
    assert (dest / "suid").stat().st_uid == os.getuid()


def test_a_link_already_in_the_outputs_folder_is_never_followed(box):
    top, dest = box
    dest.mkdir(parents=True)
    (dest / "a").symlink_to(top / "outside")
    (dest / "k").symlink_to(top / "outside" / "keep.txt")
    before = snapshot(top, dest)
    report = extract_outputs(archive(F("a/b"), D("a/c"), F("k", b"replaced")), str(dest))
    # 'k' resolves outside, so tarfile's data filter refuses it too: the link stays, untouched
    assert [name for name, _ in report.refused] == ["a/b", "a/c", "k"]
    assert snapshot(top, dest) == before
    assert (top / "outside" / "keep.txt").read_text() == "precious"


def test_a_stale_link_inside_the_outputs_folder_is_replaced_not_followed(tmp_path):
    dest = tmp_path / "out"
    (dest / "sub").mkdir(parents=True)
    (dest / "sub" / "target").write_text("old")
    (dest / "k").symlink_to("sub/target")
    report = extract_outputs(archive(F("k", b"new")), str(dest))
    assert report.refused == () and not (dest / "k").is_symlink()
    assert (dest / "k").read_text() == "new" and (dest / "sub" / "target").read_text() == "old"


def test_earlier_outputs_are_overwritten_but_a_folder_is_not_replaced_by_a_file(tmp_path):
    dest = tmp_path / "out"
    (dest / "dir").mkdir(parents=True)
    (dest / "f").write_text("old")
    report = extract_outputs(archive(F("f", b"new"), F("dir", b"no")), str(dest))
    assert (dest / "f").read_text() == "new" and (dest / "dir").is_dir()
    assert [name for name, _ in report.refused] == ["dir"]


def test_a_truncated_archive_raises_after_keeping_what_came_before(tmp_path):
    blob = archive(F("first.txt", b"kept"), F("second.bin", os.urandom(400_000)), F("third.txt"))
    dest = tmp_path / "out"
    with pytest.raises(DamagedOutputs, match="truncated .*kept 1 file") as caught:
        extract_outputs(blob[: len(blob) // 2], str(dest))
    assert isinstance(caught.value, RuntimeError)
    assert (dest / "first.txt").read_bytes() == b"kept"
    assert sorted(p.name for p in dest.iterdir()) == ["first.txt"]  # no half-written file


@pytest.mark.parametrize("blob", [b"", b"not an archive at all" * 40, archive(F("f"))[:-6]])
def test_garbage_or_a_cut_gzip_trailer_is_damage(tmp_path, blob):
    with pytest.raises(DamagedOutputs):
        extract_outputs(blob, str(tmp_path / "out"))


# ---- the property -----------------------------------------------------------------------

_TOKENS = ["a", "b", "..", ".", "", "/", "<TOP>/"]
_names = st.lists(st.sampled_from(_TOKENS), max_size=6).map("".join)
_members = st.lists(
    st.one_of(_names.map(F), _names.map(D), st.tuples(_names, _names).map(lambda p: L(*p)),
              st.tuples(_names, _names).map(lambda p: H(*p))),
    max_size=6,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(members=_members)
def test_nothing_is_ever_made_outside_the_outputs_folder(members):
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp) / "top"
        (top / "outside").mkdir(parents=True)
        dest = top / "x" / "y" / "out"
        dest.parent.mkdir(parents=True)
        placed = [(m[0], m[1].replace("<TOP>", str(top)),
                   *[r.replace("<TOP>", str(top)) if isinstance(r, str) else r for r in m[2:]]) for m in members]
        before = snapshot(Path(tmp), dest)
        try:
            extract_outputs(archive(*placed), str(dest))
        except DamagedOutputs:
            pass
        assert snapshot(Path(tmp), dest) == before
        for folder, dirs, files in os.walk(dest):
            for name in dirs + files:
                if os.path.islink(os.path.join(folder, name)):
                    assert _lands_inside(os.path.join(folder, name), dest)


def _lands_inside(link: str, dest: Path) -> bool:
    """Whether a link resolves inside ``dest`` (a loop of links resolves nowhere: harmless)."""
    try:
        resolved = os.path.realpath(link, strict=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return True
        resolved = os.path.realpath(link)
    real = os.path.realpath(dest)
    return resolved == real or resolved.startswith(real + os.sep)
