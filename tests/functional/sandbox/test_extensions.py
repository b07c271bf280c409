"""The sandbox's EC2 answers as the EC2 API reference says where moto does not (tests/sandbox/extensions.py)."""

import base64
import contextlib

import botocore.exceptions
import pytest


def error_of(call, *args, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as error:
        call(*args, **kwargs)
    return error.value.response["Error"]["Code"], error.value.response["ResponseMetadata"]["HTTPStatusCode"]


# ---- (a) account-level instance metadata defaults --------------------------------------------------


def test_instance_metadata_defaults_start_with_no_preference(sandbox):
    level = sandbox.client("ec2").get_instance_metadata_defaults()["AccountLevel"]
    assert level == {"ManagedBy": "account"}


def test_modify_sets_only_what_it_is_given_and_no_preference_clears(sandbox):
    ec2 = sandbox.client("ec2")
    assert ec2.modify_instance_metadata_defaults(HttpTokens="required", HttpPutResponseHopLimit=2)["Return"] is True
    ec2.modify_instance_metadata_defaults(InstanceMetadataTags="enabled")
    assert ec2.get_instance_metadata_defaults()["AccountLevel"] == {
        "HttpTokens": "required", "HttpPutResponseHopLimit": 2, "InstanceMetadataTags": "enabled",
        "ManagedBy": "account"}
    ec2.modify_instance_metadata_defaults(HttpPutResponseHopLimit=-1, InstanceMetadataTags="no-preference")
    assert ec2.get_instance_metadata_defaults()["AccountLevel"] == {"HttpTokens": "required", "ManagedBy": "account"}


def test_instance_metadata_defaults_are_per_region_and_forgotten_on_reset(sandbox):
    sandbox.client("ec2").modify_instance_metadata_defaults(HttpTokens="required")
    assert sandbox.client("ec2", region_name="eu-west-1").get_instance_metadata_defaults()["AccountLevel"] == {
        "ManagedBy": "account"}
    sandbox.reset()
    assert "HttpTokens" not in sandbox.client("ec2").get_instance_metadata_defaults()["AccountLevel"]


@pytest.mark.parametrize("kwargs", [{"HttpPutResponseHopLimit": 0}, {"HttpPutResponseHopLimit": 65}])
def test_modify_defaults_refuses_a_bad_hop_limit(sandbox, kwargs):
    ec2 = sandbox.client("ec2")
    assert error_of(ec2.modify_instance_metadata_defaults, **kwargs) == ("InvalidParameterValue", 400)
    assert "HttpPutResponseHopLimit" not in ec2.get_instance_metadata_defaults()["AccountLevel"]


def test_modify_defaults_dry_run_changes_nothing(sandbox):
    ec2 = sandbox.client("ec2")
    assert error_of(ec2.modify_instance_metadata_defaults, HttpTokens="required", DryRun=True) == (
        "DryRunOperation", 412)
    assert "HttpTokens" not in ec2.get_instance_metadata_defaults()["AccountLevel"]


# ---- (b) CreateLaunchTemplateVersion with SourceVersion -------------------------------------------


@pytest.fixture
def template(sandbox):
    ec2 = sandbox.client("ec2")
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": "ami-12345678", "InstanceType": "t3.micro", "SecurityGroupIds": ["sg-1", "sg-2"],
        "UserData": base64.b64encode(b"#!/bin/sh\necho hi\n").decode(),
        "IamInstanceProfile": {"Name": "web"},
        "MetadataOptions": {"HttpTokens": "optional", "HttpPutResponseHopLimit": 2}})
    return ec2


def data_of(ec2, number):
    return ec2.describe_launch_template_versions(LaunchTemplateName="web", Versions=[str(number)])[
        "LaunchTemplateVersions"][0]["LaunchTemplateData"]


def test_source_version_is_inherited_and_given_parameters_overwrite(template):
    created = template.create_launch_template_version(
        LaunchTemplateName="web", SourceVersion="1", LaunchTemplateData={"MetadataOptions": {"HttpTokens": "required"}})
    assert created["LaunchTemplateVersion"]["VersionNumber"] == 2
    first, second = data_of(template, 1), data_of(template, 2)
    assert second["MetadataOptions"] == {"HttpTokens": "required"}  # a given member replaces the source's
    for key in ("ImageId", "InstanceType", "SecurityGroupIds", "UserData", "IamInstanceProfile"):
        assert second[key] == first[key], key


def test_without_source_version_only_the_given_parameters(template):
    template.create_launch_template_version(LaunchTemplateName="web",
                                            LaunchTemplateData={"InstanceType": "t3.small"})
    assert data_of(template, 2) == {"InstanceType": "t3.small"}


