"""Each kind of audit finding, decided from a target's state as audit.read_target reads it, and the
module's inputs checked before any call."""

import json

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import audit
from ansible_collections.keyless.aws.plugins.module_utils.audit_kinds import KIND_NAMES
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError

ACCOUNT = "123456789012"
TRUST_EC2 = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
TRUST_LAMBDA = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def instance(instance_id, tokens="required", endpoint="enabled"):
    options = {"State": "applied", "HttpEndpoint": endpoint}
    if tokens:
        options["HttpTokens"] = tokens
    return {"InstanceId": instance_id, "State": {"Name": "running"}, "MetadataOptions": options}


def association(instance_id, profile, state="associated"):
    return {"InstanceId": instance_id, "AssociationId": "iip-assoc-" + instance_id[-4:], "State": state,
            "IamInstanceProfile": {"Arn": "arn:aws:iam::{0}:instance-profile/{1}".format(ACCOUNT, profile)}}


def version(template_id, name, number, tokens=None, default=False, user_data=None):
    data = {"ImageId": "ami-12345678"}
    if tokens:
        data["MetadataOptions"] = {"HttpTokens": tokens}
    if user_data:
        data["UserData"] = user_data
    return {"LaunchTemplateId": template_id, "LaunchTemplateName": name, "VersionNumber": number,
            "DefaultVersion": default, "LaunchTemplateData": data}


def profile(name, role=None, trust=None):
    trust = trust or TRUST_EC2
    roles = []
    if role:
        roles = [{"RoleName": role, "Arn": "arn:aws:iam::{0}:role/{1}".format(ACCOUNT, role),
                  "AssumeRolePolicyDocument": trust}]
    return {"InstanceProfileName": name, "Arn": "arn:aws:iam::{0}:instance-profile/{1}".format(ACCOUNT, name),
            "Path": "/", "Roles": roles}


def state(**parts):
    base = {"instances": [], "associations": {}, "templates": [], "account": {}, "usage": None,
            "instance_user_data": [], "template_user_data": [], "profiles": []}
    base.update(parts)
    return base


def kinds(found):
    return [(f["kind"], f["resource"]) for f in found]


def test_an_instance_with_no_active_association_has_no_profile():
    s = state(instances=[instance("i-01"), instance("i-02"), instance("i-03")],
              associations={"i-02": [association("i-02", "web")],
                            "i-03": [association("i-03", "web", state="disassociating")]})
    found = audit.instance_without_profile(s)
    assert kinds(found) == [("instance_without_profile", "i-01"), ("instance_without_profile", "i-03")]
    assert found[0]["detail"] == ("carries no instance profile: whatever runs on it gets AWS access only from keys "
                                  "it holds")


def test_an_instance_allows_imdsv1_unless_tokens_are_required_or_its_endpoint_is_off():
    s = state(instances=[instance("i-01", "optional"), instance("i-02", None), instance("i-03"),
                         instance("i-04", "optional", endpoint="disabled")])
    found = audit.instance_allows_imdsv1(s)
    assert kinds(found) == [("instance_allows_imdsv1", "i-01"), ("instance_allows_imdsv1", "i-02")]
    assert found[1]["detail"] == ("http_tokens is optional: its metadata service answers IMDSv1, the path of SSRF "
                                  "credential theft")


def usage_entry(instance_id, calls, rejected, allows=True):
    return {"instance_id": instance_id, "allows_imdsv1": allows, "imdsv1_calls": calls,
            "imdsv1_calls_rejected": rejected, "last_imdsv1_call": "2026-12-01T10:00:00Z"}


