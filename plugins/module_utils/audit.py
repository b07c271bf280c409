# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The audit of one account and region (keyless.aws.audit_info): one read of each thing the
findings need, then the findings, decided here in Python, one function per kind.

The reads, each once per target (every client paced like every other call of the collection):
``DescribeInstances`` (live instances: their metadata options), one region-wide
``DescribeIamInstanceProfileAssociations`` scan (which profile each instance carries, and which
profiles any instance carries), ``DescribeLaunchTemplateVersions`` for ``$Default`` and ``$Latest`` of
every template at once (metadata options and user data), ``GetInstanceMetadataDefaults``,
``ListInstanceProfiles`` (with each role and its trust policy), CloudWatch ``GetMetricData`` for the
IMDSv1 metrics (500 series a call), and ``DescribeInstanceAttribute userData`` per live instance
(the only way EC2 gives it).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.keyless.aws.plugins.module_utils.audit_kinds import KIND_NAMES
from ansible_collections.keyless.aws.plugins.module_utils.audit_report import kind_counts
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import aws_failure
from ansible_collections.keyless.aws.plugins.module_utils.common import call_aws
from ansible_collections.keyless.aws.plugins.module_utils.common import paginate
from ansible_collections.keyless.aws.plugins.module_utils.common import partition_for_region
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import _options_of
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import snake_options
from ansible_collections.keyless.aws.plugins.module_utils.imds_usage import check_window
from ansible_collections.keyless.aws.plugins.module_utils.imds_usage import usage_report
from ansible_collections.keyless.aws.plugins.module_utils.instances import LIVE_STATES
from ansible_collections.keyless.aws.plugins.module_utils.instances import current_association
from ansible_collections.keyless.aws.plugins.module_utils.instances import describe_associations
from ansible_collections.keyless.aws.plugins.module_utils.instances import describe_instances
from ansible_collections.keyless.aws.plugins.module_utils.key_migration import check_found_on
from ansible_collections.keyless.aws.plugins.module_utils.key_migration import static_key_users
from ansible_collections.keyless.aws.plugins.module_utils.metadata_account import account_options
from ansible_collections.keyless.aws.plugins.module_utils.metadata_account import get_account_defaults
from ansible_collections.keyless.aws.plugins.module_utils.metadata_options import concurrency
from ansible_collections.keyless.aws.plugins.module_utils.metadata_templates import _user_data_findings
from ansible_collections.keyless.aws.plugins.module_utils.profiles import list_profiles
from ansible_collections.keyless.aws.plugins.module_utils.trust import analyse_trust
from ansible_collections.keyless.aws.plugins.module_utils.user_data import instance_user_data_findings

MAX_READS_AT_ONCE = 50  # max_concurrency: user data reads at once (audit_info documents 1 to 50)
TEMPLATE_PAGE = 200  # DescribeLaunchTemplateVersions MaxResults: 1 to 200


# ---- the inputs ----------------------------------------------------------------------------


def validated(params):
    """The module's options checked before any call: (window days or 0, found_on or {}, workers)."""
    window = params.get("imdsv1_usage_window")
    if window is None:
        window = 14
    if isinstance(window, bool) or not isinstance(window, int):
        raise KeylessError("imdsv1_usage_window: {0!r} is not a whole number of days.".format(window),
                           param="imdsv1_usage_window")
    if window:
        check_window(window, "imdsv1_usage_window", then="0 reads no metric.")
    found_on = params.get("found_on") or {}
    if found_on:
        check_found_on(found_on)
    workers = concurrency(params.get("max_concurrency"), limit=MAX_READS_AT_ONCE)
    return window, found_on, workers


# ---- the reads -----------------------------------------------------------------------------


