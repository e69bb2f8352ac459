"""The Pulumi engine of this project: where scripts/install-pulumi put it, and the
environment that runs it in local mode (file backend in `.state/pulumi`).

`cdctl pulumi ...`, `cdctl env`, the engine driver and the end-to-end tests all take
their environment from `engine_env`, so they run the same engine the same way.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from tomcat_cd.core.conventions import STATE_DIR
from tomcat_cd.core.urns import TARGETED_SITE_ENV


class EngineMissing(Exception):
    """The Pulumi CLI is not installed: scripts/install-pulumi builds it."""


def _install_script(project_dir: Path) -> Path:
    return project_dir / "scripts" / "install-pulumi"


@functools.lru_cache(maxsize=None)
def engine_paths(project_dir: Path) -> tuple[Path, Path]:
    """(folder holding `pulumi`, PULUMI_HOME holding the plugins), as installed; asked of
    scripts/install-pulumi once per process, since a deploy needs them at every step."""
    script = str(_install_script(project_dir))

    def ask(option: str) -> Path:
        try:
            done = subprocess.run([script, option], capture_output=True, text=True)
        except OSError as err:
            raise EngineMissing(f"{script}: {err.strerror}") from None
        if done.returncode != 0:
            said = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise EngineMissing(f"{script} {option} failed: {said}")
        return Path(done.stdout.strip())

    return ask("--print-path"), ask("--print-home")


def backend_folder(backend_url: str) -> Path | None:
    """The folder of a `file://` backend, else None."""
    return Path(backend_url[len("file://"):]) if backend_url.startswith("file://") else None


def local_backend(project_dir: Path) -> str:
    return f"file://{project_dir / STATE_DIR / 'pulumi'}"


def engine_env(project_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for the project's Pulumi CLI; what the caller already set wins."""
    env = dict(os.environ if base is None else base)
    env.pop(TARGETED_SITE_ENV, None)
    bin_dir, home = engine_paths(project_dir)
    if not (bin_dir / "pulumi").exists():
        raise EngineMissing(f"no Pulumi CLI in {bin_dir}: run scripts/install-pulumi (or scripts/setup)")
    venv_bin = project_dir / ".venv" / "bin"
    env["PATH"] = os.pathsep.join([str(bin_dir), str(venv_bin), env.get("PATH", "")])
    env.setdefault("PULUMI_HOME", str(home))
    env.setdefault("PULUMI_BACKEND_URL", local_backend(project_dir))
    if env["PULUMI_BACKEND_URL"].startswith("file://"):
        Path(env["PULUMI_BACKEND_URL"][len("file://"):]).mkdir(parents=True, exist_ok=True)
    # The example stacks' secrets provider was made with an empty passphrase; a real
    # stack has its own, given through PULUMI_CONFIG_PASSPHRASE(_FILE).
    if "PULUMI_CONFIG_PASSPHRASE" not in env and "PULUMI_CONFIG_PASSPHRASE_FILE" not in env:
        env["PULUMI_CONFIG_PASSPHRASE"] = ""
    env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "1")
    env.setdefault("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "1")
    env.setdefault("PULUMI_DISABLE_REGISTRY_RESOLVE", "1")
    env.setdefault("PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK", "1")
    # After each update a file backend copies the state into .pulumi/history, and by default
    # the same bytes once more into .pulumi/backups: every update's state kept twice (3.2 MB
    # each at 200 sites). The history's copy is the one cdctl reads (PulumiCli.export_at).
    env.setdefault("PULUMI_DIY_BACKEND_DISABLE_CHECKPOINT_BACKUPS", "true")
    return env


def pulumi_command(project_dir: Path) -> str:
    return str(engine_paths(project_dir)[0] / "pulumi")