def test_imdsv1_calls_served_and_refused_are_two_kinds():
    s = state(usage={"instances": [usage_entry("i-01", 3, 0), usage_entry("i-02", 0, 2, allows=False),
                                   usage_entry("i-03", 4, 0, allows=False), usage_entry("i-04", 0, 0)],
                     "imdsv1_usage": {"window_days": 14}})
    used = audit.instance_used_imdsv1(s, 14)
    refused = audit.instance_refused_imdsv1(s, 14)
    # i-03 made calls but no longer allows IMDSv1 (required since): not a "would break" finding.
    assert kinds(used) == [("instance_used_imdsv1", "i-01")]
    assert kinds(refused) == [("instance_refused_imdsv1", "i-02")]
    assert used[0]["detail"].startswith("made 3 IMDSv1 call(s) in the last 14 days (the last in the period starting "
                                        "2026-12-01T10:00:00Z): software there")
    assert refused[0]["detail"].startswith("its metadata service refused 2 IMDSv1 call(s) in the last 14 days")
    assert audit.instance_used_imdsv1(state(), 14) == [] and audit.instance_refused_imdsv1(state(), 14) == []


def templates(*versions):
    by_id = {}
    for v in versions:
        by_id.setdefault(v["LaunchTemplateId"], []).append(v)
    result = []
    for template_id, found in sorted(by_id.items()):
        default = [v for v in found if v["DefaultVersion"]][0]
        latest = max(found, key=lambda v: v["VersionNumber"])
        result.append({"id": template_id, "name": found[0]["LaunchTemplateName"], "default": default,
                       "latest": latest})
    return result


@pytest.mark.parametrize("tokens, account, expected", [
    ("optional", {}, " sets http_tokens=optional"),
    ("optional", {"HttpTokens": "required"}, " sets http_tokens=optional"),
    (None, {}, " does not set http_tokens, and the account default does not require IMDSv2"),
    (None, {"HttpTokens": "required"}, None),
    ("required", {}, None),
])
def test_a_template_allows_imdsv1_by_its_default_version_and_the_account_default(tokens, account, expected):
    # The latest version requires IMDSv2, but launches take the default version.
    s = state(templates=templates(version("lt-1", "web", 1, tokens, default=True),
                                  version("lt-1", "web", 2, "required")), account=account)
    found = audit.launch_template_allows_imdsv1(s)
    if expected is None:
        assert found == []
    else:
        assert found == [{"kind": "launch_template_allows_imdsv1", "resource": "web", "id": "lt-1",
                          "detail": "default version 1" + expected + ": instances launched from it answer IMDSv1"}]


def test_keys_in_template_user_data_are_grouped_per_template_and_never_shown():
    s = state(template_user_data=[
        {"launch_template_id": "lt-2", "launch_template_name": "b", "version": 1,
         "findings": [{"kind": "access_key_id", "line": 3, "key": {"suffix": "MPLE", "fingerprint": "f" * 16}},
                      {"kind": "secret_access_key", "line": 2}]},
        {"launch_template_id": "lt-2", "launch_template_name": "b", "version": 4,
         "findings": [{"kind": "access_key_id", "line": 3, "key": {"suffix": "MPLE", "fingerprint": "f" * 16}}]},
        {"launch_template_id": "lt-1", "launch_template_name": "a", "version": 2,
         "findings": [{"kind": "secret_access_key", "line": 7}]}])
    found = audit.launch_template_user_data_keys(s)
    assert found == [
        {"kind": "launch_template_user_data_keys", "resource": "a", "id": "lt-1",
         "detail": "user data of version(s) 2 looks like it holds secret access key (line(s) 7); the keys are not "
                   "shown here"},
        {"kind": "launch_template_user_data_keys", "resource": "b", "id": "lt-2",
         "detail": "user data of version(s) 1, 4 looks like it holds access key id and secret access key (line(s) "
                   "2, 3); the keys are not shown here"}]


