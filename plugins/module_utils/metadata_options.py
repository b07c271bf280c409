# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Instance metadata service (IMDS) options on running instances, launch templates and the
account-level defaults of a region: read them, work out what differs, change only that.

Everything is planned first (all reads, every check that can fail on input), then applied, so
bad input fails before any change. ``ensure_*`` functions return ``(changed, result)`` and
handle check mode right before the call that mutates. Functions take boto3 clients (wrapped
in ``RetryingClient`` by the module) and return plain data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import copy
import datetime
import re
import uuid
import zlib

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import Stopwatch
from ansible_collections.keyless.aws.plugins.module_utils.common import Timing
from ansible_collections.keyless.aws.plugins.module_utils.common import in_parallel
from ansible_collections.keyless.aws.plugins.module_utils.common import poll
from ansible_collections.keyless.aws.plugins.module_utils.common import aws_failure
from ansible_collections.keyless.aws.plugins.module_utils.common import diff_entry
from ansible_collections.keyless.aws.plugins.module_utils.common import error_code
from ansible_collections.keyless.aws.plugins.module_utils.common import paginate
from ansible_collections.keyless.aws.plugins.module_utils.imds_usage import check_window
from ansible_collections.keyless.aws.plugins.module_utils.imds_usage import imdsv1_usage
from ansible_collections.keyless.aws.plugins.module_utils.imds_usage import window_summary
from ansible_collections.keyless.aws.plugins.module_utils.instances import GONE_STATES
from ansible_collections.keyless.aws.plugins.module_utils.instances import check_filters
from ansible_collections.keyless.aws.plugins.module_utils.instances import describe_instances
from ansible_collections.keyless.aws.plugins.module_utils.instances import select_instances
from ansible_collections.keyless.aws.plugins.module_utils.instances import state_of
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_instance_ids
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_launch_templates
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_request_rate

# (module option, EC2 API member), in the order results show them.
OPTIONS = (
    ("http_tokens", "HttpTokens"),
    ("http_endpoint", "HttpEndpoint"),
    ("http_put_response_hop_limit", "HttpPutResponseHopLimit"),
    ("instance_metadata_tags", "InstanceMetadataTags"),
    ("http_protocol_ipv6", "HttpProtocolIpv6"),
)
HOP_LIMIT_RANGE = (1, 64)
# The account-level defaults have no IPv6 endpoint setting.
ACCOUNT_OPTIONS = ("HttpTokens", "HttpEndpoint", "HttpPutResponseHopLimit", "InstanceMetadataTags")
# ... and one setting of their own: IMDSv2 enforced at launch. ModifyInstanceMetadataDefaults takes
# HttpTokensEnforced ``enabled``, ``disabled`` or ``no-preference`` (botocore model, shape
# DefaultHttpTokensEnforcedState); GetInstanceMetadataDefaults answers ``enabled`` or ``disabled``
# (HttpTokensEnforcedState), and no member at all when there is no preference.
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyInstanceMetadataDefaults.html
ENFORCED = "HttpTokensEnforced"
ENFORCED_OPTION = "http_tokens_enforced"
NO_PREFERENCE = "no-preference"
ENFORCED_CHOICES = ("enabled", "disabled", NO_PREFERENCE)

GONE_REASON = "their metadata options cannot change"

# Evidence before enforcement (imds_usage.py): the IMDSv1 calls of the instances over a window.
WINDOW_OPTION = "imdsv1_usage_window"
SKIP_OPTION = "skip_instances_using_imdsv1"


_TEMPLATE_NOT_FOUND = (
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.NotFound",
    "InvalidLaunchTemplateId.Malformed",
    "InvalidLaunchTemplateName.MalformedException",
)
_VERSION_NOT_FOUND = ("InvalidLaunchTemplateId.VersionNotFound", "InvalidLaunchTemplateVersion.NotFound")


# ---- input -----------------------------------------------------------------------------------


def desired_options(params):
    """The options to enforce, {API member: value}, from the module's parameters; unset ones left out.
    (The argument spec checks the choices; the hop limit's range is checked here.)"""
    desired = {}
    for option, member in OPTIONS:
        value = params.get(option)
        if value is None:
            continue
        if member == "HttpPutResponseHopLimit":
            if isinstance(value, bool) or not isinstance(value, int) or not (
                    HOP_LIMIT_RANGE[0] <= value <= HOP_LIMIT_RANGE[1]):
                raise KeylessError(
                    "{0}: {1!r} is out of range; EC2 takes a hop limit from 1 to 64 (1 keeps tokens on the instance, "
                    "2 lets containers on the instance reach the metadata service).".format(option, value),
                    param=option,
                )
        desired[member] = value
    return desired


def validated(params):
    """All the module's input checked before any AWS call; returns (plan input, warnings)."""
    warnings = []
    desired = desired_options(params)
    if not desired:
        raise KeylessError("Nothing to enforce: set at least one of http_tokens, http_endpoint, "
                           "http_put_response_hop_limit, instance_metadata_tags or http_protocol_ipv6.",
                           param="http_tokens")
    instance_ids = check_instance_ids(params.get("instance_ids"), "instance_ids")
    filters = check_filters(params.get("filters")) or {}
    templates = check_launch_templates(params.get("launch_templates"))
    account = bool(params.get("account_defaults"))
    check_request_rate(params.get("max_request_rate"))
    if not (instance_ids or filters or templates or account):
        raise KeylessError("No target: name instances (instance_ids or filters), launch_templates, or set "
                           "account_defaults: true.", param="instance_ids")
    if desired.get("HttpEndpoint") == "disabled":
        warnings.append(
            "http_endpoint is disabled: the instance metadata service is switched off, so {0}instances get no "
            "credentials from their instance profile at all (nor any other metadata).".format(
                "whatever http_tokens says, " if desired.get("HttpTokens") == "required" else ""))
    enforced = params.get(ENFORCED_OPTION)
    if enforced is not None:
        if enforced not in ENFORCED_CHOICES:
            raise KeylessError("{0}: {1!r} is not one of {2}.".format(ENFORCED_OPTION, enforced,
                                                                      ", ".join(ENFORCED_CHOICES)),
                               param=ENFORCED_OPTION)
        if not account:
            raise KeylessError("http_tokens_enforced is a setting of the account defaults of the region: set "
                               "account_defaults: true with it, or leave it out. Nothing was changed.",
                               param=ENFORCED_OPTION)
        if enforced == "enabled" and desired.get("HttpTokens") == "optional":
            raise KeylessError("http_tokens: optional cannot go with http_tokens_enforced: enabled: with IMDSv2 "
                               "enforced, EC2 refuses every launch and every change that allows IMDSv1, so the "
                               "targets of this task would be refused or left unlaunchable. Use http_tokens: "
                               "required. Nothing was changed.", param="http_tokens")
    window, skip = _imdsv1_evidence(params, desired, instance_ids or filters)
    if account and "HttpProtocolIpv6" in desired:
        warnings.append("http_protocol_ipv6 is not an account-level default setting: it applies to the instances and "
                        "launch templates named, and the account defaults are left without it.")
    return {
        "desired": desired,
        "instance_ids": instance_ids,
        "filters": filters,
        "launch_templates": templates,
        "account_defaults": account,
        "http_tokens_enforced": enforced,
        "http_tokens_enforced_force": bool(params.get("http_tokens_enforced_force")),
        "wait": params.get("wait", True),
        "wait_timeout": params.get("wait_timeout", 300),
        "selection": params.get("selection") or "intersection",
        "max_concurrency": _concurrency(params.get("max_concurrency")),
        "set_default_version": params.get("set_default_version", True),
        "version_description": params.get("version_description"),
        WINDOW_OPTION: window,
        SKIP_OPTION: skip,
    }, warnings


