"""instance_profile.py (and the reads of profiles.py it uses) against the sandbox's moto (and botocore Stubber where moto cannot say it)."""

import time

import botocore.exceptions
import pytest
from botocore.stub import Stubber

from ansible_collections.keyless.aws.plugins.module_utils import instance_profile as IP
from ansible_collections.keyless.aws.plugins.module_utils import instances
from ansible_collections.keyless.aws.plugins.module_utils import profiles
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryingClient
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryPolicy
from sandbox.seed import associate, launch_running

MUTATING = ("Create", "Add", "Remove", "Delete", "Tag", "Untag", "Associate", "Disassociate", "Replace")


def params(**kwargs):
    base = dict(name="web", path=None, role=None, tags=None, purge_tags=True, state="present",
                trust_check="warn", force=False)
    base.update(kwargs)
    return base


def mutations(sandbox):
    return [c["action"] for c in sandbox.calls() if c["action"].startswith(MUTATING)]


def converge(iam, ec2, check_mode=False, **kwargs):
    return IP.manage_profile(iam, lambda: ec2, params(**kwargs), check_mode)


def test_check_mode_predicts_the_real_run_and_changes_nothing(aws):
    sandbox, iam, ec2 = aws
    predicted = converge(iam, ec2, check_mode=True, role="web", tags={"team": "web"})
    assert mutations(sandbox) == []
    assert profiles.get_profile(iam, "web") is None
    real = converge(iam, ec2, role="web", tags={"team": "web"})
    assert predicted["changed"] and real["changed"]
    assert predicted["actions"] == real["actions"] == ["created", "role_added"]
    assert predicted["diff"] == real["diff"]
    for key in ("instance_profile_name", "path", "tags"):
        assert predicted["iam_instance_profile"][key] == real["iam_instance_profile"][key]
    assert [r["role_name"] for r in real["iam_instance_profile"]["roles"]] == ["web"]
    assert real["iam_instance_profile"]["arn"].endswith(":instance-profile/web")
    assert real["role_trusts_ec2"] is True
    # idempotent, in check mode and for real
    sandbox.app.clear_log()
    for check_mode in (True, False):
        again = converge(iam, ec2, check_mode=check_mode, role="web", tags={"team": "web"})
        assert not again["changed"] and again["actions"] == []
    assert mutations(sandbox) == []


def test_replace_and_remove_the_role(aws):
    _sandbox, iam, ec2 = aws
    converge(iam, ec2, role="web")
    swapped = converge(iam, ec2, role="web-v2")
    assert swapped["actions"] == ["role_removed", "role_added"]
    assert profiles.role_names(profiles.get_profile(iam, "web")) == ["web-v2"]
    emptied = converge(iam, ec2, role="")
    assert emptied["actions"] == ["role_removed"]
    assert emptied["iam_instance_profile"]["roles"] == []
    assert emptied["role_trusts_ec2"] is None
    assert not converge(iam, ec2, role="")["changed"]


def test_role_left_alone_when_not_given(aws):
    _sandbox, iam, ec2 = aws
    converge(iam, ec2, role="web")
    result = converge(iam, ec2, tags={"a": "b"})
    assert result["actions"] == ["tags_updated"]
    assert profiles.role_names(profiles.get_profile(iam, "web")) == ["web"]


def test_tags_purge_and_keep(aws):
    _sandbox, iam, ec2 = aws
    converge(iam, ec2, tags={"a": "1", "b": "2"})
    kept = converge(iam, ec2, tags={"c": "3"}, purge_tags=False)
    assert kept["iam_instance_profile"]["tags"] == {"a": "1", "b": "2", "c": "3"}
    purged = converge(iam, ec2, tags={"c": "3"})
    assert purged["iam_instance_profile"]["tags"] == {"c": "3"}
    assert IP.tags_dict(profiles.get_profile(iam, "web")) == {"c": "3"}


def test_missing_role_fails_before_any_change(aws):
    sandbox, iam, ec2 = aws
    sandbox.app.clear_log()
    with pytest.raises(KeylessError) as info:
        converge(iam, ec2, role="nope")
    assert info.value.param == "role"
    assert "there is no IAM role named 'nope'" in info.value.message
    assert mutations(sandbox) == []


