"""When a Deployment's rollout is complete, told from the Deployment alone as `kubectl rollout
status` tells it (kubectl's DeploymentStatusViewer).

Pulumi's await has ended with a rollout under way: in CI (2026-12-04) a promote of 2 replicas
to a pod template master had run before was "Deployment initialization complete" after 2 s, and
the gate's first samples read 1 of 2 replicas updated. The likely cause: for such a template the
Deployment controller reuses its ReplicaSet, scaled to 0, and moves the revision to it without
touching the Progressing condition (still NewReplicaSetAvailable of the last rollout), and the
await counts the reused ReplicaSet's ready pods against its own size at that moment. It is a race
and was not reproduced on demand. So cdctl reads the Deployment once more after the update and,
while its rollout goes on, waits for it: one GET when Pulumi was right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"


@dataclass(frozen=True)
class RolloutState:
    done: bool
    failed: bool
    says: str
    """One line, such as kubectl prints: what the rollout waits for, or why it failed."""


def rollout_state(deployment: dict[str, Any]) -> RolloutState:
    name = (deployment.get("metadata") or {}).get("name", "?")
    generation = int((deployment.get("metadata") or {}).get("generation", 0))
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    if int(status.get("observedGeneration", 0)) < generation:
        return RolloutState(False, False, f"the Deployment controller has not seen {name}'s new spec yet")
    progressing: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {})
    if progressing.get("reason") == PROGRESS_DEADLINE_EXCEEDED:
        return RolloutState(False, True, f"{name} exceeded its progress deadline "
                                         f"({spec.get('progressDeadlineSeconds', 600)} s): {progressing.get('message', '')}")
    desired = int(spec.get("replicas", 1))
    total, updated = int(status.get("replicas", 0)), int(status.get("updatedReplicas", 0))
    available = int(status.get("availableReplicas", 0))
    if updated < desired:
        return RolloutState(False, False, f"{updated} of {desired} new replicas updated")
    if total > updated:
        return RolloutState(False, False, f"{total - updated} old replica(s) pending termination")
    if available < updated:
        return RolloutState(False, False, f"{available} of {updated} updated replicas available")
    return RolloutState(True, False, f"{name} rolled out: {available}/{desired} available")