def test_source_version_that_does_not_exist(template):
    assert error_of(template.create_launch_template_version, LaunchTemplateName="web", SourceVersion="5",
                    LaunchTemplateData={"InstanceType": "t3.small"}) == ("InvalidLaunchTemplateId.VersionNotFound", 400)
    assert len(template.describe_launch_template_versions(LaunchTemplateName="web")["LaunchTemplateVersions"]) == 1


def test_the_request_log_keeps_what_the_client_sent(sandbox, template):
    sandbox.app.clear_log()
    template.create_launch_template_version(
        LaunchTemplateName="web", SourceVersion="1", LaunchTemplateData={"MetadataOptions": {"HttpTokens": "required"}})
    (call,) = sandbox.calls("ec2", "CreateLaunchTemplateVersion")
    assert sorted(k for k in call["params"] if k.startswith("LaunchTemplateData.")) == [
        "LaunchTemplateData.MetadataOptions.HttpTokens"]
    assert call["params"]["LaunchTemplateData.MetadataOptions.HttpTokens"] == "required"


# ---- (c) ModifyInstanceMetadataOptions -------------------------------------------------------------


def at_once(sandbox):
    """No timed pending state (moto_fixes.py transitions) for what is launched in the block."""
    transitions = getattr(sandbox, "transitions", None)
    return transitions.instant() if transitions is not None else contextlib.nullcontext()


@pytest.fixture
def running(sandbox):
    ec2 = sandbox.client("ec2")
    with at_once(sandbox):
        instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, MetadataOptions={
            "HttpTokens": "optional", "HttpPutResponseHopLimit": 3, "InstanceMetadataTags": "enabled"})["Instances"][0]
    return ec2, instance["InstanceId"]


def options_of(ec2, instance_id):
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["MetadataOptions"]


def test_modify_keeps_the_options_it_is_not_given(running):
    ec2, instance_id = running
    answer = ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpTokens="required")
    assert answer["InstanceMetadataOptions"]["State"] == "pending"  # a running instance answers pending
    assert options_of(ec2, instance_id) == {
        "State": "applied", "HttpTokens": "required", "HttpPutResponseHopLimit": 3, "HttpEndpoint": "enabled",
        "HttpProtocolIpv6": "disabled", "InstanceMetadataTags": "enabled"}


def test_modify_refuses_bad_values_and_terminated_instances(running):
    ec2, instance_id = running
    assert error_of(ec2.modify_instance_metadata_options, InstanceId=instance_id,
                    HttpPutResponseHopLimit=65) == ("InvalidParameterValue", 400)
    assert error_of(ec2.modify_instance_metadata_options, InstanceId="i-0123456789abcdef0",
                    HttpTokens="required")[0] == "InvalidInstanceID.NotFound"
    ec2.terminate_instances(InstanceIds=[instance_id])
    assert error_of(ec2.modify_instance_metadata_options, InstanceId=instance_id,
                    HttpTokens="required") == ("IncorrectInstanceState", 400)


def test_modify_on_a_stopped_instance_answers_applied(running):
    ec2, instance_id = running
    ec2.stop_instances(InstanceIds=[instance_id])
    answer = ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpTokens="required")
    assert answer["InstanceMetadataOptions"]["State"] == "applied"


# ---- (c) RunInstances: order of precedence ------------------------------------------------------------


def test_launch_takes_options_from_request_then_template_then_account_defaults(sandbox):
    ec2 = sandbox.client("ec2")
    ec2.modify_instance_metadata_defaults(HttpTokens="required", HttpPutResponseHopLimit=2,
                                          InstanceMetadataTags="enabled")
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": "ami-12345678", "MetadataOptions": {"HttpTokens": "optional", "HttpPutResponseHopLimit": 4}})
    plain = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]["MetadataOptions"]
    assert (plain["HttpTokens"], plain["HttpPutResponseHopLimit"], plain["InstanceMetadataTags"]) == (
        "required", 2, "enabled")
    templated = ec2.run_instances(LaunchTemplate={"LaunchTemplateName": "web"}, MinCount=1, MaxCount=1,
                                  MetadataOptions={"HttpPutResponseHopLimit": 5})["Instances"][0]["MetadataOptions"]
    assert (templated["HttpTokens"], templated["HttpPutResponseHopLimit"], templated["InstanceMetadataTags"]) == (
        "optional", 5, "enabled")


def test_launch_without_template_or_defaults_is_moto_as_usual(sandbox):
    ec2 = sandbox.client("ec2")
    sandbox.app.clear_log()
    options = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]["MetadataOptions"]
    assert options["HttpTokens"] == "optional" and options["HttpPutResponseHopLimit"] == 1
    (call,) = sandbox.calls("ec2", "RunInstances")
    assert not [k for k in call["params"] if k.startswith("MetadataOptions")]
