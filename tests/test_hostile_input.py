"""Input a hostile or careless user gives cdctl: every case is one line on stderr and exit 2,
or a quiet stop (a closed pipe, Ctrl-C) without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO, cdctl


def deploy_args(project, *extra: str) -> list[str]:
    return ["--project-dir", str(project.root), "deploy", "test.gyyx.cn", "--env", "develop", "--yes", *extra]


@pytest.mark.parametrize("extra,expected", [
    (("--version", "v2\n"), "error: command line: --version: must be a version such as v1.2.0, got 'v2\\n'"),
    (("--version", "v2", "--build-id", "92\nforged"),
     "error: command line: --build-id: must be a build number or id (letters, digits, ._#-; 64 at most), "
     "got '92\\nforged'"),
    (("--version", "v2", "--build-id", "\x1b[31mred"),
     "error: command line: --build-id: must be a build number or id (letters, digits, ._#-; 64 at most), "
     "got '\\x1b[31mred'"),
    (("--version", "v2", "--build-id", "9" * 5000),
     "error: command line: --build-id: must be a build number or id (letters, digits, ._#-; 64 at most), "
     f"got '{'9' * 79}"),
], ids=["version with newline", "build id with newline", "build id with ANSI escape", "build id of 5000 digits"])
def test_deploy_arguments_are_full_matched_and_bounded(project, extra, expected):
    result = cdctl(*deploy_args(project, *extra))
    assert result.code == 2
    assert result.err.splitlines()[0].startswith(expected)
    assert len(result.err.splitlines()) == 2  # the problem and the summary: one line each


def test_a_domain_file_deeper_than_any_real_one_is_refused_not_a_segfault(project):
    project.domain("deep.gyyx.cn", "nodePort: 32500\nenv: " + "[" * 30000 + "]" * 30000 + "\n")
    result = cdctl("--project-dir", str(project.root), "check")
    assert result.code == 2, result
    assert result.err.splitlines()[0] == (
        "error: domains/deep.gyyx.cn.yaml: not valid YAML: nested deeper than 32 levels (line 2)")


def test_an_env_name_with_a_trailing_newline_is_refused(project):
    project.domain("nl.gyyx.cn", 'nodePort: 32500\nenv: {"GOOD\\n": x}\n')
    result = cdctl("--project-dir", str(project.root), "check")
    assert result.code == 2
    assert result.err.splitlines()[0] == (
        "error: domains/nl.gyyx.cn.yaml: env.GOOD\\n: name must be an environment variable name "
        "([A-Za-z_][A-Za-z0-9_]*)")


def test_a_closed_pipe_ends_cdctl_quietly(project, tmp_path):
    # As `cdctl render ... | head -0`: the reader is gone before cdctl writes.
    read, write = os.pipe()
    os.close(read)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "cdctl", "--project-dir", str(project.root), "render",
                           "--stack", "develop", "--out", str(tmp_path / "out")],
                          stdout=write, stderr=subprocess.PIPE, env=env, text=True, timeout=60)
    os.close(write)
    assert done.returncode == 141
    assert "Broken pipe" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_ctrl_c_prints_one_line_and_exits_130(monkeypatch, capsys, project):
    from cdctl import cli, local_commands

    def interrupted(args, project_dir):
        raise KeyboardInterrupt

    monkeypatch.setattr(local_commands, "cmd_check", interrupted)
    assert cli.main(["--project-dir", str(project.root), "check"]) == 130
    assert capsys.readouterr().err == "\ninterrupted\n"
