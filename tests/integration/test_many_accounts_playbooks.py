"""audit.yml, harden.yml and provision.yml over several accounts and regions in one ansible-playbook run, the way
AWX runs them: one host per account and region from the keyless.aws.accounts inventory (group
keyless_accounts), each assuming the role the inventory names, in parallel; one account closed on
purpose. The others converge, the closed one fails alone and says why, each account's resources
are changed only with its own credentials, and the audit's one report covers every host.
"""

import json
import re

import pytest
import yaml

from runner import run_playbook
from runner import ROOT
from sandbox.organizations import client_for
from sandbox.organizations import credentials_for
from sandbox.organizations import seed_organization

pytestmark = pytest.mark.usefixtures("instant_transitions")

REGIONS = ("us-east-1", "eu-west-1")


def fleet(sandbox):
    """Members web and batch (two regions each) with one IMDSv1 instance without a profile in each
    region, and a closed member, old; returns (org, {host: (account id, region, instance id)})."""
    org = seed_organization(sandbox, ["web", {"name": "batch", "ou": "prod"}, {"name": "old", "suspended": True}])
    targets = {}
    for name in ("web", "batch"):
        account = org["ids"][name]
        credentials = credentials_for(sandbox, account, session_name="test-seed")
        for region in REGIONS:
            ec2 = client_for(sandbox, credentials, "ec2", region_name=region)
            instance = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1,
                                         MetadataOptions={"HttpTokens": "optional"})["Instances"][0]["InstanceId"]
            targets["{0}-{1}".format(name, region)] = (account, region, instance)
    return org, targets


def inventory(tmp_path, org):
    """The keyless.aws.accounts inventory of the three members (static list: the closed one is listed
    too, as a list kept by hand would still name it) in both regions: six hosts, <name>-<region>,
    each with the ARN of the organization's role in its account."""
    path = tmp_path / "members.keyless_accounts.yml"
    path.write_text(yaml.safe_dump({
        "plugin": "keyless.aws.accounts", "regions": list(REGIONS), "role_name": org["role_name"],
        "accounts": [{"id": a["id"], "name": a["name"]} for a in org["accounts"]]}))
    return str(path)


def tokens(sandbox, account, region, instance_id):
    ec2 = client_for(sandbox, credentials_for(sandbox, account, session_name="test-check"), "ec2", region_name=region)
    described = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return described["MetadataOptions"]["HttpTokens"]


def test_audit_and_harden_over_accounts_one_closed(sandbox, tmp_path):
    org, targets = fleet(sandbox)
    closed = ["old-eu-west-1", "old-us-east-1"]
    path = inventory(tmp_path, org)
    report_dir = tmp_path / "report"

    audit = run_playbook(sandbox, "{0}/playbooks/audit.yml".format(ROOT), "-i", path, "-f", "6",
                         "-e", "audit_report_dir={0}".format(report_dir), name="many-accounts-audit")
    assert audit.returncode == 2, audit.output[-4000:]  # a host failed; the others went on
    for host in closed:
        # The module's own failure, on the host's line (audit_info assumed the role itself).
        assert re.search(r"fatal: \[{0}\]: FAILED! => .*Could not assume {1} for {0}: AWS said AccessDenied".format(
            re.escape(host), re.escape(org["accounts"][2]["role_arn"])), audit.output), audit.output[-4000:]
        assert "{0:<26} : ok=".format(host) in audit.output
    assert audit.output.count("failed=1") == 2
    report = json.loads((report_dir / "keyless-audit.json").read_text())
    assert sorted(t["target"] for t in report["targets"]) == sorted(targets)
    assert report["failed_targets"] == closed
    for target in report["targets"]:
        account, region, _instance = targets[target["target"]]
        assert (target["account_id"], target["region"], target["checked"]["instances"]) == (account, region, 1)
    # Each account's instance, found in its own account and region.
    found = sorted((f["account_id"], f["region"], f["resource"]) for f in report["findings"]
                   if f["kind"] == "instance_without_profile")
    assert found == sorted(targets.values())
    assert report["counts"]["instance_without_profile"] == 4
    assert sorted(report["counts_by_account"]) == sorted(set(a for a, _r, _i in targets.values()))
    assert report["counts_by_region"]["eu-west-1"]["instance_allows_imdsv1"] == 2
    markdown = (report_dir / "keyless-audit.md").read_text()
    assert "4 target(s)" in markdown and "old-us-east-1 (the run says why)" in markdown.replace("\n", " ")
    # Each host assumed its role with a session name that says what ran.
    sessions = [c["params"].get("RoleSessionName") for c in sandbox.calls(action="AssumeRole")]
    sessions = [s for s in sessions if not s.startswith("test-")]
    assert len(sessions) == 6 and all(s.startswith("keyless-audit-keyless-ec2-permissions-2") for s in sessions), sessions

    harden_vars = json.dumps({"harden_instance_filters": {"instance-state-name": ["running"]},
                              "harden_imdsv1_usage_window": 0})
    # --check first: each host predicts for its own account (its role assumed in check mode too;
    # the controller's account has no instance at all), and nothing changes.
    check = run_playbook(sandbox, "{0}/playbooks/harden.yml".format(ROOT), "-i", path, "-f", "6", "--check",
                         "-e", harden_vars, name="many-accounts-harden-check")
    assert check.returncode == 2, check.output[-4000:]
    for account, region, instance in targets.values():
        assert instance in check.output
        assert tokens(sandbox, account, region, instance) == "optional"

    harden = run_playbook(sandbox, "{0}/playbooks/harden.yml".format(ROOT), "-i", path, "-f", "6",
                          "-e", harden_vars, name="many-accounts-harden")
    assert harden.returncode == 2, harden.output[-4000:]
    for account, region, instance in targets.values():
        # Changed, so with this account's own credentials: another host's would not see the instance.
        assert tokens(sandbox, account, region, instance) == "required"
    assert "Could not assume" in harden.output

    provision = run_playbook(sandbox, "{0}/playbooks/provision.yml".format(ROOT), "-i", path, "-f", "6",
                             "-e", json.dumps({"keyless_role_name": "fleet-app",
                                               "keyless_instance_filters": {"instance-state-name": ["running"]}}),
                             name="many-accounts-provision")
    assert provision.returncode == 2, provision.output[-4000:]
    for account, region, instance in targets.values():
        ec2 = client_for(sandbox, credentials_for(sandbox, account, session_name="test-check"), "ec2",
                         region_name=region)
        associations = ec2.describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [instance]}])["IamInstanceProfileAssociations"]
        assert [a["IamInstanceProfile"]["Arn"] for a in associations] == [
            "arn:aws:iam::{0}:instance-profile/fleet-app".format(account)]

    # The same playbooks on one account, without the inventory: localhost, the controller's credentials.
    alone = run_playbook(sandbox, "{0}/playbooks/audit.yml".format(ROOT),
                         "-e", "audit_report_dir={0}".format(tmp_path / "alone"), name="many-accounts-alone")
    assert alone.returncode == 0, alone.output[-4000:]
    single = json.loads((tmp_path / "alone" / "keyless-audit.json").read_text())
    assert [(t["target"], t["account_id"]) for t in single["targets"]] == [("localhost", "123456789012")]