def read_templates(ec2):
    """Every launch template of the region, its ``$Default`` and ``$Latest`` versions whole (metadata
    options and user data), in one paginated DescribeLaunchTemplateVersions call with no template
    named (the API reference: "To describe all launch templates in your account that are defined as
    the latest version, the valid value is $Latest ... You can specify $Latest and $Default in the
    same request"): [{id, name, default, latest}] sorted by name, versions in boto3 shape."""
    try:
        items = paginate(ec2.describe_launch_template_versions, "LaunchTemplateVersions", token_in="NextToken",
                         token_out="NextToken", Versions=["$Default", "$Latest"], MaxResults=TEMPLATE_PAGE)
    except Exception as exc:  # pylint: disable=broad-except
        raise aws_failure(exc, "reading the launch templates of the region")
    templates = {}
    for version in items:
        template = templates.setdefault(version["LaunchTemplateId"], {
            "id": version["LaunchTemplateId"], "name": version.get("LaunchTemplateName"), "default": None,
            "latest": None})
        if version.get("DefaultVersion"):
            template["default"] = version
        if template["latest"] is None or version["VersionNumber"] > template["latest"]["VersionNumber"]:
            template["latest"] = version
    for template in templates.values():
        template["default"] = template["default"] or template["latest"]
    return sorted(templates.values(), key=lambda t: (t["name"] or "", t["id"]))


def read_target(clients, window_days, instance_user_data=True, workers=10, now=None):
    """Everything the findings need, each read once: ``clients`` gives each client on demand
    (``clients("ec2")``). Returns (state, warnings)."""
    warnings = []
    ec2 = clients("ec2")
    live = describe_instances(ec2, [{"Name": "instance-state-name", "Values": list(LIVE_STATES)}])
    instances = [live[i] for i in sorted(live)]
    associations = describe_associations(ec2)
    templates = read_templates(ec2)
    account = get_account_defaults(ec2)
    usage = usage_report(lambda: clients("cloudwatch"), instances, window_days, now=now) if window_days else None
    user_data = instance_user_data_findings(ec2, [i["InstanceId"] for i in instances], warnings, workers) \
        if instance_user_data else []
    template_keys = _user_data_findings(
        [{"id": t["id"], "name": t["name"], "base": t["default"], "default": t["default"], "latest": t["latest"]}
         for t in templates], warnings)
    profiles = list_profiles(clients("iam"))
    state = {
        "instances": instances,
        "associations": associations,
        "templates": templates,
        "account": account,
        "usage": usage,
        "instance_user_data": user_data,
        "template_user_data": template_keys,
        "profiles": sorted(profiles, key=lambda p: p["InstanceProfileName"]),
    }
    return state, warnings


# ---- the findings, one function per kind ---------------------------------------------------


def _finding(kind, resource, detail, resource_id=None):
    finding = {"kind": kind, "resource": resource}
    if resource_id is not None:
        finding["id"] = resource_id
    finding["detail"] = detail
    return finding


def _texts(kinds):
    return " and ".join(sorted(set(kind.replace("_", " ") for kind in kinds)))


def _lines(findings):
    return ", ".join(str(line) for line in sorted(set(f["line"] for f in findings)))


def instance_without_profile(state):
    return [_finding("instance_without_profile", i["InstanceId"],
                     "carries no instance profile: whatever runs on it gets AWS access only from keys it holds")
            for i in state["instances"] if current_association(state["associations"].get(i["InstanceId"])) is None]


def instance_allows_imdsv1(state):
    found = []
    for instance in state["instances"]:
        options = snake_options(_options_of(instance.get("MetadataOptions")))
        tokens = options.get("http_tokens") or "optional"
        if tokens != "required" and options.get("http_endpoint", "enabled") != "disabled":
            found.append(_finding("instance_allows_imdsv1", instance["InstanceId"],
                                  "http_tokens is {0}: its metadata service answers IMDSv1, the path of SSRF "
                                  "credential theft".format(tokens)))
    return found


def instance_used_imdsv1(state, window_days):
    return [_finding("instance_used_imdsv1", e["instance_id"],
                     "made {0} IMDSv1 call(s) in the last {1} days (the last in the period starting {2}): software "
                     "there calls the metadata service without a token and fails once IMDSv2 is required; update it "
                     "first".format(e["imdsv1_calls"], window_days, e["last_imdsv1_call"]))
            for e in (state["usage"] or {}).get("instances", []) if e["allows_imdsv1"] and e["imdsv1_calls"]]