def _imdsv1_evidence(params, desired, instances_named):
    """(window in days or None, skip) from ``imdsv1_usage_window`` and ``skip_instances_using_imdsv1``."""
    window = params.get(WINDOW_OPTION)
    skip = params.get(SKIP_OPTION)
    if window is not None:
        check_window(window, WINDOW_OPTION, then="Nothing was changed.")
        if not instances_named:
            raise KeylessError(
                "{0}: the IMDSv1 metrics are per instance; name the instances (instance_ids or filters), or leave "
                "{0} out. Nothing was changed.".format(WINDOW_OPTION), param=WINDOW_OPTION)
    if skip is not None and not isinstance(skip, bool):
        raise KeylessError("{0}: {1!r} is not true or false.".format(SKIP_OPTION, skip), param=SKIP_OPTION)
    if skip:
        if window is None:
            raise KeylessError(
                "{0}: true needs the window to look for IMDSv1 calls in: set {1} (days), for example 14. Nothing "
                "was changed.".format(SKIP_OPTION, WINDOW_OPTION), param=SKIP_OPTION)
        if desired.get("HttpTokens") != "required":
            raise KeylessError(
                "{0}: true goes with http_tokens: required (it leaves instances that still use IMDSv1 allowing "
                "it); with http_tokens: {1} there is nothing to skip. Nothing was changed.".format(
                    SKIP_OPTION, desired.get("HttpTokens")), param=SKIP_OPTION)
    return window, bool(skip)


MAX_CONCURRENCY = 100


def _concurrency(value):
    value = 10 if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise KeylessError("max_concurrency: {0!r} is out of range; give 1 to {1}.".format(value, MAX_CONCURRENCY),
                           param="max_concurrency")
    return value


# ---- comparing -------------------------------------------------------------------------------


def changes_needed(current, desired, members=None):
    """{member: desired value} for each desired option whose current value differs (or is unset)."""
    return dict((member, value) for member, value in desired.items()
                if (members is None or member in members) and (current or {}).get(member) != value)


def call_options(current, desired, members=None):
    """What one call that sets metadata options sends: nothing when every option the task names
    already holds; else every option the task names (the user's declaration, sent whole, so an
    endpoint that drops an omitted field, as a plain moto_server drops HttpEndpoint, still gets it;
    resending an unchanged value is harmless on EC2), with ``HttpTokens`` (``with_http_tokens``)."""
    named = dict((member, value) for member, value in desired.items() if members is None or member in members)
    if not changes_needed(current, named):
        return {}
    return with_http_tokens(named, current, desired)


def snake_options(options, members=None):
    """The options as the module returns them (snake_case keys, only those that are set)."""
    result = {}
    for option, member in OPTIONS:
        if (members is None or member in members) and (options or {}).get(member) is not None:
            result[option] = options[member]
    return result


_MEMBERS = frozenset(member for _option, member in OPTIONS)


def _options_of(metadata_options):
    """The five settings of a MetadataOptions structure (State and the like dropped)."""
    return dict((member, value) for member, value in (metadata_options or {}).items() if member in _MEMBERS)


# ---- user data: never bake keys --------------------------------------------------------------

_ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")
_SECRET_ASSIGNMENT = re.compile(
    r"(?i)(?:aws_?secret_?access_?key|secret_?access_?key|secretaccesskey)[\"']?\s*(?:=|:|\s)\s*[\"']?"
    r"[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+])")


_KIND_TEXT = {"access_key_id": "an AWS access key id", "secret_access_key": "an AWS secret access key"}


def _decoded_user_data(encoded):
    """The text of base64 user data (gzip/zlib compressed user data decompressed); None when unreadable."""
    try:
        raw = base64.b64decode(encoded or "", validate=False)
    except (binascii.Error, ValueError, TypeError):
        return None
    if raw[:2] == b"\x1f\x8b" or raw[:1] == b"\x78":
        try:
            raw = zlib.decompress(raw, 47)
        except zlib.error:
            pass
    return raw.decode("utf-8", "replace")


def scan_user_data(encoded):
    """Where base64 user data holds what looks like AWS keys: [{kind, line}], never the keys."""
    text = _decoded_user_data(encoded)
    if not text:
        return []
    findings = []
    for number, line in enumerate(text.splitlines(), 1):
        if _ACCESS_KEY_ID.search(line):
            findings.append({"kind": "access_key_id", "line": number})
        if _SECRET_ASSIGNMENT.search(line):
            findings.append({"kind": "secret_access_key", "line": number})
    return findings


# ---- account-level defaults -------------------------------------------------------------------


def get_account_defaults(ec2):
    """The region's account-level IMDS defaults ({member: value} of those set, plus ManagedBy...)."""
    try:
        return ec2.get_instance_metadata_defaults().get("AccountLevel") or {}
    except Exception as exc:  # pylint: disable=broad-except
        raise aws_failure(exc, "reading the account's instance metadata defaults")


