"""profiles.py: "profile or role?" decided once (identify), and the checks of what a task
attaches, against the sandbox's moto."""

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import profiles
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError


def test_resolve_profile_says_role_not_profile(aws):
    _sandbox, iam, _ec2 = aws
    iam.create_instance_profile(InstanceProfileName="web-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="web-profile", RoleName="web")
    with pytest.raises(KeylessError) as info:
        profiles.resolve_profile(iam, "web")
    assert "'web' is an IAM role, not an instance profile" in info.value.message
    assert "web-profile" in info.value.message
    with pytest.raises(KeylessError, match="no instance profile holds it yet"):
        profiles.resolve_profile(iam, "web-v2")
    with pytest.raises(KeylessError, match="there is no instance profile named 'ghost'"):
        profiles.resolve_profile(iam, "ghost")
    assert profiles.resolve_profile(iam, "web-profile")["InstanceProfileName"] == "web-profile"
    assert profiles.profile_for_role(iam, "web")["InstanceProfileName"] == "web-profile"
    iam.create_instance_profile(InstanceProfileName="web-profile-2")
    iam.add_role_to_instance_profile(InstanceProfileName="web-profile-2", RoleName="web")
    with pytest.raises(KeylessError, match="held by several instance profiles"):
        profiles.profile_for_role(iam, "web")
    with pytest.raises(KeylessError, match="no instance profile holds role 'web-v2'"):
        profiles.profile_for_role(iam, "web-v2")


def test_identify_tells_profile_role_and_nothing_apart_once(aws):
    _sandbox, iam, _ec2 = aws
    iam.create_instance_profile(InstanceProfileName="web-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="web-profile", RoleName="web")
    profile = profiles.identify(iam, "web-profile")
    assert profile.profile["InstanceProfileName"] == "web-profile" and profile.role is None
    role = profiles.identify(iam, "web")
    assert role.profile is None and role.role["RoleName"] == "web"
    assert [p["InstanceProfileName"] for p in role.holders] == ["web-profile"]
    nothing = profiles.identify(iam, "ghost")
    assert nothing.profile is None and nothing.role is None and nothing.holders == []
    assert nothing.not_a_profile("instance_profile").param == "instance_profile"


def test_a_role_given_by_the_arn_of_another_account_is_refused(aws):
    _sandbox, iam, _ec2 = aws
    role = profiles.get_role(iam, "web")
    profiles.check_role_arn(role, role["Arn"])
    with pytest.raises(KeylessError) as info:
        profiles.check_role_arn(role, "arn:aws:iam::999999999999:role/web")
    assert info.value.message == ("role: the ARN 'arn:aws:iam::999999999999:role/web' does not match role 'web' of "
                                  "this account ({0}).".format(role["Arn"]))
