# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Keyless, continuously: what a subject of an event needs now (keyless.aws.guard_event_info;
the event is read in guard_event.py, the state in guard.py). Pure functions, unit-tested without AWS.

The module's settings checked before any call; the exemption (a tag, default
``keyless:guard=exempt``); the profile an instance must carry (its tag ``keyless:instance-profile``,
honoured only for the profiles the guard may attach - whoever may tag an instance could otherwise have
the guard pass any role - else the first ``expected_profiles`` entry whose tags it carries); and per
subject what to do: attach or swap the profile, require IMDSv2, a new default (or latest) launch
template version requiring IMDSv2, the account default set back (only when the user manages it) - or,
for what the guard must not "fix" (a profile that lost its role, a role that no longer trusts EC2, an
instance nothing names a profile for), a report. ``plan_of`` turns the entries into the lists the
playbook acts on.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import looks_like_arn
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import DEFAULT_OWN_ROLES
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import OPTIONS
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import PROFILE
from ansible_collections.keyless.aws.plugins.module_utils.guard_event import _get
from ansible_collections.keyless.aws.plugins.module_utils.instances import GONE_STATES
from ansible_collections.keyless.aws.plugins.module_utils.instances import current_association
from ansible_collections.keyless.aws.plugins.module_utils.instances import ids_text
from ansible_collections.keyless.aws.plugins.module_utils.instances import state_of
from ansible_collections.keyless.aws.plugins.module_utils.metadata_account import effective_http_tokens
from ansible_collections.keyless.aws.plugins.module_utils.profiles import profile_name_of
from ansible_collections.keyless.aws.plugins.module_utils.profiles import role_names
from ansible_collections.keyless.aws.plugins.module_utils.trust import role_trust
from ansible_collections.keyless.aws.plugins.module_utils.validation import name_from_name_or_arn

DEFAULT_EXEMPTION = {"key": "keyless:guard", "value": "exempt"}
DEFAULT_PROFILE_TAG = "keyless:instance-profile"
ACCOUNT_DEFAULTS_MODES = ("report", "required", "enforced")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_ACCOUNT = re.compile(r"^\d{12}$")

# Report kinds: what the guard saw and did not (or must not) change.
REPORT_KINDS = (
    "instance_without_profile",       # no profile, and nothing says which one it must carry
    "profile_not_allowed",            # its tag names a profile the guard may not attach
    "account_defaults_allow_imdsv1",  # the account default loosened, and the user does not let the guard manage it
    "account_enforcement_off",        # IMDSv2 enforcement off, not managed by the guard
    "account_defaults_managed",       # the defaults are managed by a declarative policy of the organization
    "profile_without_role",           # a profile lost its role: its instances get no credentials
    "role_does_not_trust_ec2",        # a role held by profiles no longer lets EC2 in
    "event_without_subject",          # the event names nothing the guard can read
)


# ---- the settings ------------------------------------------------------------------------------


