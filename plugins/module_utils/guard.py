# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Keyless, continuously: what one AWS API event calls for now (keyless.aws.guard_event_info,
run by playbooks/guard_remediate.yml, which the rulebook extensions/eda/rulebooks/keyless_guard.yml
starts for each event).

The event is a hint, never the truth: it says which call was made and on what (the instances of a
RunInstances, the launch template of a CreateLaunchTemplateVersion, the profile of a
RemoveRoleFromInstanceProfile); the state is read again here, and only what is wrong *now* is
planned. A second look at the same event, or the event of the guard's own fix, plans nothing.

guard_event.py reads the event (which events, which are ignored, where they name their subject);
guard_plan.py decides what each subject needs; here, the reads and the module's result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import call_aws
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import DEFAULTS
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import EC2
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import EVENTS
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import IAM
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import OPTIONS
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import PROFILE
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import PROFILE_ROLE
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import TEMPLATE
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import cloudtrail_event
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import enforcement_turned_off
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import event_summary
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import iam_subject_of
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import ignore_reason
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import instance_ids_of
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import template_of
from ansible_collections.keyless.aws.plugins.module_utils.guard_plan import _empty
from ansible_collections.keyless.aws.plugins.module_utils.guard_plan import _report
from ansible_collections.keyless.aws.plugins.module_utils.guard_plan import account_entry
from ansible_collections.keyless.aws.plugins.module_utils.guard_plan import instance_entry
from ansible_collections.keyless.aws.plugins.module_utils.guard_plan import plan_of
from ansible_collections.keyless.aws.plugins.module_utils.guard_plan import profile_role_entry
from ansible_collections.keyless.aws.plugins.module_utils.guard_plan import role_trust_entry
from ansible_collections.keyless.aws.plugins.module_utils.guard_plan import settings_of
from ansible_collections.keyless.aws.plugins.module_utils.guard_plan import template_entry
from ansible_collections.keyless.aws.plugins.module_utils.instances import describe_associations
from ansible_collections.keyless.aws.plugins.module_utils.instances import instances_by_id
from ansible_collections.keyless.aws.plugins.module_utils.instances import profile_usage
from ansible_collections.keyless.aws.plugins.module_utils.metadata_account import get_account_defaults
from ansible_collections.keyless.aws.plugins.module_utils.profiles import get_profile
from ansible_collections.keyless.aws.plugins.module_utils.profiles import get_role
from ansible_collections.keyless.aws.plugins.module_utils.profiles import profile_name_of
from ansible_collections.keyless.aws.plugins.module_utils.profiles import profiles_for_role
from ansible_collections.keyless.aws.plugins.module_utils.profiles import role_names
from ansible_collections.keyless.aws.plugins.module_utils.trust import role_trust


# ---- reading the state the event hints at ---------------------------------------------------------


def _read_instances(ec2, event, aspects, settings, result):
    ids = instance_ids_of(event)
    if not ids:
        result["reports"].append(_report("event_without_subject", result["event"]["name"], (
            "The {0} event names no instance the guard can read; nothing was changed.").format(result["event"]["name"])))
        return
    found = instances_by_id(ec2, ids)
    live = [i for i in ids if i in found]
    associations = describe_associations(ec2, live) if PROFILE in aspects and live else {}
    for instance_id in ids:
        if instance_id not in found:
            result["instances"].append({"instance_id": instance_id, "state": None, "exempt": False, "actions": [],
                                        "reports": [], "skipped": "EC2 does not know the instance (any more)"})
            continue
        result["instances"].append(instance_entry(found[instance_id], associations.get(instance_id), aspects,
                                                  settings))


