"""The Pulumi CLI run as the user's own command (`cdctl pulumi ...`), stoppable as Pulumi means.

Pulumi answers a first SIGINT or SIGTERM by cancelling: it finishes the steps in flight, saves
the state and releases its lock; only a second one terminates it. `subprocess.run` undoes that:
on Ctrl-C it waits 0.25 s and then kills its child outright, and Pulumi killed mid-update leaves
its lock, its plugins and steps the state does not know of.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

from tomcat_cd.driver.update import on_interrupt


def run_in_foreground(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, int | None]:
    """Run `command` in cdctl's process group, on its terminal, until it exits; (its exit code,
    the signal cdctl got meanwhile, if any). Ctrl-C at the terminal reaches the child itself, so
    cdctl lets it be and waits. A SIGTERM sent to cdctl (kill, a job runner) is passed on, once for
    each one cdctl gets: a second terminates Pulumi, as whoever sent it asked. (A SIGTERM to the
    whole process group reaches Pulumi twice, so it terminates at once.)"""
    received: list[int] = []
    started: list[subprocess.Popen[bytes]] = []

    def pass_on(signum: int, _frame: Any) -> None:
        received.append(signum)
        if signum == signal.SIGTERM and started:
            try:
                started[0].send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    with on_interrupt(pass_on):
        started.append(subprocess.Popen(command, cwd=cwd, env=env))
        code = started[0].wait()
    return code, (received[0] if received else None)
