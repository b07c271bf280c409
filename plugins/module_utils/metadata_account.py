# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The account-level IMDS defaults of a region and, before IMDSv2 enforcement is switched on, the
enforcement report: what in the region would no longer launch.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import aws_failure
from ansible_collections.keyless.aws.plugins.module_utils.common import error_code
from ansible_collections.keyless.aws.plugins.module_utils.common import paginate
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import ACCOUNT_OPTIONS
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import ENFORCED
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import ENFORCED_OPTION
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import NO_PREFERENCE
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import _options_of
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import call_options
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import snake_options
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import with_http_tokens
from ansible_collections.keyless.aws.plugins.module_utils.metadata_templates import _TEMPLATE_NOT_FOUND
from ansible_collections.keyless.aws.plugins.module_utils.metadata_templates import _VERSION_NOT_FOUND
from ansible_collections.keyless.aws.plugins.module_utils.metadata_templates import ensure_template


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


# ---- what enforcement would refuse ---------------------------------------------------------
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
