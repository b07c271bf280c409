"""The sandbox's IAM answers as IAM does where moto does not."""


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
