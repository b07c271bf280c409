"""The sandbox's IAM answers as IAM does where moto does not."""

import pytest
from botocore.exceptions import ClientError


def test_list_instance_profiles_filters_by_path_prefix_and_pages(sandbox):
    iam = sandbox.client("iam")
    for index in range(5):
        iam.create_instance_profile(InstanceProfileName="a%d" % index, Path="/app/")
    iam.create_instance_profile(InstanceProfileName="other", Path="/other/")
    iam.create_instance_profile(InstanceProfileName="root")
    only_app = iam.list_instance_profiles(PathPrefix="/app/")
    assert sorted(p["InstanceProfileName"] for p in only_app["InstanceProfiles"]) == ["a%d" % i for i in range(5)]
    assert only_app["IsTruncated"] is False
    first = iam.list_instance_profiles(MaxItems=3)
    assert len(first["InstanceProfiles"]) == 3 and first["IsTruncated"] is True
    rest = iam.list_instance_profiles(MaxItems=3, Marker=first["Marker"])
    last = iam.list_instance_profiles(MaxItems=3, Marker=rest["Marker"])
    names = [p["InstanceProfileName"] for page in (first, rest, last) for p in page["InstanceProfiles"]]
    assert len(names) == 7 and len(set(names)) == 7
    assert last["IsTruncated"] is False
    paginated = iam.get_paginator("list_instance_profiles").paginate(PaginationConfig={"PageSize": 2})
    assert len([p for page in paginated for p in page["InstanceProfiles"]]) == 7


def test_list_instance_profiles_for_role_pages(sandbox):
    iam = sandbox.client("iam")
    iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")
    for index in range(3):
        iam.create_instance_profile(InstanceProfileName="p%d" % index)
        iam.add_role_to_instance_profile(InstanceProfileName="p%d" % index, RoleName="r")
    first = iam.list_instance_profiles_for_role(RoleName="r", MaxItems=2)
    assert len(first["InstanceProfiles"]) == 2 and first["IsTruncated"]
    second = iam.list_instance_profiles_for_role(RoleName="r", MaxItems=2, Marker=first["Marker"])
    assert len(second["InstanceProfiles"]) == 1 and not second["IsTruncated"]


# ---- NoSuchEntity, worded as IAM words it (iam_extensions.py cites the sources) ------------------


def _error(call, **kwargs):
    import botocore.exceptions

    try:
        call(**kwargs)
    except botocore.exceptions.ClientError as exc:
        return (exc.response["Error"]["Code"], exc.response["Error"]["Message"],
                exc.response["ResponseMetadata"]["HTTPStatusCode"])
    raise AssertionError("{0} answered without an error".format(call.__name__))


def test_a_missing_role_or_profile_is_named_as_iam_names_it(iam):
    iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")
    iam.create_instance_profile(InstanceProfileName="p")
    role = ("NoSuchEntity", "The role with name nope cannot be found.", 404)
    profile = ("NoSuchEntity", "Instance Profile nope cannot be found.", 404)
    assert _error(iam.get_role, RoleName="nope") == role
    assert _error(iam.delete_role, RoleName="nope") == role
    assert _error(iam.list_role_policies, RoleName="nope") == role
    assert _error(iam.list_role_tags, RoleName="nope") == role
    assert _error(iam.add_role_to_instance_profile, InstanceProfileName="p", RoleName="nope") == role
    assert _error(iam.get_instance_profile, InstanceProfileName="nope") == profile
    assert _error(iam.delete_instance_profile, InstanceProfileName="nope") == profile
    assert _error(iam.add_role_to_instance_profile, InstanceProfileName="nope", RoleName="r") == profile
    # moto answered an empty list for a missing role.
    assert _error(iam.list_instance_profiles_for_role, RoleName="nope") == role
    # The existing ones still answer.
    assert iam.list_instance_profiles_for_role(RoleName="r")["InstanceProfiles"] == []
    assert iam.get_role(RoleName="r")["Role"]["RoleName"] == "r"


def test_a_users_permissions_boundary_is_kept_and_returned_as_iam_does(sandbox):
    iam = sandbox.client("iam")
    document = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}'
    arn = iam.create_policy(PolicyName="edge", PolicyDocument=document)["Policy"]["Arn"]
    created = iam.create_user(UserName="bounded", PermissionsBoundary=arn)["User"]
    expected = {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": arn}
    assert created["PermissionsBoundary"] == expected
    assert iam.get_user(UserName="bounded")["User"]["PermissionsBoundary"] == expected
    iam.delete_user_permissions_boundary(UserName="bounded")
    assert "PermissionsBoundary" not in iam.get_user(UserName="bounded")["User"]
    iam.put_user_permissions_boundary(UserName="bounded", PermissionsBoundary=arn)
    assert iam.get_user(UserName="bounded")["User"]["PermissionsBoundary"] == expected

    missing = arn.replace("edge", "nowhere")
    for call, kwargs, message in (
            (iam.put_user_permissions_boundary, {"UserName": "ghost", "PermissionsBoundary": arn},
             "The user with name ghost cannot be found."),
            (iam.put_user_permissions_boundary, {"UserName": "bounded", "PermissionsBoundary": missing},
             "Policy {0} does not exist or is not attachable.".format(missing)),
            (iam.create_user, {"UserName": "unbounded", "PermissionsBoundary": missing},
             "Policy {0} does not exist or is not attachable.".format(missing)),
            (iam.delete_user_permissions_boundary, {"UserName": "ghost"}, "The user with name ghost cannot be found.")):
        with pytest.raises(ClientError) as caught:
            call(**kwargs)
        assert caught.value.response["Error"]["Code"] == "NoSuchEntity"
        assert caught.value.response["Error"]["Message"] == message
    # Nothing was changed by a refused call: no user made, the boundary kept.
    assert "unbounded" not in [user["UserName"] for user in iam.list_users()["Users"]]
    assert iam.get_user(UserName="bounded")["User"]["PermissionsBoundary"] == expected
