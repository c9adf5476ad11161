"""Your own test of a runplz job, offline: no Docker, no network."""

import hello

from runplz.testing import fake_container


def test_count_writes_its_output_and_returns_a_summary(tmp_path):
    container = fake_container()
    hello.app.bind("local", outputs_dir=str(tmp_path), container=container)

    assert hello.count.remote(steps=2)["steps"] == 2
    assert (tmp_path / "hello.txt").read_text() == "hello 0\nhello 1\n"

    dockerfile = container.container_engine().builds[0].dockerfile
    assert '"six"' in dockerfile  # the image installs what the job needs
