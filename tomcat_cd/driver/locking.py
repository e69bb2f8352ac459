"""Who may change an environment now: tomcat-cd's own lock, and Pulumi's lock when its
holder is gone.

Pulumi's stack lock guards one update; a deploy is more (read what runs, write the checkout's
stack file, update, restore on failure), so tomcat-cd holds a lock of its own around all of
it: a file lock in the checkout's `.state/locks` and, for a `file://` backend, one in the
backend's folder, which every checkout sharing that backend sees. For another backend,
Jenkins runs one build per environment at a time (the Jenkinsfile's `lock`).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from tomcat_cd.core import conventions
from tomcat_cd.driver.engine import backend_folder


@contextmanager
def _flock(path: Path, waiting: str, out: Callable[[str], None]) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            out(waiting)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@contextmanager
def environment_lock(project_dir: Path, stack: str, backend_url: str,
                     out: Callable[[str], None]) -> Iterator[None]:
    """Held for a whole change of one environment (see the module's text)."""
    waiting = f"waiting: another cdctl is changing stack {stack} ..."
    with ExitStack() as held:
        held.enter_context(_flock(project_dir / conventions.STATE_DIR / "locks" / f"{stack}.lock", waiting, out))
        shared = backend_folder(backend_url)
        if shared is not None:
            held.enter_context(_flock(shared / ".tomcat-cd" / "locks" / f"{stack}.lock", waiting, out))
        yield


@dataclass(frozen=True)
class PulumiLock:
    """One lock file of a `file://` backend, as Pulumi writes it."""

    path: Path
    pid: int
    username: str
    hostname: str
    timestamp: str

    def holder_gone(self) -> bool:
        """True when the holder ran on this machine and runs no more."""
        if self.hostname != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def describe(self) -> str:
        return f"pid {self.pid} of {self.username} on {self.hostname} since {self.timestamp}"


def pulumi_locks(backend_url: str, project: str, stack: str) -> list[PulumiLock]:
    """The stack's Pulumi locks in a `file://` backend (`.pulumi/locks/<org>/<project>/<stack>/`)."""
    folder = backend_folder(backend_url)
    if folder is None:
        return []
    locks = []
    for path in sorted((folder / ".pulumi" / "locks").glob(f"*/{project}/{stack}/*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            locks.append(PulumiLock(path, int(data["pid"]), str(data.get("username", "")),
                                    str(data.get("hostname", "")), str(data.get("timestamp", ""))))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return locks


def stale_lock_message(backend_url: str, project: str, stack: str) -> str | None:
    """What to say when the stack is locked by an update whose process is gone, or None."""
    stale = [lock for lock in pulumi_locks(backend_url, project, stack) if lock.holder_gone()]
    if not stale:
        return None
    return (f"stack {stack} is locked by an update that is no longer running ({stale[0].describe()}): "
            f"it was interrupted. Run: cdctl unlock --env {stack}")


def release_stale_locks(backend_url: str, project: str, stack: str) -> list[PulumiLock]:
    """Remove the locks whose holders are gone; a live holder's lock stays."""
    released = []
    for lock in pulumi_locks(backend_url, project, stack):
        if lock.holder_gone():
            lock.path.unlink(missing_ok=True)
            released.append(lock)
    return released


def _proc(pid: str, name: str) -> bytes:
    with open(f"/proc/{pid}/{name}", "rb") as handle:
        return handle.read()


def stop_orphaned_plugins(project_dir: Path) -> list[int]:
    """Kill the Pulumi plugins left running in this checkout by a `pulumi` that died with
    cdctl (a kill -9 of the whole job): a process working in the project folder, started
    from Pulumi's tools, whose parent is no Pulumi process any more. Call with the
    environment's lock held, so that no update of this checkout is running."""
    stopped = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if Path(os.readlink(f"/proc/{pid}/cwd")) != project_dir or b"pulumi" not in _proc(pid, "cmdline"):
                continue
            parent = _proc(pid, "stat").rsplit(b")", 1)[1].split()[1].decode()
            if b"pulumi" in _proc(parent, "cmdline"):
                continue
            os.kill(int(pid), 9)
            stopped.append(int(pid))
        except (OSError, IndexError, ProcessLookupError):
            continue
    return stopped
