"""keyless.aws.ec2_launch_template_profile through ansible-playbook against the sandbox: a launch
template made "by another team", used by an Auto Scaling group pinned to a version and by one
that follows $Default. Check mode predicts the real run (the version number too) with no
mutating call; the real run makes one version from the base with only the profile and the IMDS
options changed; a re-run changes nothing; a role's name fails with the collection's sentence; a
launch from the new default version carries the profile (rule launch_template_profile); the
pinned group is moved when asked; the role instance_profile does the same for a template named
without data, in one new version."""

import json
import time

import pytest

from runner import run_playbook

MUTATING = ("CreateLaunchTemplateVersion", "ModifyLaunchTemplate", "UpdateAutoScalingGroup")
TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture
def team(sandbox):
    """The other team's template (IMDSv1 allowed, hop limit 2, no profile), its two groups, and
    the profile web-app (holding the role web-app)."""
    iam, ec2, autoscaling = sandbox.client("iam"), sandbox.client("ec2"), sandbox.client("autoscaling")
    iam.create_role(RoleName="web-app", AssumeRolePolicyDocument=json.dumps(TRUST))
    iam.create_instance_profile(InstanceProfileName="web-app")
    iam.add_role_to_instance_profile(InstanceProfileName="web-app", RoleName="web-app")
    template_id = ec2.create_launch_template(LaunchTemplateName="team-web", LaunchTemplateData={
        "ImageId": "ami-12345678", "InstanceType": "t3.micro", "UserData": "IyEvYmluL3NoCg==",
        "MetadataOptions": {"HttpTokens": "optional", "HttpPutResponseHopLimit": 2}})["LaunchTemplate"][
        "LaunchTemplateId"]
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    for name, version in (("web-pinned", "1"), ("web-follows", "$Default")):
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=0, MaxSize=2, DesiredCapacity=0, VPCZoneIdentifier=subnet,
            LaunchTemplate={"LaunchTemplateName": "team-web", "Version": version})
    sandbox.app.clear_log()
    return {"ec2": ec2, "iam": iam, "autoscaling": autoscaling, "template_id": template_id}


def converge(sandbox, tmp_path, name, *args, **options):
    """One task of the module with ``options``; returns its registered result (failures too)."""
    out = tmp_path / (name + ".json")
    task = dict({"launch_templates": [{"name": "team-web"}], "instance_profile": "web-app"}, **options)
    playbook = tmp_path / (name + ".yml")
    playbook.write_text("""---
- name: ec2_launch_template_profile {name}
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Give the other team's template the profile
      keyless.aws.ec2_launch_template_profile: {task}
      register: given
      ignore_errors: true
    - name: Hand the result to the test
      ansible.builtin.copy:
        dest: {out}
        content: "{{{{ given | to_json }}}}"
        mode: "0600"
      check_mode: false
""".format(name=name, task=json.dumps(task), out=json.dumps(str(out))))
    run = run_playbook(sandbox, str(playbook), *args, name="launch_template_profile-" + name)
    assert run.returncode == 0, "{0} (log: {1}):\n{2}".format(name, run.log_path, run.output[-4000:])
    return json.loads(out.read_text()), run


def mutating(sandbox):
    return [c["action"] for c in sandbox.calls() if c["action"] in MUTATING]


def default_version(team):
    return team["ec2"].describe_launch_template_versions(LaunchTemplateId=team["template_id"], Versions=["$Default"])[
        "LaunchTemplateVersions"][0]


def test_check_mode_then_the_real_run_then_nothing(sandbox, team, tmp_path):
    predicted, run = converge(sandbox, tmp_path, "check", "--check", "--diff", http_tokens="required")
    assert mutating(sandbox) == []
    assert predicted["changed"] is True
    assert predicted["launch_templates"][0]["new_version"] == 2
    assert "web-pinned" in run.output and "version" in run.output  # the diff and the warning
    real, _run = converge(sandbox, tmp_path, "real", http_tokens="required")
    assert mutating(sandbox) == ["CreateLaunchTemplateVersion", "ModifyLaunchTemplate"]
    for key in ("changed", "launch_templates", "auto_scaling_groups", "instance_profile", "diff"):
        assert predicted[key] == real[key], key
    version = default_version(team)
    arn = team["iam"].get_instance_profile(InstanceProfileName="web-app")["InstanceProfile"]["Arn"]
    assert version["VersionNumber"] == 2
    assert version["LaunchTemplateData"]["IamInstanceProfile"] == {"Arn": arn}
    assert version["LaunchTemplateData"]["MetadataOptions"] == {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}
    assert version["LaunchTemplateData"]["UserData"] == "IyEvYmluL3NoCg=="  # kept from version 1
    groups = dict((g["auto_scaling_group_name"], g) for g in real["auto_scaling_groups"])
    assert (groups["web-follows"]["action"], groups["web-follows"]["new_instances_get_profile"]) == ("follows", True)
    assert (groups["web-pinned"]["action"], groups["web-pinned"]["new_instances_get_profile"]) == ("pinned", False)
    assert any("'web-pinned'" in w and "update_pinned_auto_scaling_groups" in w for w in real["warnings"])
    sandbox.app.clear_log()
    again, _run = converge(sandbox, tmp_path, "again", http_tokens="required")
    assert again["changed"] is False and mutating(sandbox) == []


