"""metadata_options.py against the sandbox: check mode predicts exactly what the real run
changes, with no mutating call."""

from ansible_collections.keyless.aws.plugins.module_utils import metadata_options as mo

MUTATING = ("ModifyInstanceMetadataOptions", "CreateLaunchTemplateVersion", "ModifyLaunchTemplate",
            "ModifyInstanceMetadataDefaults")


def params(**kwargs):
    base = dict(instance_ids=[], filters={}, launch_templates=[], account_defaults=False, http_tokens="required",
                http_endpoint=None, http_put_response_hop_limit=None, instance_metadata_tags=None,
                http_protocol_ipv6=None, wait=True, wait_timeout=60, set_default_version=True,
                version_description=None)
    base.update(kwargs)
    return base


def test_check_mode_predicts_the_real_run_exactly_against_the_sandbox(sandbox):
    ec2 = sandbox.client("ec2")
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": "ami-12345678", "MetadataOptions": {"HttpTokens": "optional", "HttpPutResponseHopLimit": 2}})
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId="ami-12345678", MinCount=2, MaxCount=2)["Instances"]]
    args = params(instance_ids=ids, launch_templates=[{"name": "web"}], account_defaults=True)
    sandbox.app.clear_log()
    predicted = mo.manage_metadata_options(ec2, args, True)
    assert not [c for c in sandbox.calls() if c["action"] in MUTATING]
    real = mo.manage_metadata_options(ec2, args, False)
    for key in ("changed", "instances", "launch_templates", "account_defaults", "diff"):
        assert predicted[key] == real[key], key
    again = mo.manage_metadata_options(ec2, args, False)
    assert again["changed"] is False
    data = ec2.describe_launch_template_versions(LaunchTemplateName="web", Versions=["$Default"])[
        "LaunchTemplateVersions"][0]
    assert data["VersionNumber"] == 2
    assert data["LaunchTemplateData"]["ImageId"] == "ami-12345678"  # inherited from version 1
    assert data["LaunchTemplateData"]["MetadataOptions"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}