def test_trust_check(aws):
    sandbox, iam, ec2 = aws
    with pytest.raises(KeylessError) as info:
        converge(iam, ec2, role="lambda-only", trust_check="fail")
    assert "does not trust EC2" in info.value.message and "ec2.amazonaws.com" in info.value.message
    assert mutations(sandbox) == []
    warned = converge(iam, ec2, role="lambda-only", trust_check="warn")
    assert warned["role_trusts_ec2"] is False
    assert any("does not trust EC2" in w for w in warned["warnings"])
    skipped = converge(iam, ec2, role="lambda-only", trust_check="skip")
    assert skipped["role_trusts_ec2"] is None and skipped["warnings"] == []


def test_role_arn_must_match_the_account_role(aws):
    _sandbox, iam, ec2 = aws
    with pytest.raises(KeylessError, match="does not match role 'web'"):
        converge(iam, ec2, role="web", role_arn="arn:aws:iam::999999999999:role/web")


def test_path_cannot_change(aws):
    sandbox, iam, ec2 = aws
    converge(iam, ec2, path="/app/")
    assert not converge(iam, ec2)["changed"]  # path unset accepts the existing one
    sandbox.app.clear_log()
    with pytest.raises(KeylessError) as info:
        converge(iam, ec2, path="/other/")
    assert info.value.param == "path"
    assert "IAM cannot change the path" in info.value.message
    assert mutations(sandbox) == []


def launch(sandbox, count=1):
    """Running instances (they are pending for a moment, as on EC2)."""
    return launch_running(sandbox, count)


def test_delete_refuses_a_profile_in_use_unless_forced(aws):
    sandbox, iam, ec2 = aws
    created = converge(iam, ec2, role="web")
    instance_ids = launch(sandbox, 2)
    for instance_id in instance_ids:
        associate(sandbox, instance_id, "web")
    sandbox.app.clear_log()
    with pytest.raises(KeylessError) as info:
        converge(iam, ec2, state="absent")
    assert info.value.param == "force"
    assert sorted(info.value.details["instances"]) == sorted(instance_ids)
    assert mutations(sandbox) == []
    predicted = converge(iam, ec2, state="absent", force=True, check_mode=True)
    assert mutations(sandbox) == []
    forced = converge(iam, ec2, state="absent", force=True)
    assert predicted["actions"] == forced["actions"] == ["disassociated", "role_removed", "deleted"]
    assert sorted(forced["disassociated_instances"]) == sorted(instance_ids)
    assert profiles.get_profile(iam, "web") is None
    # detached associations are disassociating for a moment, as on EC2, then gone
    for _poll in range(50):
        if instances.profile_usage(ec2, {created["iam_instance_profile"]["arn"]}) == {}:
            break
        time.sleep(0.1)
    assert instances.profile_usage(ec2, {created["iam_instance_profile"]["arn"]}) == {}
    assert not converge(iam, ec2, state="absent")["changed"]


def test_create_that_loses_a_race_converges(aws):
    sandbox, iam, ec2 = aws
    # Another run creates the profile between our read and our create.
    original_get = iam.get_instance_profile
    state = {"first": True}

    def racing_get(**kwargs):
        if state.pop("first", False):
            iam.create_instance_profile(InstanceProfileName="web")
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": "NoSuchEntity", "Message": "not found"}}, "GetInstanceProfile")
        return original_get(**kwargs)

    iam.get_instance_profile = racing_get
    result = converge(iam, ec2, role="web")
    assert result["changed"] and result["actions"] == ["role_added"]
    assert profiles.role_names(profiles.get_profile(iam, "web")) == ["web"]


def test_profile_missing_just_after_create_is_waited_for():
    import boto3

    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    profile = {"InstanceProfileName": "web", "InstanceProfileId": "AIPAEXAMPLE0123456789", "Path": "/",
               "Arn": "arn:aws:iam::123456789012:instance-profile/web", "Roles": [],
               "CreateDate": "2026-01-01T00:00:00Z"}
    stubber = Stubber(iam)
    stubber.add_response("create_instance_profile", {"InstanceProfile": profile},
                         {"InstanceProfileName": "web", "Path": "/"})
    stubber.add_client_error("get_instance_profile", "NoSuchEntity", http_status_code=404)
    stubber.add_client_error("get_instance_profile", "NoSuchEntity", http_status_code=404)
    stubber.add_response("get_instance_profile", {"InstanceProfile": profile}, {"InstanceProfileName": "web"})
    slept = []
    fast = RetryPolicy(sleep=slept.append)
    with stubber:
        changed, state = IP.ensure_created(RetryingClient(iam, fast), None, IP.Desired("web"), False)
    assert changed and state["InstanceProfileName"] == "web"
    assert len(slept) == 2
    stubber.assert_no_pending_responses()


