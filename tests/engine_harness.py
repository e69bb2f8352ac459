"""A scratch copy of the project driven by the real Pulumi engine (scripts/install-pulumi)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Callable
from pathlib import Path

import yaml

from conftest import require_installed

REPO = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("Pulumi.yaml", "Pulumi.develop.yaml", "Pulumi.master.yaml", "Pulumi.platform.yaml", "__main__.py",
                 "tomcat_cd", "components", "cdctl", "domains", "scripts", "tools")


def engine_installed() -> bool:
    out = subprocess.run([str(REPO / "scripts/install-pulumi"), "--print-path"], capture_output=True, text=True)
    return (Path(out.stdout.strip()) / "pulumi").exists()


def require_engine() -> None:
    require_installed(engine_installed(), "the Pulumi CLI is not installed: run scripts/install-pulumi")


def ok(result: subprocess.CompletedProcess) -> str:
    """The command's output; a failure fails the test with the tail of what it printed."""
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@dataclass
class EngineProject:
    root: Path
    wars: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    """Set for every command of this project (a passphrase file, DOCKER_CONFIG, ...)."""

    def env(self, **extra: str) -> dict[str, str]:
        # The CD git id comes from the scratch checkout unless a test names one.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("PULUMI_") and k not in ("KUBECONFIG", "CD_GIT_ID")}
        env.update(PYTHONPATH=str(self.root), **self.extra_env, **extra)
        return env

    def cdctl(self, *args: str, timeout: float = 600, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cdctl", "--project-dir", str(self.root), *args],
                              cwd=self.root, env=self.env(**extra), capture_output=True, text=True, timeout=timeout)

    def engine_calls(self, *args: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
        """cdctl ARGS, and the Pulumi CLI calls it made (each one's arguments)."""
        out = self.root.parent / "engine-calls.json"
        done = subprocess.run([sys.executable, str(REPO / "tests" / "engine_calls.py"), str(out), "--project-dir",
                               str(self.root), *args], cwd=self.root, env=self.env(), capture_output=True, text=True,
                              timeout=600)
        return done, json.loads(out.read_text())

    def pulumi(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return self.cdctl("pulumi", *args, timeout=timeout)

    def resources(self, stack: str = "develop") -> dict[str, dict]:
        """The stack's resources by URN, as `pulumi stack export` prints them."""
        state = json.loads(ok(self.pulumi("stack", "export", "-s", stack)))
        return {resource["urn"]: resource for resource in state["deployment"].get("resources", [])}

    def cdctl_streamed(self, *args: str, on_line: Callable[[str], None],
                       timeout: float = 900) -> subprocess.CompletedProcess:
        """cdctl with each output line handed to `on_line` as it comes (a test acting while
        cdctl waits, e.g. during a health gate's window)."""
        process = subprocess.Popen([sys.executable, "-m", "cdctl", "--project-dir", str(self.root), *args],
                                   cwd=self.root, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        errors: list[str] = []
        reader = threading.Thread(target=lambda: errors.extend(process.stderr))
        reader.start()
        lines = []
        for line in process.stdout:
            lines.append(line)
            on_line(line)
        process.wait(timeout=timeout)
        reader.join()
        return subprocess.CompletedProcess(process.args, process.returncode, "".join(lines), "".join(errors))

    def add_war(self, domain: str, version: str) -> Path:
        war = self.wars / domain / version / "ROOT.war"
        war.parent.mkdir(parents=True, exist_ok=True)
        war.write_bytes(b"PK\x03\x04" + f"{domain} {version}".encode())
        return war

    def stack_config(self, stack: str) -> dict:
        return yaml.safe_load((self.root / f"Pulumi.{stack}.yaml").read_text())["config"]

    def manifests(self, stack: str) -> dict[tuple[str, str], dict]:
        """The objects the Kubernetes provider rendered, by (kind, name)."""
        objects = {}
        for path in (self.root / ".state" / "manifests" / stack).rglob("*.yaml"):
            for obj in yaml.safe_load_all(path.read_text()):
                if obj:
                    objects[(obj["kind"], obj["metadata"]["name"])] = obj
        return objects


def at_once(*calls: Callable[[], subprocess.CompletedProcess]) -> list[subprocess.CompletedProcess]:
    """Start every call at the same moment (each in a thread of its own); their results, in order."""
    results: list[subprocess.CompletedProcess | None] = [None] * len(calls)

    def run(index: int) -> None:
        results[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [result for result in results if result is not None]


def rendered_objects(out: Path) -> dict[tuple[str, str], dict]:
    """The objects `cdctl render` wrote under `out`, by (kind, name)."""
    objects = {}
    for path in (out / "k8s").rglob("*.yaml"):
        obj = yaml.safe_load(path.read_text())
        objects[(obj["kind"], obj["metadata"]["name"])] = obj
    return objects


def make_engine_project(tmp: Path, kubeconfig: Path | None = None) -> EngineProject:
    """A scratch project; with `kubeconfig` its stacks deploy to that cluster (no image builds)."""
    root = tmp / "project"
    root.mkdir()
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, root / name)
    (root / ".venv").symlink_to(REPO / ".venv")
    wars = tmp / "wars"
    for stack in ("develop", "master"):
        path = root / f"Pulumi.{stack}.yaml"
        document = yaml.safe_load(path.read_text())
        document["config"]["tomcat-cd:warRoot"] = str(wars)
        if kubeconfig is not None:
            document["config"]["tomcat-cd:kubeconfig"] = str(kubeconfig)
            document["config"]["tomcat-cd:buildImages"] = False
            # The gate watches each deploy for minutes: its own tests turn it on.
            document["config"]["tomcat-cd:healthGate"] = False
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "cd config"],
                   cwd=root, check=True)
    return EngineProject(root, wars)