def settings_of(params):
    """The module's options checked before any AWS call: {expected_profiles [(tags, profile name,
    as given)], allowed (profile names the tag may name), profile_tag, exemption, account_defaults,
    usage_regions, account_id, own_roles (names)}."""
    expected = []
    for index, rule in enumerate(params.get("expected_profiles") or []):
        param = "expected_profiles[{0}]".format(index)
        tags = rule.get("tags") or {}
        if not isinstance(tags, dict) or any(not isinstance(k, str) or not k for k in tags):
            raise KeylessError("{0}.tags: a dict of tag keys to the values the instance must carry.".format(param),
                               param="expected_profiles")
        given = rule.get("instance_profile")
        if not given:
            raise KeylessError("{0}.instance_profile: name the profile the instances it matches must carry.".format(
                param), param="expected_profiles")
        try:
            name = name_from_name_or_arn(given, "expected_profiles", "instance-profile")
        except KeylessError as error:
            raise KeylessError("{0}.instance_profile: {1}".format(param, error.message.split(": ", 1)[-1]),
                               param="expected_profiles")
        expected.append((dict((k, "" if v is None else str(v)) for k, v in tags.items()), name, given))
    allowed = set(name for _tags, name, _given in expected)
    for given in params.get("allowed_profiles") or []:
        allowed.add(name_from_name_or_arn(given, "allowed_profiles", "instance-profile"))
    exemption = params.get("exemption_tag") or DEFAULT_EXEMPTION
    if not exemption.get("key") or exemption.get("value") is None:
        raise KeylessError("exemption_tag: give the tag's key and value (default keyless:guard and exempt).",
                           param="exemption_tag")
    mode = params.get("account_defaults") or "report"
    if mode not in ACCOUNT_DEFAULTS_MODES:
        raise KeylessError("account_defaults: {0!r} is not one of {1}.".format(mode, ", ".join(ACCOUNT_DEFAULTS_MODES)),
                           param="account_defaults")
    regions = list(params.get("usage_regions") or [])
    bad = [r for r in regions if not isinstance(r, str) or not _REGION.match(r)]
    if bad:
        raise KeylessError("usage_regions: {0} is not a region name (like eu-west-1).".format(
            ", ".join(repr(r) for r in bad)), param="usage_regions")
    account = params.get("account_id")
    if account is not None and not _ACCOUNT.match(str(account)):
        raise KeylessError("account_id: {0!r} is not an AWS account id (12 digits).".format(account),
                           param="account_id")
    profile_tag = params.get("profile_tag")
    own_roles = params.get("own_roles")
    own_roles = list(DEFAULT_OWN_ROLES) if own_roles is None else list(own_roles)
    for role in own_roles:
        name_from_name_or_arn(role, "own_roles", "role")
    return {
        "expected_profiles": expected,
        "allowed": allowed,
        "profile_tag": DEFAULT_PROFILE_TAG if profile_tag is None else profile_tag,
        "exemption": {"key": exemption["key"], "value": str(exemption["value"])},
        "account_defaults": mode,
        "usage_regions": regions,
        "account_id": None if account is None else str(account),
        "own_roles": [r.rsplit("/", 1)[-1] for r in own_roles],
    }


# ---- decisions (pure) --------------------------------------------------------------------------


def tags_of(resource):
    """A boto3 ``Tags`` list as a dict."""
    return dict((t.get("Key"), t.get("Value")) for t in (resource or {}).get("Tags") or [])


def is_exempt(tags, exemption):
    return tags.get(exemption["key"]) == exemption["value"]


def _tag_text(tags):
    return ", ".join("{0}={1}".format(k, v) for k, v in sorted(tags.items())) or "any tags"


def expected_profile(tags, settings):
    """(profile to carry or None, why it is that one, problem or None) for an instance's tags: its
    ``keyless:instance-profile`` tag when it names a profile the guard may attach (anyone who may
    tag an instance could otherwise make the guard attach any profile), else the first
    ``expected_profiles`` entry whose tags it carries (``{}`` matches every instance)."""
    tag = settings["profile_tag"]
    named = tags.get(tag) if tag else None
    if named:
        name = named.rsplit("/", 1)[-1] if looks_like_arn(named) else named
        if name in settings["allowed"]:
            return name, "its tag {0}".format(tag), None
        return None, None, (
            "its tag {0} names instance profile {1!r}, which the guard may not attach (it is neither in allowed_profiles "
            "nor in expected_profiles), so it was left as it is".format(tag, named))
    for index, (want, name, _given) in enumerate(settings["expected_profiles"]):
        if all(tags.get(k) == v for k, v in want.items()):
            return name, "expected_profiles[{0}] ({1})".format(index, _tag_text(want)), None
    return None, None, None


def _report(kind, resource, detail):
    return {"kind": kind, "resource": resource, "detail": detail}


