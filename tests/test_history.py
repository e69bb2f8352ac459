"""History parsing and rollback choice, on updates shaped exactly as `pulumi stack history
--json` prints them (newest first)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from tomcat_cd.core.errors import ConfigError
from tomcat_cd.core.history import domain_history, rollback_target

DOMAIN = "test.gyyx.cn"
T0 = datetime(2026, 11, 20, 8, 0, 0, tzinfo=timezone.utc)


def summary(number: int, versions: dict, builds: dict | None = None, result: str = "succeeded",
            kind: str = "update", message: str = "") -> dict:
    config = {"tomcat-cd:harborHost": {"value": "harbor.gyyx.cn", "secret": False},
              "tomcat-cd:versions": {"value": json.dumps(versions), "secret": False},
              "tomcat-cd:harborPassword": {"secret": True}}
    if builds is not None:
        config["tomcat-cd:builds"] = {"value": json.dumps(builds), "secret": False}
    start = (T0 + timedelta(minutes=number)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"version": number, "kind": kind, "startTime": start, "message": message,
            "environment": {"exec.kind": "cli"}, "config": config, "result": result,
            "endTime": (T0 + timedelta(minutes=number, seconds=20)).strftime("%Y-%m-%dT%H:%M:%S.000Z")}


def built(version: str, build_id: str, git_id: str) -> tuple[dict, dict]:
    return {DOMAIN: version, "api.gyyx.cn": "v3.0.2"}, {DOMAIN: {"buildId": build_id, "gitId": git_id, "by": "jenkins"}}


def newest_first(*summaries: dict) -> list[dict]:
    return list(reversed(summaries))


def test_history_lists_each_change_of_the_domain_newest_first():
    updates = newest_first(
        summary(1, *built("v1.0.0", "90", "1111111")),
        summary(2, *built("v1.1.0", "91", "2222222")),
        summary(3, {DOMAIN: "v1.1.0", "api.gyyx.cn": "v3.1.0"},
                {DOMAIN: {"buildId": "91", "gitId": "2222222", "by": "jenkins"}}),  # another site changed
        summary(4, *built("v1.2.0", "92", "3333333"), result="failed"),
        summary(5, *built("v1.2.0", "93", "3333333")),
    )
    records = domain_history(updates, DOMAIN)
    assert [(r.update, r.version, r.build_id, r.git_id, r.result) for r in records] == [
        (5, "v1.2.0", "93", "3333333", "succeeded"),
        (4, "v1.2.0", "92", "3333333", "failed"),
        (2, "v1.1.0", "91", "2222222", "succeeded"),
        (1, "v1.0.0", "90", "1111111", "succeeded"),
    ]
    assert records[0].by == "jenkins" and records[0].time == T0 + timedelta(minutes=5)
    assert records[0].as_json()["time"] == "2026-11-20T08:05:00+00:00"


def test_rollback_goes_to_the_last_successful_earlier_version():
    updates = newest_first(
        summary(1, *built("v1.0.0", "90", "1111111")),
        summary(2, *built("v1.1.0", "91", "2222222")),
        summary(3, *built("v1.2.0", "92", "3333333"), result="failed"),
        summary(4, *built("v1.2.0", "93", "3333333")),
    )
    records = domain_history(updates, DOMAIN)
    target = rollback_target(records, DOMAIN)
    assert (target.version, target.build_id, target.git_id, target.update) == ("v1.1.0", "91", "2222222", 2)
    assert rollback_target(records, DOMAIN, steps=2).version == "v1.0.0"
    assert rollback_target(records, DOMAIN, to="v1.0.0").git_id == "1111111"


def test_a_failed_newest_update_is_not_the_live_version():
    updates = newest_first(
        summary(1, *built("v1.0.0", "90", "1111111")),
        summary(2, *built("v1.1.0", "91", "2222222")),
        summary(3, *built("v1.2.0", "92", "3333333"), result="failed"),
    )
    # v1.1.0 is live; the failed v1.2.0 never served, so one step back is v1.0.0.
    assert rollback_target(domain_history(updates, DOMAIN), DOMAIN).version == "v1.0.0"


def test_an_in_progress_update_is_listed_but_never_a_rollback_target():
    updates = newest_first(
        summary(1, *built("v1.0.0", "90", "1111111")),
        summary(2, *built("v1.1.0", "91", "2222222")),
        summary(3, *built("v1.2.0", "92", "3333333"), result="in-progress"),
    )
    records = domain_history(updates, DOMAIN)
    assert records[0].result == "in-progress"
    assert rollback_target(records, DOMAIN).version == "v1.0.0"


def test_a_deleted_and_re_added_domain():
    updates = newest_first(
        summary(1, *built("v1.0.0", "90", "1111111")),
        summary(2, {"api.gyyx.cn": "v3.0.2"}, {}),  # TYPE=delete
        summary(3, *built("v2.0.0", "95", "4444444")),
    )
    records = domain_history(updates, DOMAIN)
    assert [(r.update, r.version) for r in records] == [(3, "v2.0.0"), (2, None), (1, "v1.0.0")]
    assert rollback_target(records, DOMAIN).version == "v1.0.0"
    # Rolled back while deleted: the last version it had comes back.
    deleted = domain_history(updates[1:], DOMAIN)
    assert rollback_target(deleted, DOMAIN).version == "v1.0.0"


def test_destroy_counts_as_removing_every_site():
    updates = newest_first(summary(1, *built("v1.0.0", "90", "1111111")),
                           summary(2, *built("v1.0.0", "90", "1111111"), kind="destroy"))
    assert [r.version for r in domain_history(updates, DOMAIN)] == [None, "v1.0.0"]


def test_previews_and_refreshes_are_not_deploys():
    updates = newest_first(summary(1, *built("v1.0.0", "90", "1111111")),
                           summary(2, *built("v1.1.0", "91", "2222222"), kind="refresh"))
    assert [r.version for r in domain_history(updates, DOMAIN)] == ["v1.0.0"]


def test_more_than_a_page_of_updates_keeps_every_version_and_its_number():
    # Other sites' deploys in between: 25 updates, this domain changed in 1, 12 and 25.
    updates = [summary(0, {DOMAIN: "v1.0.0", "api.gyyx.cn": f"v{n}"}) for n in range(1, 12)]
    updates += [summary(0, {DOMAIN: "v1.1.0", "api.gyyx.cn": f"v{n}"}) for n in range(12, 25)]
    updates += [summary(0, {DOMAIN: "v1.2.0", "api.gyyx.cn": "v25"})]
    records = domain_history(list(reversed(updates)), DOMAIN)
    assert [(r.update, r.version) for r in records] == [(25, "v1.2.0"), (12, "v1.1.0"), (1, "v1.0.0")]
    assert rollback_target(records, DOMAIN, to="v1.0.0").update == 1


def test_an_odd_entry_in_an_old_update_is_left_out_not_fatal():
    odd = summary(2, {DOMAIN: "v1.1.0\nforged", "api.gyyx.cn": "v3.0.2"})
    records = domain_history(newest_first(summary(1, *built("v1.0.0", "90", "1111111")), odd), DOMAIN)
    assert [(r.update, r.version) for r in records] == [(2, None), (1, "v1.0.0")]


def test_a_site_a_plain_pulumi_up_deployed_keeps_the_git_id_pulumi_recorded():
    plain = summary(1, {DOMAIN: "v1.0.0"})
    plain["environment"]["git.head"] = "53f6afe0123456789abcdef0123456789abcdef0"
    (record,) = domain_history([plain], DOMAIN)
    assert record.git_id == "53f6afe"


def test_file_backend_numbers_updates_zero_so_position_counts():
    updates = newest_first(summary(0, *built("v1.0.0", "90", "1111111")), summary(0, *built("v1.1.0", "91", "2222222")))
    assert [r.update for r in domain_history(updates, DOMAIN)] == [2, 1]


@pytest.mark.parametrize("updates,kwargs,message", [
    ([], {}, "test.gyyx.cn: rollback: the history has no earlier version; nothing to roll back to"),
    ([summary(1, *built("v1.0.0", "90", "1111111"))], {},
     "test.gyyx.cn: rollback: the history has no earlier version; nothing to roll back to"),
    ([summary(1, *built("v1.0.0", "90", "1111111")), summary(2, *built("v1.1.0", "91", "2222222"))], {"steps": 2},
     "test.gyyx.cn: rollback: the history has only 1 earlier version(s): v1.0.0; nothing to roll back to"),
    ([summary(1, *built("v1.0.0", "90", "1111111")), summary(2, *built("v1.1.0", "91", "2222222"))], {"to": "v0.9.0"},
     "test.gyyx.cn: --to: v0.9.0 was never deployed successfully here (earlier versions: v1.0.0)"),
    ([summary(1, *built("v1.0.0", "90", "1111111")), summary(2, *built("v1.1.0", "91", "2222222"))], {"to": "v1.1.0"},
     "test.gyyx.cn: --to: v1.1.0 is the version running now"),
    ([summary(1, *built("v1.0.0", "90", "1111111")),
      summary(2, *built("v1.1.0", "91", "2222222"), result="failed")], {},
     "test.gyyx.cn: rollback: the history has no earlier version; nothing to roll back to"),
])
def test_nothing_to_roll_back_to_is_a_clear_bad_input(updates, kwargs, message):
    with pytest.raises(ConfigError) as caught:
        rollback_target(domain_history(newest_first(*updates), DOMAIN), DOMAIN, **kwargs)
    assert [str(p) for p in caught.value.problems] == [message]
