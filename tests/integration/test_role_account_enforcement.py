"""The instance_profile role with ``instance_profile_imds_http_tokens_enforced``, through
ansible-playbook against the sandbox, as a user runs it:

* with the account defaults, the role's own launch template (given with its data) and one made
  elsewhere (given by name, followed by an Auto Scaling group), both allowing IMDSv1 before:
  check mode predicts the enforcement (counting both templates as the real run leaves them) and
  makes no mutating call; the real run hardens the templates first, then enables
  ``HttpTokensEnforced`` (as ``get_instance_metadata_defaults`` reads it); the region then
  refuses a launch that allows IMDSv1 (``UnsupportedOperation``: tests/sandbox/rules.py) while
  launches from the role's templates carry the profile and IMDSv2; a second run changes nothing;
* a template of the region the role does not manage, allowing IMDSv1: the account defaults are
  left as they are and the run fails naming it; with ``..._force: true`` enforcement is enabled
  and ``instance_profile_result.enforcement_report`` names it; ``no-preference`` clears it again;
* the variable without the account defaults, ``enabled`` with IMDSv1 allowed, or a value outside
  the choices: the role fails naming the variable, before any AWS call.
"""

import json

import pytest

from reliability_support import MUTATING, recap
from runner import run_playbook
from runner import run_written

# The role with the test's variables (extra variables, so JSON types reach it as given); the
# result, or the failure, kept for the test.
PLAYBOOK = """---
- name: The instance_profile role, IMDSv2 enforced in the region
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The role
      block:
        - name: Converge
          ansible.builtin.include_role:
            name: keyless.aws.instance_profile
      rescue:
        - name: The failure
          ansible.builtin.set_fact:
            failure: "{{ {'task': ansible_failed_task.name, 'msg': ansible_failed_result.msg} }}"

    - name: Keep the result for the test
      ansible.builtin.copy:
        content: >-
          {{ {'result': instance_profile_result | default(none), 'failure': failure | default(none)} | to_json }}
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
      changed_when: false
"""

ROLE = {
    "instance_profile_role_name": "web-app",
    "instance_profile_imds_account_defaults": True,
    "instance_profile_imds_http_tokens_enforced": "enabled",
}
WEB = {"name": "web", "data": {"image_id": "ami-12345678", "instance_type": "t3.micro"}}


class Run:
    """One ansible-playbook run of the role; ``result``/``failure`` as the playbook kept them,
    ``changed`` from the recap, ``mutations`` the mutating AWS calls it made."""

    def __init__(self, sandbox, tmp_path, name, *args, **variables):
        self.run, kept = run_written(sandbox, tmp_path, PLAYBOOK, "role-account-enforcement-" + name, variables, *args)
        self.result, self.failure = kept["result"], kept["failure"]
        self.changed = recap(self.run.output)[1]
        self.calls = sandbox.calls()
        self.mutations = [c["action"] for c in self.calls if MUTATING.match(c["action"])]  # any service


def account_level(ec2):
    level = ec2.get_instance_metadata_defaults()["AccountLevel"]
    level.pop("ManagedBy", None)
    return level


def legacy_template_with_a_group(sandbox):
    """A launch template made elsewhere, allowing IMDSv1, that an Auto Scaling group follows."""
    ec2 = sandbox.client("ec2")
    ec2.create_launch_template(LaunchTemplateName="legacy", LaunchTemplateData={
        "ImageId": "ami-12345678", "InstanceType": "t3.micro", "MetadataOptions": {"HttpTokens": "optional"}})
    sandbox.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="legacy-asg", LaunchTemplate={"LaunchTemplateName": "legacy", "Version": "$Default"},
        MinSize=0, MaxSize=2, DesiredCapacity=0, AvailabilityZones=["us-east-1a"])
    return ec2


