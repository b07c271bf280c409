"""The keyless guard's decisions (module_utils/guard_event.py, guard_plan.py, guard.py): which
events it ignores, where an event names its subject in the shapes CloudTrail records, the
exemption, the profile an instance must carry, what each subject needs; the plan from fake reads;
and that the rulebooks and the setup's EventBridge pattern name exactly the events the guard
handles.

The event shapes follow tests/sandbox/cloudtrail_events.py, which cites the published records:
the older EC2 actions in lowerCamelCase with {"items": [...]} sets (RunInstances), the newer ones
wrapped in <Action>Request / <Action>Response, a list of one item written as the item, members as
{"tag": N, "content": value}; IAM's parameters in lowerCamelCase, responseElements null."""

import copy
import json
import os
import re

import pytest
import yaml

from ansible_collections.keyless.aws.plugins.module_utils import guard
from ansible_collections.keyless.aws.plugins.module_utils import guard_event
from ansible_collections.keyless.aws.plugins.module_utils import guard_plan
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
ACCOUNT = "123456789012"
USER = {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": "arn:aws:iam::{0}:user/alice".format(ACCOUNT),
        "accountId": ACCOUNT, "accessKeyId": "AKIAEXAMPLE", "userName": "alice"}
TRUST_EC2 = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
TRUST_LAMBDA = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def assumed(role, session):
    """userIdentity of an assumed role's session ([U] of the sandbox's docstring)."""
    return {"type": "AssumedRole", "principalId": "AROAEXAMPLE:" + session,
            "arn": "arn:aws:sts::{0}:assumed-role/{1}/{2}".format(ACCOUNT, role, session), "accountId": ACCOUNT,
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                                                 "arn": "arn:aws:iam::{0}:role/{1}".format(ACCOUNT, role),
                                                 "accountId": ACCOUNT, "userName": role},
                               "attributes": {"mfaAuthenticated": "false"}}}


def event(name, request=None, response=None, source="ec2", identity=None, region="us-east-1", **detail):
    body = {"eventVersion": "1.11", "userIdentity": identity or USER, "eventTime": "2026-12-05T10:00:00Z",
            "eventSource": source + ".amazonaws.com", "eventName": name, "awsRegion": region,
            "sourceIPAddress": "192.0.2.1", "userAgent": "Boto3/1.44 md/Botocore#1.44",
            "requestParameters": request, "responseElements": response, "requestID": "r-1", "eventID": "e-1",
            "readOnly": False, "eventType": "AwsApiCall", "managementEvent": True, "recipientAccountId": ACCOUNT,
            "eventCategory": "Management"}
    body.update(detail)
    return {"version": "0", "id": "eb-1", "detail-type": "AWS API Call via CloudTrail", "source": "aws." + source,
            "account": ACCOUNT, "time": "2026-12-05T10:00:00Z", "region": region, "resources": [], "detail": body}


def run_instances(*ids, profile=None):
    items = [{"instanceId": i, "metadataOptions": {"httpTokens": "optional"}} for i in ids]
    return event("RunInstances", {"instancesSet": {"items": [{"imageId": "ami-12345678", "minCount": 1,
                                                              "maxCount": 1}]},
                                  "iamInstanceProfile": {"name": profile} if profile else {}},
                 {"requestId": "r-1", "instancesSet": {"items": items}})


def mimo(instance_id, tokens="optional"):
    request = {"InstanceId": instance_id}
    if tokens:
        request["HttpTokens"] = tokens
    return event("ModifyInstanceMetadataOptions", {"ModifyInstanceMetadataOptionsRequest": request},
                 {"ModifyInstanceMetadataOptionsResponse": {"instanceId": instance_id, "instanceMetadataOptions": {
                     "httpTokens": tokens or "optional"}}})


def association_event(name, instance_id):
    request = {"AssociationId": "iip-assoc-1"}
    if name == "ReplaceIamInstanceProfileAssociation":
        request["IamInstanceProfile"] = {"Name": "other"}
    return event(name, {name + "Request": request}, {name + "Response": {"iamInstanceProfileAssociation": {
        "associationId": "iip-assoc-2", "instanceId": instance_id, "state": "disassociating"}}})


