"""When a rollout is complete, told as `kubectl rollout status` tells it, and the wait for it
with the API server faked (the real one: test_cluster.py)."""

from __future__ import annotations

import pytest

from fake_clock import Clock
from tomcat_cd.core.rollout import rollout_state
from tomcat_cd.driver.rollout import RolloutIncomplete, RolloutWait


def deployment(desired=2, total=2, updated=2, available=2, generation=3, observed=3, progressing=None,
               deadline=600) -> dict:
    conditions = [{"type": "Progressing", "status": "True", "reason": progressing}] if progressing else []
    return {"metadata": {"name": "a-gyyx-cn", "generation": generation},
            "spec": {"replicas": desired, "progressDeadlineSeconds": deadline},
            "status": {"observedGeneration": observed, "replicas": total, "updatedReplicas": updated,
                       "availableReplicas": available, "conditions": conditions}}


@pytest.mark.parametrize("live, done, says", [
    (deployment(), True, "a-gyyx-cn rolled out: 2/2 available"),
    (deployment(observed=2), False, "has not seen a-gyyx-cn's new spec yet"),
    # The reused ReplicaSet of a rollback: the condition is still the last rollout's.
    (deployment(total=3, updated=1, available=2, progressing="NewReplicaSetAvailable"), False,
     "1 of 2 new replicas updated"),
    (deployment(total=3, updated=2, available=2), False, "1 old replica(s) pending termination"),
    (deployment(updated=2, available=1), False, "1 of 2 updated replicas available"),
    (deployment(desired=0, total=0, updated=0, available=0), True, "0/0 available"),
])
def test_a_rollout_is_complete_when_every_replica_is_new_and_available_and_the_old_are_gone(live, done, says):
    state = rollout_state(live)
    assert (state.done, state.failed) == (done, False) and says in state.says


def test_a_rollout_past_its_progress_deadline_has_failed():
    state = rollout_state(deployment(updated=1, available=1, progressing="ProgressDeadlineExceeded", deadline=60))
    assert state.failed and not state.done and "exceeded its progress deadline (60 s)" in state.says


class FakeKube:
    def __init__(self, *answers: dict):
        self.answers = list(answers)

    def deployment(self, namespace, domain):
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def wait(kube: FakeKube, lines: list[str]) -> RolloutWait:
    clock = Clock()
    return RolloutWait(kube, lines.append, clock, clock.sleep)  # type: ignore[arg-type]


def test_a_complete_rollout_is_read_once_and_says_nothing():
    lines: list[str] = []
    kube = FakeKube(deployment())
    assert wait(kube, lines).until_complete("develop", "a.gyyx.cn").done and lines == []


def test_the_wait_says_each_new_stage_once_and_how_long_it_took():
    lines: list[str] = []
    surge = deployment(total=3, updated=1, available=2)
    kube = FakeKube(surge, surge, deployment(total=3, updated=2, available=2), deployment())
    assert wait(kube, lines).until_complete("develop", "a.gyyx.cn").done
    assert lines == ["rollout: waiting for a.gyyx.cn: 1 of 2 new replicas updated",
                     "rollout: waiting for a.gyyx.cn: 1 old replica(s) pending termination",
                     "rollout: a-gyyx-cn rolled out: 2/2 available after 3 s"]


def test_a_rollout_that_never_ends_gives_up_past_its_deadline_and_one_that_failed_at_once():
    lines: list[str] = []
    with pytest.raises(RolloutIncomplete, match=r"^1 of 2 new replicas updated after 41 s$"):
        wait(FakeKube(deployment(updated=1, deadline=10)), lines).until_complete("develop", "a.gyyx.cn")
    with pytest.raises(RolloutIncomplete, match="exceeded its progress deadline"):
        wait(FakeKube(deployment(updated=1, progressing="ProgressDeadlineExceeded")), lines).until_complete(
            "develop", "a.gyyx.cn")