def test_keys_in_an_instances_own_user_data_show_the_first_key_by_suffix_and_fingerprint():
    s = state(instance_user_data=[
        {"instance_id": "i-02", "findings": [{"kind": "secret_access_key", "line": 5}]},
        {"instance_id": "i-01", "findings": [{"kind": "access_key_id", "line": 12,
                                              "key": {"suffix": "DF2A", "fingerprint": "0123456789abcdef"}},
                                             {"kind": "access_key_id", "line": 2,
                                              "key": {"suffix": "XY12", "fingerprint": "fedcba9876543210"}}]}])
    found = audit.instance_user_data_keys(s)
    assert [f["resource"] for f in found] == ["i-01", "i-02"]
    assert found[0]["detail"] == ("its user data looks like it holds access key id (line(s) 2, 12): key ...DF2A "
                                  "(fingerprint 0123456789abcdef); keyless.aws.static_keys_info names its owner")
    assert found[1]["detail"] == ("its user data looks like it holds secret access key (line(s) 5); "
                                  "keyless.aws.static_keys_info names its owner")


KEY = {"kind": "long-term", "suffix": "DF2A", "account": ACCOUNT, "fingerprint": "0123456789abcdef"}


def host_result(instance_id, programs=(), services=(), users=(), keys=(KEY,)):
    return {"instance_id": instance_id, "keys": list(keys), "programs": list(programs), "services": list(services),
            "users": list(users)}


def test_keys_on_an_instance_name_the_programs_that_take_them_before_the_role():
    s = state(instances=[instance("i-01"), instance("i-02"), instance("i-03")])
    found_on = {
        "web-1": host_result("i-01", services=[{"unit": "reports.service", "user": "app", "method": "env",
                                                "key": KEY, "static_key": True}],
                             users=[{"user": "app", "method": "shared-credentials-file", "key": KEY,
                                     "static_key": True},
                                    {"user": "root", "method": "iam-role", "key": None, "static_key": False}]),
        "web-2": host_result("i-02", keys=()),  # nothing there
        "web-3": host_result("i-03"),  # a key in a file nothing reads now
        "elsewhere": host_result("i-99"),  # another account or region: its own audit reports it
        "no-id": host_result(None),
    }
    found = audit.instance_static_keys(s, found_on)
    assert [f["resource"] for f in found] == ["i-01", "i-03"]
    assert found[0]["detail"] == (
        "on host web-1, these take a key kept on the host before the instance role: service reports.service (env, "
        "key ...DF2A (long-term)), user app (shared-credentials-file, key ...DF2A (long-term)); 1 key(s) on the "
        "host: ...DF2A (long-term); keyless.aws.static_keys_info names the owners and playbooks/retire_keys.yml "
        "moves the instance onto its role")
    assert found[1]["detail"].startswith("on host web-3, no running program, user or service takes a key kept on "
                                         "the host now; 1 key(s) on the host: ...DF2A (long-term)")


def test_a_profile_without_a_role_and_a_profile_attached_to_nothing():
    s = state(profiles=[profile("empty"), profile("spare", "spare"), profile("web", "web")],
              associations={"i-01": [association("i-01", "web")],
                            "i-02": [association("i-02", "empty", state="associating")]})
    assert audit.profile_without_role(s) == [{
        "kind": "profile_without_role", "resource": "empty", "id": "arn:aws:iam::{0}:instance-profile/empty".format(
            ACCOUNT), "detail": "holds no role: instances given it get no credentials"}]
    assert kinds(audit.profile_unused(s, "eu-west-1")) == [("profile_unused", "spare")]
    assert audit.profile_unused(s, "eu-west-1")[0]["detail"] == "attached to no instance in eu-west-1"


def test_a_role_that_does_not_trust_ec2_is_reported_once_with_every_profile_holding_it():
    s = state(profiles=[profile("b-prof", "lambda-only", TRUST_LAMBDA), profile("a-prof", "lambda-only", TRUST_LAMBDA),
                        profile("web", "web")])
    found = audit.role_does_not_trust_ec2(s, "us-east-1")
    assert kinds(found) == [("role_does_not_trust_ec2", "lambda-only")]
    assert found[0]["id"] == "arn:aws:iam::{0}:role/lambda-only".format(ACCOUNT)
    assert found[0]["detail"].endswith("; instances given profile(s) b-prof, a-prof get no credentials")
    assert "ec2.amazonaws.com" in found[0]["detail"]