def settings(**params):
    return guard_plan.settings_of(params)


# ---- the event ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, items", [
    (None, []),
    ({}, []),
    ({"items": [{"instanceId": "i-1"}]}, [{"instanceId": "i-1"}]),
    ([{"tag": 1, "content": "sg-1"}, {"tag": 2, "content": "sg-2"}], ["sg-1", "sg-2"]),
    ({"tag": 1, "content": "sg-3"}, ["sg-3"]),  # a list of one is the item itself
    ("i-1", ["i-1"]),
])
def test_cloudtrail_lists_in_every_shape(value, items):
    assert guard_event.as_items(value) == items


def test_the_event_as_eventbridge_ansible_rulebook_or_ansible_eda_hands_it_over():
    plain = run_instances("i-1")
    assert guard_event.cloudtrail_event(plain) is plain
    assert guard_event.cloudtrail_event({"body": plain, "meta": {"uuid": "u"}}) == plain
    assert guard_event.cloudtrail_event({"body": json.dumps(plain), "meta": {}}) == plain
    assert guard_event.cloudtrail_event({"event": {"body": plain}, "rule": "r", "ruleset": "s"}) == plain


@pytest.mark.parametrize("bad", [None, {}, {"body": "not json"}, {"detail": {}}, {"body": {"detail": "x"}}, "text"])
def test_what_is_not_an_event_fails_naming_the_parameter(bad):
    with pytest.raises(KeylessError) as failed:
        guard_event.cloudtrail_event(bad)
    assert failed.value.param == "event" and "detail.eventName" in failed.value.message


def test_the_events_summary():
    summary = guard_event.event_summary(run_instances("i-1"))
    assert summary == {"name": "RunInstances", "source": "ec2.amazonaws.com", "id": "eb-1", "event_id": "e-1",
                       "time": "2026-12-05T10:00:00Z", "account_id": ACCOUNT, "region": "us-east-1",
                       "principal": USER["arn"], "error_code": None}


@pytest.mark.parametrize("mutate, reason", [
    (lambda e: e.update({"detail-type": "EC2 Instance State-change Notification"}), "not an 'AWS API Call"),
    (lambda e: e["detail"].update(eventName="StopInstances"), "does not watch StopInstances"),
    (lambda e: e["detail"].update(eventSource="iam.amazonaws.com"), "not of ec2.amazonaws.com"),
    (lambda e: e["detail"].update(errorCode="Client.UnauthorizedOperation"), "the call failed"),
    (lambda e: e["detail"].update(errorCode="Client.DryRunOperation"), "Client.DryRunOperation"),
    (lambda e: e["detail"].update(userIdentity=assumed("keyless-guard", "any-session")), "own call"),
    (lambda e: e["detail"].update(userIdentity={"type": "AssumedRole", "arn": "arn:aws:sts::{0}:assumed-role/"
                                                "keyless-guard/s".format(ACCOUNT)}), "own call"),
])
def test_ignored_events(mutate, reason):
    ignored = run_instances("i-1")
    mutate(ignored)
    assert reason in guard_event.ignore_reason(ignored)


@pytest.mark.parametrize("identity, agent", [
    (assumed("admin", "keyless-guard-20261205T100000Z"), "Boto3/1.44"),  # a session name anyone may choose
    (USER, "APN/1.0 Ansible/2.19 amazon.aws/10.1.2 app/keyless-guard"),  # a User-Agent anyone may send
    (assumed("keyless-guard-not", "s"), "Boto3"),  # another role whose name starts the same
])
def test_markers_any_caller_chooses_do_not_hide_drift(identity, agent):
    spoofed = mimo("i-1")
    spoofed["detail"].update(userIdentity=identity, userAgent=agent)
    assert guard_event.ignore_reason(spoofed) is None


def test_a_detail_type_left_out_and_the_watched_events_are_looked_at():
    for name, (source, _aspects) in guard_event.EVENTS.items():
        looked = event(name, source=source.split(".", 1)[0])
        del looked["detail-type"]
        assert guard_event.ignore_reason(looked) is None, name