def account_options(options):
    """The account defaults as the module returns them: the snake_case options that are set, and
    ``http_tokens_enforced`` when it has a value (absent: no preference)."""
    result = snake_options(options, ACCOUNT_OPTIONS)
    if (options or {}).get(ENFORCED) not in (None, NO_PREFERENCE):
        result[ENFORCED_OPTION] = options[ENFORCED]
    return result


def _enforced(options):
    return (options or {}).get(ENFORCED) or NO_PREFERENCE


def plan_account_defaults(ec2, desired, enforced=None):
    """What the account defaults need: every option the task names once any differs (and
    ``HttpTokens`` with them, ``call_options``), ``HttpTokensEnforced`` too when ``enforced`` is given
    (sent when it or any option differs; absent means no preference),
    the defaults predicted after, and whether the change makes EC2 refuse launches it allows
    today (``tightens``: enforcement switched on, or the default ``HttpTokens`` moved off
    ``required`` while enforcement stays on), which calls for the enforcement report."""
    current = get_account_defaults(ec2)
    changes = call_options(current, desired, ACCOUNT_OPTIONS)
    if enforced is not None and (changes or _enforced(current) != enforced):
        changes = dict(with_http_tokens(dict((m, v) for m, v in desired.items() if m in ACCOUNT_OPTIONS),
                                        current, desired), **{ENFORCED: enforced})
    if changes and current.get("ManagedBy") == "declarative-policy":
        raise KeylessError(
            "account_defaults: the instance metadata defaults of this region are managed by a declarative policy "
            "of your AWS Organization and cannot be changed from the account ({0}). Change the policy, or drop "
            "account_defaults. Nothing was changed.".format(
                current.get("ManagedExceptionMessage") or "no message given"),
            param="account_defaults",
        )
    predicted = dict(current)
    predicted.update(changes)
    if predicted.get(ENFORCED) == NO_PREFERENCE:
        predicted.pop(ENFORCED)
    tightens = _enforced(predicted) == "enabled" and (
        _enforced(current) != "enabled"
        or (current.get("HttpTokens") == "required" and predicted.get("HttpTokens") != "required"))
    return {"current": current, "changes": changes, "predicted": predicted, "tightens": bool(changes) and tightens}


def ensure_account_defaults(ec2, plan, check_mode):
    current, changes = plan["current"], plan["changes"]
    result = {"changed": bool(changes), "before": account_options(current),
              "after": account_options(plan.get("predicted", current))}
    if plan.get("report") is not None:
        result["enforcement_report"] = plan["report"]
    if not changes or check_mode:
        return bool(changes), result
    try:
        ec2.modify_instance_metadata_defaults(**changes)
    except Exception as exc:  # pylint: disable=broad-except
        raise aws_failure(exc, "changing the account's instance metadata defaults")
    result["after"] = account_options(get_account_defaults(ec2))
    return True, result


# ---- what enforcement would refuse -------------------------------------------------------------
#
# With HttpTokensEnforced enabled, EC2 refuses a launch unless its effective HttpTokens is
# ``required`` ("The account-level IMDSv2 enforcement setting is evaluated after the order of
# precedence has determined the instance's IMDS settings", EC2 user guide, Order of precedence,
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-options.html)
# with UnsupportedOperation ("You can't launch instances with IMDSv1 because httpTokensEnforced
# is enabled for this account...", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/troubleshooting-launch.html).
# Before switching it on, the module reads what in the region launches from a definition that
# allows IMDSv1: launch templates (their $Default and $Latest versions, and the versions Auto
# Scaling groups pin) and the Auto Scaling groups that use them or a launch configuration.
# The effective HttpTokens of a definition: its own MetadataOptions, else the account default
# (as this task leaves it), else ``optional``. The AMI's ImdsSupport (``v2.0`` makes ``required``
# the default) comes between the two at launch and is not read: an AMI-v2.0 template without
# HttpTokens is reported although it would launch (the stricter reading).

TEMPLATE_PAGE = 200  # DescribeLaunchTemplateVersions MaxResults: 1 to 200 (botocore model)
GROUP_PAGE = 100  # DescribeAutoScalingGroups MaxRecords: at most 100 (botocore model)
LAUNCH_CONFIGURATION_NAMES = 50  # DescribeLaunchConfigurations LaunchConfigurationNames: up to 50
REPORT_NAMES_SHOWN = 10


def effective_http_tokens(metadata_options, account):
    """(HttpTokens a launch from this definition gets, where it comes from): the definition's own
    ``MetadataOptions``, else the account default ``account`` ({member: value}), else EC2's
    ``optional`` (AMI ImdsSupport not modelled)."""
    tokens = (metadata_options or {}).get("HttpTokens")
    if tokens:
        return tokens, "launch definition"
    if (account or {}).get("HttpTokens"):
        return account["HttpTokens"], "account default"
    return "optional", "EC2 default"


def _current_templates(ec2):
    """Every launch template of the region with its $Default and $Latest versions, from
    DescribeLaunchTemplateVersions without a template and ``Versions`` $Default and $Latest (the
    API reference: "To describe all launch templates in your account that are defined as the
    latest version, the valid value is $Latest ... You can specify $Latest and $Default in the
    same request"), every page read: {template id: {id, name, default, latest, versions}} with
    ``versions`` {number: MetadataOptions}."""
    try:
        items = paginate(ec2.describe_launch_template_versions, "LaunchTemplateVersions", token_in="NextToken",
                         token_out="NextToken", Versions=["$Default", "$Latest"], MaxResults=TEMPLATE_PAGE)
    except Exception as exc:  # pylint: disable=broad-except
        raise aws_failure(exc, "reading the launch templates of the region")
    templates = {}
    for version in items:
        template = templates.setdefault(version["LaunchTemplateId"], {
            "id": version["LaunchTemplateId"], "name": version.get("LaunchTemplateName"), "default": None,
            "latest": None, "versions": {}})
        number = version["VersionNumber"]
        template["versions"][number] = _options_of(version.get("LaunchTemplateData", {}).get("MetadataOptions"))
        if version.get("DefaultVersion"):
            template["default"] = number
        template["latest"] = max(number, template["latest"] or number)
    for template in templates.values():
        if template["default"] is None:
            template["default"] = template["latest"]
    return templates


