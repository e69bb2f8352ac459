"""The local kwok cluster of the end-to-end tests (scripts/install-cluster, scripts/cluster):
one per test module that asks for the `cluster` fixture, stopped with nothing left behind."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from conftest import REPO, require_installed
from engine_harness import require_engine

BIN = Path(subprocess.run([str(REPO / "scripts/install-cluster"), "--print-path"],
                          capture_output=True, text=True).stdout.strip())


def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=kwargs.pop("timeout", 300), **kwargs)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_installed((BIN / "kwokctl").exists(), f"no cluster binaries in {BIN}: run scripts/install-cluster")
    require_engine()
    state = tmp_path_factory.mktemp("cluster")
    env = dict(os.environ, TOMCAT_CD_CLUSTER_DIR=str(state))
    started = run(str(REPO / "scripts/cluster"), "up", env=env)
    if started.returncode != 0:
        run(str(REPO / "scripts/cluster"), "down", env=env)
        pytest.fail(f"scripts/cluster up failed: {started.stderr}")
    kubeconfig = state / "kubeconfig"
    server = urlparse(yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"])
    assert server.hostname == "127.0.0.1"
    try:
        yield kubeconfig
    finally:
        stopped = run(str(REPO / "scripts/cluster"), "down", env=env)
        assert stopped.returncode == 0, stopped.stderr
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", server.port)) != 0, "the API server's port is still bound"
        assert run("pgrep", "-f", str(state)).returncode == 1, "a cluster process outlived scripts/cluster down"


def kubectl(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess:
    return run(str(BIN / "kubectl"), "--kubeconfig", str(kubeconfig), *args)