def instance_entry(instance, associations, aspects, settings):
    """What one instance needs for the aspects of its event: {instance_id, state, exempt,
    instance_profile (carried), expected_instance_profile, http_tokens, actions [...], reports
    [...]}. ``associations``: the instance's, as DescribeIamInstanceProfileAssociations lists them."""
    instance_id = instance["InstanceId"]
    tags = tags_of(instance)
    now = current_association(associations)
    carried = profile_name_of(now["instance_profile_arn"]) if now and now["instance_profile_arn"] else None
    tokens = (instance.get("MetadataOptions") or {}).get("HttpTokens")
    entry = {"instance_id": instance_id, "state": state_of(instance), "exempt": False, "instance_profile": carried,
             "expected_instance_profile": None, "http_tokens": tokens, "actions": [], "reports": []}
    if entry["state"] in GONE_STATES:
        entry["skipped"] = "the instance is {0}".format(entry["state"])
        return entry
    if is_exempt(tags, settings["exemption"]):
        entry["exempt"] = True
        return entry
    if PROFILE in aspects:
        expected, why, problem = expected_profile(tags, settings)
        entry["expected_instance_profile"] = expected
        if problem:
            entry["reports"].append(_report("profile_not_allowed", instance_id, "Instance {0}: {1}.".format(
                instance_id, problem)))
        elif expected and carried != expected:
            entry["actions"].append({"action": "associate" if carried is None else "replace",
                                     "instance_profile": expected, "why": why})
        elif expected is None and carried is None:
            entry["reports"].append(_report("instance_without_profile", instance_id, (
                "Instance {0} carries no instance profile, and nothing says which one it must carry: tag it {1}=<profile> "
                "(a profile of allowed_profiles), or add an expected_profiles entry its tags match.").format(
                    instance_id, settings["profile_tag"] or DEFAULT_PROFILE_TAG)))
    if OPTIONS in aspects and tokens != "required":
        entry["actions"].append({"action": "require_imdsv2", "why": "HttpTokens is {0}".format(tokens or "unset")})
    return entry


def account_entry(defaults, mode, turned_off=False, region=None):
    """What the region's account defaults need: (action or None, reports). ``defaults``: as
    GetInstanceMetadataDefaults' AccountLevel; ``mode``: ``report`` (never changed), ``required``
    (HttpTokens set back to required), ``enforced`` (and IMDSv2 enforcement on); ``turned_off``:
    the event asked to turn enforcement off."""
    where = " of {0}".format(region) if region else ""
    tokens = defaults.get("HttpTokens")
    enforced = defaults.get("HttpTokensEnforced")
    loose = tokens != "required"
    unenforced = enforced != "enabled" and (mode == "enforced" or turned_off)
    if not loose and not unenforced:
        return None, []
    if defaults.get("ManagedBy") == "declarative-policy":
        return None, [_report("account_defaults_managed", "account defaults", (
            "The account's instance metadata defaults{0} allow IMDSv1 or do not enforce IMDSv2, and a declarative policy "
            "of the organization manages them: change the policy, not the account.").format(where))]
    reports = []
    action = None
    if (mode == "required" and loose) or (mode == "enforced" and (loose or enforced != "enabled")):
        action = {"http_tokens": "required", "http_tokens_enforced": "enabled" if mode == "enforced" else None}
    if loose and mode == "report":
        reports.append(_report("account_defaults_allow_imdsv1", "account defaults", (
            "The account's default HttpTokens{0} is {1}, so new instances that set nothing allow IMDSv1; not changed "
            "(account_defaults=report). Set keyless_guard_account_defaults to required to have it set back.").format(
                where, tokens or "unset (no preference)")))
    if unenforced and mode != "enforced":
        reports.append(_report("account_enforcement_off", "account defaults", (
            "IMDSv2 enforcement (HttpTokensEnforced){0} is {1}: launches that allow IMDSv1 are accepted again; not "
            "changed (account_defaults={2}). Set keyless_guard_account_defaults to enforced to have it turned back "
            "on.").format(where, enforced or "unset (no preference)", mode)))
    return action, reports


