"""key_retirement.decide: a key is deactivated only when no instance holds it, nobody used it since it
left them, and the soak has passed; deleted only when asked, inactive, after a second window."""

import datetime

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import key_retirement
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError

REMOVED = "2026-11-20T09:00:00+00:00"
FP = "f66134f3b6918246"


def plan(**kwargs):
    params = dict(fingerprints=[FP], state="inactive", removed_at=REMOVED, soak_hours=168, delete_after_hours=720,
                  still_found={})
    params.update(kwargs)
    return key_retirement.check_input(params)


def key(status="Active", used=None):
    return {"user": "report", "suffix": "MPLE", "fingerprint": FP, "status": status,
            "last_used": {"date": used, "service": "s3", "region": "eu-west-1"} if used else None}


def at(text):
    return datetime.datetime.fromisoformat(text)


@pytest.mark.parametrize("k,options,now,action,fragment", [
    (key(), {}, "2026-11-28T09:00:00+00:00", "deactivate", "not used since 2026-11-20T09:00:00+00:00"),
    (key(used="2026-11-19T10:00:00+00:00"), {}, "2026-11-28T09:00:00+00:00", "deactivate", "no instance holds it"),
    (key(used="2026-11-21T10:00:00+00:00"), {}, "2026-12-28T09:00:00+00:00", "keep",
     "used at 2026-11-21T10:00:00+00:00 (s3, eu-west-1), after it left the instances"),
    (key(), {"still_found": {FP: ["web-2:/etc/environment"]}}, "2026-12-28T09:00:00+00:00", "keep",
     "still found on 1 place(s): web-2:/etc/environment"),
    (key(), {}, "2026-11-21T09:00:00+00:00", "keep", "soaking: not used since it left the instances; deactivate "
                                                     "after 2026-11-27T09:00:00+00:00"),
    (key(status="Inactive"), {}, "2026-11-28T09:00:00+00:00", "keep", "already inactive"),
    (key(), {"state": "absent"}, "2027-01-28T09:00:00+00:00", "keep", "still active: deactivate it first"),
    (key(status="Inactive"), {"state": "absent"}, "2026-12-01T09:00:00+00:00", "keep",
     "inactive; delete after 2026-12-27T09:00:00+00:00"),
    (key(status="Inactive"), {"state": "absent"}, "2026-12-28T09:00:00+00:00", "delete", "inactive, no instance"),
    (key(status="Inactive", used="2026-12-01T00:00:00+00:00"), {"state": "absent"}, "2027-01-28T09:00:00+00:00",
     "keep", "used at 2026-12-01"),
])
def test_decide(k, options, now, action, fragment):
    got, reason = key_retirement.decide(k, plan(**options), at(now))
    assert got == action and fragment in reason, reason


@pytest.mark.parametrize("options,param", [
    ({"removed_at": "last tuesday"}, "removed_at"),
    ({"soak_hours": -1}, "soak_hours"),
    ({"fingerprints": []}, "fingerprints"),
    ({"fingerprints": ["AKIAZXCVBNMLKJHGFD3B"]}, "fingerprints"),
    ({"still_found": ["web-1"]}, "still_found"),
])
def test_bad_input_fails_naming_the_parameter(options, param):
    with pytest.raises(KeylessError) as error:
        plan(**options)
    assert error.value.param == param and "AKIAZXCVBNMLKJHGFD3B" not in error.value.message


def test_a_naive_time_is_utc():
    assert key_retirement.parse_time("2026-11-20T09:00:00", "removed_at") == at(REMOVED)


def test_a_shared_key_soaks_from_the_last_hosts_removal_and_is_kept_while_a_host_still_lists_it():
    removals = {"web-1": {"removed_at": {FP: "2026-11-20T09:00:00+00:00"}},
                "web-2": {"removed_at": {FP: "2026-11-25T09:00:00+00:00"}}}
    soaking = plan(removed_at=None, removals=removals)
    # A week after web-1 gave it up, but two days after web-2 did: still soaking, counted from web-2.
    action, reason = key_retirement.decide(key(), soaking, at("2026-11-27T09:00:00+00:00"))
    assert action == "keep" and "deactivate after 2026-12-02T09:00:00+00:00" in reason
    # Used between the two removals (web-2 still held it then): not a use after the removal.
    action, _reason = key_retirement.decide(key(used="2026-11-22T10:00:00+00:00"), soaking,
                                            at("2026-12-03T09:00:00+00:00"))
    assert action == "deactivate"
    # A host whose credential_sources_info still lists the key: never deactivated.
    still = plan(removed_at=None, removals=removals, found_on={
        "web-3": {"keys": [{"fingerprint": FP, "suffix": "MPLE"}]}, "web-1": {"keys": []}})
    action, reason = key_retirement.decide(key(), still, at("2026-12-28T09:00:00+00:00"))
    assert action == "keep" and reason == "still found on 1 place(s): web-3"


def test_a_key_with_no_record_of_its_removal_is_kept():
    other = "0123456789abcdef"
    known = plan(fingerprints=[FP, other], removed_at=None, removals={"web-1": {"removed_at": {other: REMOVED}}})
    action, reason = key_retirement.decide(key(), known, at("2026-12-28T09:00:00+00:00"))
    assert action == "keep" and "no record of its removal" in reason


@pytest.mark.parametrize("options, param", [
    ({"removed_at": None}, "removed_at"),
    ({"removed_at": None, "removals": {"web-1": "yes"}}, "removals"),
    ({"removed_at": None, "removals": {"web-1": {"removed_at": {FP: "last week"}}}}, "removals"),
    ({"found_on": {"web-1": ["keys"]}}, "found_on"),
])
def test_bad_removals_and_found_on_name_their_parameter(options, param):
    with pytest.raises(KeylessError) as caught:
        plan(**options)
    assert caught.value.param == param
