# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Existing launch templates given an instance profile (attach at launch): the job of
keyless.aws.ec2_launch_template_profile (``converge``).

Where the base version of a template does not carry the profile (or, when asked, the IMDS
options), a new version is made from it with ``SourceVersion`` that changes only
``IamInstanceProfile`` (and ``MetadataOptions``, every member the base had kept), and made the
default. The template versions are read, created and made the default by metadata_options.py
(``read_template``, ``ensure_template``: one ClientToken per create, "the latest version is
already it" reused); the profile is checked by profiles.py (``wanted_profile``: a role's name
fails saying so). The Auto Scaling groups that launch from each template are reported, and those
pinned to a version number moved to the new version when asked.

What EC2 and Auto Scaling validate, and when:

* ``CreateLaunchTemplateVersion`` does not check the profile: "Launch template parameters are
  not fully validated when you create the launch template. If you specify incorrect values ...
  instances will fail to launch using this launch template" (EC2 user guide, "Restrictions for
  Amazon EC2 launch templates",
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/launch-template-restrictions.html). So no
  IAM-to-EC2 propagation retry there: a profile EC2 does not know yet shows at launch
  (RunInstances retries it, or the group's scaling activity does).
* ``UpdateAutoScalingGroup`` (and CreateAutoScalingGroup) does check the template it is given:
  "ValidationError: You must use a valid fully-formed launch template. Value (arn:...) for
  parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN" right after the
  profile was made (hashicorp/terraform-provider-aws issue 24910, "updating Auto Scaling Group";
  issues 29866 and 4769 for the create). Moving a pinned group retries that answer for up to
  ``propagation_timeout`` seconds while IAM still holds the profile.

Functions take boto3 clients (``RetryingClient`` in the module) and return plain data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import re
import time

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import Stopwatch
from ansible_collections.keyless.aws.plugins.module_utils.common import Timing
from ansible_collections.keyless.aws.plugins.module_utils.common import aws_failure
from ansible_collections.keyless.aws.plugins.module_utils.common import diff_entry
from ansible_collections.keyless.aws.plugins.module_utils.common import call_aws
from ansible_collections.keyless.aws.plugins.module_utils.common import error_code
from ansible_collections.keyless.aws.plugins.module_utils.common import error_message
from ansible_collections.keyless.aws.plugins.module_utils.common import paginate
from ansible_collections.keyless.aws.plugins.module_utils.common import retrying
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import _data_without_state
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import _options_of
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import changes_needed
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import desired_options
from ansible_collections.keyless.aws.plugins.module_utils.metadata_templates import ensure_template
from ansible_collections.keyless.aws.plugins.module_utils.metadata_templates import read_template
from ansible_collections.keyless.aws.plugins.module_utils.profiles import get_profile
from ansible_collections.keyless.aws.plugins.module_utils.profiles import profile_summary
from ansible_collections.keyless.aws.plugins.module_utils.profiles import profile_name_of
from ansible_collections.keyless.aws.plugins.module_utils.profiles import wanted_profile
from ansible_collections.keyless.aws.plugins.module_utils.profiles import while_iam_holds
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_launch_templates
from ansible_collections.keyless.aws.plugins.module_utils.validation import name_and_arn

# keyless.aws.ec2_launch_template_profile's options: the module's argument spec and the one
# place its defaults live (``with_defaults`` fills them in for callers that are not the module).
ARGUMENT_SPEC = dict(
    launch_templates=dict(type="list", elements="dict", required=True, options=dict(
        name=dict(type="str"),
        id=dict(type="str"),
        version=dict(type="str", default="$Default"),
    )),
    instance_profile=dict(type="str", required=True, aliases=["iam_instance_profile"]),
    require_role=dict(type="bool", default=True),
    trust_check=dict(type="str", default="fail", choices=["fail", "warn", "skip"]),
    http_tokens=dict(type="str", choices=["optional", "required"]),
    http_endpoint=dict(type="str", choices=["enabled", "disabled"]),
    http_put_response_hop_limit=dict(type="int"),
    instance_metadata_tags=dict(type="str", choices=["enabled", "disabled"]),
    http_protocol_ipv6=dict(type="str", choices=["enabled", "disabled"]),
    set_default_version=dict(type="bool", default=True),
    version_description=dict(type="str"),
    update_pinned_auto_scaling_groups=dict(type="bool", default=False),
    propagation_timeout=dict(type="int", default=120),
)

FOLLOWING = ("$Default", "$Latest")

# Where a group names a launch template.
TOP_LEVEL = "LaunchTemplate"
MIXED = "MixedInstancesPolicy"

# What a group does with the version that carries the profile (``action`` in the result).
FOLLOWS = "follows"        # follows $Default or $Latest: new instances get the profile
NOT_FOLLOWING = "not_following"  # follows $Default/$Latest, which is not the version with the profile
PINNED = "pinned"          # pinned to another version number, left there
MOVED = "moved"            # pinned, moved to the version with the profile
UNCHANGED = "unchanged"    # pinned to the version with the profile already

# Auto Scaling's "I do not know this profile (yet)" when it validates a launch template.
_ASG_PROPAGATION = re.compile(r"Invalid IAM Instance Profile|has no associated IAM Roles", re.I)


def with_defaults(params):
    """``params`` with every option the caller left out at its argument-spec default."""
    full = dict((name, spec.get("default")) for name, spec in ARGUMENT_SPEC.items())
    full.update((k, v) for k, v in params.items() if v is not None or k not in full)
    return full


# ---- input -----------------------------------------------------------------------------------


def validated(params, region=None):
    """The module's input, checked before any AWS call: (plan input, warnings)."""
    params = with_defaults(params)
    if not params.get("launch_templates"):
        raise KeylessError("launch_templates: the list is empty; name at least one launch template (name or id, "
                           "optionally version).", param="launch_templates")
    templates = check_launch_templates(params["launch_templates"])
    if params.get("instance_profile") is None:
        raise KeylessError("instance_profile: name the instance profile the templates' instances get at launch "
                           "(a name or an ARN).", param="instance_profile")
    name, arn = name_and_arn(params["instance_profile"], "instance_profile", "instance-profile", region)
    desired = desired_options(params)
    timeout = params["propagation_timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
        raise KeylessError("propagation_timeout: {0!r} is negative; give a number of seconds, 0 or more.".format(
            timeout), param="propagation_timeout")
    warnings = []
    if desired.get("HttpEndpoint") == "disabled":
        warnings.append("http_endpoint is disabled: instances launched from the templates cannot reach the "
                        "instance metadata service, so they get no credentials from the instance profile at all.")
    return {
        "launch_templates": templates,
        "instance_profile": name,
        "instance_profile_arn": arn,
        "require_role": params["require_role"],
        "trust_check": params["trust_check"],
        "desired": desired,
        "set_default_version": params["set_default_version"],
        "version_description": params.get("version_description"),
        "update_pinned_auto_scaling_groups": params["update_pinned_auto_scaling_groups"],
        "propagation_timeout": timeout,
    }, warnings


# ---- the profile a template version carries ---------------------------------------------------


def carried_profile(data):
    """The ``IamInstanceProfile`` of launch template data ({} for none), Name and/or Arn."""
    profile = (data or {}).get("IamInstanceProfile") or {}
    return dict((k, v) for k, v in profile.items() if k in ("Name", "Arn") and v)


def carries(data, profile):
    """Whether launch template data names ``profile`` (boto3 shape): by its ARN, or by its name
    (a profile name is unique in an account). An ARN of another path or account is another profile."""
    carried = carried_profile(data)
    if carried.get("Arn"):
        return carried["Arn"] == profile["Arn"]
    return carried.get("Name") == profile["InstanceProfileName"]


def profile_label(data):
    """What the result says a version carries: the ARN or name given in it, None for no profile."""
    carried = carried_profile(data)
    return carried.get("Arn") or carried.get("Name")


# ---- planning a template ----------------------------------------------------------------------


def plan_template(ec2, spec, profile, desired):
    """What a template needs: the members the new version changes (``launch_template_data``)
    and whether the latest version already is exactly that (then it is reused, not made again).
    The plan is the one metadata_options.ensure_template takes, plus the profile."""
    template = read_template(ec2, spec)
    base = template["base"]
    data = base.get("LaunchTemplateData") or {}
    current = _options_of(data.get("MetadataOptions"))
    metadata_changes = changes_needed(current, desired)
    merged = dict(current)
    merged.update(metadata_changes)
    new_data = {}
    if not carries(data, profile):
        new_data["IamInstanceProfile"] = {"Arn": profile["Arn"]}
    if metadata_changes:
        # A member given replaces the source's whole member: every option the base had is kept.
        new_data["MetadataOptions"] = merged
    changes = dict(metadata_changes)
    if "IamInstanceProfile" in new_data:
        changes["IamInstanceProfile"] = profile["Arn"]
    plan = dict(template, spec=spec, current=current, changes=changes, metadata_options=merged, reuse=None,
                launch_template_data=new_data, profile_before=profile_label(data),
                description=_description(base["VersionNumber"], new_data))
    if new_data:
        latest = template["latest"]
        if latest["VersionNumber"] != base["VersionNumber"] and _is_already(latest, base, new_data, profile):
            plan["reuse"] = latest
    return plan


def _is_already(version, base, new_data, profile):
    """Whether ``version`` is the base with ``new_data`` applied (the profile by name or ARN)."""
    expected = _data_without_state(base.get("LaunchTemplateData"))
    expected.update(copy.deepcopy(new_data))
    seen = _data_without_state(version.get("LaunchTemplateData"))
    if not carries(seen, profile) or not carries(expected, profile):
        return False
    expected.pop("IamInstanceProfile", None)
    seen.pop("IamInstanceProfile", None)
    return seen == expected


def _description(base_number, new_data):
    what = []
    if "IamInstanceProfile" in new_data:
        what.append("instance profile {0}".format(profile_name_of(new_data["IamInstanceProfile"]["Arn"])))
    if "MetadataOptions" in new_data:
        what.append("instance metadata options {0}".format(", ".join(
            "{0}={1}".format(k, v) for k, v in sorted(new_data["MetadataOptions"].items()))))
    return "keyless.aws: version {0} with {1}".format(base_number, " and ".join(what))[:255]


def template_result(plan, ensured, profile):
    """ensure_template's result with the profile in before/after."""
    result = dict(ensured)
    result["latest_version"] = plan["latest"]["VersionNumber"]
    if ensured["new_version"] is not None:
        result["latest_version"] = ensured["new_version"]
    result["before"] = {"instance_profile": plan["profile_before"], "metadata_options": ensured["before"]}
    result["after"] = {
        "instance_profile": profile["Arn"] if "IamInstanceProfile" in plan["launch_template_data"]
        else plan["profile_before"],
        "metadata_options": ensured["after"],
    }
    return result


# ---- Auto Scaling groups ----------------------------------------------------------------------


def describe_groups(autoscaling):
    """Every Auto Scaling group of the region (paginated DescribeAutoScalingGroups)."""
    return call_aws("listing the Auto Scaling groups", paginate, call=autoscaling.describe_auto_scaling_groups,
                    result_key="AutoScalingGroups", token_in="NextToken", token_out="NextToken")


def _specs_of(group):
    """[(where, LaunchTemplateSpecification)] a group launches from: its LaunchTemplate, or its
    MixedInstancesPolicy's template and the templates of its overrides."""
    specs = []
    if group.get("LaunchTemplate"):
        specs.append((TOP_LEVEL, group["LaunchTemplate"]))
    policy = (group.get("MixedInstancesPolicy") or {}).get("LaunchTemplate") or {}
    if policy.get("LaunchTemplateSpecification"):
        specs.append((MIXED, policy["LaunchTemplateSpecification"]))
    for index, override in enumerate(policy.get("Overrides") or []):
        if override.get("LaunchTemplateSpecification"):
            specs.append(("{0}.Overrides[{1}]".format(MIXED, index), override["LaunchTemplateSpecification"]))
    return specs


def _names_template(spec, template_id, template_name):
    if spec.get("LaunchTemplateId"):
        return spec["LaunchTemplateId"] == template_id
    return spec.get("LaunchTemplateName") == template_name


def group_uses(groups, template_id, template_name):
    """[(group, where, version)] of the groups that launch from the template. A group that names
    no version follows $Default (Auto Scaling's default for LaunchTemplateSpecification.Version)."""
    uses = []
    for group in groups:
        for where, spec in _specs_of(group):
            if _names_template(spec, template_id, template_name):
                uses.append((group, where, str(spec.get("Version") or "$Default")))
    return uses


def plan_groups(groups, template_results, move_pinned):
    """One entry per (group, place it names a template): what new instances launch with after the
    run, and whether the group is moved. Pure: from the templates' results (check mode's too)."""
    entries = []
    for result in template_results:
        target = result["matching_version"]
        for group, where, version in group_uses(groups, result["launch_template_id"], result["launch_template_name"]):
            entry = {
                "auto_scaling_group_name": group["AutoScalingGroupName"],
                "launch_template_id": result["launch_template_id"],
                "launch_template_name": result["launch_template_name"],
                "where": where,
                "version_before": version,
                "version_after": version,
                "new_instances_get_profile": False,
            }
            if version in FOLLOWING:
                number = result["default_version"] if version == "$Default" else result["latest_version"]
                entry["new_instances_get_profile"] = number == target
                entry["action"] = FOLLOWS if number == target else NOT_FOLLOWING
            elif int(version) == target:
                entry.update(action=UNCHANGED, new_instances_get_profile=True)
            elif move_pinned:
                entry.update(action=MOVED, version_after=str(target), new_instances_get_profile=True)
            else:
                entry["action"] = PINNED
            entries.append(entry)
    return sorted(entries, key=lambda e: (e["auto_scaling_group_name"], e["launch_template_id"], e["where"]))


def group_warnings(entries, set_default_version):
    """A sentence per group whose new instances would still launch without the profile."""
    warnings = []
    for entry in entries:
        label = "Auto Scaling group {0!r} ({1} of launch template {2!r})".format(
            entry["auto_scaling_group_name"], entry["where"], entry["launch_template_name"])
        if entry["action"] == PINNED:
            warnings.append(
                "{0} is pinned to version {1}, which does not carry the profile, so its new instances launch without "
                "it; set update_pinned_auto_scaling_groups: true to move it, or move it where the group is "
                "managed.".format(label, entry["version_before"]))
        elif entry["action"] == NOT_FOLLOWING:
            warnings.append(
                "{0} follows {1}, which is not the version that carries the profile{2}, so its new instances launch "
                "without it.".format(label, entry["version_before"],
                                     " (set_default_version is false)" if not set_default_version and
                                     entry["version_before"] == "$Default" else ""))
    return warnings


def _moved_request(group, entries):
    """The UpdateAutoScalingGroup arguments that move ``group``'s pinned places to their new versions.
    A specification names the template by id only (Auto Scaling takes an id or a name); a mixed
    instances policy is sent whole (its distribution and overrides as they are)."""
    moves = dict((e["where"], (e["launch_template_id"], e["version_after"])) for e in entries)
    request = {"AutoScalingGroupName": group["AutoScalingGroupName"]}
    if TOP_LEVEL in moves:
        template_id, version = moves[TOP_LEVEL]
        request["LaunchTemplate"] = {"LaunchTemplateId": template_id, "Version": version}
    mixed = [w for w in moves if w.startswith(MIXED)]
    if mixed:
        policy = copy.deepcopy(group["MixedInstancesPolicy"])
        template = policy["LaunchTemplate"]
        for where in mixed:
            template_id, version = moves[where]
            if where == MIXED:
                template["LaunchTemplateSpecification"] = {"LaunchTemplateId": template_id, "Version": version}
            else:
                index = int(where[len(MIXED) + len(".Overrides["):-1])
                template["Overrides"][index]["LaunchTemplateSpecification"] = {
                    "LaunchTemplateId": template_id, "Version": version}
        request["MixedInstancesPolicy"] = policy
    return request


def _asg_not_known_yet(exc):
    return error_code(exc) == "ValidationError" and bool(_ASG_PROPAGATION.search(error_message(exc)))


def move_groups(autoscaling, iam, groups, entries, profile, propagation_timeout, clock=time.monotonic):
    """UpdateAutoScalingGroup, one call per group with a place to move. Auto Scaling validates the
    template it is given: the profile's "not known yet" answers are retried for up to
    ``propagation_timeout`` seconds while IAM still holds the profile."""
    by_name = dict((g["AutoScalingGroupName"], g) for g in groups)
    to_move = {}
    for entry in entries:
        if entry["action"] == MOVED:
            to_move.setdefault(entry["auto_scaling_group_name"], []).append(entry)
    if not to_move:
        return
    name = profile["InstanceProfileName"]
    not_yet = while_iam_holds(_asg_not_known_yet, lambda: get_profile(iam, name) is not None, clock,
                              clock() + propagation_timeout)
    autoscaling = retrying(autoscaling)
    patient = autoscaling.with_extra(not_yet, deadline=max(autoscaling.policy.deadline or 0.0, float(propagation_timeout)))
    for group_name in sorted(to_move):
        request = _moved_request(by_name[group_name], to_move[group_name])
        try:
            patient.update_auto_scaling_group(**request)
        except Exception as exc:  # pylint: disable=broad-except
            failure = aws_failure(exc, "moving Auto Scaling group {0!r} to version {1} of launch template {2!r}".format(
                group_name, to_move[group_name][0]["version_after"], to_move[group_name][0]["launch_template_name"]))
            if _asg_not_known_yet(exc):
                raise KeylessError(
                    failure.message + " Auto Scaling does not know instance profile {0!r} yet (or IAM no longer holds "
                    "it); run again later, or raise propagation_timeout. The launch templates were converged; the "
                    "groups before {1!r} were moved.".format(name, group_name),
                    param="propagation_timeout", code=failure.code, exception=exc)
            raise failure


# ---- the whole job of keyless.aws.ec2_launch_template_profile -----------------------------------


def converge(ec2, iam, autoscaling, params, check_mode, region=None, timing=None):
    """Give the named launch templates the profile (a new default version where needed) and
    report, or move, the Auto Scaling groups that launch from them; returns the module's result.

    ``params``: the module's parameters (validated here, before any AWS call)."""
    plan_input, warnings = validated(params, region)
    timing = timing or Timing()
    watch = Stopwatch(timing.clock)
    with watch.phase("read"):
        profile, trusts, profile_warnings = wanted_profile(iam, plan_input)
        warnings.extend(profile_warnings)
        plans = [plan_template(ec2, spec, profile, plan_input["desired"]) for spec in plan_input["launch_templates"]]
        resolved = [plan["id"] for plan in plans]
        twice = sorted(set(t for t in resolved if resolved.count(t) > 1))
        if twice:
            raise KeylessError("launch_templates: launch template {0} is named twice (by name and by id); name it "
                               "once. Nothing was changed.".format(", ".join(twice)), param="launch_templates")
        groups = describe_groups(autoscaling)

    changed = False
    diff = []
    templates = []
    with watch.phase("apply"):
        for plan in plans:
            template_changed, ensured = ensure_template(ec2, plan, plan_input["set_default_version"], check_mode,
                                                        plan_input["version_description"])
            result = template_result(plan, ensured, profile)
            templates.append(result)
            changed = changed or template_changed
            if template_changed:
                diff.append(diff_entry(
                    "launch template {0} ({1})".format(result["launch_template_name"], result["launch_template_id"]),
                    dict(result["before"], version=result["base_version"],
                         default_version=plan["default"]["VersionNumber"]),
                    dict(result["after"], version=result["matching_version"],
                         default_version=result["default_version"])))
        entries = plan_groups(groups, templates, plan_input["update_pinned_auto_scaling_groups"])
        if any(e["action"] == MOVED for e in entries):
            changed = True
            if not check_mode:
                move_groups(autoscaling, iam, groups, entries, profile, plan_input["propagation_timeout"],
                            clock=timing.clock)
        for entry in entries:
            if entry["action"] == MOVED:
                diff.append(diff_entry(
                    "Auto Scaling group {0} ({1})".format(entry["auto_scaling_group_name"], entry["where"]),
                    {"launch_template": entry["launch_template_name"], "version": entry["version_before"]},
                    {"launch_template": entry["launch_template_name"], "version": entry["version_after"]}))
    warnings.extend(group_warnings(entries, plan_input["set_default_version"]))
    return {
        "changed": changed,
        "instance_profile": profile_summary(profile),
        "role_trusts_ec2": trusts,
        "launch_templates": templates,
        "auto_scaling_groups": entries,
        "diff": diff or {"before": {}, "after": {}},
        "warnings": warnings,
        "timing": watch.result(ec2, iam, autoscaling),
    }
