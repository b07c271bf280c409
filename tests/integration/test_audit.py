"""playbooks/audit.yml against a sandbox seeded with each kind of finding, and with none.

The seed holds one resource per kind of finding (IMDSv1 calls made for real to the instances'
IMDS emulators, which publish them to the sandbox's CloudWatch as EC2 does) plus resources that
are fine in every way
(a clean instance and template, a profile whose role trusts EC2, a terminated instance): the
report must list each seeded finding and nothing else, change nothing in AWS, never show the
keys it found, and fail the run only with audit_fail_on_findings=true.
"""

import base64
import http.client
import json
import os

from runner import ROOT, run_playbook
from sandbox.seed import wait_until

from ansible_collections.keyless.aws.plugins.module_utils.credential_chain import fingerprint

AUDIT = os.path.join(ROOT, "playbooks", "audit.yml")
TRUST_EC2 = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
TRUST_LAMBDA = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
# Shaped like AWS keys (the documentation's examples), so the user data scan finds them.
BAKED_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
INSTANCE_KEY_ID = "AKIAQWERTYUIOPASDF2A"
BAKED_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
READ_ONLY_PREFIXES = ("Describe", "Get", "List")


def _user_data(text):
    return base64.b64encode(text.encode()).decode()


def _profile(sandbox, name, role=None):
    """A profile (holding ``role``) that EC2 already knows, as minutes after it was made: the seed
    is a fleet that has been there a while, and the audit is not about propagation."""
    iam = sandbox.client("iam")
    iam.create_instance_profile(InstanceProfileName=name)
    if role:
        iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
    sandbox.rules.settle(name)


def _instance(ec2, name, tokens="required", profile=None, user_data=None):
    kwargs = dict(ImageId="ami-12345678", InstanceType="t3.micro", MinCount=1, MaxCount=1,
                  MetadataOptions={"HttpTokens": tokens, "HttpEndpoint": "enabled"},
                  TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}]}])
    if profile:
        kwargs["IamInstanceProfile"] = {"Name": profile}
    if user_data:
        kwargs["UserData"] = user_data  # boto3 encodes it
    return ec2.run_instances(**kwargs)["Instances"][0]["InstanceId"]


def _template(ec2, name, metadata_options=None, user_data=None):
    data = {"ImageId": "ami-12345678", "InstanceType": "t3.micro"}
    if metadata_options:
        data["MetadataOptions"] = metadata_options
    if user_data:
        data["UserData"] = _user_data(user_data)
    ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)


def seed_clean(sandbox):
    """What a keyless fleet looks like: nothing in here is a finding."""
    iam, ec2 = sandbox.client("iam"), sandbox.client("ec2")
    iam.create_role(RoleName="good", AssumeRolePolicyDocument=json.dumps(TRUST_EC2))
    _profile(sandbox, "good", "good")
    clean = _instance(ec2, "clean", profile="good")
    _template(ec2, "clean-lt", {"HttpTokens": "required"}, user_data="#!/bin/sh\necho hello\n")
    gone = _instance(ec2, "terminated")  # no profile, IMDSv2: but terminated, so not live
    ec2.terminate_instances(InstanceIds=[gone])
    wait_until(sandbox, [gone], ("terminated",))
    return {"clean": clean}


def _settled(sandbox):
    """Wait until the seeded fleet is past ``pending`` / ``shutting-down`` (as a fleet that has
    been there a while is): the audit reads a settled region."""
    ids = [i["InstanceId"] for r in sandbox.client("ec2").describe_instances()["Reservations"] for i in r["Instances"]]
    wait_until(sandbox, ids, ("running", "terminated"))


def _imdsv1_calls(emulator, count):
    """``count`` IMDSv1 GETs to the instance's metadata service, as old software there makes them:
    the emulator publishes each as EC2 does (MetadataNoToken served, MetadataNoTokenRejected
    refused). Returns the statuses."""
    statuses = []
    for _call in range(count):
        connection = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
        try:
            connection.request("GET", "/latest/meta-data/instance-id")
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
        finally:
            connection.close()
    return statuses