def test_enforcement_after_the_roles_templates_check_mode_and_a_second_run(sandbox, tmp_path, instant_transitions):
    ec2 = legacy_template_with_a_group(sandbox)
    # The role's own template exists already, allowing IMDSv1 (as a run with
    # instance_profile_imds_http_tokens: optional left it): the role writes a version with IMDSv2.
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": "ami-12345678", "InstanceType": "t3.micro", "MetadataOptions": {"HttpTokens": "optional"}})
    variables = dict(ROLE, instance_profile_launch_templates=[WEB, {"name": "legacy"}])
    empty = {"launch_templates": [], "auto_scaling_groups": []}
    enforced = {"http_tokens": "required", "http_endpoint": "enabled", "http_tokens_enforced": "enabled"}

    # Check mode reads both templates as the real run leaves them (hardened before the account
    # defaults change), so it predicts the enforcement instead of refusing it.
    predicted = Run(sandbox, tmp_path, "check", "--check", "--diff", **variables)
    assert predicted.failure is None, predicted.failure
    assert predicted.mutations == []
    assert predicted.result["account_defaults"] == enforced
    assert predicted.result["enforcement_report"] == empty
    assert account_level(ec2) == {}

    real = Run(sandbox, tmp_path, "real", **variables)
    assert real.failure is None, real.failure
    assert account_level(ec2) == {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpTokensEnforced": "enabled"}
    assert real.result["account_defaults"] == enforced
    assert real.result["enforcement_report"] == empty
    assert real.result["launch_templates"] == {"web": 2, "legacy": 2}
    # The templates were hardened before the account defaults changed.
    assert real.mutations[-1] == "ModifyInstanceMetadataDefaults"
    assert real.mutations.count("ModifyInstanceMetadataDefaults") == 1

    # The enforced region refuses a launch that allows IMDSv1, with EC2's error ...
    with pytest.raises(ec2.exceptions.ClientError) as refused_launch:
        ec2.run_instances(ImageId="ami-12345678", InstanceType="t3.micro", MinCount=1, MaxCount=1,
                          MetadataOptions={"HttpTokens": "optional"})
    error = refused_launch.value.response["Error"]
    assert error["Code"] == "UnsupportedOperation"
    assert error["Message"].startswith("You can't launch instances with IMDSv1 because httpTokensEnforced is enabled")
    # ... and launches from the role's templates, with the profile and IMDSv2.
    for name in ("web", "legacy"):
        launched = ec2.run_instances(LaunchTemplate={"LaunchTemplateName": name}, MinCount=1, MaxCount=1)
        instance = launched["Instances"][0]
        assert instance["MetadataOptions"]["HttpTokens"] == "required", name
        assert instance["IamInstanceProfile"]["Arn"].endswith(":instance-profile/web-app"), name

    again = Run(sandbox, tmp_path, "again", **variables)
    assert again.failure is None, again.failure
    assert (again.changed, again.mutations) == (0, [])
    assert again.result["account_defaults"] == enforced
    assert again.result["enforcement_report"] is None  # already enforced: nothing to report


def test_a_template_the_role_does_not_harden_stops_the_enforcement_unless_forced(sandbox, tmp_path):
    ec2 = legacy_template_with_a_group(sandbox)
    variables = dict(ROLE, instance_profile_launch_templates=[WEB])

    refused = Run(sandbox, tmp_path, "refused", **variables)
    assert refused.failure is not None and refused.result is None
    assert refused.failure["task"] == "The metadata service of those instances, and the account default, require IMDSv2"
    assert refused.failure["msg"].startswith("http_tokens_enforced: with IMDSv2 enforced, EC2 refuses every launch")
    assert "'legacy'" in refused.failure["msg"] and "'legacy-asg'" in refused.failure["msg"]
    assert "ModifyInstanceMetadataDefaults" not in refused.mutations
    assert account_level(ec2) == {}

    forced = Run(sandbox, tmp_path, "forced", **dict(variables, instance_profile_imds_http_tokens_enforced_force=True))
    assert forced.failure is None, forced.failure
    assert account_level(ec2)["HttpTokensEnforced"] == "enabled"
    report = forced.result["enforcement_report"]
    assert [(t["name"], t["version_checked"], t["http_tokens"]) for t in report["launch_templates"]] == [
        ("legacy", 1, "optional")]
    assert [g["name"] for g in report["auto_scaling_groups"]] == ["legacy-asg"]
    assert "http_tokens_enforced: enforcing IMDSv2 (http_tokens_enforced_force: true) although" in forced.run.output

    # The way back: the setting cleared (or disabled) passes through the same way.
    cleared_variables = dict(variables)
    cleared_variables["instance_profile_imds_http_tokens_enforced"] = "no-preference"
    cleared = Run(sandbox, tmp_path, "cleared", **cleared_variables)
    assert cleared.failure is None, cleared.failure
    assert cleared.mutations == ["ModifyInstanceMetadataDefaults"]
    assert "HttpTokensEnforced" not in account_level(ec2)
    assert cleared.result["account_defaults"] == {"http_tokens": "required", "http_endpoint": "enabled"}


# One playbook run for all the cases: each includes the role with its variables, and a failure
# (or none) is kept per case.
CASES_PLAYBOOK = """---
- name: The instance_profile role with wrong variables
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Each case
      ansible.builtin.include_tasks: case.yml
      loop: "{{ cases }}"
      loop_control:
        loop_var: case

    - name: Keep the failures for the test
      ansible.builtin.copy:
        content: "{{ failures | default([]) | to_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      changed_when: false
"""
CASE = """---
- name: Case {{ case.name }}
  block:
    - name: The role with the case's variables
      ansible.builtin.include_role:
        name: keyless.aws.instance_profile
      vars:
        instance_profile_role_name: web-app
        instance_profile_launch_templates: [{name: elsewhere}]
        instance_profile_imds_account_defaults: "{{ case.account_defaults }}"
        instance_profile_imds_http_tokens: "{{ case.http_tokens }}"
        instance_profile_imds_http_tokens_enforced: "{{ case.enforced }}"

    - name: Not reached
      ansible.builtin.set_fact:
        failures: "{{ failures | default([]) + [{'case': case.name, 'msg': none}] }}"
  rescue:
    - name: The failure
      ansible.builtin.set_fact:
        failures: "{{ failures | default([]) + [{'case': case.name, 'msg': ansible_failed_result.msg}] }}"
"""

BAD = [
    dict(name="without account defaults", account_defaults=False, http_tokens="required", enforced="enabled",
         says="instance_profile_imds_http_tokens_enforced: IMDSv2 enforcement is a setting of the account defaults "
              "of the region; set instance_profile_imds_account_defaults: true with it, or leave it null."),
    dict(name="cleared without account defaults", account_defaults=False, http_tokens="required",
         enforced="no-preference",
         says="instance_profile_imds_http_tokens_enforced: IMDSv2 enforcement is a setting of the account defaults"),
    dict(name="enabled with IMDSv1 allowed", account_defaults=True, http_tokens="optional", enforced="enabled",
         says="instance_profile_imds_http_tokens_enforced: enabled cannot go with instance_profile_imds_http_tokens: "
              "optional: with IMDSv2 enforced, EC2 refuses every launch"),
    dict(name="not a choice", account_defaults=True, http_tokens="required", enforced="always",
         says="value of instance_profile_imds_http_tokens_enforced must be one of: enabled, disabled, no-preference"),
    dict(name="empty", account_defaults=True, http_tokens="required", enforced="",
         says="value of instance_profile_imds_http_tokens_enforced must be one of: enabled, disabled, no-preference"),
]


def test_wrong_variables_fail_naming_the_variable_before_any_aws_call(sandbox, tmp_path):
    # A template the role would read right after the checks (validate.yml): the log shows no call at all.
    sandbox.client("ec2").create_launch_template(LaunchTemplateName="elsewhere", LaunchTemplateData={
        "ImageId": "ami-12345678", "MetadataOptions": {"HttpTokens": "optional"}})
    playbook = tmp_path / "cases.yml"
    playbook.write_text(CASES_PLAYBOOK)
    (tmp_path / "case.yml").write_text(CASE)
    result_file = tmp_path / "failures.json"
    vars_file = tmp_path / "cases-vars.json"
    vars_file.write_text(json.dumps({"cases": [dict((k, v) for k, v in case.items() if k != "says") for case in BAD],
                                     "result_file": str(result_file)}))
    sandbox.app.clear_log()
    run = run_playbook(sandbox, str(playbook), "-e", "@" + str(vars_file), name="role-account-enforcement-bad")
    assert run.returncode == 0, run.output[-4000:]
    failures = json.loads(result_file.read_text())
    assert [f["case"] for f in failures] == [case["name"] for case in BAD]
    for case, failure in zip(BAD, failures):
        assert failure["msg"] is not None, case["name"]
        assert case["says"] in failure["msg"], (case["name"], failure["msg"])
    assert [c["action"] for c in sandbox.calls()] == []
