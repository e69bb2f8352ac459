"""The repository's Go tools (tools/): gofmt and go vet clean, and their own Go tests: the
language host's config hand-over, and for the command provider what the end-to-end test does not reach (a change without `update` replaces,
unsupported connection settings refused, a preview runs nothing, a bad key named but never shown)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import REPO, require_installed

pytestmark = pytest.mark.engine


@pytest.mark.parametrize("tool", ["pulumi-resource-command", "pulumi-language-python"])
def test_the_go_tools_own_tests_pass(tool):
    require_installed(shutil.which("go") is not None, "Go is not installed (scripts/install-pulumi needs it too)")
    result = subprocess.run(["go", "test", "-count=1", "./..."], cwd=REPO / "tools" / tool,
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
