"""launch_templates.py against the sandbox: an existing template given the profile (a new
default version from the base, only IamInstanceProfile and MetadataOptions changed), check mode
predicting the real run exactly, idempotence, the Auto Scaling groups reported and moved."""

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import launch_templates as lt
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError

MUTATING = ("CreateLaunchTemplateVersion", "ModifyLaunchTemplate", "UpdateAutoScalingGroup")


@pytest.fixture
def world(aws):
    sandbox, iam, ec2 = aws
    iam.create_instance_profile(InstanceProfileName="web-app")
    iam.add_role_to_instance_profile(InstanceProfileName="web-app", RoleName="web")
    template = ec2.create_launch_template(LaunchTemplateName="team-web", LaunchTemplateData={
        "ImageId": "ami-12345678", "InstanceType": "t3.micro",
        "MetadataOptions": {"HttpTokens": "optional", "HttpPutResponseHopLimit": 2}})["LaunchTemplate"]
    autoscaling = sandbox.client("autoscaling")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    for name, version in (("pinned", "1"), ("follows", "$Default")):
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=0, MaxSize=1, DesiredCapacity=0, VPCZoneIdentifier=subnet,
            LaunchTemplate={"LaunchTemplateName": "team-web", "Version": version})
    sandbox.app.clear_log()
    return sandbox, iam, ec2, autoscaling, template["LaunchTemplateId"]


def params(**kwargs):
    base = dict(launch_templates=[{"name": "team-web"}], instance_profile="web-app")
    base.update(kwargs)
    return base


def test_check_mode_predicts_the_real_run_and_a_rerun_changes_nothing(world):
    sandbox, iam, ec2, autoscaling, template_id = world
    args = params(http_tokens="required")
    predicted = lt.converge(ec2, iam, autoscaling, args, True)
    assert not [c for c in sandbox.calls() if c["action"] in MUTATING]
    real = lt.converge(ec2, iam, autoscaling, args, False)
    for key in ("changed", "launch_templates", "auto_scaling_groups", "diff", "instance_profile"):
        assert predicted[key] == real[key], key
    assert real["launch_templates"][0]["new_version"] == 2
    assert real["launch_templates"][0]["actions"] == ["version_created", "default_version_set"]
    version = ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=["$Default"])[
        "LaunchTemplateVersions"][0]
    assert version["VersionNumber"] == 2
    data = version["LaunchTemplateData"]
    profile_arn = iam.get_instance_profile(InstanceProfileName="web-app")["InstanceProfile"]["Arn"]
    assert data["IamInstanceProfile"] == {"Arn": profile_arn}
    assert data["ImageId"] == "ami-12345678" and data["InstanceType"] == "t3.micro"  # from version 1
    assert data["MetadataOptions"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}
    actions = dict((e["auto_scaling_group_name"], e["action"]) for e in real["auto_scaling_groups"])
    assert actions == {"follows": "follows", "pinned": "pinned"}
    assert any("'pinned'" in w and "pinned to version 1" in w for w in real["warnings"])
    sandbox.app.clear_log()
    again = lt.converge(ec2, iam, autoscaling, args, False)
    assert again["changed"] is False
    assert again["launch_templates"][0]["new_version"] is None
    assert not [c for c in sandbox.calls() if c["action"] in MUTATING]


def test_the_pinned_group_is_moved_when_asked(world):
    sandbox, iam, ec2, autoscaling, template_id = world
    args = params(update_pinned_auto_scaling_groups=True)
    predicted = lt.converge(ec2, iam, autoscaling, args, True)
    real = lt.converge(ec2, iam, autoscaling, args, False)
    assert predicted["auto_scaling_groups"] == real["auto_scaling_groups"]
    moved = [e for e in real["auto_scaling_groups"] if e["action"] == "moved"]
    assert [(e["auto_scaling_group_name"], e["version_before"], e["version_after"]) for e in moved] == [
        ("pinned", "1", "2")]
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["pinned"])["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "2" and group["LaunchTemplate"]["LaunchTemplateId"] == template_id
    again = lt.converge(ec2, iam, autoscaling, args, False)
    assert again["changed"] is False
    assert dict((e["auto_scaling_group_name"], e["action"]) for e in again["auto_scaling_groups"]) == {
        "follows": "follows", "pinned": "unchanged"}


def test_a_template_that_carries_the_profile_by_name_is_left_alone(world):
    sandbox, iam, ec2, autoscaling, template_id = world
    ec2.create_launch_template_version(LaunchTemplateId=template_id, SourceVersion="1",
                                       LaunchTemplateData={"IamInstanceProfile": {"Name": "web-app"}})
    ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion="2")
    sandbox.app.clear_log()
    result = lt.converge(ec2, iam, autoscaling, params(), False)
    assert result["changed"] is False
    assert result["launch_templates"][0]["before"]["instance_profile"] == "web-app"
    assert not [c for c in sandbox.calls() if c["action"] in MUTATING]


def test_a_role_name_fails_before_any_change_naming_the_profile_that_holds_it(world):
    sandbox, iam, ec2, autoscaling, _template_id = world
    with pytest.raises(KeylessError) as raised:
        lt.converge(ec2, iam, autoscaling, params(instance_profile="web"), False)
    assert raised.value.param == "instance_profile"
    assert "'web' is an IAM role, not an instance profile" in raised.value.message
    assert "web-app" in raised.value.message
    assert not [c for c in sandbox.calls() if c["action"] in MUTATING]


def test_an_unknown_template_fails_naming_the_parameter(world):
    sandbox, iam, ec2, autoscaling, _template_id = world
    with pytest.raises(KeylessError) as raised:
        lt.converge(ec2, iam, autoscaling, params(launch_templates=[{"name": "nowhere"}]), False)
    assert raised.value.param == "launch_templates"
    assert "no launch template 'nowhere'" in raised.value.message


def test_a_launch_from_the_new_default_version_carries_the_profile(world):
    sandbox, iam, ec2, autoscaling, template_id = world
    # The profile was given its role a moment ago: EC2 does not know it yet (rule profile_propagation),
    # the version was made all the same (EC2 does not validate it then); the launch succeeds once EC2 knows it.
    # (A window of 5 minutes, not the default second, so that a loaded machine cannot close it first.)
    with sandbox.rules.configured({"propagation_seconds": 300}):
        lt.converge(ec2, iam, autoscaling, params(), False)
        with pytest.raises(Exception, match="has no associated IAM Roles"):
            ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": template_id})
    with sandbox.rules.configured({"propagation_seconds": 0}):
        instance = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": template_id})[
            "Instances"][0]
    associations = ec2.describe_iam_instance_profile_associations(Filters=[
        {"Name": "instance-id", "Values": [instance["InstanceId"]]}])["IamInstanceProfileAssociations"]
    assert [a["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1] for a in associations] == ["web-app"]
