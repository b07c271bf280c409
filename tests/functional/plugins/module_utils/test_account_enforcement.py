"""Account-level IMDSv2 enforcement (``http_tokens_enforced``) against the sandbox: the report of
what would fail to launch (launch templates, Auto Scaling groups from moto's Auto Scaling), the
refusal before any change, the same task hardening its templates first, check mode predicting
the real run, idempotence, and EC2 refusing an IMDSv1 launch afterwards (rule
``account_imdsv2_enforcement`` of tests/sandbox/rules.py)."""

import botocore.exceptions
import pytest

from ansible_collections.keyless.aws.plugins.module_utils import metadata_options as mo
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError

MUTATING = ("ModifyInstanceMetadataOptions", "CreateLaunchTemplateVersion", "ModifyLaunchTemplate",
            "ModifyInstanceMetadataDefaults")
AMI = "ami-12345678"


def params(**kwargs):
    base = dict(instance_ids=[], filters={}, launch_templates=[], account_defaults=True, http_tokens="required",
                http_endpoint=None, http_put_response_hop_limit=None, instance_metadata_tags=None,
                http_protocol_ipv6=None, wait=True, wait_timeout=60, set_default_version=True,
                version_description=None, http_tokens_enforced="enabled")
    base.update(kwargs)
    return base


@pytest.fixture
def region(sandbox):
    """web allows IMDSv1 and web-asg follows its default; batch requires IMDSv2 but pinned-asg
    launches its version 1, which allows IMDSv1; legacy-asg has a launch configuration allowing it."""
    ec2, autoscaling = sandbox.client("ec2"), sandbox.client("autoscaling")
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": AMI, "InstanceType": "t3.micro", "MetadataOptions": {"HttpTokens": "optional"}})
    ec2.create_launch_template(LaunchTemplateName="batch", LaunchTemplateData={
        "ImageId": AMI, "MetadataOptions": {"HttpTokens": "optional"}})
    ec2.create_launch_template_version(LaunchTemplateName="batch", SourceVersion="1", LaunchTemplateData={
        "MetadataOptions": {"HttpTokens": "required"}})
    ec2.modify_launch_template(LaunchTemplateName="batch", DefaultVersion="2")
    ec2.create_launch_template(LaunchTemplateName="quiet", LaunchTemplateData={"ImageId": AMI})
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="web-asg", LaunchTemplate={"LaunchTemplateName": "web"},
                                          MinSize=0, MaxSize=2, DesiredCapacity=0, AvailabilityZones=["us-east-1a"])
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="pinned-asg", MinSize=0, MaxSize=2, DesiredCapacity=0, AvailabilityZones=["us-east-1a"],
        MixedInstancesPolicy={"LaunchTemplate": {"LaunchTemplateSpecification": {
            "LaunchTemplateName": "batch", "Version": "1"}}})
    autoscaling.create_launch_configuration(LaunchConfigurationName="legacy-lc", ImageId=AMI,
                                            InstanceType="t3.micro", MetadataOptions={"HttpTokens": "optional"})
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="legacy-asg", LaunchConfigurationName="legacy-lc",
                                          MinSize=0, MaxSize=2, DesiredCapacity=0, AvailabilityZones=["us-east-1a"])
    sandbox.app.clear_log()
    return ec2, autoscaling


def run(sandbox, ec2, autoscaling, check_mode, **kwargs):
    return mo.manage_metadata_options(ec2, params(**kwargs), check_mode, autoscaling=lambda: autoscaling)


def mutations(sandbox):
    return [c["action"] for c in sandbox.calls() if c["action"] in MUTATING]