def test_where_each_event_names_its_instances():
    assert guard_event.instance_ids_of(run_instances("i-2", "i-1")) == ["i-1", "i-2"]
    assert guard_event.instance_ids_of(mimo("i-3")) == ["i-3"]
    answer_only = mimo("i-4")
    answer_only["detail"]["requestParameters"] = {"ModifyInstanceMetadataOptionsRequest": {}}
    assert guard_event.instance_ids_of(answer_only) == ["i-4"]
    for name in ("DisassociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation"):
        assert guard_event.instance_ids_of(association_event(name, "i-5")) == ["i-5"]
    no_answer = association_event("DisassociateIamInstanceProfile", "i-5")
    no_answer["detail"]["responseElements"] = None
    assert guard_event.instance_ids_of(no_answer) == []
    failed_launch = run_instances()
    failed_launch["detail"]["responseElements"] = None
    assert guard_event.instance_ids_of(failed_launch) == []


def test_where_template_events_name_the_template():
    data = {"MetadataOptions": {"HttpTokens": "optional"}}
    request = {"LaunchTemplateName": "web", "SourceVersion": 1, "LaunchTemplateData": data}
    answer = {"launchTemplateId": "lt-1", "launchTemplateName": "web", "versionNumber": 2}
    created = event("CreateLaunchTemplateVersion", {"CreateLaunchTemplateVersionRequest": request},
                    {"CreateLaunchTemplateVersionResponse": {"launchTemplateVersion": answer}})
    assert guard_event.template_of(created) == {"id": "lt-1", "name": "web"}
    modified = event("ModifyLaunchTemplate", {"ModifyLaunchTemplateRequest": {"LaunchTemplateId": "lt-2",
                                                                              "SetDefaultVersion": 2}}, None)
    assert guard_event.template_of(modified) == {"id": "lt-2", "name": None}
    assert guard_event.template_of(event("ModifyLaunchTemplate", {}, None)) is None


def test_iam_subjects_and_enforcement_turned_off():
    removed = event("RemoveRoleFromInstanceProfile", {"instanceProfileName": "web", "roleName": "web-role"}, None,
                    source="iam")
    assert guard_event.iam_subject_of(removed) == {"instance_profile": "web", "role": "web-role"}
    off = event("ModifyInstanceMetadataDefaults", {"ModifyInstanceMetadataDefaultsRequest": {
        "HttpTokensEnforced": "disabled"}}, None)
    assert guard_event.enforcement_turned_off(off)
    assert not guard_event.enforcement_turned_off(event("ModifyInstanceMetadataDefaults", {
        "ModifyInstanceMetadataDefaultsRequest": {"HttpTokens": "optional"}}, None))


# ---- the settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("params, param", [
    ({"expected_profiles": [{"tags": {"team": "web"}}]}, "expected_profiles"),
    ({"expected_profiles": [{"tags": {"team": "web"}, "instance_profile": "web app!"}]}, "expected_profiles"),
    ({"expected_profiles": [{"tags": ["team"], "instance_profile": "web"}]}, "expected_profiles"),
    ({"allowed_profiles": ["arn:aws:iam::123456789012:role/web"]}, "allowed_profiles"),
    ({"exemption_tag": {"key": "", "value": "exempt"}}, "exemption_tag"),
    ({"account_defaults": "always"}, "account_defaults"),
    ({"usage_regions": ["Europe"]}, "usage_regions"),
    ({"account_id": "12345"}, "account_id"),
    ({"own_roles": ["not a role!"]}, "own_roles"),
])
def test_bad_settings_fail_naming_the_parameter(params, param):
    with pytest.raises(KeylessError) as failed:
        guard_plan.settings_of(params)
    assert failed.value.param == param and param in failed.value.message


def test_settings_defaults_and_names():
    got = settings(expected_profiles=[{"tags": {"team": "web"}, "instance_profile":
                                       "arn:aws:iam::123456789012:instance-profile/apps/web"}],
                   allowed_profiles=["batch"], own_roles=["arn:aws:iam::123456789012:role/ops/guard"])
    assert got["expected_profiles"] == [({"team": "web"}, "web",
                                         "arn:aws:iam::123456789012:instance-profile/apps/web")]
    assert got["allowed"] == {"web", "batch"}
    assert got["own_roles"] == ["guard"]
    assert settings()["exemption"] == {"key": "keyless:guard", "value": "exempt"}
    assert settings()["profile_tag"] == "keyless:instance-profile"
    assert settings()["own_roles"] == ["keyless-guard"]


