"""Keyless, continuously: playbooks/guard_setup.yml and playbooks/guard_remediate.yml against the
sandbox, with ansible-playbook alone (the real ansible-rulebook runs them elsewhere).

The events are the sandbox's own (tests/sandbox/cloudtrail_events.py): every mutating EC2 and IAM
call it serves becomes the "AWS API Call via CloudTrail" event EventBridge would deliver, with
detail.eventName, requestParameters and responseElements as CloudTrail records them (its
docstring cites the records), routed by the account's rules to their queues only where a trail
records them. So the setup is proven by what reaches its queue, and the remediation is fed, one
import_playbook per event in one ansible-playbook run, exactly what its rulebook would hand it.
"""

import json
import os
import re

import yaml

from guard_support import carried
from guard_support import http_tokens
from guard_support import launch
from guard_support import make_guard_role
from guard_support import make_trail
from guard_support import template_versions
from runner import ROOT, run_playbook
from sandbox.cloudtrail_events import receive_events
from sandbox.cloudtrail_events import route_events
from sandbox.organizations import client_for
from sandbox.organizations import credentials_for
from sandbox.organizations import seed_organization
from sandbox.seed import AMI
from sandbox.seed import make_profile

SETUP = os.path.join(ROOT, "playbooks", "guard_setup.yml")
REMEDIATE = os.path.join(ROOT, "playbooks", "guard_remediate.yml")
ACCOUNT = "123456789012"
QUEUE_ARN = "arn:aws:sqs:us-east-1:{0}:keyless-guard".format(ACCOUNT)
RULE_ARN = "arn:aws:events:us-east-1:{0}:rule/keyless-guard".format(ACCOUNT)
NO_TRAIL = "No CloudTrail trail records the write management events of ec2.amazonaws.com in us-east-1"
LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
PROFILES = [{"tags": {"team": "web"}, "instance_profile": "web"}]
READS = ("Describe", "Get", "List")


def recap(run):
    """{ok, changed, failed} of localhost in the run's recap."""
    match = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=(\d+)", run.output)
    assert match, run.output[-3000:]
    return dict(zip(("ok", "changed", "failed"), (int(g) for g in match.groups())))


def pattern():
    with open(SETUP) as handle:
        return yaml.safe_load(handle)[0]["vars"]["keyless_guard_event_pattern"]


# ---- the setup ----------------------------------------------------------------------------------


def test_setup_creates_the_way_and_says_plainly_when_no_trail_feeds_it(sandbox):
    sqs, events = sandbox.client("sqs"), sandbox.client("events")
    check = run_playbook(sandbox, SETUP, "--check", "--diff", name="guard-setup-check")
    assert check.returncode == 0, check.output[-4000:]
    assert recap(check)["changed"] == 1 and NO_TRAIL in check.output  # the queues predicted; the rule's module skipped
    assert '-    "queue": null' in check.output and '+    "queue": {' in check.output
    assert sqs.list_queues().get("QueueUrls", []) == [] and events.list_rules()["Rules"] == []

    first = run_playbook(sandbox, SETUP, name="guard-setup")
    assert first.returncode == 0, first.output[-4000:]
    assert NO_TRAIL in first.output and "iam.amazonaws.com" in first.output
    assert recap(first)["changed"] == 2  # the queues (one task), the rule

    url = sqs.get_queue_url(QueueName="keyless-guard")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": QUEUE_ARN + "-dlq", "maxReceiveCount": 5}
    [statement] = json.loads(attributes["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"} and statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": [RULE_ARN]}}
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert sqs.get_queue_url(QueueName="keyless-guard-dlq")["QueueUrl"]
    assert json.loads(events.describe_rule(Name="keyless-guard")["EventPattern"]) == pattern()
    assert events.list_targets_by_rule(Rule="keyless-guard")["Targets"] == [{"Id": "keyless-guard-queue",
                                                                            "Arn": QUEUE_ARN}]

    required = run_playbook(sandbox, SETUP, "-e", "keyless_guard_require_trail=true", name="guard-setup-require")
    assert required.returncode != 0 and NO_TRAIL in required.output
    assert recap(required)["changed"] == 0

    make_trail(sandbox)
    again = run_playbook(sandbox, SETUP, name="guard-setup-again")
    assert again.returncode == 0, again.output[-4000:]
    assert recap(again)["changed"] == 0
    assert "No CloudTrail trail" not in again.output and "Recorded by a logging trail" in again.output

    # The events now flow: a watched call reaches the queue, a failed one and an unwatched one do not.
    ec2 = sandbox.client("ec2")
    ec2.modify_instance_metadata_defaults(HttpTokens="optional")
    ec2.create_tags(Resources=[ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]],
                    Tags=[{"Key": "a", "Value": "b"}])
    route = {"client": lambda service, region: sandbox.client(service, region_name=region), "region": "us-east-1",
             "queue_url": url}
    names = sorted(e["detail"]["eventName"] for e in receive_events(route, wait=0.5, limit=10))
    assert names == ["ModifyInstanceMetadataDefaults", "RunInstances"]


