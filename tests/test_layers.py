"""The layers, as the folder names say: the pure core imports neither Pulumi nor a process
runner; the components and the program build on the core; the engine driver runs the CLI and
never imports the program or its components; cdctl starts without Pulumi's SDK."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

LAYERS = {
    "tomcat_cd/core": ("pulumi", "pulumi_kubernetes", "pulumi_command", "pulumi_docker_build", "subprocess",
                       "components", "tomcat_cd.program", "tomcat_cd.driver", "cdctl"),
    "components": ("tomcat_cd.program", "tomcat_cd.driver", "cdctl", "subprocess"),
    "tomcat_cd/program": ("tomcat_cd.driver", "cdctl"),
    "tomcat_cd/driver": ("pulumi", "pulumi_kubernetes", "components", "tomcat_cd.program", "cdctl"),
}


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def under(name: str, forbidden: str) -> bool:
    return name == forbidden or name.startswith(forbidden + ".")


@pytest.mark.parametrize("folder", sorted(LAYERS))
def test_no_module_imports_from_a_layer_above_it(folder):
    modules = sorted((REPO / folder).rglob("*.py"))
    assert modules, folder
    wrong = [f"{path.relative_to(REPO)} imports {name}" for path in modules for name in sorted(imported(path))
             for forbidden in LAYERS[folder] if under(name, forbidden)]
    assert wrong == []


def test_no_module_imports_a_private_module_of_another_package():
    wrong = [f"{path.relative_to(REPO)} imports {name}"
             for folder in ("tomcat_cd", "components", "cdctl") for path in sorted((REPO / folder).rglob("*.py"))
             for name in sorted(imported(path)) if any(part.startswith("_") and part != "__future__"
                                                       for part in name.split("."))]
    assert wrong == []


def loaded_by(argv: list[str], prefixes: tuple[str, ...]) -> list[str]:
    """The modules of `prefixes` a fresh interpreter has loaded after `cdctl ARGV`."""
    code = (f"import sys\nfrom cdctl.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in sys.modules if m.startswith({prefixes!r})))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "CD_GIT_ID": "abc1234"})
    assert done.returncode == 0, done.stderr
    return ast.literal_eval(done.stdout.strip().splitlines()[-1])


def test_cdctl_help_does_not_import_pulumi_or_the_domain_file_schema():
    assert loaded_by(["--help"], ("pulumi", "pydantic")) == []
    assert "tomcat_cd.core.model" not in loaded_by(["--help"], ("tomcat_cd.core",))


def test_help_check_render_and_history_load_no_driver_but_the_engine_errors_they_name(tmp_path):
    """The drivers (deploy, Kubernetes, Elasticsearch, ...) load only for the commands that use them;
    `history` needs one CLI call (it then stops at once: without HOME no engine is found)."""
    needed = ["tomcat_cd.driver", "tomcat_cd.driver.engine", "tomcat_cd.driver.pulumi_cli"]
    history = ["history", "no-such.example.com", "--env", "develop"]
    for argv in (["--help"], ["check"], ["render", "--stack", "develop", "--out", str(tmp_path / "out")], history):
        assert loaded_by(argv, ("tomcat_cd.driver",)) == needed, argv
    assert loaded_by(history, ("cdctl.",)) == ["cdctl.cli", "cdctl.history_command", "cdctl.parsers"]
    # A command that needs them loads them.
    assert "tomcat_cd.driver.deploy" in loaded_by(["drift", "no-such.example.com", "--env", "develop"],
                                                  ("tomcat_cd.driver",))


@pytest.mark.checker
def test_the_code_passes_mypy_strict():
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("Success: no issues found")
