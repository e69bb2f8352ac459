"""Shared fixtures: a scratch copy of the project, and helpers to run cdctl."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

GIT_ID = "abc1234"


# The two slowest modules (minutes each: a cluster, a whole pipeline) go out first, so that
# with scripts/test's workers neither is left running alone at the end.
SLOWEST_MODULES = ("test_pipeline.py", "test_cluster.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.path.name not in SLOWEST_MODULES)


@pytest.fixture(autouse=True)
def _fixed_git_id(monkeypatch):
    # Image tags carry the CD repo's git id; tests pin it so expectations are exact.
    monkeypatch.setenv("CD_GIT_ID", GIT_ID)


@dataclass
class Project:
    root: Path

    @property
    def domains(self) -> Path:
        return self.root / "domains"

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def domain(self, name: str, text: str) -> Path:
        return self.write(f"domains/{name}.yaml", text)

    def stack(self, name: str, text: str) -> Path:
        return self.write(f"Pulumi.{name}.yaml", text)


SITE_STACKS = ("develop", "master")


def copy_project(root: Path, wars: Path) -> Project:
    """The repository's project files and example domains, its site stacks keeping wars in
    `wars`: no test reads the host's /data (on a Jenkins host it holds real wars)."""
    root.mkdir(parents=True)
    for name in ("Pulumi.yaml", "Pulumi.master.yaml", "Pulumi.develop.yaml", "Pulumi.platform.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "domains", root / "domains")
    for stack in SITE_STACKS:
        path = root / f"Pulumi.{stack}.yaml"
        path.write_text(path.read_text().replace("tomcat-cd:warRoot: /data/jks-cd-config",
                                                 f"tomcat-cd:warRoot: {wars}"))
        assert str(wars) in path.read_text(), f"{path.name} no longer sets warRoot"
    return Project(root)


@pytest.fixture
def project(tmp_path) -> Project:
    """A copy of the repository's project files and example domains (see copy_project)."""
    return copy_project(tmp_path / "project", tmp_path / "wars")


@pytest.fixture(scope="session", autouse=True)
def _temp_folder_left_empty(tmp_path_factory):
    """The processes the tests start get a temporary folder of their own, which must be empty
    when the session ends: what the suite runs leaves nothing in a machine's /tmp."""
    folder = tmp_path_factory.mktemp("tmpdir")
    inherited = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(folder)
    yield
    if inherited is None:
        del os.environ["TMPDIR"]
    else:
        os.environ["TMPDIR"] = inherited
    left = sorted(path.name for path in folder.iterdir())
    assert not left, f"left in the temporary folder {folder}: {', '.join(left[:10])} ({len(left)} in all)"


_checkout: Project | None = None


@pytest.fixture(scope="session", autouse=True)
def _hermetic_checkout(tmp_path_factory):
    """The project `cdctl()` runs in unless a test names another."""
    global _checkout
    _checkout = copy_project(tmp_path_factory.mktemp("checkout") / "project", tmp_path_factory.mktemp("wars"))
    # A checkout, as the repository is: image tags carry its git id where no test pins one.
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "cd config"]):
        subprocess.run(git + command, cwd=_checkout.root, check=True, capture_output=True)


@pytest.fixture
def empty_project(tmp_path) -> Project:
    """A project with no domain files and a minimal develop stack."""
    root = tmp_path / "empty"
    (root / "domains").mkdir(parents=True)
    (root / "Pulumi.yaml").write_text("name: tomcat-cd\nruntime: python\n")
    proj = Project(root)
    proj.stack("develop", "config:\n  tomcat-cd:harborHost: harbor.example.com\n")
    return proj


def free_port(address: str = "127.0.0.1") -> int:
    """A port nothing listens on at `address` now, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def require_installed(present: bool, reason: str) -> None:
    """Skip a test whose tool is not installed, printing why; CI sets
    TOMCAT_CD_REQUIRE_CHECKERS so that a missing tool fails instead."""
    if not present:
        if os.environ.get("TOMCAT_CD_REQUIRE_CHECKERS"):
            pytest.fail(reason)
        pytest.skip(reason)


@dataclass
class Result:
    code: int
    out: str
    err: str


def cdctl(*args: str, cwd: Path | None = None) -> Result:
    """Run cdctl in a subprocess, as a user would; in the session's copy of the project
    unless `--project-dir` or `cwd` names another."""
    if cwd is None and "--project-dir" not in args:
        assert _checkout is not None
        args = ("--project-dir", str(_checkout.root), *args)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "cdctl", *args], cwd=cwd or REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    return Result(proc.returncode, proc.stdout, proc.stderr)