# ---- the remediation ---------------------------------------------------------------------------------


def guard_role_client(sandbox, service):
    """A client of a session of the role keyless-guard (the guard's own role)."""
    credentials = sandbox.client("sts").assume_role(RoleArn=make_guard_role(sandbox, ACCOUNT),
                                                    RoleSessionName="anything")["Credentials"]
    return client_for(sandbox, {"access_key": credentials["AccessKeyId"], "secret_key": credentials["SecretAccessKey"],
                                "session_token": credentials["SessionToken"]}, service)


def make_drift(sandbox):
    """A fleet that was keyless, then every drift the rulebook reacts to, each its own call; returns
    the ids, and the route of the queue the events reached."""
    for name in ("web", "batch", "reports", "legacy"):
        make_profile(sandbox, name, settled=True)
    ec2, iam = sandbox.client("ec2"), sandbox.client("iam")
    ids = {}
    ids["mimo"], ids["detached"], ids["replaced"], ids["own"] = launch(ec2, 4, profile="web", team="web")
    ids["reports"] = launch(ec2, profile="reports")[0]
    for name in ("latest", "default"):
        ids["lt_" + name] = ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData={
            "ImageId": AMI, "MetadataOptions": {"HttpTokens": "required"}})["LaunchTemplate"]["LaunchTemplateId"]
    guard_ec2 = guard_role_client(sandbox, "ec2")

    make_trail(sandbox)
    route = route_events(sandbox, "keyless-guard", pattern(), rule_name="keyless-guard")
    ids["web"] = launch(ec2, 2, tokens="optional", team="web")                       # no profile, IMDSv1
    ids["exempt"] = launch(ec2, tokens="optional", keyless__guard="exempt")[0]       # the same, exempt
    ids["not_allowed"] = launch(ec2, keyless__instance_profile="admin")[0]           # a profile it may not have
    ec2.modify_instance_metadata_options(InstanceId=ids["mimo"], HttpTokens="optional")
    association = ec2.describe_iam_instance_profile_associations(Filters=[
        {"Name": "instance-id", "Values": [ids["detached"], ids["replaced"]]}])["IamInstanceProfileAssociations"]
    by_instance = dict((a["InstanceId"], a["AssociationId"]) for a in association)
    ec2.disassociate_iam_instance_profile(AssociationId=by_instance[ids["detached"]])
    ec2.replace_iam_instance_profile_association(AssociationId=by_instance[ids["replaced"]],
                                                 IamInstanceProfile={"Name": "batch"})
    ec2.modify_instance_metadata_defaults(HttpTokens="optional")
    ec2.create_launch_template_version(LaunchTemplateId=ids["lt_latest"], SourceVersion="1", LaunchTemplateData={
        "ImageId": AMI, "MetadataOptions": {"HttpTokens": "optional"}})
    ec2.create_launch_template_version(LaunchTemplateId=ids["lt_default"], SourceVersion="1", LaunchTemplateData={
        "ImageId": AMI, "MetadataOptions": {"HttpTokens": "optional"}})
    ec2.modify_launch_template(LaunchTemplateId=ids["lt_default"], DefaultVersion="2")
    iam.remove_role_from_instance_profile(InstanceProfileName="reports", RoleName="reports")
    iam.update_assume_role_policy(RoleName="legacy", PolicyDocument=LAMBDA_TRUST)
    guard_ec2.modify_instance_metadata_options(InstanceId=ids["own"], HttpTokens="optional")
    try:
        ec2.modify_instance_metadata_options(InstanceId=ids["mimo"], HttpTokens="optional", DryRun=True)
    except Exception:  # pylint: disable=broad-except
        pass  # DryRunOperation: the call would have succeeded
    return ids, route