def _after_hardening(templates, template_plans, set_default_version):
    """The templates as this task leaves them: for each template it hardens, the version it
    creates (with its MetadataOptions), the default it moves, the latest it makes (the same
    prediction as check mode, ``ensure_template``)."""
    for plan in template_plans:
        _changed, predicted = ensure_template(None, plan, set_default_version, True)
        template = templates.setdefault(plan["id"], {
            "id": plan["id"], "name": plan["name"], "default": plan["default"]["VersionNumber"],
            "latest": plan["latest"]["VersionNumber"], "versions": {}})
        for version in (plan["base"], plan["default"], plan["latest"]):
            template["versions"][version["VersionNumber"]] = _options_of(
                version.get("LaunchTemplateData", {}).get("MetadataOptions"))
        if predicted["new_version"] is not None:
            template["versions"][predicted["new_version"]] = dict(plan["metadata_options"])
            template["latest"] = predicted["new_version"]
        template["default"] = predicted["default_version"]
    return templates


def _groups(autoscaling):
    try:
        return paginate(autoscaling.describe_auto_scaling_groups, "AutoScalingGroups", token_in="NextToken",
                        token_out="NextToken", MaxRecords=GROUP_PAGE)
    except Exception as exc:  # pylint: disable=broad-except
        raise aws_failure(exc, "reading the Auto Scaling groups of the region")


