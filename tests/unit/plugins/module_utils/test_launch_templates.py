"""launch_templates.py: the pure parts (which groups pick the new version up, the request that
moves a pinned group), the input checks, and, with botocore's Stubber, the exact requests
(what moto cannot say: the retry of Auto Scaling's "Invalid IAM Instance Profile")."""

import datetime

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY
from botocore.stub import Stubber

from ansible_collections.keyless.aws.plugins.module_utils import launch_templates as lt
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryingClient
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryPolicy

LT_ID = "lt-0123456789abcdef0"
ARN = "arn:aws:iam::123456789012:instance-profile/web-app"
PROFILE = {"InstanceProfileName": "web-app", "Arn": ARN, "Roles": []}
NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def client(service):
    made = boto3.client(service, region_name="us-east-1", aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                        aws_secret_access_key="x" * 40)
    made.stubber = Stubber(made)
    made.stubber.activate()
    return made


def version(number, default=False, **data):
    return {"LaunchTemplateId": LT_ID, "LaunchTemplateName": "web", "VersionNumber": number, "CreateTime": NOW,
            "DefaultVersion": default, "LaunchTemplateData": data}


def template_result(matching=4, default=4, latest=4):
    return {"launch_template_id": LT_ID, "launch_template_name": "web", "matching_version": matching,
            "default_version": default, "latest_version": latest}


def group(name, version_, where="LaunchTemplate"):
    spec = {"LaunchTemplateId": LT_ID, "LaunchTemplateName": "web", "Version": version_}
    if where == "LaunchTemplate":
        return {"AutoScalingGroupName": name, "LaunchTemplate": spec}
    return {"AutoScalingGroupName": name, "MixedInstancesPolicy": {
        "LaunchTemplate": {"LaunchTemplateSpecification": spec, "Overrides": [
            {"InstanceType": "t3.micro"},
            {"InstanceType": "m5.large", "LaunchTemplateSpecification": {"LaunchTemplateName": "web",
                                                                         "Version": "1"}}]},
        "InstancesDistribution": {"OnDemandBaseCapacity": 1}}}


# ---- input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("given, param, text", [
    ({"launch_templates": []}, "launch_templates", "the list is empty"),
    ({"launch_templates": [{"name": "web", "id": LT_ID}]}, "launch_templates", "exactly one of name or id"),
    ({"launch_templates": [{"name": "web", "version": "$Newest"}]}, "launch_templates", "is not $Default"),
    ({"instance_profile": "arn:aws:iam::123456789012:role/web-app"}, "instance_profile",
     "is the ARN of an IAM role, not of an IAM instance profile"),
    ({"instance_profile": "web app"}, "instance_profile", "characters IAM does not allow"),
    ({"http_put_response_hop_limit": 65}, "http_put_response_hop_limit", "out of range"),
    ({"propagation_timeout": -1}, "propagation_timeout", "negative"),
])
def test_bad_input_fails_naming_the_parameter(given, param, text):
    params = dict(launch_templates=[{"name": "web"}], instance_profile="web-app")
    params.update(given)
    with pytest.raises(KeylessError) as raised:
        lt.validated(params, "us-east-1")
    assert raised.value.param == param
    assert text in raised.value.message


def test_defaults_and_an_arn_given_as_the_profile():
    checked, warnings = lt.validated({"launch_templates": [{"id": LT_ID}], "instance_profile": ARN,
                                      "http_tokens": "required"}, "us-east-1")
    assert checked["launch_templates"] == [{"name": None, "id": LT_ID, "version": "$Default"}]
    assert (checked["instance_profile"], checked["instance_profile_arn"]) == ("web-app", ARN)
    assert checked["desired"] == {"HttpTokens": "required"}
    assert checked["set_default_version"] is True and checked["update_pinned_auto_scaling_groups"] is False
    assert warnings == []


# ---- which profile a version carries ---------------------------------------------------------


@pytest.mark.parametrize("data, expected", [
    ({}, False),
    ({"IamInstanceProfile": {"Name": "web-app"}}, True),
    ({"IamInstanceProfile": {"Arn": ARN}}, True),
    ({"IamInstanceProfile": {"Arn": "arn:aws:iam::123456789012:instance-profile/other/web-app"}}, False),
    ({"IamInstanceProfile": {"Arn": "arn:aws:iam::210987654321:instance-profile/web-app"}}, False),
    ({"IamInstanceProfile": {"Name": "web-app-v2"}}, False),
])
def test_carries_by_name_or_exact_arn(data, expected):
    assert lt.carries(data, PROFILE) is expected


# ---- planning a template (the requests, pinned) ----------------------------------------------