def instance_refused_imdsv1(state, window_days):
    return [_finding("instance_refused_imdsv1", e["instance_id"],
                     "its metadata service refused {0} IMDSv1 call(s) in the last {1} days (the last in the period "
                     "starting {2}): software there still calls IMDSv1 and gets no metadata and no credentials; "
                     "update it".format(e["imdsv1_calls_rejected"], window_days, e["last_imdsv1_call"]))
            for e in (state["usage"] or {}).get("instances", []) if e["imdsv1_calls_rejected"]]


def launch_template_allows_imdsv1(state):
    """A template whose default version does not require IMDSv2; a version that leaves http_tokens
    unset counts unless the account default requires IMDSv2."""
    account_requires = (state["account"] or {}).get("HttpTokens") == "required"
    found = []
    for template in state["templates"]:
        default = template["default"]
        tokens = ((default.get("LaunchTemplateData") or {}).get("MetadataOptions") or {}).get("HttpTokens")
        if tokens == "optional" or (tokens is None and not account_requires):
            found.append(_finding(
                "launch_template_allows_imdsv1", template["name"],
                "default version {0}{1}: instances launched from it answer IMDSv1".format(
                    default["VersionNumber"], " sets http_tokens=optional" if tokens else
                    " does not set http_tokens, and the account default does not require IMDSv2"),
                template["id"]))
    return found


def launch_template_user_data_keys(state):
    by_template = {}
    for entry in state["template_user_data"]:
        by_template.setdefault(entry["launch_template_id"], []).append(entry)
    found = []
    for template_id in sorted(by_template):
        entries = by_template[template_id]
        keys = [f for entry in entries for f in entry["findings"]]
        found.append(_finding(
            "launch_template_user_data_keys", entries[0]["launch_template_name"],
            "user data of version(s) {0} looks like it holds {1} (line(s) {2}); the keys are not shown here".format(
                ", ".join(str(entry["version"]) for entry in entries), _texts(f["kind"] for f in keys), _lines(keys)),
            template_id))
    return found


def instance_user_data_keys(state):
    found = []
    for entry in sorted(state["instance_user_data"], key=lambda e: e["instance_id"]):
        keyed = [f for f in entry["findings"] if "key" in f]
        found.append(_finding(
            "instance_user_data_keys", entry["instance_id"],
            "its user data looks like it holds {0} (line(s) {1}){2}; keyless.aws.static_keys_info names its "
            "owner".format(_texts(f["kind"] for f in entry["findings"]), _lines(entry["findings"]),
                           ": key ...{0} (fingerprint {1})".format(keyed[0]["key"]["suffix"],
                                                                   keyed[0]["key"]["fingerprint"]) if keyed else "")))
    return found


def _key_text(key):
    return "...{0} ({1})".format(key.get("suffix"), key.get("kind"))


def instance_static_keys(state, found_on):
    """An instance of this target where credential_sources_info (``found_on``: {host: its result with
    instance_id}) found keys, or programs, users or services that take a key kept on the host before
    the instance role. Hosts of other targets (instance ids not live here) are left to theirs."""
    live = set(i["InstanceId"] for i in state["instances"])
    found = []
    for host in sorted(found_on):
        result = found_on[host]
        instance_id = result.get("instance_id")
        if instance_id not in live:
            continue
        users = static_key_users(result)
        keys = result.get("keys") or []
        if not users and not keys:
            continue
        parts = []
        if users:
            parts.append("these take a key kept on the host before the instance role: {0}".format(
                ", ".join("{0} ({1}{2})".format(
                    use["label"], use["method"], ", key " + _key_text(use["key"]) if use.get("key") else "")
                    for use in users)))
        else:
            parts.append("no running program, user or service takes a key kept on the host now")
        if keys:
            parts.append("{0} key(s) on the host: {1}".format(len(keys), ", ".join(_key_text(k) for k in keys)))
        found.append(_finding(
            "instance_static_keys", instance_id,
            "on host {0}, {1}; keyless.aws.static_keys_info names the owners and playbooks/retire_keys.yml moves "
            "the instance onto its role".format(host, "; ".join(parts))))
    return found


def profile_without_role(state):
    return [_finding("profile_without_role", p["InstanceProfileName"],
                     "holds no role: instances given it get no credentials", p["Arn"])
            for p in state["profiles"] if not p.get("Roles")]