# ---- the decisions --------------------------------------------------------------------------------


def instance(instance_id, tokens="optional", state="running", **tags):
    return {"InstanceId": instance_id, "State": {"Name": state}, "MetadataOptions": {"HttpTokens": tokens},
            "Tags": [{"Key": k.replace("__", ":").replace("_", "-"), "Value": v} for k, v in tags.items()]}


def carrying(profile, state="associated"):
    return [{"AssociationId": "iip-assoc-1", "State": state, "Timestamp": "2026-12-05T10:00:00Z",
             "IamInstanceProfile": {"Arn": "arn:aws:iam::{0}:instance-profile/{1}".format(ACCOUNT, profile)}}]


MAPPED = {"expected_profiles": [{"tags": {"team": "web"}, "instance_profile": "web"},
                                {"tags": {}, "instance_profile": "baseline"}],
          "allowed_profiles": ["batch"]}


def test_the_profile_an_instance_must_carry():
    chosen = settings(**MAPPED)
    assert guard_plan.expected_profile({"team": "web"}, chosen)[:1] == ("web",)
    assert guard_plan.expected_profile({"team": "db"}, chosen)[0] == "baseline"  # tags {} match every instance
    assert guard_plan.expected_profile({"keyless:instance-profile": "batch", "team": "web"}, chosen)[0] == "batch"
    arn_tag = {"keyless:instance-profile": "arn:aws:iam::123456789012:instance-profile/batch"}
    assert guard_plan.expected_profile(arn_tag, chosen)[0] == "batch"
    name, _why, problem = guard_plan.expected_profile({"keyless:instance-profile": "admin"}, chosen)
    assert name is None and "may not attach" in problem and "'admin'" in problem
    assert guard_plan.expected_profile({"team": "web"}, settings()) == (None, None, None)
    no_tag = settings(profile_tag="", **MAPPED)
    assert guard_plan.expected_profile({"keyless:instance-profile": "batch", "team": "web"}, no_tag)[0] == "web"


def test_what_an_instance_needs_for_each_aspect():
    chosen = settings(**MAPPED)
    both = (guard_event.PROFILE, guard_event.OPTIONS)
    entry = guard_plan.instance_entry(instance("i-1", team="web"), None, both, chosen)
    assert [a["action"] for a in entry["actions"]] == ["associate", "require_imdsv2"]
    assert entry["actions"][0]["instance_profile"] == "web"
    swapped = guard_plan.instance_entry(instance("i-1", tokens="required", team="web"), carrying("other"), both, chosen)
    assert [(a["action"], a.get("instance_profile")) for a in swapped["actions"]] == [("replace", "web")]
    right = guard_plan.instance_entry(instance("i-1", tokens="required", team="web"), carrying("web"), both, chosen)
    assert right["actions"] == [] and right["reports"] == []
    in_flight = guard_plan.instance_entry(instance("i-1", tokens="required", team="web"),
                                          carrying("web", "associating"), both, chosen)
    assert in_flight["actions"] == []
    profile_only = guard_plan.instance_entry(instance("i-1", team="web"), None, (guard_event.PROFILE,), chosen)
    assert [a["action"] for a in profile_only["actions"]] == ["associate"]  # IMDS is not this event's concern
    options_only = guard_plan.instance_entry(instance("i-1", team="web"), None, (guard_event.OPTIONS,), chosen)
    assert [a["action"] for a in options_only["actions"]] == ["require_imdsv2"]
    unset = guard_plan.instance_entry(instance("i-1", tokens=None), None, (guard_event.OPTIONS,), chosen)
    assert [a["action"] for a in unset["actions"]] == ["require_imdsv2"]


def test_an_instance_with_nothing_expected_is_reported_not_guessed():
    entry = guard_plan.instance_entry(instance("i-1", tokens="required"), None, (guard_event.PROFILE, guard_event.OPTIONS), settings())
    assert entry["actions"] == []
    [report] = entry["reports"]
    assert report["kind"] == "instance_without_profile" and "keyless:instance-profile" in report["detail"]
    carried = guard_plan.instance_entry(instance("i-1", tokens="required"), carrying("any"), (guard_event.PROFILE,), settings())
    assert carried["reports"] == [] and carried["actions"] == []  # nothing says it must carry another


