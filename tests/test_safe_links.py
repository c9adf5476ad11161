"""Which links may travel: absolute, climbing out, or climbing after descending never do."""

import pytest

from runplz.domain.safe_links import clean_relpath, escapes


@pytest.mark.parametrize("link, target, unsafe", [
    ("a", "b", False),
    ("a", "./b", False),
    ("d/a", "../b", False),
    ("d/e/a", "../../b", False),
    ("d/x", "../d2/f", False),
    ("a", "../b", True),
    ("d/x", "../../f", True),
    ("a", "/etc/passwd", True),
    ("a", "", True),
    ("esc", "sub/up/..", True),  # sub/up may itself be a link to '..'
    ("esc", "sub/../x", True),
])
def test_escapes(link, target, unsafe):
    assert escapes(link, target) is unsafe


@pytest.mark.parametrize("path, ok", [
    ("a", True), ("a/b", True), ("", False), ("/a", False), ("a/../b", False), ("a//b", False), ("./a", False),
])
def test_clean_relpath(path, ok):
    assert clean_relpath(path) is ok