def role_does_not_trust_ec2(state, region):
    """A role held by a profile whose trust policy does not let EC2 (of the region's partition) in,
    once per role, with the profiles that hold it."""
    partition = partition_for_region(region)
    roles, held_by = {}, {}
    for profile in state["profiles"]:
        for role in (profile.get("Roles") or [])[:1]:
            roles[role["RoleName"]] = role
            held_by.setdefault(role["RoleName"], []).append(profile["InstanceProfileName"])
    found = []
    for name in sorted(roles):
        report = analyse_trust(roles[name].get("AssumeRolePolicyDocument") or {}, partition)
        if report["trusts_ec2"]:
            continue
        found.append(_finding("role_does_not_trust_ec2", name,
                              "{0}; instances given profile(s) {1} get no credentials".format(
                                  report["problem"], ", ".join(held_by[name])),
                              roles[name].get("Arn")))
    return found


def profile_unused(state, region):
    used = set()
    for associations in state["associations"].values():
        for association in associations:
            used.add((association.get("IamInstanceProfile") or {}).get("Arn"))
    return [_finding("profile_unused", p["InstanceProfileName"], "attached to no instance in {0}".format(region),
                     p["Arn"])
            for p in state["profiles"] if p["Arn"] not in used]


def findings(state, region, window_days, found_on=None):
    """Every finding of the target, in the report's order of kinds."""
    by_kind = {
        "instance_without_profile": lambda: instance_without_profile(state),
        "instance_allows_imdsv1": lambda: instance_allows_imdsv1(state),
        "instance_used_imdsv1": lambda: instance_used_imdsv1(state, window_days),
        "instance_refused_imdsv1": lambda: instance_refused_imdsv1(state, window_days),
        "launch_template_allows_imdsv1": lambda: launch_template_allows_imdsv1(state),
        "launch_template_user_data_keys": lambda: launch_template_user_data_keys(state),
        "instance_user_data_keys": lambda: instance_user_data_keys(state),
        "instance_static_keys": lambda: instance_static_keys(state, found_on or {}),
        "profile_without_role": lambda: profile_without_role(state),
        "role_does_not_trust_ec2": lambda: role_does_not_trust_ec2(state, region),
        "profile_unused": lambda: profile_unused(state, region),
    }
    result = []
    for kind in KIND_NAMES:
        result.extend(by_kind[kind]())
    return result


def target_report(state, found, target, account_id, region):
    """The report of one target, in the shape playbooks/audit.yml writes (with its findings, each
    naming its account, region and target)."""
    placed = [dict(f, account_id=account_id, region=region, target=target) for f in found]
    return {
        "target": target,
        "account_id": account_id,
        "region": region,
        "checked": {"instances": len(state["instances"]), "launch_templates": len(state["templates"]),
                    "instance_profiles": len(state["profiles"])},
        "account_metadata_defaults": account_options(state["account"]),
        "imdsv1_usage": (state["usage"] or {}).get("imdsv1_usage"),
        "counts": kind_counts(placed, KIND_NAMES),
        "findings": placed,
    }


def summary(report):
    """One sentence: the findings by kind."""
    named = ["{0} {1}".format(n, kind) for kind, n in report["counts"].items() if n]
    return "{0} finding(s) in {1} ({2}){3}.".format(
        len(report["findings"]), report["region"], report["account_id"], (": " + ", ".join(named)) if named else "")


def audit(clients, params, region, account_id, target, now=None):
    """keyless.aws.audit_info's result: every input checked before the first call, then the reads
    and the findings."""
    window, found_on, workers = validated(params)
    state, warnings = read_target(clients, window, params.get("instance_user_data", True), workers, now=now)
    if account_id is None:
        account_id = call_aws("reading this target's account (sts:GetCallerIdentity)",
                              clients("sts").get_caller_identity)["Account"]
    for host in sorted(found_on):
        if not found_on[host].get("instance_id"):
            warnings.append("found_on: host {0} has no instance_id (the amazon.aws.aws_ec2 inventory gives it); "
                            "what was found there is not in the audit.".format(host))
    report = target_report(state, findings(state, region, window, found_on), target, account_id, region)
    return {"changed": False, "report": report, "msg": summary(report), "warnings": warnings}