def test_a_tag_naming_a_profile_the_guard_may_not_attach_is_reported():
    entry = guard_plan.instance_entry(instance("i-1", tokens="required", keyless__instance_profile="admin"), None,
                                      (guard_event.PROFILE,), settings(**MAPPED))
    assert entry["actions"] == [] and [r["kind"] for r in entry["reports"]] == ["profile_not_allowed"]


def test_exempt_and_gone_instances_are_left_alone():
    exempt = guard_plan.instance_entry(instance("i-1", team="web", keyless__guard="exempt"), None,
                                       (guard_event.PROFILE, guard_event.OPTIONS), settings(**MAPPED))
    assert exempt["exempt"] and exempt["actions"] == [] and exempt["reports"] == []
    other_tag = settings(exemption_tag={"key": "guard", "value": "off"}, **MAPPED)
    assert guard_plan.instance_entry(instance("i-1", team="web", guard="off"), None, (guard_event.OPTIONS,), other_tag)["exempt"]
    gone = guard_plan.instance_entry(instance("i-1", state="terminated", team="web"), None, (guard_event.OPTIONS,),
                                     settings(**MAPPED))
    assert gone["actions"] == [] and "terminated" in gone["skipped"]


@pytest.mark.parametrize("defaults, mode, turned_off, action, kinds", [
    ({"HttpTokens": "required"}, "report", False, None, []),
    ({"HttpTokens": "optional"}, "report", False, None, ["account_defaults_allow_imdsv1"]),
    ({}, "report", False, None, ["account_defaults_allow_imdsv1"]),
    ({"HttpTokens": "optional"}, "required", False, {"http_tokens": "required", "http_tokens_enforced": None}, []),
    ({"HttpTokens": "required", "HttpTokensEnforced": "disabled"}, "required", True, None, ["account_enforcement_off"]),
    ({"HttpTokens": "required", "HttpTokensEnforced": "disabled"}, "report", True, None, ["account_enforcement_off"]),
    ({"HttpTokens": "required", "HttpTokensEnforced": "disabled"}, "enforced", True,
     {"http_tokens": "required", "http_tokens_enforced": "enabled"}, []),
    ({"HttpTokens": "required", "HttpTokensEnforced": "enabled"}, "enforced", False, None, []),
    ({"HttpTokens": "required"}, "required", False, None, []),
    ({"HttpTokens": "optional", "ManagedBy": "declarative-policy"}, "enforced", False, None,
     ["account_defaults_managed"]),
])
def test_the_account_defaults(defaults, mode, turned_off, action, kinds):
    got, reports = guard_plan.account_entry(defaults, mode, turned_off, "us-east-1")
    assert got == action
    assert [r["kind"] for r in reports] == kinds


