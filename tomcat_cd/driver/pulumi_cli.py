"""The Pulumi CLI of one stack, run as a process: every engine call cdctl makes goes here.

cdctl runs the CLI itself rather than through the Automation API: a command then imports
nothing of Pulumi's SDK (2.4 s of start-up), and every call is one visible command line.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tomcat_cd.core import conventions
from tomcat_cd.driver.engine import backend_folder, engine_env, pulumi_command

HISTORY_PAGE = 100
HISTORY_SUFFIXES = (".history.json", ".history.json.gz", ".history.json.zst")


class EngineError(Exception):
    """A CLI call failed; `detail` is the engine's own last error line."""

    def __init__(self, step: str, detail: str):
        self.step = step
        self.detail = detail
        super().__init__(f"step '{step}' failed: {detail}")


URN_LINE = re.compile(r"\[urn=(urn:pulumi:[^\]]+)\]")


def last_error_line(output: str) -> str:
    """The engine's most telling `error: ...` line of a failed command's output, naming the
    resource it came from when the output says (`<name> (<type>): error: ...`)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [(i, line[line.index("error:"):]) for i, line in enumerate(lines) if "error:" in line]
    # The engine closes with generic lines; the resource's (or the program's) own error says what happened.
    specific = [e for e in errors if not re.search(r"error: (update failed|Resource monitor has terminated|an unhandled "
                                                   r"error occurred: Program exited with non-zero exit code)", e[1])]
    position, detail = (specific or errors or [(len(lines), line) for line in lines[-1:]] or [(0, "unknown error")])[-1]
    # With --diff, a resource's error follows the block that names it.
    owner = next((m.group(1) for m in map(URN_LINE.search, reversed(lines[:position])) if m), None)
    if owner and specific and owner.count("::") == 3:
        _, _, type_path, name = owner.split("::")
        detail = f"{name} ({type_path.rsplit('$', 1)[-1]}): {detail}"
    conflict = [line for line in lines if "had an apply conflict" in line]
    return f"{detail} {conflict[-1]}" if conflict else detail


def urns_of(state: dict[str, Any]) -> set[str]:
    """The URNs of a state as `pulumi stack export` prints it."""
    return {r.get("urn") for r in (state.get("deployment") or {}).get("resources") or []}


@dataclass
class PulumiCli:
    project_dir: Path
    stack: str
    _config: dict[str, Any] | None = field(default=None, init=False, repr=False)
    """The stack file's `tomcat-cd:` values as last read through this CLI (a write drops them)."""

    def __post_init__(self) -> None:
        self.env = engine_env(self.project_dir)

    def command(self, *args: str) -> list[str]:
        return [pulumi_command(self.project_dir), *args, "--stack", self.stack]

    def run(self, step: str, *args: str, extra_env: dict[str, str] | None = None) -> str:
        done = subprocess.run(self.command(*args), cwd=self.project_dir, env={**self.env, **(extra_env or {})},
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise EngineError(step, last_error_line(done.stderr + "\n" + done.stdout))
        return done.stdout

    def json(self, step: str, *args: str) -> Any:
        return json.loads(self.run(step, *args, "--json") or "null")

    def exists(self) -> bool:
        listed = subprocess.run([pulumi_command(self.project_dir), "stack", "ls", "--json"], cwd=self.project_dir,
                                env=self.env, capture_output=True, text=True)
        if listed.returncode != 0:
            raise EngineError("list stacks", last_error_line(listed.stderr + listed.stdout))
        return any(s.get("name", "").rsplit("/", 1)[-1] == self.stack for s in json.loads(listed.stdout or "[]"))

    def select(self, create: bool = True) -> None:
        """Make the stack the workspace's; with `create`, make it in the backend first if new.
        Every call names its stack (`--stack`), so a stack a file backend already holds needs
        no call."""
        if create and self._checkpoint_file() is not None:
            return
        done = subprocess.run([pulumi_command(self.project_dir), "stack", "select", *(["--create"] if create else []),
                               self.stack], cwd=self.project_dir, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise EngineError("select stack", last_error_line(done.stderr + done.stdout))

    def _history_page(self, size: int, page: int) -> list[dict[str, Any]]:
        return self.json("read history", "stack", "history", "--page-size", str(size), "--page", str(page)) or []

    def history(self) -> list[dict[str, Any]]:
        """Every update, newest first, read page by page: the CLI shows 10 unless asked."""
        updates: list[dict[str, Any]] = []
        page = 1
        while True:
            batch = self._history_page(HISTORY_PAGE, page)
            updates += batch
            if len(batch) < HISTORY_PAGE:
                return updates
            page += 1

    def history_or_none(self) -> list[dict[str, Any]] | None:
        """`history()`, or None when the backend does not have the stack (the CLI says so itself)."""
        try:
            return self.history()
        except EngineError as err:
            if "no stack named" in err.detail:
                return None
            raise

    def newest_succeeded(self) -> dict[str, Any] | None:
        """The newest update that succeeded, read a few at a time: usually the newest one."""
        page = 1
        while True:
            batch = self._history_page(10, page)
            found = next((u for u in batch if u.get("result") == "succeeded" and u.get("kind") == "update"), None)
            if found is not None or len(batch) < 10:
                return found
            page += 1

    def update_count(self) -> int:
        """How many updates the stack has had: a file backend's history files (it numbers every
        update 0; counting them needs no CLI call), else the newest update's number."""
        folder = backend_folder(self.env["PULUMI_BACKEND_URL"])
        if folder is not None:
            # The suffixes Pulumi reads as history (beside each lie a checkpoint and .attrs files).
            files = [path for path in (folder / ".pulumi" / "history").glob(f"**/{conventions.PROJECT}/{self.stack}/*")
                     if path.name.endswith(HISTORY_SUFFIXES)]
            if files:
                return len(files)
        newest = self._history_page(1, 1)
        if not newest:
            return 0
        if newest[0].get("version"):
            return int(newest[0]["version"])
        return len(self.history())

    def export(self) -> dict[str, Any]:
        """The stack's state as `pulumi stack export` prints it (secrets stay encrypted). A
        file backend's checkpoint is read directly: the CLI takes 0.9 s to print 200 sites'."""
        checkpoint = self._checkpoint_file()
        if checkpoint is not None:
            latest = json.loads(checkpoint.read_text()).get("checkpoint", {}).get("latest") or {}
            return {"version": 3, "deployment": latest}
        state: dict[str, Any] = json.loads(self.run("read state", "stack", "export") or "{}")
        return state

    def export_at(self, number: int) -> dict[str, Any]:
        """The state as update `number` (counted from 1, as history counts) left it: a file
        backend keeps one checkpoint per update beside its history file; another backend
        exports that version."""
        folder = backend_folder(self.env["PULUMI_BACKEND_URL"])
        if folder is None:
            return dict(json.loads(self.run("read state", "stack", "export", "--version", str(number)) or "{}"))
        checkpoints = sorted((folder / ".pulumi" / "history" / conventions.PROJECT / self.stack).glob(
            f"{self.stack}-*.checkpoint.json"), key=lambda path: int(path.name.split("-")[-1].split(".")[0]))
        if not 1 <= number <= len(checkpoints):
            raise EngineError("read state", f"update {number} of stack {self.stack} has no checkpoint "
                                            f"(the backend keeps {len(checkpoints)})")
        latest = json.loads(checkpoints[number - 1].read_text()).get("checkpoint", {}).get("latest") or {}
        return {"version": 3, "deployment": latest}

    def _checkpoint_file(self) -> Path | None:
        """`<backend>/.pulumi/stacks/<project>/<stack>.json` of a file backend (gzipped ones
        and other backends go through the CLI)."""
        folder = backend_folder(self.env["PULUMI_BACKEND_URL"])
        if folder is None:
            return None
        path = folder / ".pulumi" / "stacks" / conventions.PROJECT / f"{self.stack}.json"
        return path if path.is_file() and not path.with_name(f"{path.name}.gz").exists() else None

    def resource_urns(self) -> set[str]:
        return urns_of(self.export())

    def config(self) -> dict[str, Any]:
        """The checkout's `tomcat-cd:` values, without the prefix (a secret as its ciphertext),
        read from `Pulumi.<stack>.yaml` itself: asking `pulumi config` was a CLI call, 0.2 s
        of every change."""
        # Here, not at the top: the settings load pydantic, which `cdctl pulumi` never needs.
        from tomcat_cd.core.settings import read_stack_values

        if self._config is None:
            self._config = read_stack_values(self.project_dir, self.stack)[1]
        return dict(self._config)

    def secret(self, key: str) -> str:
        """A `tomcat-cd:` secret's value, decrypted by the engine (never printed)."""
        return self.run("read secret", "config", "get", f"{conventions.PROJECT}:{key}").rstrip("\n")

    def set_config(self, values: dict[str, Any], removed: list[str]) -> None:
        """Write structured values in one call (`config set` would store 1.10 as a number)."""
        self._config = None
        if values:
            payload = {key: {"value": json.dumps(value), "objectValue": value, "secret": False}
                       for key, value in values.items()}
            self.run("set config", "config", "set-all", "--json", json.dumps(payload))
        for key in removed:
            self.run("set config", "config", "rm", key)