def test_the_report_names_what_would_fail_and_enforcement_is_refused_before_any_change(sandbox, region):
    ec2, autoscaling = region
    for check_mode in (True, False):
        with pytest.raises(KeylessError) as error:
            run(sandbox, ec2, autoscaling, check_mode)
        assert error.value.param == "http_tokens_enforced"
    assert mutations(sandbox) == []
    assert "HttpTokensEnforced" not in ec2.get_instance_metadata_defaults()["AccountLevel"]
    report = error.value.details["account_defaults"]["enforcement_report"]
    assert [(e["name"], e["version_checked"], e["referenced_as"]) for e in report["launch_templates"]] == [
        ("batch", 1, ["1"]), ("web", 1, ["$Default", "$Latest"])]
    assert [(g["name"], g["launch_template"], g["version"], g["launch_configuration"])
            for g in report["auto_scaling_groups"]] == [
        ("legacy-asg", None, None, "legacy-lc"),
        ("pinned-asg", "batch", "1", None),
        ("web-asg", "web", "$Default", None)]
    # "quiet" sets no HttpTokens: with the account default this task sets (required), it launches.
    assert "quiet" not in error.value.message and "'web-asg'" in error.value.message
    reads = set(c["action"] for c in sandbox.calls())
    assert {"DescribeLaunchTemplateVersions", "DescribeAutoScalingGroups", "DescribeLaunchConfigurations"} <= reads


def test_hardened_in_the_same_task_then_enforced_check_mode_exact_and_idempotent(sandbox, region):
    ec2, autoscaling = region
    autoscaling.delete_auto_scaling_group(AutoScalingGroupName="pinned-asg")
    autoscaling.delete_auto_scaling_group(AutoScalingGroupName="legacy-asg")
    task = dict(launch_templates=[{"name": "web"}, {"name": "batch", "version": "1"}], set_default_version=False)
    with pytest.raises(KeylessError) as error:  # web's default stays an IMDSv1 version: still refused
        run(sandbox, ec2, autoscaling, True, **task)
    assert [e["name"] for e in error.value.details["account_defaults"]["enforcement_report"]["launch_templates"]] == [
        "web"]
    task = dict(launch_templates=[{"name": "web"}])
    sandbox.app.clear_log()
    predicted = run(sandbox, ec2, autoscaling, True, **task)
    assert mutations(sandbox) == []
    sandbox.app.clear_log()
    real = run(sandbox, ec2, autoscaling, False, **task)
    for key in ("changed", "launch_templates", "account_defaults", "diff"):
        assert predicted[key] == real[key], key
    assert mutations(sandbox) == ["CreateLaunchTemplateVersion", "ModifyLaunchTemplate", "ModifyInstanceMetadataDefaults"]
    assert real["account_defaults"]["after"] == {"http_tokens": "required", "http_tokens_enforced": "enabled"}
    assert real["account_defaults"]["enforcement_report"] == {"launch_templates": [], "auto_scaling_groups": []}
    assert ec2.get_instance_metadata_defaults()["AccountLevel"]["HttpTokensEnforced"] == "enabled"
    sandbox.app.clear_log()
    again = run(sandbox, ec2, autoscaling, False, **task)
    assert again["changed"] is False and mutations(sandbox) == []
    assert "enforcement_report" not in again["account_defaults"]
    assert "DescribeAutoScalingGroups" not in [c["action"] for c in sandbox.calls()]

    # EC2 now refuses an IMDSv1 launch, and launches from the hardened template.
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, MetadataOptions={"HttpTokens": "optional"})
    assert refused.value.response["Error"]["Code"] == "UnsupportedOperation"
    assert "httpTokensEnforced is enabled" in refused.value.response["Error"]["Message"]
    launched = ec2.run_instances(LaunchTemplate={"LaunchTemplateName": "web"}, MinCount=1, MaxCount=1)
    assert launched["Instances"][0]["MetadataOptions"]["HttpTokens"] == "required"


def test_force_enforces_and_warns(sandbox, region):
    ec2, autoscaling = region
    result = run(sandbox, ec2, autoscaling, False, http_tokens_enforced_force=True)
    assert result["changed"] is True
    assert len(result["account_defaults"]["enforcement_report"]["auto_scaling_groups"]) == 3
    assert any("http_tokens_enforced_force: true" in w and "'web-asg'" in w for w in result["warnings"])
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        ec2.run_instances(LaunchTemplate={"LaunchTemplateName": "web"}, MinCount=1, MaxCount=1)
    assert refused.value.response["Error"]["Code"] == "UnsupportedOperation"
    # no-preference clears it: the IMDSv1 template launches again.
    cleared = run(sandbox, ec2, autoscaling, False, http_tokens_enforced="no-preference")
    assert cleared["account_defaults"]["after"] == {"http_tokens": "required"}
    assert ec2.run_instances(LaunchTemplate={"LaunchTemplateName": "web"}, MinCount=1, MaxCount=1)["Instances"]