def _read_template(ec2, event, settings, result):
    named = template_of(event)
    if named is None:
        result["reports"].append(_report("event_without_subject", result["event"]["name"], (
            "The {0} event names no launch template; nothing was changed.").format(result["event"]["name"])))
        return
    ref = {"LaunchTemplateIds": [named["id"]]} if named["id"] else {"LaunchTemplateNames": [named["name"]]}
    label = "launch template {0}".format(named["id"] or named["name"])
    found = call_aws("reading " + label, ec2.describe_launch_templates,
                     expected=("InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateName.NotFoundException",
                               "InvalidLaunchTemplateId.Malformed"), **ref)
    templates = (found or {}).get("LaunchTemplates") or []
    if not templates:
        result["launch_template"] = {"id": named["id"], "name": named["name"], "exempt": False, "action": None,
                                     "skipped": "the launch template no longer exists"}
        return
    template = templates[0]
    versions = call_aws("reading the default and latest versions of " + label, ec2.describe_launch_template_versions,
                        LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Default", "$Latest"])
    versions = versions.get("LaunchTemplateVersions") or []
    default = ([v for v in versions if v.get("DefaultVersion")] or [None])[0]
    latest = max(versions, key=lambda v: v.get("VersionNumber") or 0) if versions else None
    result["launch_template"] = template_entry(template, default, latest, get_account_defaults(ec2), settings)


def _usage(clients, region, settings, names):
    """[{instance_id, region, instance_profile}] of the instances carrying any of the profiles
    ``names`` in the regions read (``usage_regions``, else the module's)."""
    found = []
    for where in settings["usage_regions"] or [region]:
        for arn, entries in profile_usage(clients("ec2", where)).items():
            if profile_name_of(arn) in names:
                found.extend({"instance_id": e["instance_id"], "region": where, "instance_profile": profile_name_of(arn)}
                             for e in entries)
    return sorted(found, key=lambda u: (u["region"], u["instance_id"]))


def _read_iam(clients, region, event, aspects, settings, result):
    subject = iam_subject_of(event)
    summary = dict(result["event"], role=subject["role"])
    iam = clients("iam", None)
    if PROFILE_ROLE in aspects:
        name = subject["instance_profile"]
        if not name:
            result["reports"].append(_report("event_without_subject", result["event"]["name"],
                                             "The event names no instance profile; nothing was read."))
            return
        profile = get_profile(iam, name)
        usage = _usage(clients, region, settings, set([name])) if profile is not None and not role_names(profile) else []
        result["iam"] = profile_role_entry(name, profile, usage, summary, settings)
        return
    name = subject["role"]
    if not name:
        result["reports"].append(_report("event_without_subject", result["event"]["name"],
                                         "The event names no role; nothing was read."))
        return
    role = get_role(iam, name)
    profiles = profiles_for_role(iam, name) if role is not None else []
    usage = []
    if role is not None and profiles and not role_trust(role)["trusts_ec2"]:
        usage = _usage(clients, region, settings, set(p["InstanceProfileName"] for p in profiles))
    result["iam"] = role_trust_entry(name, role, profiles, usage, summary, settings)


def guard(clients, params, region):
    """keyless.aws.guard_event_info's result. ``clients(service, region)`` gives a client (region
    None: the module's); ``region``: the module's region."""
    settings = settings_of(params)
    event = cloudtrail_event(params.get("event"))
    summary = event_summary(event)
    result = _empty(summary)
    result["ignored"] = ignore_reason(event, settings["own_roles"])
    if result["ignored"]:
        return plan_of(result)
    source, aspects = EVENTS[summary["name"]]
    if settings["account_id"] and summary["account_id"] and summary["account_id"] != settings["account_id"]:
        raise KeylessError(
            "account_id: the event is of account {0}, but the credentials act in account {1}: nothing was read. Give "
            "the guard a role to assume in {0} (keyless_guard_accounts, or keyless_assume_role_name), or run it with "
            "that account's credentials.".format(summary["account_id"], settings["account_id"]), param="account_id")
    if source == EC2 and summary["region"] and region and summary["region"] != region:
        raise KeylessError(
            "region: the event is of region {0}, but the module runs in {1}, where its instances and templates are "
            "not: nothing was read. Run it in {0} (playbooks/guard_remediate.yml takes the region from the "
            "event).".format(summary["region"], region), param="region")
    if source == IAM:
        _read_iam(clients, region, event, aspects, settings, result)
        return plan_of(result)
    ec2 = clients("ec2", None)
    if PROFILE in aspects or OPTIONS in aspects:
        _read_instances(ec2, event, aspects, settings, result)
    elif TEMPLATE in aspects:
        _read_template(ec2, event, settings, result)
    elif DEFAULTS in aspects:
        defaults = get_account_defaults(ec2)
        action, reports = account_entry(defaults, settings["account_defaults"], enforcement_turned_off(event),
                                        summary["region"])
        result["account"] = {"http_tokens": defaults.get("HttpTokens"),
                             "http_tokens_enforced": defaults.get("HttpTokensEnforced"),
                             "managed_by": defaults.get("ManagedBy"), "reports": reports}
        result["account_defaults"] = action
    return plan_of(result)