def template(tags=None, default=1, latest=1):
    return {"LaunchTemplateId": "lt-1", "LaunchTemplateName": "web", "DefaultVersionNumber": default,
            "LatestVersionNumber": latest, "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()]}


def version(number, tokens=None):
    data = {"ImageId": "ami-12345678"}
    if tokens:
        data["MetadataOptions"] = {"HttpTokens": tokens}
    return {"VersionNumber": number, "LaunchTemplateData": data}


def test_what_a_launch_template_needs():
    chosen = settings()
    loose = guard_plan.template_entry(template(), version(1, "optional"), version(1, "optional"), {}, chosen)
    assert loose["action"] == {"id": "lt-1", "version": "$Default"} and loose["latest_action"] is None
    unset = guard_plan.template_entry(template(), version(1), version(1), {}, chosen)
    assert unset["action"] and unset["source"] == "EC2 default"
    by_account = guard_plan.template_entry(template(), version(1), version(1), {"HttpTokens": "required"}, chosen)
    assert by_account["action"] is None and by_account["source"] == "account default"
    latest = guard_plan.template_entry(template(latest=2), version(1, "required"), version(2, "optional"), {}, chosen)
    assert latest["action"] is None and latest["latest_action"] == {"id": "lt-1", "version": "$Latest"}
    both = guard_plan.template_entry(template(latest=2), version(1, "optional"), version(2, "optional"), {}, chosen)
    assert both["action"] and both["latest_action"] is None  # the new default becomes $Latest too
    fine = guard_plan.template_entry(template(latest=2), version(1, "required"), version(2, "required"), {}, chosen)
    assert fine["action"] is None and fine["latest_action"] is None
    exempt = guard_plan.template_entry(template({"keyless:guard": "exempt"}), version(1, "optional"), None, {}, chosen)
    assert exempt["exempt"] and exempt["action"] is None


def test_iam_breakage_is_reported_never_planned():
    summary = {"principal": USER["arn"], "time": "2026-12-05T10:00:00Z", "role": "web-role"}
    usage = [{"instance_id": "i-1", "region": "eu-west-1", "instance_profile": "web"}]
    empty = {"InstanceProfileName": "web", "Roles": [], "Tags": []}
    entry = guard_plan.profile_role_entry("web", empty, usage, summary, settings())
    [report] = entry["reports"]
    assert report["kind"] == "profile_without_role" and "i-1 (eu-west-1)" in report["detail"]
    assert "web-role" in report["detail"] and "Not fixed" in report["detail"]
    held = {"InstanceProfileName": "web", "Roles": [{"RoleName": "web-role"}], "Tags": []}
    assert guard_plan.profile_role_entry("web", held, [], summary, settings())["reports"] == []
    assert guard_plan.profile_role_entry("web", None, [], summary, settings())["reports"] == []
    exempt = dict(empty, Tags=[{"Key": "keyless:guard", "Value": "exempt"}])
    assert guard_plan.profile_role_entry("web", exempt, usage, summary, settings())["reports"] == []

    role = {"RoleName": "web-role", "Arn": "arn:aws:iam::123456789012:role/web-role",
            "AssumeRolePolicyDocument": TRUST_LAMBDA, "Tags": []}
    profiles = [{"InstanceProfileName": "web"}]
    entry = guard_plan.role_trust_entry("web-role", role, profiles, usage, summary, settings())
    [report] = entry["reports"]
    assert report["kind"] == "role_does_not_trust_ec2" and "web" in report["detail"] and entry["trusts_ec2"] is False
    trusting = dict(role, AssumeRolePolicyDocument=TRUST_EC2)
    assert guard_plan.role_trust_entry("web-role", trusting, profiles, usage, summary, settings())["reports"] == []
    assert guard_plan.role_trust_entry("web-role", role, [], [], summary, settings())["reports"] == []  # in no profile
    assert guard_plan.role_trust_entry("web-role", None, [], [], summary, settings())["reports"] == []


# ---- the plan, from fake reads --------------------------------------------------------------------


class FakeEC2:
    def __init__(self, instances=(), associations=(), templates=(), versions=(), defaults=None):
        self.instances = list(instances)
        self.associations = list(associations)
        self.templates = list(templates)
        self.versions = list(versions)
        self.defaults = defaults or {}
        self.calls = []

    def describe_instances(self, Filters, **_kwargs):
        self.calls.append("DescribeInstances")
        ids = [v for f in Filters if f["Name"] == "instance-id" for v in f["Values"]]
        return {"Reservations": [{"Instances": [i for i in self.instances if i["InstanceId"] in ids]}]}

    def describe_iam_instance_profile_associations(self, **kwargs):
        self.calls.append("DescribeIamInstanceProfileAssociations")
        ids = [v for f in kwargs.get("Filters") or [] for v in f["Values"]]
        return {"IamInstanceProfileAssociations": [a for a in self.associations
                                                   if not ids or a["InstanceId"] in ids]}

    def describe_launch_templates(self, **_kwargs):
        self.calls.append("DescribeLaunchTemplates")
        return {"LaunchTemplates": self.templates}

    def describe_launch_template_versions(self, **_kwargs):
        self.calls.append("DescribeLaunchTemplateVersions")
        return {"LaunchTemplateVersions": self.versions}

    def get_instance_metadata_defaults(self):
        self.calls.append("GetInstanceMetadataDefaults")
        return {"AccountLevel": self.defaults}


class FakeIAM:
    def __init__(self, profiles=(), roles=()):
        self.profiles = dict((p["InstanceProfileName"], p) for p in profiles)
        self.roles = dict((r["RoleName"], r) for r in roles)

    def get_instance_profile(self, InstanceProfileName):
        return {"InstanceProfile": self.profiles[InstanceProfileName]}

    def get_role(self, RoleName):
        return {"Role": self.roles[RoleName]}

    def list_instance_profiles_for_role(self, RoleName, **_kwargs):
        return {"InstanceProfiles": [p for p in self.profiles.values()
                                     if RoleName in [r["RoleName"] for r in p.get("Roles") or []]]}


def clients_of(ec2, iam=None, regional=None):
    def clients(service, region):
        if service == "iam":
            return iam
        return (regional or {}).get(region, ec2)
    return clients


def test_an_ignored_event_makes_no_call():
    ec2 = FakeEC2()
    failed = run_instances("i-1")
    failed["detail"]["errorCode"] = "Client.InvalidParameterValue"
    result = guard.guard(clients_of(ec2), {"event": failed}, "us-east-1")
    assert result["ignored"] and ec2.calls == [] and result["associate"] == [] and "ignored" in result["msg"]


def test_a_launch_is_planned_from_what_is_read_now():
    ec2 = FakeEC2(instances=[instance("i-1", team="web"), instance("i-2", tokens="required", team="db"),
                             instance("i-3", keyless__guard="exempt")],
                  associations=[dict(carrying("baseline")[0], InstanceId="i-2")])
    result = guard.guard(clients_of(ec2), dict(MAPPED, event={"body": run_instances("i-1", "i-2", "i-3", "i-9")}),
                         "us-east-1")
    assert result["associate"] == [{"instance_profile": "web", "instance_ids": ["i-1"]}]
    assert result["require_imdsv2"] == ["i-1"]
    assert result["exempt"] == ["i-3"]
    assert [i["instance_id"] for i in result["instances"]] == ["i-1", "i-2", "i-3", "i-9"]
    assert "EC2 does not know" in result["instances"][3]["skipped"]
    assert "i-1 to carry web" in result["msg"] and "exempt: i-3" in result["msg"]


def test_an_event_of_another_region_or_account_fails_before_any_read():
    ec2 = FakeEC2()
    with pytest.raises(KeylessError) as failed:
        guard.guard(clients_of(ec2), {"event": mimo("i-1")}, "eu-west-1")
    assert failed.value.param == "region" and ec2.calls == []
    with pytest.raises(KeylessError) as failed:
        guard.guard(clients_of(ec2), {"event": mimo("i-1"), "account_id": "210987654321"}, "us-east-1")
    assert failed.value.param == "account_id" and ec2.calls == []


def test_a_template_event_reads_the_template_and_the_account_default():
    versions = [dict(version(1, "required"), DefaultVersion=True), version(2)]
    ec2 = FakeEC2(templates=[template(latest=2)], versions=versions, defaults={"HttpTokens": "optional"})
    created = event("CreateLaunchTemplateVersion", {"CreateLaunchTemplateVersionRequest": {"LaunchTemplateId": "lt-1"}},
                    {"CreateLaunchTemplateVersionResponse": {"launchTemplateVersion": {"launchTemplateId": "lt-1"}}})
    result = guard.guard(clients_of(ec2), {"event": created}, "us-east-1")
    assert result["launch_templates"] == [] and result["launch_templates_latest"] == [{"id": "lt-1",
                                                                                       "version": "$Latest"}]
    ec2.defaults = {"HttpTokens": "required"}
    assert guard.guard(clients_of(ec2), {"event": created}, "us-east-1")["launch_templates_latest"] == []


def test_an_iam_event_reads_usage_in_the_regions_asked():
    iam = FakeIAM(profiles=[{"InstanceProfileName": "web", "Roles": [], "Tags": []}])
    eu = FakeEC2(associations=[dict(carrying("web")[0], InstanceId="i-7")])
    removed = event("RemoveRoleFromInstanceProfile", {"instanceProfileName": "web", "roleName": "web-role"}, None,
                    source="iam")
    result = guard.guard(clients_of(FakeEC2(), iam, {"eu-west-1": eu}),
                         {"event": removed, "usage_regions": ["eu-west-1"]}, "us-east-1")
    assert [r["kind"] for r in result["reports"]] == ["profile_without_role"]
    assert result["iam"]["instances"] == ["i-7"] and result["warnings"] == [result["reports"][0]["detail"]]
    assert result["associate"] == [] and result["account_defaults"] is None


def test_the_account_defaults_event():
    ec2 = FakeEC2(defaults={"HttpTokens": "optional"})
    loosened = event("ModifyInstanceMetadataDefaults", {"ModifyInstanceMetadataDefaultsRequest": {
        "HttpTokens": "optional"}}, None)
    reported = guard.guard(clients_of(ec2), {"event": loosened}, "us-east-1")
    assert reported["account_defaults"] is None and reported["reports"][0]["kind"] == "account_defaults_allow_imdsv1"
    fixed = guard.guard(clients_of(ec2), {"event": loosened, "account_defaults": "required"}, "us-east-1")
    assert fixed["account_defaults"] == {"http_tokens": "required", "http_tokens_enforced": None}
    assert fixed["reports"] == []


# ---- the rulebooks and the setup's pattern name exactly these events ----------------------------------


def rulebook(name):
    with open(os.path.join(ROOT, "extensions", "eda", "rulebooks", name)) as handle:
        return yaml.safe_load(handle)


def test_the_rulebooks_and_the_eventbridge_pattern_name_the_events_the_guard_handles():
    [standalone] = rulebook("keyless_guard.yml")
    named = set()
    for rule in standalone["rules"]:
        named.update(re.findall(r'eventName == "(\w+)"', rule["condition"]))
    assert named == set(guard_event.EVENTS)
    with open(os.path.join(ROOT, "playbooks", "guard_setup.yml")) as handle:
        [play] = yaml.safe_load(handle)
    pattern = play["vars"]["keyless_guard_event_pattern"]
    assert set(pattern["detail"]["eventName"]) == set(guard_event.EVENTS)
    assert set(pattern["detail"]["eventSource"]) == set(source for source, _aspects in guard_event.EVENTS.values())
    assert pattern["detail-type"] == [guard_event.DETAIL_TYPE]
    assert pattern["detail"]["errorCode"] == [{"exists": False}]


def test_both_rulebooks_ignore_first_then_share_every_condition():
    [standalone], [controller] = rulebook("keyless_guard.yml"), rulebook("keyless_guard_controller.yml")
    assert [(r["name"], r["condition"]) for r in standalone["rules"]] == [
        (r["name"], r["condition"]) for r in controller["rules"]]
    assert standalone["sources"] == controller["sources"]
    first, second = standalone["rules"][:2]
    assert first["condition"] == "event.body.detail.errorCode is defined" and "none" in first["action"]
    assert 'sessionIssuer.userName == "{0}"'.format(guard_event.DEFAULT_OWN_ROLES[0]) in second["condition"]
    assert "none" in second["action"]
    for rule in standalone["rules"][2:]:
        assert set(rule["action"]) == {"run_playbook"}
    for rule in controller["rules"][2:]:
        assert set(rule["action"]) == {"run_job_template"}
    # ansible-rulebook reads feedback before it templates the source's arguments: a literal
    assert standalone["sources"][0]["amazon.aws.aws_sqs_queue"]["feedback"] is True


def test_rules_only_fire_on_drift_for_metadata_options():
    """The ModifyInstanceMetadataOptions rules: HttpTokens other than required, or left out (the API
    documents a default that may be optional); a call requiring IMDSv2 (harden.yml's) runs nothing."""
    [standalone] = rulebook("keyless_guard.yml")
    conditions = [r["condition"] for r in standalone["rules"] if "ModifyInstanceMetadataOptions" in r["condition"]]
    assert any('HttpTokens != "required"' in c for c in conditions)
    assert any("HttpTokens is not defined" in c for c in conditions)


def test_events_are_not_changed_by_the_reading():
    original = run_instances("i-1")
    kept = copy.deepcopy(original)
    guard.guard(clients_of(FakeEC2(instances=[instance("i-1")])), {"event": original}, "us-east-1")
    assert original == kept