def _read(ec2, *versions):
    ec2.stubber.add_response("describe_launch_template_versions", {"LaunchTemplateVersions": list(versions)},
                             {"LaunchTemplateName": "web", "Versions": ["$Default", "$Latest"]})


def test_only_the_profile_and_the_named_options_change_every_other_member_kept():
    ec2 = client("ec2")
    _read(ec2, version(1, True, ImageId="ami-1", MetadataOptions={"HttpTokens": "optional", "HttpEndpoint": "enabled",
                                                                  "HttpPutResponseHopLimit": 2, "State": "applied"}))
    plan = lt.plan_template(ec2, {"name": "web", "id": None, "version": "$Default"}, PROFILE,
                            {"HttpTokens": "required"})
    assert plan["launch_template_data"] == {
        "IamInstanceProfile": {"Arn": ARN},
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 2}}
    assert plan["reuse"] is None
    assert plan["description"].startswith("keyless.aws: version 1 with instance profile web-app and instance metadata")
    ec2.stubber.add_response("create_launch_template_version", {"LaunchTemplateVersion": version(2)}, {
        "ClientToken": ANY, "LaunchTemplateId": LT_ID, "SourceVersion": "1", "VersionDescription": ANY,
        "LaunchTemplateData": plan["launch_template_data"]})
    ec2.stubber.add_response("modify_launch_template", {}, {"LaunchTemplateId": LT_ID, "DefaultVersion": "2"})
    changed, ensured = lt.ensure_template(ec2, plan, True, False)
    assert changed and ensured["actions"] == ["version_created", "default_version_set"]
    result = lt.template_result(plan, ensured, PROFILE)
    assert result["before"]["instance_profile"] is None and result["after"]["instance_profile"] == ARN
    assert result["latest_version"] == 2
    ec2.stubber.assert_no_pending_responses()


def test_no_options_asked_means_metadata_options_are_not_sent():
    ec2 = client("ec2")
    _read(ec2, version(1, True, ImageId="ami-1", MetadataOptions={"HttpTokens": "optional"}))
    plan = lt.plan_template(ec2, {"name": "web", "id": None, "version": "$Default"}, PROFILE, {})
    assert plan["launch_template_data"] == {"IamInstanceProfile": {"Arn": ARN}}
    assert plan["changes"] == {"IamInstanceProfile": ARN}


def test_a_latest_version_that_already_is_it_is_reused_not_made_again():
    ec2 = client("ec2")
    _read(ec2, version(1, True, ImageId="ami-1"), version(2, False, ImageId="ami-1",
                                                          IamInstanceProfile={"Name": "web-app"}))
    plan = lt.plan_template(ec2, {"name": "web", "id": None, "version": "$Default"}, PROFILE, {})
    assert plan["reuse"]["VersionNumber"] == 2
    changed, ensured = lt.ensure_template(ec2, plan, True, True)
    assert changed and ensured["new_version"] is None and ensured["default_version"] == 2


def test_a_latest_version_that_differs_elsewhere_is_not_reused():
    ec2 = client("ec2")
    _read(ec2, version(1, True, ImageId="ami-1"), version(2, False, ImageId="ami-2",
                                                          IamInstanceProfile={"Arn": ARN}))
    plan = lt.plan_template(ec2, {"name": "web", "id": None, "version": "$Default"}, PROFILE, {})
    assert plan["reuse"] is None
    changed, ensured = lt.ensure_template(ec2, plan, True, True)
    assert changed and ensured["new_version"] == 3  # check mode: the next number


# ---- the groups ------------------------------------------------------------------------------


def test_which_groups_pick_the_new_version_up():
    groups = [group("a-default", "$Default"), group("b-latest", "$Latest"), group("c-pinned", "3"),
              group("d-current", "4"), {"AutoScalingGroupName": "e-other", "LaunchTemplate": {
                  "LaunchTemplateId": "lt-0fedcba9876543210", "Version": "1"}}]
    entries = lt.plan_groups(groups, [template_result()], move_pinned=False)
    assert [(e["auto_scaling_group_name"], e["action"], e["new_instances_get_profile"]) for e in entries] == [
        ("a-default", "follows", True), ("b-latest", "follows", True), ("c-pinned", "pinned", False),
        ("d-current", "unchanged", True)]
    warnings = lt.group_warnings(entries, True)
    assert len(warnings) == 1 and "'c-pinned'" in warnings[0] and "update_pinned_auto_scaling_groups" in warnings[0]
    moved = lt.plan_groups(groups, [template_result()], move_pinned=True)
    assert [(e["action"], e["version_after"]) for e in moved if e["auto_scaling_group_name"] == "c-pinned"] == [
        ("moved", "4")]


