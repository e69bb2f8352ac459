"""One targeted `pulumi up` (or preview) of one site: streamed, interruptible, never whole-stack.

A SIGINT or SIGTERM to cdctl (Ctrl-C, a Jenkins abort) is passed on to `pulumi` as SIGINT,
which Pulumi answers by finishing the steps in flight, saving the state and releasing its
lock. Pulumi starts each plugin in a process group of its own, so a `pulumi` killed outright
would leave them running (listening on 127.0.0.1): cdctl is their subreaper, so they become
its children when `pulumi` dies, and it stops every one that is left once `pulumi` exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from tomcat_cd.core import conventions
from tomcat_cd.core.urns import TARGETED_SITE_ENV
from tomcat_cd.driver.locking import release_stale_locks, stale_lock_message
from tomcat_cd.driver.pulumi_cli import EngineError, PulumiCli, last_error_line

LOCK_WAIT_SECONDS = 300
LOCKED = ("the stack is currently locked by", "[409] Conflict")


class Interrupted(Exception):
    """cdctl got SIGINT or SIGTERM during an update; Pulumi was told to stop."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


@contextlib.contextmanager
def on_interrupt(handler: Callable[[int, Any], None]) -> Iterator[None]:
    """`handler` for SIGINT and SIGTERM (Ctrl-C, a Jenkins abort) in the block; the handlers
    cdctl had before, after it."""
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler_before in previous.items():
            signal.signal(signum, handler_before)


def signals_interrupt() -> contextlib.AbstractContextManager[None]:
    """SIGINT and SIGTERM raise `Interrupted` in the block, so that what cdctl waits for (a
    gate's window) can say how it ended before cdctl stops."""
    def stop(signum: int, frame: Any) -> None:
        raise Interrupted(signum)

    return on_interrupt(stop)


@dataclass(frozen=True)
class TargetedUpdate:
    """What one change runs: at least one target, so never a whole-stack update.

    `only_site`: the program registers that site alone (fast with many sites). Pulumi counts
    every dependent of a target as affected, so an update that targets anything the other
    sites depend on (the environment's namespace) must leave it False: the program then
    registers every site, none of them looks deleted, and the untargeted ones are skipped."""

    domain: str
    targets: tuple[str, ...]
    message: str
    refresh: bool = False
    only_site: bool = True

    def __post_init__(self) -> None:
        if not self.targets:
            raise ValueError(f"a change of {self.domain} must target its resources: refusing a whole-stack update")

    def arguments(self) -> list[str]:
        return ([f"--target={urn}" for urn in self.targets] + ["--message", self.message]
                + (["--refresh"] if self.refresh else []))


PR_SET_CHILD_SUBREAPER = 36


def _become_subreaper() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: orphans go to init, and `cdctl unlock` stops them


def _children() -> list[int]:
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if stat.read().rsplit(")", 1)[1].split()[1] == me:
                        found.append(int(entry))
            except (OSError, IndexError):
                continue
    return found


def stop_leftovers() -> None:
    """Kill and reap what `pulumi` left behind: its plugins, re-parented to cdctl. Each
    killed process's own children come to cdctl in turn, so this goes until none is left."""
    for _ in range(20):
        left = _children()
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def _color() -> str:
    return "always" if sys.stdout.isatty() else "never"


def stream(cli: PulumiCli, args: list[str], env: dict[str, str], out: Callable[[str], None]) -> tuple[int, str]:
    """Run `pulumi ARGS`, each line to `out`; (exit code, output). Raises Interrupted."""
    received: list[int] = []

    def forward(signum: int, _frame: Any) -> None:
        received.append(signum)
        try:
            process.send_signal(signal.SIGINT)  # a second one makes Pulumi stop at once
        except ProcessLookupError:
            pass

    _become_subreaper()
    process = subprocess.Popen(cli.command(*args), cwd=cli.project_dir, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: list[str] = []
    try:
        with on_interrupt(forward):
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line.rstrip("\n"))
                out(lines[-1])
            code = process.wait()
    finally:
        stop_leftovers()
    if received:
        raise Interrupted(received[0])
    if code == -signal.SIGKILL:
        # Killed from outside: the lock it held is ours to release, its holder being gone.
        release_stale_locks(cli.env["PULUMI_BACKEND_URL"], conventions.PROJECT, cli.stack)
    return code, "\n".join(lines)


def run(cli: PulumiCli, update: TargetedUpdate, out: Callable[[str], None], preview: bool = False) -> None:
    """The targeted update (or its preview); waits for a live stack lock, names a dead one."""
    env = {**cli.env, TARGETED_SITE_ENV: update.domain} if update.only_site else cli.env
    # The stack's outputs list every site: printed with each change, 200 sites made 800 lines
    # of a one-site deploy's log and 0.4 s of its time (`cdctl pulumi stack output` shows them).
    verb = ["preview", "--diff"] if preview else ["up", "--yes", "--skip-preview", "--diff"]
    verb.append("--suppress-outputs")
    step = "preview" if preview else "update"
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        code, output = stream(cli, [*verb, f"--color={_color()}", *update.arguments()], env, out)
        if code == 0:
            return
        if not any(text in output for text in LOCKED):
            raise EngineError(step, last_error_line(output))
        stale = stale_lock_message(cli.env["PULUMI_BACKEND_URL"], conventions.PROJECT, cli.stack)
        if stale is not None:
            raise EngineError(step, stale)
        if time.monotonic() > deadline:
            raise EngineError(step, f"stack {cli.stack} stayed locked by another update for {LOCK_WAIT_SECONDS} s")
        out(f"stack {cli.stack} is locked by another update; waiting for it")
        time.sleep(3)