def _group_templates(group):
    """The launch templates an Auto Scaling group launches from: [(LaunchTemplateSpecification)]:
    its ``LaunchTemplate``, or its ``MixedInstancesPolicy.LaunchTemplate.LaunchTemplateSpecification``
    and the specifications of the policy's ``Overrides`` (a template per instance type)."""
    specs = []
    if group.get("LaunchTemplate"):
        specs.append(group["LaunchTemplate"])
    policy = (group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
    if policy.get("LaunchTemplateSpecification"):
        specs.append(policy["LaunchTemplateSpecification"])
    for override in policy.get("Overrides") or []:
        if override.get("LaunchTemplateSpecification"):
            specs.append(override["LaunchTemplateSpecification"])
    return specs


def _version_ref(spec):
    """The version an Auto Scaling group names: its ``Version``, ``$Default`` when it names none
    (Auto Scaling API reference, LaunchTemplateSpecification: "The default value is $Default")."""
    version = str(spec.get("Version") or "$Default")
    lowered = version.lower()
    return "$Default" if lowered == "$default" else "$Latest" if lowered == "$latest" else version


def _resolve(template, ref):
    if ref == "$Default":
        return template["default"]
    if ref == "$Latest":
        return template["latest"]
    return int(ref) if ref.isdigit() else None


def _pinned_versions(ec2, template, numbers):
    """Read the numbered versions an Auto Scaling group pins that are not read yet."""
    missing = sorted(n for n in numbers if n not in template["versions"])
    if not missing:
        return
    try:
        items = paginate(ec2.describe_launch_template_versions, "LaunchTemplateVersions", token_in="NextToken",
                         token_out="NextToken", LaunchTemplateId=template["id"],
                         Versions=[str(n) for n in missing], MaxResults=TEMPLATE_PAGE)
    except Exception as exc:  # pylint: disable=broad-except
        if error_code(exc) in _VERSION_NOT_FOUND + _TEMPLATE_NOT_FOUND:
            return  # a group pinned to a version that is gone launches nothing today either
        raise aws_failure(exc, "reading the versions Auto Scaling groups use of launch template {0!r}".format(
            template["name"] or template["id"]))
    for version in items:
        template["versions"][version["VersionNumber"]] = _options_of(
            version.get("LaunchTemplateData", {}).get("MetadataOptions"))


def _launch_configurations(autoscaling, names):
    """{name: MetadataOptions} of the launch configurations named, 50 names a call."""
    names = sorted(set(names))
    found = {}
    for start in range(0, len(names), LAUNCH_CONFIGURATION_NAMES):
        try:
            items = paginate(autoscaling.describe_launch_configurations, "LaunchConfigurations", token_in="NextToken",
                             token_out="NextToken", LaunchConfigurationNames=names[start:start + LAUNCH_CONFIGURATION_NAMES])
        except Exception as exc:  # pylint: disable=broad-except
            raise aws_failure(exc, "reading the launch configurations of Auto Scaling groups")
        for configuration in items:
            found[configuration["LaunchConfigurationName"]] = configuration.get("MetadataOptions") or {}
    return found


def enforcement_report(ec2, autoscaling, template_plans, account, set_default_version=True):
    """What EC2 would refuse to launch in the region once HttpTokensEnforced is enabled, with the
    account defaults ``account`` ({member: value}, as this task leaves them) and the templates of
    ``template_plans`` hardened as this task hardens them:

    ``{"launch_templates": [{id, name, version_checked, referenced_as, http_tokens, http_tokens_from}],
    "auto_scaling_groups": [{name, launch_template, launch_template_id, version, version_number,
    launch_configuration, http_tokens}]}``; empty lists when nothing would be refused.
    """
    templates = _after_hardening(_current_templates(ec2), template_plans, set_default_version)
    by_name = dict((t["name"], t) for t in templates.values() if t["name"])
    failing = {}

    def check(template, number, ref):
        options = template["versions"].get(number)
        if options is None:
            return None
        tokens, source = effective_http_tokens(options, account)
        if tokens == "required":
            return None
        entry = failing.setdefault((template["id"], number), {
            "id": template["id"], "name": template["name"], "version_checked": number, "referenced_as": [],
            "http_tokens": tokens, "http_tokens_from": source})
        if ref not in entry["referenced_as"]:
            entry["referenced_as"].append(ref)
        return tokens

    for template in templates.values():
        check(template, template["default"], "$Default")
        check(template, template["latest"], "$Latest")

    groups = _groups(autoscaling)
    uses = []  # (group name, template, ref, number)
    configurations = []  # (group name, launch configuration name)
    pinned = {}
    for group in groups:
        for spec in _group_templates(group):
            template = templates.get(spec.get("LaunchTemplateId")) or by_name.get(spec.get("LaunchTemplateName"))
            if template is None:
                continue  # a template that is gone: the group launches nothing today either
            ref = _version_ref(spec)
            number = _resolve(template, ref)
            if number is None:
                continue
            uses.append((group["AutoScalingGroupName"], template, ref, number))
            if ref not in ("$Default", "$Latest"):
                pinned.setdefault(template["id"], set()).add(number)
        if group.get("LaunchConfigurationName"):
            configurations.append((group["AutoScalingGroupName"], group["LaunchConfigurationName"]))
    for template_id, numbers in sorted(pinned.items()):
        _pinned_versions(ec2, templates[template_id], numbers)

    report_groups = []
    for group_name, template, ref, number in uses:
        tokens = check(template, number, ref)
        if tokens is not None:
            report_groups.append({
                "name": group_name, "launch_template": template["name"], "launch_template_id": template["id"],
                "version": ref, "version_number": number, "launch_configuration": None, "http_tokens": tokens})
    if configurations:
        options = _launch_configurations(autoscaling, [name for _group, name in configurations])
        for group_name, name in configurations:
            if name not in options:
                continue
            tokens, _source = effective_http_tokens(options[name], account)
            if tokens != "required":
                report_groups.append({
                    "name": group_name, "launch_template": None, "launch_template_id": None, "version": None,
                    "version_number": None, "launch_configuration": name, "http_tokens": tokens})
    return {
        "launch_templates": sorted(failing.values(), key=lambda e: (e["name"] or "", e["id"], e["version_checked"])),
        "auto_scaling_groups": sorted(report_groups, key=lambda e: (e["name"], e["launch_template"] or "",
                                                                    e["launch_configuration"] or "")),
    }


def _listed(items):
    shown = list(items[:REPORT_NAMES_SHOWN])
    if len(items) > REPORT_NAMES_SHOWN:
        shown.append("and {0} more".format(len(items) - REPORT_NAMES_SHOWN))
    return ", ".join(shown)


def report_summary(report):
    """The report in one sentence: what would fail to launch, by name."""
    templates = ["{0!r} ({1}) version {2} ({3}: http_tokens {4})".format(
        e["name"], e["id"], e["version_checked"], ", ".join(e["referenced_as"]), e["http_tokens"])
        for e in report["launch_templates"]]
    groups = ["{0!r} (launch template {1!r} {2})".format(e["name"], e["launch_template"], e["version"])
              if e["launch_template_id"] else
              "{0!r} (launch configuration {1!r})".format(e["name"], e["launch_configuration"])
              for e in report["auto_scaling_groups"]]
    parts = []
    if templates:
        parts.append("{0} launch template version(s) allow IMDSv1: {1}".format(len(templates), _listed(templates)))
    if groups:
        configurations = any(e["launch_configuration"] for e in report["auto_scaling_groups"])
        parts.append("{0} Auto Scaling group(s) launch from {1}: {2}".format(
            len(groups), "them or from a launch configuration that allows IMDSv1" if configurations else "them",
            _listed(groups)))
    return "; ".join(parts)


def _report_is_empty(report):
    return not report["launch_templates"] and not report["auto_scaling_groups"]


# ---- launch templates -------------------------------------------------------------------------


def _template_label(spec):
    return "launch template {0!r}".format(spec["id"] or spec["name"])


def _template_ref(spec):
    return {"LaunchTemplateId": spec["id"]} if spec["id"] else {"LaunchTemplateName": spec["name"]}


def read_template(ec2, spec):
    """The template's base, default and latest versions in one DescribeLaunchTemplateVersions call."""
    wanted = [spec["version"]] + [v for v in ("$Default", "$Latest") if v != spec["version"]]
    try:
        versions = ec2.describe_launch_template_versions(Versions=wanted, **_template_ref(spec))[
            "LaunchTemplateVersions"]
    except Exception as exc:  # pylint: disable=broad-except
        code = error_code(exc)
        if code in _TEMPLATE_NOT_FOUND:
            raise KeylessError(
                "launch_templates: there is no {0} in this region; check the name or id (and the region). Nothing "
                "was changed.".format(_template_label(spec)), param="launch_templates", code=code)
        if code in _VERSION_NOT_FOUND:
            raise KeylessError(
                "launch_templates: {0} has no version {1}{2}. Use $Default, $Latest or an existing version "
                "number. Nothing was changed.".format(_template_label(spec), spec["version"],
                                                      _existing_versions(ec2, spec)),
                param="launch_templates", code=code)
        raise aws_failure(exc, "reading {0}".format(_template_label(spec)))
    if not versions:
        raise KeylessError("launch_templates: there is no {0} in this region. Nothing was changed.".format(
            _template_label(spec)), param="launch_templates")
    by_number = dict((v["VersionNumber"], v) for v in versions)
    latest = by_number[max(by_number)]
    defaults = [v for v in versions if v.get("DefaultVersion")]
    default = defaults[0] if defaults else latest
    if spec["version"] == "$Latest":
        base = latest
    elif spec["version"] == "$Default":
        base = default
    else:
        base = by_number.get(int(spec["version"]))
        if base is None:
            raise KeylessError("launch_templates: {0} has no version {1}. Nothing was changed.".format(
                _template_label(spec), spec["version"]), param="launch_templates")
    return {
        "id": base["LaunchTemplateId"],
        "name": base["LaunchTemplateName"],
        "base": base,
        "default": default,
        "latest": latest,
    }


def _existing_versions(ec2, spec):
    """' (versions 1 to N exist)' for an error message, or '' when that cannot be read."""
    try:
        versions = ec2.describe_launch_template_versions(Versions=["$Latest"], **_template_ref(spec))[
            "LaunchTemplateVersions"]
        return " (its versions go from 1 to {0})".format(versions[0]["VersionNumber"])
    except Exception:  # pylint: disable=broad-except
        return ""


def _data_without_state(data):
    data = copy.deepcopy(data or {})
    if "MetadataOptions" in data:
        data["MetadataOptions"] = _options_of(data["MetadataOptions"])
    return data


def plan_template(ec2, spec, desired):
    """What a template needs: the new MetadataOptions (base's, with the desired options) and whether the
    latest version already is exactly that (then it is reused, not created again)."""
    template = read_template(ec2, spec)
    base = template["base"]
    current = _options_of(base.get("LaunchTemplateData", {}).get("MetadataOptions"))
    changes = changes_needed(current, desired)
    merged = dict(current)
    merged.update(changes)
    plan = dict(template, spec=spec, current=current, changes=changes, metadata_options=merged, reuse=None)
    if changes:
        expected = _data_without_state(base.get("LaunchTemplateData"))
        expected["MetadataOptions"] = merged
        latest = template["latest"]
        if latest["VersionNumber"] != base["VersionNumber"] and \
                _data_without_state(latest.get("LaunchTemplateData")) == expected:
            plan["reuse"] = latest
    return plan


def template_findings(plan):
    """User data findings in the versions read (base, default, latest): [{version, findings}]."""
    found = []
    seen = set()
    for version in (plan["base"], plan["default"], plan["latest"]):
        number = version["VersionNumber"]
        if number in seen:
            continue
        seen.add(number)
        findings = scan_user_data(version.get("LaunchTemplateData", {}).get("UserData"))
        if findings:
            found.append({
                "launch_template_id": plan["id"],
                "launch_template_name": plan["name"],
                "version": number,
                "findings": findings,
            })
    return found


def ensure_template(ec2, plan, set_default_version, check_mode, version_description=None):
    """Create the hardened version (from the base, only MetadataOptions changed) and make it the default."""
    base_number = plan["base"]["VersionNumber"]
    default_number = plan["default"]["VersionNumber"]
    result = {
        "launch_template_id": plan["id"],
        "launch_template_name": plan["name"],
        "base_version": base_number,
        "new_version": None,
        "matching_version": None,
        "default_version": default_number,
        "changed": False,
        "actions": [],
        "before": snake_options(plan["current"]),
        "after": snake_options(plan["metadata_options"]),
    }
    if not plan["changes"]:
        target = base_number
    elif plan["reuse"] is not None:
        target = plan["reuse"]["VersionNumber"]
    elif check_mode:
        target = plan["latest"]["VersionNumber"] + 1
        result.update(new_version=target, changed=True)
        result["actions"].append("version_created")
    else:
        description = version_description or plan.get("description") or \
            "keyless.aws: version {0} with instance metadata options {1}".format(
                base_number, ", ".join("{0}={1}".format(k, v) for k, v in sorted(plan["changes"].items())))
        try:
            created = ec2.create_launch_template_version(
                # One token for every retry of this call: a retried request never makes a second version.
                ClientToken=str(uuid.uuid4()),
                LaunchTemplateId=plan["id"],
                SourceVersion=str(base_number),
                VersionDescription=description[:255],
                # What the new version changes (launch_templates.py: the profile too); the rest is the base's.
                LaunchTemplateData=plan.get("launch_template_data") or {"MetadataOptions": plan["metadata_options"]},
            )["LaunchTemplateVersion"]
        except Exception as exc:  # pylint: disable=broad-except
            raise aws_failure(exc, "creating a new version of {0}".format(_template_label(plan["spec"])))
        target = created["VersionNumber"]
        result.update(new_version=target, changed=True)
        result["actions"].append("version_created")
    result["matching_version"] = target
    if set_default_version and target != default_number:
        result.update(default_version=target, changed=True)
        result["actions"].append("default_version_set")
        if not check_mode:
            try:
                ec2.modify_launch_template(LaunchTemplateId=plan["id"], DefaultVersion=str(target))
            except Exception as exc:  # pylint: disable=broad-except
                raise aws_failure(exc, "making version {0} the default of {1}".format(
                    target, _template_label(plan["spec"])))
    return result["changed"], result


# ---- instances --------------------------------------------------------------------------------


def plan_instances(ec2, instance_ids, filters, desired, region=None, selection="intersection"):
    """[{instance_id, state, current, changes}] for the selected instances (the one reader's
    meaning of ``instance_ids`` and ``filters``, see instances.py).

    ``changes`` is what the call sends (``call_options``: every option the task names once any
    differs), and always carries ``HttpTokens`` when anything changes: for
    ModifyInstanceMetadataOptions the API reference says an omitted HttpEndpoint or hop limit
    keeps its state, but documents a *default* for HttpTokens ("If the value of ImdsSupport for
    the Amazon Machine Image (AMI) for your instance is v2.0, the default is required"), so a
    call without it may turn IMDSv1 back on. Nothing the user did not name is loosened.
    """
    plans = []
    for instance in select_instances(ec2, instance_ids, filters, region, gone_reason=GONE_REASON, selection=selection):
        current = _options_of(instance.get("MetadataOptions"))
        plans.append({
            "instance_id": instance["InstanceId"],
            "state": state_of(instance),
            "current": current,
            "changes": call_options(current, desired),
        })
    return sorted(plans, key=lambda p: p["instance_id"])


def with_http_tokens(changes, current, desired):
    """``changes`` plus ``HttpTokens`` (the desired value, else the current one) when there is any
    change: every call that sets metadata options names HttpTokens, so none takes its default."""
    if not changes or "HttpTokens" in changes:
        return changes
    tokens = desired.get("HttpTokens") or (current or {}).get("HttpTokens")
    if tokens is None:
        return changes
    return dict(changes, HttpTokens=tokens)


def ensure_instance(ec2, plan, check_mode):
    predicted = dict(plan["current"])
    predicted.update(plan["changes"])
    result = {
        "instance_id": plan["instance_id"],
        "changed": bool(plan["changes"]),
        "before": snake_options(plan["current"]),
        "after": snake_options(predicted),
    }
    result.update(plan.get("imdsv1") or {})
    if not plan["changes"] or check_mode:
        return result["changed"], result
    try:
        ec2.modify_instance_metadata_options(InstanceId=plan["instance_id"], **plan["changes"])
    except Exception as exc:  # pylint: disable=broad-except
        raise aws_failure(exc, "changing the metadata options of instance {0}".format(plan["instance_id"]))
    return True, result


def wait_applied(ec2, results, sent, timeout, timing=None):
    """Wait while EC2 applies the options ``sent`` ({instance id: what its call sent}) to every
    changed instance; fills each result's ``after`` from what EC2 then says.

    Only ``State: pending`` is waited out (EC2 is still applying). Once the state is ``applied``
    (or not given) and the read-back disagrees with what was sent, waiting cannot help: the
    endpoint did not apply it (a plain moto_server drops an omitted option; an API that ignored a
    field), and this fails at once, naming the option, what was sent and what is reported."""
    pending = dict((r["instance_id"], r) for r in results if r["changed"])
    if not pending:
        return

    def read():
        seen = describe_instances(ec2, [{"Name": "instance-id", "Values": sorted(pending)}], "instance_ids")
        for instance_id in list(pending):
            instance = seen.get(instance_id)
            if instance is None:
                continue
            options = instance.get("MetadataOptions") or {}
            if state_of(instance) in GONE_STATES:
                pending.pop(instance_id)["after"] = snake_options(_options_of(options))
                continue
            disagree = changes_needed(_options_of(options), sent.get(instance_id) or {})
            if options.get("State") == "pending" and (disagree or state_of(instance) == "running"):
                continue
            if disagree:
                raise _not_applied(instance_id, disagree, options)
            pending.pop(instance_id)["after"] = snake_options(_options_of(options))
        return pending

    def timed_out(_pending):
        return KeylessError(
            "wait_timeout: the metadata options of {0} were changed but are still not applied after {1} "
            "seconds; run again later to check, or raise wait_timeout.".format(", ".join(sorted(pending)), timeout),
            param="wait_timeout", pending_instances=sorted(pending))

    poll(read, lambda still: not still, timeout, timing or Timing(max_poll_interval=15.0), timed_out)


def _not_applied(instance_id, disagree, options):
    names = dict((member, option) for option, member in OPTIONS)
    parts = ["{0} was sent as {1!r} and is reported as {2!r}".format(names.get(member, member), value,
                                                                   options.get(member))
             for member, value in sorted(disagree.items())]
    return KeylessError(
        "instance {0}: the endpoint reports its metadata options {1} but not as they were sent: {2}. Waiting "
        "cannot help; check what answers for EC2 (a plain moto_server drops options a call leaves out; real EC2 "
        "keeps them).".format(instance_id, "applied" if options.get("State") else "settled", "; ".join(parts)),
        instance_id=instance_id, not_applied=sorted(names.get(member, member) for member in disagree))


# ---- evidence before enforcement: the instances' IMDSv1 calls ------------------------------------


def loses_imdsv1(plan):
    """Whether the instance's planned change takes IMDSv1 away (HttpTokens to required from anything else):
    the one change that breaks software still calling IMDSv1."""
    return plan["changes"].get("HttpTokens") == "required" and plan["current"].get("HttpTokens") != "required"


def plan_imdsv1_evidence(cloudwatch, instance_plans, window_days, skip, warnings, now=None):
    """Read the IMDSv1 calls of the instances over the window (imds_usage.py) and put them on each
    plan (``plan["imdsv1"]``: imdsv1_calls, imdsv1_calls_rejected, last_imdsv1_call,
    skipped_for_imdsv1_use); with ``skip``, an instance that would lose IMDSv1 and made IMDSv1
    calls (served or refused) in the window keeps its options (its changes are dropped).

    Which instances are read: with ``skip``, only those whose change would take IMDSv1 away (the
    others' fields are None), so a re-run that changes nothing makes no CloudWatch call; without
    it, every selected instance (the window alone is a report). Returns the summary:
    {window_days, start, end, period_seconds, instances_read, skipped_instances: [...]}.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    to_read = [plan["instance_id"] for plan in instance_plans if loses_imdsv1(plan) or not skip]
    usage = {}
    if to_read:
        if cloudwatch is None:
            raise KeylessError("{0}: the CloudWatch client is needed to read the IMDSv1 metrics; none was "
                               "given.".format(WINDOW_OPTION), param=WINDOW_OPTION)
        usage = imdsv1_usage(cloudwatch(), to_read, window_days=window_days, now=now)
    unread = {"imdsv1_calls": None, "imdsv1_calls_rejected": None, "last_imdsv1_call": None}
    skipped, enforced_anyway = [], []
    for plan in instance_plans:
        found = usage.get(plan["instance_id"])
        evidence = dict(found or unread, skipped_for_imdsv1_use=False)
        used = bool(found) and bool(found["imdsv1_calls"] or found["imdsv1_calls_rejected"])
        if used and loses_imdsv1(plan):
            if skip:
                evidence["skipped_for_imdsv1_use"] = True
                plan["changes"] = {}
                entry = {"instance_id": plan["instance_id"]}
                for key in ("imdsv1_calls", "imdsv1_calls_rejected", "last_imdsv1_call"):
                    entry[key] = evidence[key]
                skipped.append(entry)
            else:
                enforced_anyway.append(plan["instance_id"])
        plan["imdsv1"] = evidence
    summary = window_summary(window_days, now)
    summary.update(instances_read=len(to_read), skipped_instances=skipped)
    if skipped:
        warnings.append(
            "{0}: {1} of the instances made IMDSv1 calls in the last {2} days and were left as they are, still "
            "allowing IMDSv1: {3}. Update the software on them that calls the metadata service without a token "
            "(the MetadataNoToken metric of CloudWatch counts those calls), then run again once they have "
            "stopped; or set {0}: false to require IMDSv2 on them anyway.".format(
                SKIP_OPTION, len(skipped), window_days, ", ".join(
                    "{0} ({1} calls, {2} refused, the last in the period starting {3})".format(
                        entry["instance_id"], entry["imdsv1_calls"], entry["imdsv1_calls_rejected"],
                        entry["last_imdsv1_call"]) for entry in skipped)))
    if enforced_anyway:
        warnings.append(
            "{0}: {1} made IMDSv1 calls in the last {2} days and get http_tokens: required all the same ({3} is "
            "off); software there that still calls IMDSv1 is refused from then on (CloudWatch counts those calls "
            "as MetadataNoTokenRejected).".format(WINDOW_OPTION, ", ".join(enforced_anyway), window_days,
                                                  SKIP_OPTION))
    return summary


# ---- the whole job of keyless.aws.ec2_metadata_options -----------------------------------------


def manage_metadata_options(ec2, params, check_mode, timing=None, autoscaling=None, cloudwatch=None, now=None):
    """Converge the IMDS options of every target; returns the module's result (its ``timing``
    says where the time went: phases, calls, throttled answers).

    ``params``: the module's parameters (validated here before any AWS call).
    ``autoscaling``: a function that returns the Auto Scaling client, called only when the
    enforcement report is needed (enabling ``http_tokens_enforced``).
    ``cloudwatch``: likewise for the CloudWatch client, called only when IMDSv1 metrics are read
    (``imdsv1_usage_window``); ``now``: the end of that window (an aware datetime; default the
    current time).

    The templates are hardened before the account defaults change, so that switching on
    ``HttpTokensEnforced`` never finds a template of the same task still allowing IMDSv1.
    """
    plan_input, warnings = validated(params)
    desired = plan_input["desired"]
    timing = timing or Timing(max_poll_interval=15.0)
    watch = Stopwatch(timing.clock)

    # Plan: every read, and every check that can fail, before the first change.
    with watch.phase("read"):
        account_plan = plan_account_defaults(ec2, desired, plan_input["http_tokens_enforced"]) \
            if plan_input["account_defaults"] else None
        template_plans = [plan_template(ec2, spec, desired) for spec in plan_input["launch_templates"]]
        resolved = [plan["id"] for plan in template_plans]
        twice = sorted(set(t for t in resolved if resolved.count(t) > 1))
        if twice:
            raise KeylessError("launch_templates: launch template {0} is named twice (by name and by id); name it "
                               "once. Nothing was changed.".format(", ".join(twice)), param="launch_templates")
        instance_plans = []
        if plan_input["instance_ids"] or plan_input["filters"]:
            instance_plans = plan_instances(ec2, plan_input["instance_ids"], plan_input["filters"], desired,
                                            selection=plan_input["selection"])
        imdsv1 = None
        if plan_input[WINDOW_OPTION] is not None:
            imdsv1 = plan_imdsv1_evidence(cloudwatch, instance_plans, plan_input[WINDOW_OPTION],
                                          plan_input[SKIP_OPTION], warnings, now)
        if account_plan is not None and account_plan["tightens"]:
            account_plan["report"] = _checked_report(ec2, autoscaling, template_plans, account_plan, plan_input,
                                                     warnings)

    with watch.phase("plan"):
        findings = _user_data_findings(template_plans, warnings)

    # Apply.
    changed = False
    diff = []
    result = {"instances": [], "launch_templates": [], "account_defaults": None, "user_data_findings": findings,
              "imdsv1_usage": imdsv1}
    with watch.phase("apply"):
        for plan in template_plans:
            template_changed, template_result = ensure_template(
                ec2, plan, plan_input["set_default_version"], check_mode, plan_input["version_description"])
            changed = changed or template_changed
            result["launch_templates"].append(template_result)
            if template_changed:
                diff.append(diff_entry(
                    "launch template {0} ({1})".format(template_result["launch_template_name"],
                                                       template_result["launch_template_id"]),
                    {"version": template_result["base_version"],
                     "default_version": plan["default"]["VersionNumber"],
                     "metadata_options": template_result["before"]},
                    {"version": template_result["matching_version"],
                     "default_version": template_result["default_version"],
                     "metadata_options": template_result["after"]}))
        # After the templates: enforcement switched on finds them hardened.
        if account_plan is not None:
            account_changed, account_result = ensure_account_defaults(ec2, account_plan, check_mode)
            changed = changed or account_changed
            result["account_defaults"] = account_result
            if account_changed:
                diff.append(diff_entry("account instance metadata defaults", account_result["before"],
                                       account_result["after"]))
        outcomes = in_parallel(lambda plan: ensure_instance(ec2, plan, check_mode), instance_plans,
                               plan_input["max_concurrency"])
    instance_results = []
    for instance_changed, instance_result in outcomes:
        changed = changed or instance_changed
        instance_results.append(instance_result)
    if plan_input["wait"] and not check_mode:
        with watch.phase("wait"):
            wait_applied(ec2, instance_results, dict((plan["instance_id"], plan["changes"]) for plan in instance_plans),
                         plan_input["wait_timeout"], timing)
    for instance_result in instance_results:
        if instance_result["changed"]:
            diff.append(diff_entry("instance {0} metadata options".format(instance_result["instance_id"]),
                                   instance_result["before"], instance_result["after"]))
    result["instances"] = instance_results
    result.update(changed=changed, diff=diff or {"before": {}, "after": {}}, warnings=warnings,
                  timing=watch.result(ec2))
    return result


def _checked_report(ec2, autoscaling, template_plans, account_plan, plan_input, warnings):
    """The enforcement report, before any change; a failure naming what would no longer launch
    unless ``http_tokens_enforced_force``, else a warning, when it is not empty."""
    if autoscaling is None:
        raise KeylessError("http_tokens_enforced: the Auto Scaling client is needed to read the groups that "
                           "enforcement could stop launching; none was given.", param=ENFORCED_OPTION)
    report = enforcement_report(ec2, autoscaling(), template_plans, account_plan["predicted"],
                                plan_input["set_default_version"])
    if _report_is_empty(report):
        return report
    what = report_summary(report)
    if not plan_input["http_tokens_enforced_force"]:
        hints = ""
        if any(e["version"] not in (None, "$Default", "$Latest") for e in report["auto_scaling_groups"]):
            hints += "; move the Auto Scaling groups pinned to a version number to a version that requires IMDSv2"
        if any(e["launch_configuration"] for e in report["auto_scaling_groups"]):
            hints += "; replace the launch configurations by launch templates that require IMDSv2"
        raise KeylessError(
            "http_tokens_enforced: with IMDSv2 enforced, EC2 refuses every launch in this region that does not "
            "require IMDSv2 (UnsupportedOperation), and {0}. Harden those templates first (name them in "
            "launch_templates of this task with http_tokens: required: they are hardened before the account "
            "default is set){1}, or set http_tokens_enforced_force: true to enforce anyway. Nothing was "
            "changed.".format(what, hints),
            param=ENFORCED_OPTION,
            account_defaults={"changed": False, "before": account_options(account_plan["current"]),
                              "after": account_options(account_plan["current"]), "enforcement_report": report})
    warnings.append("http_tokens_enforced: enforcing IMDSv2 (http_tokens_enforced_force: true) although {0}; once "
                    "it is enforced, EC2 refuses to launch from them (UnsupportedOperation) until they require "
                    "IMDSv2.".format(what))
    return report


def _user_data_findings(template_plans, warnings):
    """What looks like a key in the templates' user data; a warning per template version."""
    findings = []
    for plan in template_plans:
        for finding in template_findings(plan):
            findings.append(finding)
            lines = sorted(set(f["line"] for f in finding["findings"]))
            warnings.append(
                "launch template {0!r} version {1}: its user data holds what looks like {2} ({3} {4}). Keys baked "
                "into user data are readable by anyone who can describe the template or reach the instance's "
                "metadata; remove them, rotate them, and give the instances an instance profile instead.".format(
                    finding["launch_template_name"], finding["version"],
                    " and ".join(_KIND_TEXT[kind] for kind in _KIND_TEXT
                                 if kind in set(f["kind"] for f in finding["findings"])),
                    "line" if len(lines) == 1 else "lines", ", ".join(str(line) for line in lines)))
    return findings