def test_add_role_limit_exceeded_from_a_parallel_run():
    import boto3

    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    profile = {"InstanceProfileName": "web", "InstanceProfileId": "AIPAEXAMPLE0123456789", "Path": "/",
               "Arn": "arn:aws:iam::123456789012:instance-profile/web", "CreateDate": "2026-01-01T00:00:00Z",
               "Roles": [{"RoleName": "other", "RoleId": "AROAEXAMPLE0123456789", "Path": "/",
                          "Arn": "arn:aws:iam::123456789012:role/other", "CreateDate": "2026-01-01T00:00:00Z"}]}
    stubber = Stubber(iam)
    stubber.add_client_error("add_role_to_instance_profile", "LimitExceeded", http_status_code=409)
    stubber.add_response("get_instance_profile", {"InstanceProfile": profile}, {"InstanceProfileName": "web"})
    with stubber, pytest.raises(KeylessError) as info:
        IP._add_role(RetryingClient(iam, RetryPolicy(sleep=lambda s: None)), "web", "web")
    assert "already holds role other" in info.value.message


def test_describe_profiles_filters_and_usage(aws):
    sandbox, iam, ec2 = aws
    converge(iam, ec2, name="web", role="web", tags={"t": "1"})
    converge(iam, ec2, name="batch", path="/batch/", role="lambda-only")
    converge(iam, ec2, name="empty")
    instance_id = launch(sandbox)[0]
    associate(sandbox, instance_id, "web")
    everything = IP.describe_profiles(iam, lambda: ec2)
    assert [p["instance_profile_name"] for p in everything] == ["batch", "empty", "web"]
    by_name = dict((p["instance_profile_name"], p) for p in everything)
    assert by_name["web"]["tags"] == {"t": "1"}
    assert by_name["web"]["role_trusts_ec2"] is True
    assert by_name["batch"]["role_trusts_ec2"] is False
    assert by_name["empty"]["role_trusts_ec2"] is None
    assert [i["instance_id"] for i in by_name["web"]["instances"]] == [instance_id]
    assert by_name["empty"]["instances"] == []
    assert [p["instance_profile_name"] for p in IP.describe_profiles(iam, path_prefix="/batch/")] == ["batch"]
    assert [p["instance_profile_name"] for p in IP.describe_profiles(iam, role="web")] == ["web"]
    assert IP.describe_profiles(iam, role="nobody") == []
    assert "instances" not in IP.describe_profiles(iam, name="web")[0]


def test_changing_the_role_of_a_profile_in_use_warns_or_fails_and_check_mode_says_the_same(aws):
    sandbox, iam, ec2 = aws
    converge(iam, ec2, role="web")
    instance_ids = launch(sandbox, 2)
    for instance_id in instance_ids:
        associate(sandbox, instance_id, "web")
    sandbox.app.clear_log()
    with pytest.raises(KeylessError) as info:
        converge(iam, ec2, role="web-v2", role_change_in_use="fail", check_mode=True)
    assert info.value.param == "role" and sorted(info.value.details["instances"]) == sorted(instance_ids)
    with pytest.raises(KeylessError) as info:
        converge(iam, ec2, role="web-v2", role_change_in_use="fail")
    assert info.value.message.endswith("Nothing was changed (role_change_in_use: fail).")
    assert mutations(sandbox) == []
    predicted = converge(iam, ec2, role="web-v2", check_mode=True)
    warned = converge(iam, ec2, role="web-v2")
    assert predicted["warnings"] == warned["warnings"] and len(warned["warnings"]) == 1
    assert "changing its role from 'web' to 'web-v2' does not reach them at once" in warned["warnings"][0]
    assert sorted(warned["instances_in_use"]) == sorted(instance_ids)
    emptied = converge(iam, ec2, role="")
    assert "removing its role 'web-v2'" in emptied["warnings"][0] and "then get none" in emptied["warnings"][0]
    # nothing in use, or the role not changing: no read of the associations, no warning
    sandbox.app.clear_log()
    again = converge(iam, ec2, role="")
    assert not again["changed"] and not again["warnings"]
    assert "DescribeIamInstanceProfileAssociations" not in [c["action"] for c in sandbox.calls()]
