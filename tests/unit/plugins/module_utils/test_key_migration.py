"""The pure parts of the migration plan: the canary rule, the role named after an owner, the role's
fit in IAM's quotas, and the host decisions."""

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import key_migration
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.stages import canary_split
from ansible_collections.keyless.aws.plugins.module_utils.stages import check_percent


@pytest.mark.parametrize("count, percent, canaries", [
    (0, 10, 0), (1, 10, 1), (10, 10, 1), (11, 10, 2), (4, 50, 2), (3, 0, 0), (3, 100, 3), (3, 0.1, 1)])
def test_the_canaries_are_the_first_ceil_share_of_the_items(count, percent, canaries):
    first, rest = canary_split(range(count), percent)
    assert first == list(range(canaries)) and rest == list(range(canaries, count))


@pytest.mark.parametrize("value", [-1, 100.5, True, "10", None])
def test_a_share_outside_0_to_100_is_refused_naming_the_parameter(value):
    with pytest.raises(KeylessError) as caught:
        check_percent(value, "canary_percent")
    assert caught.value.param == "canary_percent"


def test_the_role_of_an_owner_is_named_after_it_within_iams_64_characters():
    assert key_migration.role_name_for("report-writer") == "keyless-report-writer"
    long_one, other = key_migration.role_name_for("u" * 64), key_migration.role_name_for("u" * 63 + "v")
    assert len(long_one) == 64 and long_one != other and long_one.startswith("keyless-uuu")


def permissions(managed=0, inline_size=0):
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject",
                                                        "Resource": "arn:aws:s3:::" + "b" * inline_size}]}
    return {"user": "app", "managed_policies": ["arn:aws:iam::123456789012:policy/p%d" % n for n in range(managed)],
            "inline_policies": [{"name": "read", "source": "user", "document": document},
                                {"name": "read", "source": "group", "group": "ops", "document": document}],
            "groups": ["ops"], "permissions_boundary": None}


def test_a_role_fits_iams_quotas_or_says_why_not():
    fits = key_migration.role_for_owner(permissions(managed=10, inline_size=4000))
    assert fits["problem"] is None and sorted(fits["inline_policies"]) == ["group-ops-read", "user-read"]
    too_many = key_migration.role_for_owner(permissions(managed=11))
    assert "11 managed policies" in too_many["problem"]
    too_big = key_migration.role_for_owner(permissions(inline_size=5200))
    assert "characters" in too_big["problem"] and "10240" in too_big["problem"]


def test_a_plan_with_nothing_found_migrates_nothing():
    plan = key_migration.plan_migration({"web-1": {"instance_id": "i-1", "keys": []}}, [], {})
    assert plan["canaries"] == [] and plan["rest"] == [] and plan["keys"] == []
    assert plan["skipped"] == [{"host": "web-1", "reason": "no static key found"}]