def remediate_each(sandbox, tmp_path, name, events, *args):
    """One ansible-playbook run: guard_remediate.yml once per (event, extra variables), each play
    appending its line to the report file; returns (run, lines)."""
    report = tmp_path / (name + ".jsonl")
    plays = []
    for event, extra in events:
        variables = {"keyless_guard_event": event, "keyless_guard_profiles": PROFILES,
                     "keyless_guard_report_file": str(report)}
        variables.update(extra)
        plays.append({"ansible.builtin.import_playbook": REMEDIATE, "vars": variables})
    wrapper = tmp_path / (name + ".yml")
    wrapper.write_text(yaml.safe_dump(plays))
    sandbox.app.clear_log()
    run = run_playbook(sandbox, str(wrapper), *args, name=name)
    lines = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    return run, lines


def test_every_drift_is_put_right_or_reported_once_and_nothing_loops(sandbox, tmp_path, instant_transitions):  # pylint: disable=unused-argument
    ids, route = make_drift(sandbox)
    delivered = receive_events(route, wait=0.5, limit=100)
    names = [e["detail"]["eventName"] for e in delivered]
    assert sorted(names) == sorted(["RunInstances"] * 3 + ["ModifyInstanceMetadataOptions"] * 2 + [
        "DisassociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation", "ModifyInstanceMetadataDefaults",
        "CreateLaunchTemplateVersion", "CreateLaunchTemplateVersion", "ModifyLaunchTemplate",
        "RemoveRoleFromInstanceProfile", "UpdateAssumeRolePolicy"]), names
    # The dry run was published (errorCode Client.DryRunOperation) but the setup's pattern kept it out of
    # the queue; the playbook ignores it all the same when it gets it.
    [dry_run] = [e for e in sandbox.cloudtrail_events.published("ModifyInstanceMetadataOptions")
                 if e["detail"].get("errorCode")]
    defaults = [e for e in delivered if e["detail"]["eventName"] == "ModifyInstanceMetadataDefaults"][0]
    # As ansible-rulebook hands events over: {"body": event, "meta": ...}; the account default twice,
    # reported, then (keyless_guard_account_defaults required) set back.
    feed = [({"body": e, "meta": {"uuid": e["id"]}}, {}) for e in delivered] + [
        (dry_run, {}), (defaults, {"keyless_guard_account_defaults": "required"})]

    run, lines = remediate_each(sandbox, tmp_path, "guard-remediate", feed)
    assert run.returncode == 0, run.output[-6000:]
    assert len(lines) == len(feed)
    by_event = {}
    for line in lines:
        by_event.setdefault(line["event"]["name"], []).append(line)

    ec2, iam = sandbox.client("ec2"), sandbox.client("iam")
    # RunInstances: the web instances carry web and require IMDSv2; the exempt one is left alone; the one
    # whose tag names a profile the guard may not attach is reported.
    for instance_id in ids["web"]:
        assert carried(ec2, instance_id) == ["web"] and http_tokens(ec2, instance_id) == "required"
    assert carried(ec2, ids["exempt"]) == [] and http_tokens(ec2, ids["exempt"]) == "optional"
    kinds = [r["kind"] for line in lines for r in line["reports"]]
    assert "profile_not_allowed" in kinds
    assert [ids["exempt"]] in [line["exempt"] for line in by_event["RunInstances"]]
    # IMDSv1 allowed again: required again; the guard's own role's change and the dry run: ignored.
    assert http_tokens(ec2, ids["mimo"]) == "required"
    assert http_tokens(ec2, ids["own"]) == "optional"
    ignored = [line["ignored"] for line in by_event["ModifyInstanceMetadataOptions"] if line["ignored"]]
    assert sorted(i.split(" (")[0] for i in ignored) == ["it is the guard's own call", "the call failed"]
    # Profiles detached or swapped: the expected one back.
    assert carried(ec2, ids["detached"]) == ["web"] and carried(ec2, ids["replaced"]) == ["web"]
    # The account default: reported first, set back when managed.
    assert "account_defaults_allow_imdsv1" in kinds
    assert ec2.get_instance_metadata_defaults()["AccountLevel"]["HttpTokens"] == "required"
    # Launch templates: latest gets a successor requiring IMDSv2 (default kept); default gets a new default.
    latest = template_versions(ec2, ids["lt_latest"])
    assert latest[1] == (True, "required") and latest[2] == (False, "optional") and latest[3] == (False, "required")
    default = template_versions(ec2, ids["lt_default"])
    assert default[2] == (False, "optional") and [v for v, (is_default, _t) in default.items() if is_default] == [3]
    assert default[3][1] == "required" and len(default) == 3  # the second event found it done
    # IAM: reported, never fixed.
    assert "profile_without_role" in kinds and "role_does_not_trust_ec2" in kinds
    assert iam.get_instance_profile(InstanceProfileName="reports")["InstanceProfile"]["Roles"] == []
    assert "lambda" in json.dumps(iam.get_role(RoleName="legacy")["Role"]["AssumeRolePolicyDocument"])
    assert ids["reports"] in by_event["RemoveRoleFromInstanceProfile"][0]["reports"][0]["detail"]
    assert "[WARNING]: Instance profile reports holds no role" in run.output
    assert not any(line["changed"] for line in by_event["RemoveRoleFromInstanceProfile"] +
                   by_event["UpdateAssumeRolePolicy"])

    # The guard's own changes made events too (IMDS options, associations, template versions, the account
    # default): fed with every event again, nothing changes, and no mutating call is made.
    own = receive_events(route, wait=0.5, limit=100)
    assert own and all("app/keyless-guard" in e["detail"]["userAgent"] for e in own)
    again, lines = remediate_each(sandbox, tmp_path, "guard-remediate-again",
                                  feed + [(e, {"keyless_guard_account_defaults": "required"}) for e in own])
    assert again.returncode == 0, again.output[-6000:]
    assert recap(again)["changed"] == 0
    assert not any(line["changed"] for line in lines)
    mutating = [c["action"] for c in sandbox.calls() if c["service"] in ("ec2", "iam")
                and not c["action"].startswith(READS)]
    assert mutating == []


