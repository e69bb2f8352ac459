"""A normal install: the wheel, with its declared dependencies, in a fresh virtualenv."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, copy_project

pytestmark = pytest.mark.install


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, timeout=900, **kwargs)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


def test_the_wheel_installs_with_its_dependencies_and_cdctl_renders(tmp_path):
    # Built from a copy of the tracked files: a build writes its build/ folder beside the sources.
    source = tmp_path / "source"
    for name in run("git", "ls-files", cwd=REPO).stdout.splitlines():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / name).is_symlink():
            target.symlink_to(os.readlink(REPO / name))
        else:
            shutil.copy2(REPO / name, target)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
        "-w", str(tmp_path / "dist"), str(source))
    (wheel,) = (tmp_path / "dist").glob("tomcat_cd-*.whl")
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", str(venv))
    run(str(venv / "bin/python"), "-m", "pip", "install", "--disable-pip-version-check", "-q", str(wheel))
    cdctl = str(venv / "bin/cdctl")

    assert "exit codes: 0 ok, 1 failure, 2 bad input" in run(cdctl, "--help", cwd=tmp_path).stdout
    project = copy_project(tmp_path / "project", tmp_path / "wars")
    site = run(cdctl, "--project-dir", str(project.root), "render", "--stack", "develop", "--out",
               str(tmp_path / "develop"), env={"PATH": "/usr/bin:/bin", "CD_GIT_ID": "abc1234"})
    assert "rendered stack develop (environment develop): 5 Kubernetes object(s)" in site.stdout
    # The platform stack needs the host scripts' prelude.sh and the pinned versions, both package data.
    platform = run(cdctl, "--project-dir", str(project.root), "render", "--stack", "platform", "--out",
                   str(tmp_path / "platform"), env={"PATH": "/usr/bin:/bin", "CD_GIT_ID": "abc1234"})
    assert "rendered stack platform (platform)" in platform.stdout
    assert (tmp_path / "platform/hosts/ORDER.txt").is_file()