def template_entry(template, default_version, latest_version, account, settings):
    """What a launch template needs: {id, name, exempt, default_version, latest_version, http_tokens,
    source, latest_http_tokens, action, latest_action}. ``template``: DescribeLaunchTemplates' entry
    (tags); ``default_version``, ``latest_version``: those versions; ``account``: the account defaults
    (what a launch gets when the template sets nothing).

    A default version that allows IMDSv1 gets a successor that requires IMDSv2, made the default
    (``action``; it is then ``$Latest`` too). Else, a later ``$Latest`` that allows IMDSv1 (what
    launches and Auto Scaling groups naming ``$Latest`` get; CreateLaunchTemplateVersion never
    changes the default) gets a successor that requires IMDSv2, the default left as it is
    (``latest_action``)."""
    entry = {"id": template["LaunchTemplateId"], "name": template.get("LaunchTemplateName"), "exempt": False,
             "default_version": template.get("DefaultVersionNumber"),
             "latest_version": template.get("LatestVersionNumber"), "http_tokens": None, "source": None,
             "latest_http_tokens": None, "action": None, "latest_action": None}
    if is_exempt(tags_of(template), settings["exemption"]):
        entry["exempt"] = True
        return entry

    def tokens(version):
        return effective_http_tokens(((version or {}).get("LaunchTemplateData") or {}).get("MetadataOptions"), account)

    entry["http_tokens"], entry["source"] = tokens(default_version)
    if entry["http_tokens"] != "required":
        entry["action"] = {"id": entry["id"], "version": "$Default"}
        return entry
    if latest_version and latest_version.get("VersionNumber") != (default_version or {}).get("VersionNumber"):
        entry["latest_http_tokens"] = tokens(latest_version)[0]
        if entry["latest_http_tokens"] != "required":
            entry["latest_action"] = {"id": entry["id"], "version": "$Latest"}
    return entry


def _usage_text(usage):
    ids = [u["instance_id"] for u in usage]
    if not ids:
        return "no instance carries it in the regions read"
    return "{0} instance(s) carry it and get no credentials now: {1}".format(len(ids), ids_text(
        "{0} ({1})".format(u["instance_id"], u["region"]) for u in usage))


def profile_role_entry(name, profile, usage, summary, settings):
    """A RemoveRoleFromInstanceProfile: a report when the profile still holds no role (never fixed:
    which role belongs there is the user's decision), nothing when it holds one again or is gone."""
    if profile is None:
        return {"instance_profile": name, "exempt": False, "roles": None, "reports": []}
    entry = {"instance_profile": name, "exempt": is_exempt(tags_of(profile), settings["exemption"]),
             "roles": role_names(profile), "instances": [u["instance_id"] for u in usage], "reports": []}
    if entry["roles"] or entry["exempt"]:
        return entry
    removed = _get(summary, "role") or "its role"
    entry["reports"].append(_report("profile_without_role", name, (
        "Instance profile {0} holds no role since {1} removed {2} ({3}); {4}. Not fixed: put the role back "
        "(iam add-role-to-instance-profile, or keyless.aws.iam_instance_profile with role), or give those instances "
        "another profile.").format(name, summary.get("principal") or "someone", removed, summary.get("time") or "",
                                   _usage_text(usage))))
    return entry


