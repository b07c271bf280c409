"""Keyless, continuously, end to end with a real ansible-rulebook: playbooks/guard_setup.yml makes
the EventBridge rule and the SQS queue (a trail records the calls), and
extensions/eda/rulebooks/keyless_guard.yml, run as docs/keyless-continuously.md shows (feedback on,
``--persistence-id`` and the rule engine's H2 file), reads the sandbox's CloudTrail events from the
queue and runs playbooks/guard_remediate.yml, which assumes the guard's own role keyless-guard.

One ansible-rulebook run holds every scenario (its JVM start-up costs seconds): each rule puts its
drift right (or, for IAM, reports it), the exemption is honoured, a failed call runs nothing, two
drifts made while a remediation runs are both put right (nothing lost), the guard's own calls start
no run (no loop), and at the end the queue and its dead-letter queue are empty (every message was
deleted, once handled). The remediation's report file says what each run did.
"""

import json
import os

import pytest

from guard_support import GuardRulebook
from guard_support import RuntimeMissing
from guard_support import build_runtime
from guard_support import carried
from guard_support import http_tokens
from guard_support import launch
from guard_support import make_guard_role
from guard_support import make_trail
from guard_support import template_versions
from guard_support import wait_for
from runner import OUTPUT, ROOT, run_playbook
from sandbox.seed import AMI
from sandbox.seed import make_profile

SETUP = os.path.join(ROOT, "playbooks", "guard_setup.yml")
PROFILES = [{"tags": {"team": "web"}, "instance_profile": "web"}]
FIX_SECONDS = 120  # a generous bound for one remediation on a loaded CI machine (not a speed test)


@pytest.fixture(scope="module")
def keyless_rulebook():
    try:
        return build_runtime()
    except RuntimeMissing as missing:
        pytest.skip("the rulebook runtime cannot be built on this machine: {0}".format(missing))


def handled(guard, name, count=1):
    """Wait until the report holds ``count`` lines of event ``name``; those lines."""
    def lines():
        found = [line for line in guard.lines() if line["event"]["name"] == name]
        return found if len(found) >= count else None
    found = wait_for(lines, timeout=FIX_SECONDS, step=0.2)
    assert found, "no remediation of {0} within {1} s:\n{2}".format(name, FIX_SECONDS, guard.output.text()[-8000:])
    return found