def seed_findings(sandbox, imds):
    """One resource per kind of finding; returns the (kind, resource) pairs the audit must report."""
    iam, ec2 = sandbox.client("iam"), sandbox.client("ec2")
    ids = seed_clean(sandbox)
    # The instance without a profile gets its access from keys in its own user data.
    ids["no-profile"] = _instance(ec2, "no-profile", user_data="#!/bin/sh\nexport AWS_ACCESS_KEY_ID={0}\n".format(
        INSTANCE_KEY_ID))
    ids["v1"] = _instance(ec2, "v1", tokens="optional", profile="good")
    ids["broken"] = _instance(ec2, "broken", profile="good")  # IMDSv2 required, software calls IMDSv1
    _template(ec2, "v1-lt", {"HttpTokens": "optional"})
    _template(ec2, "unset-lt")
    baked = "#!/bin/sh\nexport AWS_ACCESS_KEY_ID={0}\nexport AWS_SECRET_ACCESS_KEY={1}\n".format(
        BAKED_KEY_ID, BAKED_SECRET)
    _template(ec2, "keys-lt", {"HttpTokens": "required"}, user_data=baked)
    _profile(sandbox, "empty")
    _instance(ec2, "empty-holder", profile="empty")
    iam.create_role(RoleName="lambda-only", AssumeRolePolicyDocument=json.dumps(TRUST_LAMBDA))
    _profile(sandbox, "lambda-prof", "lambda-only")
    _instance(ec2, "lambda-holder", profile="lambda-prof")
    iam.create_role(RoleName="spare", AssumeRolePolicyDocument=json.dumps(TRUST_EC2))
    _profile(sandbox, "unused", "spare")
    _settled(sandbox)
    assert _imdsv1_calls(imds(ids["v1"]), 3) == [200] * 3
    assert _imdsv1_calls(imds(ids["broken"]), 2) == [401] * 2
    expected = {
        ("instance_without_profile", ids["no-profile"]),
        ("instance_allows_imdsv1", ids["v1"]),
        ("instance_used_imdsv1", ids["v1"]),
        ("instance_refused_imdsv1", ids["broken"]),
        ("launch_template_allows_imdsv1", "v1-lt"),
        ("launch_template_allows_imdsv1", "unset-lt"),
        ("launch_template_user_data_keys", "keys-lt"),
        ("instance_user_data_keys", ids["no-profile"]),
        ("profile_without_role", "empty"),
        ("role_does_not_trust_ec2", "lambda-only"),
        ("profile_unused", "unused"),
    }
    return expected


def _audit(sandbox, tmp_path, name, *args):
    report_dir = tmp_path / "report"
    run = run_playbook(sandbox, AUDIT, "-e", "audit_report_dir={0}".format(report_dir), *args, name=name)
    report = None
    if (report_dir / "keyless-audit.json").exists():
        report = json.loads((report_dir / "keyless-audit.json").read_text())
    markdown = (report_dir / "keyless-audit.md").read_text() if (report_dir / "keyless-audit.md").exists() else ""
    return run, report, markdown


def _mutating_calls(sandbox, since):
    return [(r["service"], r["action"]) for r in sandbox.calls(since=since)
            if not r["action"].startswith(READ_ONLY_PREFIXES)]