def role_trust_entry(name, role, profiles, usage, summary, settings):
    """An UpdateAssumeRolePolicy: a report when the role, held by instance profiles, no longer
    trusts EC2 (never fixed: the trust policy is the user's decision), nothing otherwise."""
    entry = {"role": name, "exempt": False, "trusts_ec2": None,
             "instance_profiles": sorted(p["InstanceProfileName"] for p in profiles), "reports": []}
    if role is None:
        return entry
    entry["exempt"] = is_exempt(tags_of(role), settings["exemption"])
    analysis = role_trust(role)
    entry["trusts_ec2"] = analysis["trusts_ec2"]
    if analysis["trusts_ec2"] or not profiles or entry["exempt"]:
        return entry
    entry["reports"].append(_report("role_does_not_trust_ec2", name, (
        "Role {0} no longer lets EC2 assume it since {1} changed its trust policy ({2}): {3}. It is held by instance "
        "profile(s) {4}; {5}. Not fixed: restore the trust policy (the keyless.aws.ec2_trust_policy filter renders "
        "it).").format(name, summary.get("principal") or "someone", summary.get("time") or "", analysis["problem"],
                       ", ".join(entry["instance_profiles"]), _usage_text(usage))))
    return entry


# ---- the plan ----------------------------------------------------------------------------------


def _empty(summary):
    return {
        "changed": False,
        "event": summary,
        "ignored": None,
        "instances": [],
        "launch_template": None,
        "account": None,
        "iam": None,
        "associate": [],
        "require_imdsv2": [],
        "launch_templates": [],
        "launch_templates_latest": [],
        "account_defaults": None,
        "reports": [],
        "exempt": [],
    }


def plan_of(result):
    """Fill in the lists the playbook acts on from the entries: ``associate`` (per profile, its
    instances), ``require_imdsv2``, ``exempt``, ``reports``."""
    by_profile = {}
    for entry in result["instances"]:
        if entry["exempt"]:
            result["exempt"].append(entry["instance_id"])
        for action in entry["actions"]:
            if action["action"] in ("associate", "replace"):
                by_profile.setdefault(action["instance_profile"], []).append(entry["instance_id"])
            elif action["action"] == "require_imdsv2":
                result["require_imdsv2"].append(entry["instance_id"])
        result["reports"].extend(entry["reports"])
    result["associate"] = [{"instance_profile": p, "instance_ids": sorted(ids)} for p, ids in sorted(by_profile.items())]
    template = result["launch_template"]
    if template:
        if template["exempt"]:
            result["exempt"].append(template["id"])
        if template.get("action"):
            result["launch_templates"].append(template["action"])
        if template.get("latest_action"):
            result["launch_templates_latest"].append(template["latest_action"])
    if result["iam"]:
        if result["iam"]["exempt"]:
            result["exempt"].append(result["iam"].get("instance_profile") or result["iam"].get("role"))
        result["reports"].extend(result["iam"]["reports"])
    if result["account"]:
        result["reports"].extend(result["account"]["reports"])
    result["msg"] = message(result)
    result["warnings"] = [r["detail"] for r in result["reports"]]
    return result


def message(result):
    """One line: the event, and what it calls for."""
    event = result["event"]
    head = "{0} by {1}".format(event["name"], event["principal"] or "an unknown caller")
    if result["ignored"]:
        return "{0}: ignored, {1}.".format(head, result["ignored"])
    parts = ["{0} to carry {1}".format(", ".join(a["instance_ids"]), a["instance_profile"]) for a in result["associate"]]
    if result["require_imdsv2"]:
        parts.append("IMDSv2 required on {0}".format(", ".join(result["require_imdsv2"])))
    if result["launch_templates"]:
        parts.append("a new default version requiring IMDSv2 for {0}".format(
            ", ".join(t["id"] for t in result["launch_templates"])))
    if result["launch_templates_latest"]:
        parts.append("a new latest version requiring IMDSv2 for {0} (its default version already does)".format(
            ", ".join(t["id"] for t in result["launch_templates_latest"])))
    if result["account_defaults"]:
        parts.append("the account default set back to HttpTokens required{0}".format(
            " and enforced" if result["account_defaults"]["http_tokens_enforced"] else ""))
    text = "{0}: {1}".format(head, "; ".join(parts) if parts else "nothing to put right")
    if result["reports"]:
        text += "; {0} reported, not changed".format(len(result["reports"]))
    if result["exempt"]:
        text += "; exempt: {0}".format(", ".join(result["exempt"]))
    return text + "."