def test_default_not_set_means_default_followers_do_not_pick_it_up():
    entries = lt.plan_groups([group("a", "$Default"), group("b", "$Latest")],
                             [template_result(matching=4, default=3, latest=4)], move_pinned=True)
    assert [(e["action"], e["new_instances_get_profile"]) for e in entries] == [
        ("not_following", False), ("follows", True)]
    assert "set_default_version is false" in lt.group_warnings(entries, False)[0]


def test_a_mixed_instances_policy_is_moved_whole_overrides_and_distribution_kept():
    mixed = group("mixed", "2", where="mixed")
    entries = lt.plan_groups([mixed], [template_result()], move_pinned=True)
    assert [e["where"] for e in entries] == ["MixedInstancesPolicy", "MixedInstancesPolicy.Overrides[1]"]
    autoscaling = client("autoscaling")
    autoscaling.stubber.add_response("update_auto_scaling_group", {}, {
        "AutoScalingGroupName": "mixed", "MixedInstancesPolicy": {
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateId": LT_ID, "Version": "4"},
                "Overrides": [{"InstanceType": "t3.micro"},
                              {"InstanceType": "m5.large",
                               "LaunchTemplateSpecification": {"LaunchTemplateId": LT_ID, "Version": "4"}}]},
            "InstancesDistribution": {"OnDemandBaseCapacity": 1}}})
    lt.move_groups(autoscaling, None, [mixed], entries, PROFILE, 0)
    autoscaling.stubber.assert_no_pending_responses()


def _not_known(message):
    return ClientError({"Error": {"Code": "ValidationError", "Message": message}}, "UpdateAutoScalingGroup")


class FakeAutoScaling:
    """UpdateAutoScalingGroup answering ``errors`` first (Stubber cannot sit behind a retry policy)."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.calls = []

    def update_auto_scaling_group(self, **kwargs):
        self.calls.append(kwargs)
        if self.errors:
            raise self.errors.pop(0)
        return {}


class FakeIam:
    def __init__(self, exists=True):
        self.exists = exists
        self.calls = 0

    def get_instance_profile(self, InstanceProfileName):  # noqa: N803 - boto3's spelling
        self.calls += 1
        if not self.exists:
            raise ClientError({"Error": {"Code": "NoSuchEntity", "Message": "not found"}}, "GetInstanceProfile")
        return {"InstanceProfile": dict(PROFILE, InstanceProfileName=InstanceProfileName)}


def _retrying(fake):
    return RetryingClient(fake, RetryPolicy(base_delay=0.0, max_delay=0.0, sleep=lambda seconds: None))


def test_auto_scaling_not_knowing_the_profile_yet_is_retried_while_iam_holds_it():
    pinned = group("pinned", "1")
    entries = lt.plan_groups([pinned], [template_result()], move_pinned=True)
    fake = FakeAutoScaling(_not_known("You must use a valid fully-formed launch template. Value (" + ARN + ") for "
                                      "parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN"))
    iam = FakeIam()
    lt.move_groups(_retrying(fake), iam, [pinned], entries, PROFILE, 60)
    assert len(fake.calls) == 2 and iam.calls == 1
    assert fake.calls[1]["LaunchTemplate"] == {"LaunchTemplateId": LT_ID, "Version": "4"}


def test_a_profile_iam_no_longer_holds_ends_the_wait_with_a_sentence():
    pinned = group("pinned", "1")
    entries = lt.plan_groups([pinned], [template_result()], move_pinned=True)
    fake = FakeAutoScaling(*[_not_known("Invalid IAM Instance Profile name")] * 3)
    with pytest.raises(KeylessError) as raised:
        lt.move_groups(_retrying(fake), FakeIam(exists=False), [pinned], entries, PROFILE, 60)
    assert len(fake.calls) == 1
    assert raised.value.param == "propagation_timeout"
    assert "Auto Scaling does not know instance profile 'web-app' yet" in raised.value.message


def test_other_validation_errors_are_not_retried():
    pinned = group("pinned", "1")
    entries = lt.plan_groups([pinned], [template_result()], move_pinned=True)
    fake = FakeAutoScaling(_not_known("Invalid launch template: When a network interface is provided, ..."))
    with pytest.raises(KeylessError) as raised:
        lt.move_groups(_retrying(fake), FakeIam(), [pinned], entries, PROFILE, 60)
    assert len(fake.calls) == 1 and raised.value.code == "ValidationError"
    assert "moving Auto Scaling group 'pinned' to version 4" in raised.value.message
