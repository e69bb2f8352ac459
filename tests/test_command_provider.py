"""tomcat-cd's own command provider (tools/pulumi-resource-command): its Go tests, for what the
end-to-end test does not reach (a change without `update` replaces, unsupported connection
settings refused, a preview runs nothing, a bad key named but never shown)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import REPO, require_installed

pytestmark = pytest.mark.engine


def test_the_command_provider_go_tests_pass():
    require_installed(shutil.which("go") is not None, "Go is not installed (scripts/install-pulumi needs it too)")
    result = subprocess.run(["go", "test", "-count=1", "./..."], cwd=REPO / "tools/pulumi-resource-command",
                            capture_output=True, text=True, timeout=600, env=None)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok "), result.stdout
