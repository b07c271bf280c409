"""IAM permissions, against the sandbox with IAM policy enforcement on
(tests/sandbox/iam_authorization.py: actions by their IAM names, refusals as AWS answers them,
iam:PassRole where AWS asks for it): the permissions a module's notes list are exactly enough, and
a refused call fails with the IAM action it needed."""

import ast
import json
import os
import re

import yaml

from runner import ROOT
from runner import run_playbook
from sandbox.imds import iam_enforcement
from sandbox.seed import AMI
from sandbox.seed import make_profile
from test_audit import seed_findings

TRUST_ACCOUNT = json.dumps({"Version": "2012-10-17", "Statement": [{
    "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]})


def _documented_actions():
    """The IAM actions the notes of keyless.aws.audit_info say its reads need (C(service:Action)),
    read from the module's DOCUMENTATION (with ast, not imported)."""
    with open(os.path.join(ROOT, "plugins", "modules", "audit_info.py")) as handle:
        tree = ast.parse(handle.read())
    [documentation] = [node.value.value for node in tree.body if isinstance(node, ast.Assign)
                       and getattr(node.targets[0], "id", None) == "DOCUMENTATION"]
    notes = " ".join(yaml.safe_load(documentation)["notes"])
    return sorted(set(re.findall(r"C\(((?:ec2|iam|cloudwatch):[A-Za-z]+)\)", notes)))


def test_the_documented_permissions_are_exactly_enough(sandbox, tmp_path, imds):
    """With IAM policy enforcement on (tests/sandbox/iam_authorization.py), a role allowed exactly
    the actions the module's notes list audits the seeded account and finds everything; a role
    lacking any one of them is refused, with AWS's error, and the module names the action it lacks
    (EC2's own message does not)."""
    expected = seed_findings(sandbox, imds)
    actions = _documented_actions()
    assert "ec2:DescribeInstances" in actions and "cloudwatch:GetMetricData" in actions, actions
    iam = sandbox.client("iam")
    roles = {"keyless-audit": actions}
    roles.update(("lacks-" + action.replace(":", "-"), [a for a in actions if a != action]) for action in actions)
    for name, allowed in roles.items():
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST_ACCOUNT)
        iam.put_role_policy(RoleName=name, PolicyName="read", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": allowed, "Resource": "*"}]}))
    audit = {"assume_role": {"role_arn": "arn:aws:iam::123456789012:role/{{ item }}", "session_name": "audit"}}
    playbook = tmp_path / "audit-permissions.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "audit_info with exactly the documented permissions, then with one fewer",
        "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Audit as {{ item }}", "keyless.aws.audit_info": audit, "loop": sorted(roles),
                   "register": "audits", "ignore_errors": True},
                  {"name": "Results", "ansible.builtin.copy": {
                      "dest": str(tmp_path / "audits.json"), "mode": "0600",
                      "content": "{{ audits.results | to_json }}"}}]}]))
    with iam_enforcement(sandbox):
        run = run_playbook(sandbox, str(playbook), name="audit-info-permissions")
    assert run.returncode == 0, run.output[-4000:]
    results = dict((r["item"], r) for r in json.loads((tmp_path / "audits.json").read_text()))
    full = results.pop("keyless-audit")
    assert not full.get("failed"), full.get("msg")
    assert {(f["kind"], f["resource"]) for f in full["report"]["findings"]} == expected
    for name, result in sorted(results.items()):
        action = name[len("lacks-"):].replace("-", ":", 1)
        assert result.get("failed"), "{0} was not needed: audit_info ran without it".format(action)
        code = "UnauthorizedOperation" if action.startswith("ec2:") else "AccessDenied"
        assert code in result["msg"] and action in result["msg"], (action, result["msg"])


def test_an_attach_refused_for_want_of_pass_role_says_both_actions(sandbox, tmp_path):
    """A role allowed to associate profiles but not to pass the profile's role: EC2 refuses with
    UnauthorizedOperation alone; the module's failure names both actions, and nothing changed."""
    make_profile(sandbox, "web-app", settled=True)
    ec2, iam = sandbox.client("ec2"), sandbox.client("iam")
    instance_id = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    iam.create_role(RoleName="attacher", AssumeRolePolicyDocument=TRUST_ACCOUNT)
    iam.put_role_policy(RoleName="attacher", PolicyName="attach", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
            "ec2:DescribeInstances", "ec2:DescribeIamInstanceProfileAssociations", "ec2:AssociateIamInstanceProfile",
            "iam:GetInstanceProfile", "iam:GetRole", "iam:ListInstanceProfilesForRole"]}]}))
    credentials = sandbox.client("sts").assume_role(RoleArn="arn:aws:iam::123456789012:role/attacher",
                                                    RoleSessionName="attach")["Credentials"]
    playbook = tmp_path / "attach.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Attach without iam:PassRole", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Attach web-app", "keyless.aws.ec2_profile_association": {
            "instance_ids": [instance_id], "instance_profile": "web-app"}}]}]))
    with iam_enforcement(sandbox):
        run = run_playbook(sandbox, str(playbook), name="attach-without-pass-role", extra_env={
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"]})
    assert run.returncode != 0, run.output[-4000:]
    assert ("attaching {0} failed: AWS said UnauthorizedOperation: You are not authorized to perform this operation. "
            "(ec2:AssociateIamInstanceProfile, or iam:PassRole on the role it gives, is not allowed to the caller)"
            ).format(instance_id) in run.output, run.output[-4000:]
    assert credentials["SecretAccessKey"] not in run.output
    assert ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"] == []
    # With iam:PassRole on that one role, the same task attaches it.
    iam.put_role_policy(RoleName="attacher", PolicyName="pass", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:PassRole",
                                                "Resource": "arn:aws:iam::123456789012:role/web-app"}]}))
    with iam_enforcement(sandbox):
        again = run_playbook(sandbox, str(playbook), name="attach-with-pass-role", extra_env={
            "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
            "AWS_SESSION_TOKEN": credentials["SessionToken"]})
    assert again.returncode == 0, again.output[-4000:]
    [association] = ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
    assert association["InstanceId"] == instance_id