def test_a_trust_policy_for_another_partitions_ec2_does_not_trust_this_regions():
    china = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com.cn"}, "Action": "sts:AssumeRole"}]}
    s = state(profiles=[profile("web", "web", china)])
    assert kinds(audit.role_does_not_trust_ec2(s, "us-east-1")) == [("role_does_not_trust_ec2", "web")]


def test_findings_come_in_the_reports_order_of_kinds_and_every_kind_is_counted():
    s = state(instances=[instance("i-01", "optional")], profiles=[profile("spare", "spare")])
    found = audit.findings(s, "us-east-1", 14)
    assert kinds(found) == [("instance_without_profile", "i-01"), ("instance_allows_imdsv1", "i-01"),
                            ("profile_unused", "spare")]
    report = audit.target_report(s, found, "prod-eu", ACCOUNT, "us-east-1")
    assert list(report["counts"]) == list(KIND_NAMES)
    assert report["counts"]["instance_allows_imdsv1"] == 1 and sum(report["counts"].values()) == 3
    assert {(f["account_id"], f["region"], f["target"]) for f in report["findings"]} == {
        (ACCOUNT, "us-east-1", "prod-eu")}
    assert report["checked"] == {"instances": 1, "launch_templates": 0, "instance_profiles": 1}
    assert audit.summary(report) == ("3 finding(s) in us-east-1 (123456789012): 1 instance_without_profile, "
                                     "1 instance_allows_imdsv1, 1 profile_unused.")


class Pages:
    """A DescribeLaunchTemplateVersions that answers in pages of two, as the API may."""

    def __init__(self, versions):
        self.versions = versions
        self.calls = []

    def describe_launch_template_versions(self, **kwargs):
        self.calls.append(kwargs)
        start = int(kwargs.get("NextToken") or 0)
        answer = {"LaunchTemplateVersions": self.versions[start:start + 2]}
        if start + 2 < len(self.versions):
            answer["NextToken"] = str(start + 2)
        return answer


def test_every_templates_default_and_latest_are_read_in_one_paginated_call():
    ec2 = Pages([version("lt-2", "web", 3, "required"), version("lt-2", "web", 1, "optional", default=True),
                 version("lt-1", "api", 5, None, default=True)])
    read = audit.read_templates(ec2)
    assert [(t["name"], t["default"]["VersionNumber"], t["latest"]["VersionNumber"]) for t in read] == [
        ("api", 5, 5), ("web", 1, 3)]
    assert all(call["Versions"] == ["$Default", "$Latest"] and "LaunchTemplateId" not in call
               for call in ec2.calls)
    assert len(ec2.calls) == 2


@pytest.mark.parametrize("params, param", [
    ({"imdsv1_usage_window": -1}, "imdsv1_usage_window"),
    ({"imdsv1_usage_window": 456}, "imdsv1_usage_window"),
    ({"found_on": ["web-1"]}, "found_on"),
    ({"found_on": {"web-1": "nothing"}}, "found_on"),
    ({"max_concurrency": 0}, "max_concurrency"),
    ({"max_concurrency": 51}, "max_concurrency"),
])
def test_bad_input_is_refused_before_any_call_naming_the_parameter(params, param):
    def no_client(service):
        raise AssertionError("a client was made for " + service)

    with pytest.raises(KeylessError) as caught:
        audit.audit(no_client, params, "us-east-1", ACCOUNT, "localhost")
    assert caught.value.param == param
    assert caught.value.message.startswith(param + ":")


def test_window_zero_reads_no_metric_and_the_report_says_none():
    assert audit.validated({"imdsv1_usage_window": 0})[0] == 0
    report = audit.target_report(state(), [], "localhost", ACCOUNT, "us-east-1")
    assert report["imdsv1_usage"] is None
    json.dumps(report)  # the report is plain data