def test_the_guard_puts_every_drift_right_through_a_real_rulebook(keyless_rulebook, sandbox, tmp_path,
                                                                  instant_transitions):  # pylint: disable=unused-argument
    for name in ("web", "batch", "reports"):
        make_profile(sandbox, name, settled=True)
    ec2, iam, events = sandbox.client("ec2"), sandbox.client("iam"), sandbox.client("events")
    mimo, detached, replaced, early = launch(ec2, 4, profile="web", team="web")
    template_id = ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": AMI, "MetadataOptions": {"HttpTokens": "required"}})["LaunchTemplate"]["LaunchTemplateId"]
    associations = dict((a["InstanceId"], a["AssociationId"]) for a in ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [detached, replaced]}])["IamInstanceProfileAssociations"])
    make_guard_role(sandbox)
    make_trail(sandbox)
    setup = run_playbook(sandbox, SETUP, name="guard-rulebook-setup")
    assert setup.returncode == 0, setup.output[-4000:]
    # A rule that also passes failed calls (the setup's pattern keeps them out): the rulebook's own
    # first rule must ignore them.
    rule = events.describe_rule(Name="keyless-guard")
    pattern = json.loads(rule["EventPattern"])
    del pattern["detail"]["errorCode"]
    events.put_rule(Name="keyless-guard", EventPattern=json.dumps(pattern), State="ENABLED")

    inventory_vars = {"keyless_guard_profiles": PROFILES, "keyless_assume_role_name": "keyless-guard",
                      "keyless_guard_account_defaults": "required"}
    with GuardRulebook(sandbox, keyless_rulebook, tmp_path, inventory_vars) as guard:
        try:
            # A failed call (no such instance): published with errorCode, it starts no run.
            with pytest.raises(Exception):
                ec2.modify_instance_metadata_options(InstanceId="i-0123456789abcdef0", HttpTokens="optional")

            # RunInstances: a web server without a profile allowing IMDSv1 (its tags name the profile),
            # and one exempt.
            [web] = launch(ec2, tokens="optional", team="web")
            [exempt] = launch(ec2, tokens="optional", team="web", keyless__guard="exempt")
            handled(guard, "RunInstances", 2)
            assert wait_for(lambda: carried(ec2, web) == ["web"] and http_tokens(ec2, web) == "required", 30)
            assert carried(ec2, exempt) == [] and http_tokens(ec2, exempt) == "optional"

            # Two drifts made while the playbook of a first one runs (it assumed the guard's role and has
            # not written its report line yet): the events wait in the rule engine, none is lost.
            assumed = len(sandbox.calls("sts", "AssumeRole"))
            ec2.modify_instance_metadata_options(InstanceId=mimo, HttpTokens="optional")
            assert wait_for(lambda: len(sandbox.calls("sts", "AssumeRole")) > assumed, FIX_SECONDS, step=0.02)
            assert len(handled(guard, "RunInstances", 2)) == 2 and not [
                line for line in guard.lines() if line["event"]["name"] == "ModifyInstanceMetadataOptions"]
            ec2.disassociate_iam_instance_profile(AssociationId=associations[detached])
            ec2.replace_iam_instance_profile_association(AssociationId=associations[replaced],
                                                         IamInstanceProfile={"Name": "batch"})
            handled(guard, "ReplaceIamInstanceProfileAssociation")
            assert http_tokens(ec2, mimo) == "required"
            assert carried(ec2, detached) == ["web"] and carried(ec2, replaced) == ["web"]

            # The account default loosened: set back (keyless_guard_account_defaults: required).
            ec2.modify_instance_metadata_defaults(HttpTokens="optional")
            handled(guard, "ModifyInstanceMetadataDefaults")
            assert ec2.get_instance_metadata_defaults()["AccountLevel"]["HttpTokens"] == "required"

            # A launch template's new default version allowing IMDSv1: a newer default requiring IMDSv2.
            ec2.create_launch_template_version(LaunchTemplateId=template_id, SourceVersion="1", LaunchTemplateData={
                "ImageId": AMI, "MetadataOptions": {"HttpTokens": "optional"}})
            ec2.modify_launch_template(LaunchTemplateId=template_id, DefaultVersion="2")
            handled(guard, "ModifyLaunchTemplate")
            versions = template_versions(ec2, template_id)
            assert [v for v, (is_default, _tokens) in versions.items() if is_default] == [3], versions
            assert versions[3][1] == "required" and len(versions) == 3

            # IAM: a profile in use left without its role is reported, never "fixed".
            iam.remove_role_from_instance_profile(InstanceProfileName="reports", RoleName="reports")
            [removed] = handled(guard, "RemoveRoleFromInstanceProfile")
            assert [r["kind"] for r in removed["reports"]] == ["profile_without_role"] and not removed["changed"]
            assert iam.get_instance_profile(InstanceProfileName="reports")["InstanceProfile"]["Roles"] == []
            assert "[WARNING]: Instance profile reports holds no role" in guard.output.text()

            # No loop: the guard's own calls (made as keyless-guard) start no run. Every run so far was
            # for a call of ours; a last marker event, once handled, proves the rulebook is past them all.
            ec2.modify_instance_metadata_options(InstanceId=early, HttpTokens="optional")
            handled(guard, "ModifyInstanceMetadataOptions", 2)
            assert http_tokens(ec2, early) == "required"
        finally:
            with open(os.path.join(OUTPUT, "guard-rulebook.log"), "w", encoding="utf-8") as handle:
                handle.write(guard.output.text())
        assert guard.alive(), guard.output.text()[-6000:]
    # The rule engine kept its state in its H2 file (persistence, which feedback needs).
    assert any(name.startswith("events") for name in os.listdir(str(tmp_path / "drools"))), os.listdir(
        str(tmp_path / "drools"))

    lines = guard.lines()
    names = sorted(line["event"]["name"] for line in lines)
    assert names == sorted(["RunInstances", "RunInstances", "ModifyInstanceMetadataOptions",
                            "ModifyInstanceMetadataOptions", "DisassociateIamInstanceProfile",
                            "ReplaceIamInstanceProfileAssociation", "ModifyInstanceMetadataDefaults",
                            "CreateLaunchTemplateVersion", "ModifyLaunchTemplate",
                            "RemoveRoleFromInstanceProfile"]), json.dumps(lines, indent=1)[-6000:]
    assert not any(line["ignored"] for line in lines)  # the failed call and the guard's own never ran it
    assert [[exempt]] == [line["exempt"] for line in lines if line["exempt"]]
    # The guard's fixes were published (as keyless-guard) and reached the queue, and none ran the playbook.
    own = [e for e in sandbox.cloudtrail_events.published()
           if ":assumed-role/keyless-guard/" in e["detail"]["userIdentity"].get("arn", "")]
    assert len(own) >= 6, [e["detail"]["eventName"] for e in own]
    # Nothing lost, nothing left: every message was deleted once handled.
    sqs = sandbox.client("sqs")
    for queue in ("keyless-guard", "keyless-guard-dlq"):
        url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
            "0", "0"), (queue, attributes)