def test_an_event_of_a_member_account_is_put_right_there_and_nowhere_else(sandbox, tmp_path, instant_transitions):  # pylint: disable=unused-argument
    """The event's account: with keyless_guard_accounts the play assumes the role it names there
    (playbooks/tasks/target.yml) and every module acts with that session; without, an event of
    another account fails before any change."""
    member = seed_organization(sandbox, [{"name": "dev"}])["ids"]["dev"]
    credentials = credentials_for(sandbox, member)

    def member_client(service, region):
        return client_for(sandbox, credentials, service, region_name=region)

    route = route_events(sandbox, "keyless-guard", pattern(), client=member_client, rule_name="keyless-guard")
    ec2 = member_client("ec2", "us-east-1")
    instance_id = launch(ec2)[0]
    ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpTokens="optional")
    [drift] = [e for e in receive_events(route, wait=0.5, limit=10)
               if e["detail"]["eventName"] == "ModifyInstanceMetadataOptions"]
    assert drift["account"] == member

    refused, lines = remediate_each(sandbox, tmp_path, "guard-remediate-other-account", [(drift, {})])
    assert refused.returncode != 0 and "account_id: the event is of account {0}".format(member) in refused.output
    assert lines == [] and http_tokens(ec2, instance_id) == "optional"

    role = "arn:aws:iam::{0}:role/OrganizationAccountAccessRole".format(member)
    run, lines = remediate_each(sandbox, tmp_path, "guard-remediate-member", [(drift, {"keyless_guard_accounts": {
        member: role}})])
    assert run.returncode == 0, run.output[-6000:]
    assert http_tokens(ec2, instance_id) == "required"
    [line] = lines
    assert line["changed"] and line["event"]["account_id"] == member
    # The fix was made in the member account, by a session named for the guard.
    [fix] = [e for e in receive_events(route, wait=0.5, limit=10)
             if e["detail"]["eventName"] == "ModifyInstanceMetadataOptions"]
    assert fix["account"] == member
    assert fix["detail"]["userIdentity"]["arn"].startswith(
        "arn:aws:sts::{0}:assumed-role/OrganizationAccountAccessRole/keyless-guard-".format(member))
