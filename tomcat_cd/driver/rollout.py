"""Waiting, after the update that changed a site, until its Deployment's rollout is complete
(tomcat_cd.core.rollout says why Pulumi's own await is not enough)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from tomcat_cd.core.rollout import RolloutState, rollout_state
from tomcat_cd.driver.kube import KubeError, KubeReader

POLL_SECONDS = 1.0
DEFAULT_PROGRESS_DEADLINE_SECONDS = 600
# Past the Deployment's own deadline: the controller marks a stuck rollout failed at its
# deadline, and cdctl gives it this long to say so before giving up on its own.
GRACE_SECONDS = 30


class RolloutIncomplete(Exception):
    """The rollout failed or did not end in time (one line)."""


@dataclass
class RolloutWait:
    kube: KubeReader
    out: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def until_complete(self, namespace: str, domain: str) -> RolloutState:
        """The complete rollout's state, read at once when Pulumi's await was right; prints
        a line whenever what it waits for changes. RolloutIncomplete when the controller
        says the rollout failed, or it is not done by the progress deadline."""
        started = self.clock()
        said = ""
        while True:
            deployment = self.kube.deployment(namespace, domain)
            state = rollout_state(deployment)
            waited = self.clock() - started
            if state.done:
                if said:
                    self.out(f"rollout: {state.says} after {waited:.0f} s")
                return state
            if state.failed:
                raise RolloutIncomplete(state.says)
            deadline = int((deployment.get("spec") or {}).get("progressDeadlineSeconds",
                                                             DEFAULT_PROGRESS_DEADLINE_SECONDS)) + GRACE_SECONDS
            if waited > deadline:
                raise RolloutIncomplete(f"{state.says} after {waited:.0f} s")
            if state.says != said:
                self.out(f"rollout: waiting for {domain}: {state.says}")
                said = state.says
            self.sleep(POLL_SECONDS)


def confirm_rollout(kubeconfig: str | None, namespace: str, domain: str,
                    out: Callable[[str], None] = print) -> str | None:
    """None once the site's rollout is complete; else why it is not. An API server cdctl
    cannot read (a kubeconfig with an exec plugin) is a warning: Pulumi's await judged alone."""
    try:
        RolloutWait(KubeReader.from_kubeconfig(kubeconfig), out).until_complete(namespace, domain)
    except KubeError as err:
        out(f"warning: cannot read {domain}'s rollout from the API server ({err}): "
            "only Pulumi's await judged it")
    except RolloutIncomplete as err:
        return str(err)
    return None
