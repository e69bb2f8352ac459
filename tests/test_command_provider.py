"""The repository's Go tools (tools/): gofmt and go vet clean, and the command provider's own Go
tests, for what the end-to-end test does not reach (a change without `update` replaces,
unsupported connection settings refused, a preview runs nothing, a bad key named but never shown)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import REPO, require_installed

pytestmark = pytest.mark.engine


def test_the_command_provider_go_tests_pass():
    require_installed(shutil.which("go") is not None, "Go is not installed (scripts/install-pulumi needs it too)")
    result = subprocess.run(["go", "test", "-count=1", "./..."], cwd=REPO / "tools/pulumi-resource-command",
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok "), result.stdout


def test_the_go_tools_are_gofmt_clean_and_vet_clean():
    require_installed(shutil.which("go") is not None, "Go is not installed (scripts/install-pulumi needs it too)")
    unformatted = subprocess.run(["gofmt", "-l", "."], cwd=REPO / "tools", capture_output=True, text=True, check=True)
    assert unformatted.stdout == "", f"run gofmt -w on: {unformatted.stdout}"
    for tool in ("pulumi-resource-command", "pulumi-language-python"):
        vet = subprocess.run(["go", "vet", "./..."], cwd=REPO / "tools" / tool, capture_output=True, text=True, timeout=600)
        assert vet.returncode == 0, vet.stdout + vet.stderr
