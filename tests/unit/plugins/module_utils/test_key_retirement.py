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
