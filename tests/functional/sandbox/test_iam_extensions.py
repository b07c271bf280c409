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