def test_a_role_name_fails_with_the_collections_sentence(sandbox, team, tmp_path):
    failed, _run = converge(sandbox, tmp_path, "role-name", instance_profile="web-app-role-only")
    assert failed["failed"] is True
    assert "there is no instance profile named 'web-app-role-only'" in failed["msg"]
    team["iam"].create_role(RoleName="web-role", AssumeRolePolicyDocument=json.dumps(TRUST))
    failed, _run = converge(sandbox, tmp_path, "role-name-2", instance_profile="web-role")
    assert failed["failed"] is True and failed["param"] == "instance_profile"
    assert "'web-role' is an IAM role, not an instance profile" in failed["msg"]
    assert mutating(sandbox) == []


def test_a_launch_from_the_new_default_version_carries_the_profile(sandbox, team, tmp_path):
    converge(sandbox, tmp_path, "real")
    deadline = time.monotonic() + 30
    while True:  # EC2 may not know a profile given its role a moment ago (rule profile_propagation)
        try:
            instance = team["ec2"].run_instances(MinCount=1, MaxCount=1, LaunchTemplate={
                "LaunchTemplateName": "team-web"})["Instances"][0]
            break
        except Exception as exc:  # pylint: disable=broad-except
            if "IAM Instance Profile" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    associations = team["ec2"].describe_iam_instance_profile_associations(Filters=[
        {"Name": "instance-id", "Values": [instance["InstanceId"]]}])["IamInstanceProfileAssociations"]
    assert [a["IamInstanceProfile"]["Arn"].rsplit("/", 1)[-1] for a in associations] == ["web-app"]


def test_the_pinned_group_is_moved_when_asked(sandbox, team, tmp_path):
    predicted, _run = converge(sandbox, tmp_path, "move-check", "--check", update_pinned_auto_scaling_groups=True)
    assert mutating(sandbox) == []
    real, _run = converge(sandbox, tmp_path, "move", update_pinned_auto_scaling_groups=True)
    assert predicted["auto_scaling_groups"] == real["auto_scaling_groups"]
    assert mutating(sandbox) == ["CreateLaunchTemplateVersion", "ModifyLaunchTemplate", "UpdateAutoScalingGroup"]
    moved = [g for g in real["auto_scaling_groups"] if g["action"] == "moved"]
    assert [(g["auto_scaling_group_name"], g["version_before"], g["version_after"]) for g in moved] == [
        ("web-pinned", "1", "2")]
    group = team["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=["web-pinned"])[
        "AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "2"
    again, _run = converge(sandbox, tmp_path, "move-again", update_pinned_auto_scaling_groups=True)
    assert again["changed"] is False
    assert sorted(g["action"] for g in again["auto_scaling_groups"]) == ["follows", "unchanged"]


def test_the_role_gives_a_template_named_without_data_the_profile_in_one_version(sandbox, team, tmp_path):
    playbook = tmp_path / "role.yml"
    playbook.write_text("""---
- name: The role, for another team's template
  hosts: localhost
  gather_facts: false
  tasks:
    - name: The role
      ansible.builtin.include_role:
        name: keyless.aws.instance_profile
      vars:
        instance_profile_role_name: batch
        instance_profile_launch_templates:
          - name: team-web
        instance_profile_update_pinned_auto_scaling_groups: true
""")
    for name in ("role", "role-again"):
        run = run_playbook(sandbox, str(playbook), name="launch_template_profile-" + name)
        assert run.returncode == 0, "{0} (log: {1}):\n{2}".format(name, run.log_path, run.output[-4000:])
    # One new version carries both the profile and IMDSv2 (not one for each); the re-run made none.
    assert mutating(sandbox).count("CreateLaunchTemplateVersion") == 1
    version = default_version(team)
    assert version["VersionNumber"] == 2
    assert version["LaunchTemplateData"]["IamInstanceProfile"]["Arn"].endswith(":instance-profile/batch")
    assert version["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] == "required"
    assert version["LaunchTemplateData"]["MetadataOptions"]["HttpPutResponseHopLimit"] == 2  # kept
    group = team["autoscaling"].describe_auto_scaling_groups(AutoScalingGroupNames=["web-pinned"])[
        "AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "2"