def test_audit_reports_each_seeded_finding_and_nothing_else(sandbox, tmp_path, imds):
    expected = seed_findings(sandbox, imds)
    since = len(sandbox.calls())
    run, report, markdown = _audit(sandbox, tmp_path, "audit-findings")
    assert run.returncode == 0, run.output[-4000:]
    found = {(f["kind"], f["resource"]) for f in report["findings"]}
    assert found == expected
    # One target (no inventory: localhost, the controller's credentials), named with its account.
    assert [(t["target"], t["account_id"], t["region"]) for t in report["targets"]] == [
        ("localhost", "123456789012", "us-east-1")]
    assert report["failed_targets"] == []
    assert {(f["account_id"], f["region"], f["target"]) for f in report["findings"]} == {
        ("123456789012", "us-east-1", "localhost")}
    assert report["counts_by_account"] == {"123456789012": report["counts"]}
    assert report["counts_by_region"] == {"us-east-1": report["counts"]}
    assert len(report["findings"]) == len(expected)  # one finding per resource and kind
    assert sum(report["counts"].values()) == len(expected)
    assert report["targets"][0]["checked"] == {"instances": 6, "launch_templates": 4, "instance_profiles": 4}
    # The IMDSv1 evidence: counts from what the emulators published, and the window read.
    used = next(f for f in report["findings"] if f["kind"] == "instance_used_imdsv1")
    assert used["detail"].startswith("made 3 IMDSv1 call(s) in the last 14 days")
    refused = next(f for f in report["findings"] if f["kind"] == "instance_refused_imdsv1")
    assert refused["detail"].startswith("its metadata service refused 2 IMDSv1 call(s) in the last 14 days")
    assert report["targets"][0]["imdsv1_usage"]["instances_read"] == 6 and report["targets"][0]["imdsv1_usage"]["window_days"] == 14
    assert "Instances that refused IMDSv1 calls (software there is broken now) | 1 |" in markdown
    # The audit changes nothing: every AWS call it made was a read.
    assert _mutating_calls(sandbox, since) == []
    # Each finding is in the Markdown report, with the reason.
    for kind, resource in expected:
        assert "`{0}`".format(resource) in markdown
    assert "no statement allows sts:AssumeRole for the service principal ec2.amazonaws.com" in markdown
    assert "holds no role" in markdown
    # The keys baked into user data are reported, never shown.
    for text in (run.output, markdown, json.dumps(report)):
        assert BAKED_KEY_ID not in text and BAKED_SECRET not in text
    keys = next(f for f in report["findings"] if f["kind"] == "launch_template_user_data_keys")
    assert "access key id and secret access key" in keys["detail"] and "line(s) 2, 3" in keys["detail"]
    own = next(f for f in report["findings"] if f["kind"] == "instance_user_data_keys")
    assert own["detail"].startswith("its user data looks like it holds access key id (line(s) 2): key ..." +
                                    INSTANCE_KEY_ID[-4:] + " (fingerprint " + fingerprint(INSTANCE_KEY_ID) + ")")
    for text in (run.output, markdown, json.dumps(report)):
        assert INSTANCE_KEY_ID not in text


def test_audit_fails_on_findings_when_asked(sandbox, tmp_path, imds):
    expected = seed_findings(sandbox, imds)
    run, report, markdown = _audit(sandbox, tmp_path, "audit-fail", "-e", "audit_fail_on_findings=true")
    assert run.returncode != 0
    assert "The audit found {0} problem(s)".format(len(expected)) in run.output
    assert report is not None and len(report["findings"]) == len(expected) and markdown


def test_audit_of_a_clean_region_finds_nothing(sandbox, tmp_path):
    """A clean fleet, and a template that does not set http_tokens while the account default
    requires IMDSv2 (so its instances get IMDSv2 too): no finding, and the run passes even with
    audit_fail_on_findings=true."""
    seed_clean(sandbox)
    ec2 = sandbox.client("ec2")
    _template(ec2, "unset-lt")
    ec2.modify_instance_metadata_defaults(HttpTokens="required")
    _settled(sandbox)
    run, report, markdown = _audit(sandbox, tmp_path, "audit-clean", "-e", "audit_fail_on_findings=true")
    assert run.returncode == 0, run.output[-4000:]
    assert report["findings"] == [] and set(report["counts"].values()) == {0}
    assert report["targets"][0]["account_metadata_defaults"]["http_tokens"] == "required"
    assert report["targets"][0]["checked"] == {"instances": 1, "launch_templates": 2, "instance_profiles": 1}
    assert "**0 finding(s)**" in markdown


def test_audit_without_the_imdsv1_window_reads_no_metric(sandbox, tmp_path, imds):
    expected = seed_findings(sandbox, imds)
    since = len(sandbox.calls())
    run, report, _markdown = _audit(sandbox, tmp_path, "audit-no-window", "-e", "audit_imdsv1_usage_window=0")
    assert run.returncode == 0, run.output[-4000:]
    assert {(f["kind"], f["resource"]) for f in report["findings"]} == {
        pair for pair in expected if pair[0] not in ("instance_used_imdsv1", "instance_refused_imdsv1")}
    assert report["targets"][0]["imdsv1_usage"] is None
    assert [r["action"] for r in sandbox.calls(since=since) if r["service"] == "monitoring"] == []
