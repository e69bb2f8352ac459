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

from tomcat_cd.driver.update import Interrupted, on_interrupt


def run_in_foreground(command: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Run `command` in cdctl's process group, on its terminal, until it exits; its exit code.
    Raises Interrupted, once it has exited, if cdctl got SIGINT or SIGTERM meanwhile. Ctrl-C at
    the terminal reaches the child itself, so cdctl lets it be and waits. A SIGTERM sent to cdctl
    (kill, a job runner) is passed on, once for each one cdctl gets: a second terminates Pulumi, as
    whoever sent it asked. (A SIGTERM to the whole process group reaches Pulumi twice, so it
    terminates at once.)"""
    received: list[int] = []
    process: subprocess.Popen[bytes] | None = None

    def pass_on(signum: int, _frame: Any) -> None:
        received.append(signum)
        if signum == signal.SIGTERM and process is not None:
            try:
                process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    with on_interrupt(pass_on):
        process = subprocess.Popen(command, cwd=cwd, env=env)
        code = process.wait()
    if received:
        raise Interrupted(received[0])
    return code
