"""The `CommandRunner` contract, for any adapter and its fake."""

from __future__ import annotations

import pytest

from runplz.domain.errors import CommandError, CommandNotFound, CommandTimeout
from runplz.ports.command_runner import CommandRunner


class CommandRunnerFixtures:
    """Implementations provide ``runner`` and ``helper`` (argv prefix of the helper program)."""

    @pytest.fixture
    def runner(self) -> CommandRunner:
        raise NotImplementedError

    @pytest.fixture
    def helper(self) -> list[str]:
        raise NotImplementedError


class AbstractCommandRunnerTests:
    def test_is_a_command_runner(self, runner):
        assert isinstance(runner, CommandRunner)

    @pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
    def test_exit_code_is_exact(self, runner, helper, code):
        assert runner.run([*helper, "exit", str(code)]).exit_code == code

    def test_captures_stdout_and_stderr_apart(self, runner, helper):
        result = runner.run([*helper, "both"])
        assert (result.stdout, result.stderr) == ("to-out\n", "to-err\n")
        assert result.argv == (*helper, "both")

    def test_arguments_pass_without_a_shell(self, runner, helper):
        hostile = "$(echo no) `no` ; | & 'q' \"d\" * ~ \\ é 中"
        assert runner.run([*helper, "echo", hostile]).stdout == hostile + "\n"

    def test_input_bytes_reach_stdin(self, runner, helper):
        assert runner.run([*helper, "cat"], input="héllo\nworld".encode()).stdout == "héllo\nworld"

    def test_input_file_reaches_stdin(self, runner, helper, tmp_path):
        path = tmp_path / "in"
        path.write_bytes(b"a" * 200_000)
        with open(path, "rb") as handle:
            assert len(runner.run([*helper, "cat"], input=handle).stdout) == 200_000

    def test_no_input_means_empty_stdin(self, runner, helper):
        assert runner.run([*helper, "cat"]).stdout == ""

    def test_env_is_laid_over_the_environment(self, runner, helper):
        result = runner.run([*helper, "env", "RUNPLZ_CONTRACT"], env={"RUNPLZ_CONTRACT": "x y"})
        assert result.stdout == "x y\n"
        assert runner.run([*helper, "env", "PATH"], env={"OTHER": "1"}).stdout.strip() not in ("", "<unset>")

    def test_cwd(self, runner, helper, tmp_path):
        assert runner.run([*helper, "cwd"], cwd=str(tmp_path)).stdout.strip() == str(tmp_path)

    def test_missing_cwd_is_a_command_error(self, runner, helper, tmp_path):
        with pytest.raises(CommandError):
            runner.run([*helper, "cwd"], cwd=str(tmp_path / "absent"))

    def test_missing_program(self, runner):
        with pytest.raises(CommandNotFound):
            runner.run(["runplz-no-such-program-xyz"])

    def test_on_line_gets_merged_lines_in_order(self, runner, helper):
        lines: list[str] = []
        result = runner.run([*helper, "interleave", "6"], on_line=lines.append)
        assert lines == [f"line {i}" for i in range(6)]
        assert result.stderr == ""
        assert result.stdout.splitlines() == lines

    def test_on_line_flushes_a_last_partial_line(self, runner, helper):
        lines: list[str] = []
        runner.run([*helper, "noeol"], on_line=lines.append)
        assert lines == ["partial"]

    def test_inherit_returns_no_text(self, runner, helper, capfd):
        result = runner.run([*helper, "both"], inherit=True)
        assert (result.stdout, result.stderr) == ("", "")
        seen = capfd.readouterr()
        assert "to-out" in seen.out and "to-err" in seen.err

    def test_invalid_utf8_is_replaced(self, runner, helper):
        assert runner.run([*helper, "badbytes"]).stdout == "ok \ufffd\ufffd end\n"

    def test_output_keeps_the_last_mib(self, runner, helper):
        result = runner.run([*helper, "big", "3000"])
        assert len(result.stdout) <= 1 << 20
        assert result.stdout.endswith("last line\n")

    def test_timeout(self, runner, helper):
        with pytest.raises(CommandTimeout):
            runner.run([*helper, "sleep", "30"], timeout=0.5)

    def test_finishes_within_timeout(self, runner, helper):
        assert runner.run([*helper, "sleep", "0.01"], timeout=20).stdout == "woke\n"


class AbstractRawOutputTests:
    def test_on_output_gets_raw_stdout_and_stderr_is_captured(self, runner, helper):
        chunks: list[bytes] = []
        result = runner.run([*helper, "both"], on_output=chunks.append)
        assert b"".join(chunks) == b"to-out\n"
        assert (result.stdout, result.stderr) == ("", "to-err\n")

    def test_on_output_passes_partial_lines(self, runner, helper):
        chunks: list[bytes] = []
        runner.run([*helper, "noeol"], on_output=chunks.append)
        assert b"".join(chunks) == b"partial"

    def test_on_output_keeps_bytes_exact(self, runner, helper):
        chunks: list[bytes] = []
        runner.run([*helper, "echo", "é\r中"], on_output=chunks.append)
        assert b"".join(chunks) == "é\r中\n".encode()
