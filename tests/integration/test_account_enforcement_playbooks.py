"""Account-level IMDSv2 enforcement through ansible-playbook against the sandbox, as a user runs it:

* before enforcing, the report of what would fail to launch (a launch template that allows
  IMDSv1, used by an Auto Scaling group): the task is refused, in check mode and for real, and
  nothing changes;
* the same task hardening that template first: enforcement is enabled, check mode (with --diff)
  predicts exactly what the real run does, and a second run changes nothing;
* the enforced account then refuses an IMDSv1 launch (amazon.aws.ec2_instance with
  http_tokens optional: EC2's UnsupportedOperation, tests/sandbox/rules.py), and launches from
  the hardened template.
"""

from runner import run_written

MUTATING = ("ModifyInstanceMetadataOptions", "CreateLaunchTemplateVersion", "ModifyLaunchTemplate",
            "ModifyInstanceMetadataDefaults")

PLAYBOOK = """---
- name: Enforce IMDSv2 in the region
  hosts: localhost
  gather_facts: false
  tasks:
    - name: IMDSv2 enforced for every launch in the region
      keyless.aws.ec2_metadata_options:
        launch_templates: "{{ templates | default([]) }}"
        account_defaults: true
        http_tokens_enforced: enabled
      register: enforced
      ignore_errors: true

    - name: An instance that allows IMDSv1
      amazon.aws.ec2_instance:
        name: legacy
        image_id: ami-12345678
        instance_type: t3.micro
        metadata_options:
          http_tokens: optional
        wait: false
      register: imdsv1_launch
      ignore_errors: true
      when: try_launch | default(false)

    - name: Keep the results for the test
      ansible.builtin.copy:
        content: "{{ {'enforced': enforced, 'imdsv1_launch': imdsv1_launch | default(none)} | to_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""


class Run:
    def __init__(self, sandbox, tmp_path, name, *args, **variables):
        self.run, results = run_written(sandbox, tmp_path, PLAYBOOK, "account-enforcement-" + name, variables, *args)
        self.result, self.launch = results["enforced"], results["imdsv1_launch"]
        self.mutations = [c["action"] for c in sandbox.calls() if c["action"] in MUTATING]


def imdsv1_template_with_a_group(sandbox):
    ec2 = sandbox.client("ec2")
    template = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": "ami-12345678", "InstanceType": "t3.micro", "MetadataOptions": {"HttpTokens": "optional"}})[
        "LaunchTemplate"]["LaunchTemplateId"]
    sandbox.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="web-asg", LaunchTemplate={"LaunchTemplateName": "web", "Version": "$Latest"},
        MinSize=0, MaxSize=2, DesiredCapacity=0, AvailabilityZones=["us-east-1a"])
    return ec2, template


def test_the_report_refuses_then_the_same_task_hardens_and_enforces(sandbox, tmp_path):
    ec2, template = imdsv1_template_with_a_group(sandbox)

    for name, args in (("refused-check", ["--check"]), ("refused", [])):
        refused = Run(sandbox, tmp_path, name, *args)
        assert refused.result["failed"] and refused.result["param"] == "http_tokens_enforced"
        assert "'web' ({0}) version 1 ($Default, $Latest: http_tokens optional)".format(template) in \
            refused.result["msg"]
        assert "'web-asg' (launch template 'web' $Latest)" in refused.result["msg"]
        assert refused.result["msg"].endswith("Nothing was changed.")
        report = refused.result["account_defaults"]["enforcement_report"]
        assert report["launch_templates"] == [{
            "id": template, "name": "web", "version_checked": 1, "referenced_as": ["$Default", "$Latest"],
            "http_tokens": "optional", "http_tokens_from": "launch definition"}]
        assert report["auto_scaling_groups"] == [{
            "name": "web-asg", "launch_template": "web", "launch_template_id": template, "version": "$Latest",
            "version_number": 1, "launch_configuration": None, "http_tokens": "optional"}]
        assert refused.mutations == []
    assert "HttpTokensEnforced" not in ec2.get_instance_metadata_defaults()["AccountLevel"]

    predicted = Run(sandbox, tmp_path, "hardened-check", "--check", "--diff", templates=[{"name": "web"}])
    assert not predicted.result.get("failed"), predicted.result.get("msg")
    assert predicted.mutations == []
    assert "http_tokens_enforced" in predicted.run.output  # the diff shows the account defaults' change
    real = Run(sandbox, tmp_path, "hardened", templates=[{"name": "web"}])
    assert not real.result.get("failed"), real.result.get("msg")
    for key in ("changed", "launch_templates", "account_defaults", "diff"):
        assert predicted.result[key] == real.result[key], key
    assert real.mutations == ["CreateLaunchTemplateVersion", "ModifyLaunchTemplate", "ModifyInstanceMetadataDefaults"]
    assert real.result["account_defaults"]["after"] == {"http_tokens": "required", "http_tokens_enforced": "enabled"}
    empty = {"launch_templates": [], "auto_scaling_groups": []}
    assert real.result["account_defaults"]["enforcement_report"] == empty
    assert real.result["launch_templates"][0]["default_version"] == 2
    assert ec2.get_instance_metadata_defaults()["AccountLevel"]["HttpTokensEnforced"] == "enabled"

    again = Run(sandbox, tmp_path, "again", templates=[{"name": "web"}], try_launch=True)
    assert again.result["changed"] is False and again.mutations == []
    # The enforced account refuses a launch that allows IMDSv1, with EC2's error.
    assert again.launch["failed"] and again.launch["error"]["code"] == "UnsupportedOperation"
    assert again.launch["error"]["message"].startswith(
        "You can't launch instances with IMDSv1 because httpTokensEnforced is enabled for this account.")
    launched = ec2.run_instances(LaunchTemplate={"LaunchTemplateName": "web"}, MinCount=1, MaxCount=1)["Instances"]
    assert launched[0]["MetadataOptions"]["HttpTokens"] == "required"
