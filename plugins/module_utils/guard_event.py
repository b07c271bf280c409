# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Keyless, continuously: what an AWS API event says (keyless.aws.guard_event_info; the plan is
guard_plan.py, the reads guard.py).

The events the guard handles and what each concerns (``EVENTS``), which it ignores
(``ignore_reason``), and where an event names its subject (``instance_ids_of``, ``template_of``,
``iam_subject_of``), in the shapes CloudTrail records: the older EC2 actions in lowerCamelCase with
``{"items": [...]}`` sets, the newer ones wrapped in ``<Action>Request`` / ``<Action>Response`` with
list members as ``{"tag": N, "content": value}`` and a list of one as the item itself
(tests/sandbox/cloudtrail_events.py cites the published records).

Ignored: not an "AWS API Call via CloudTrail", a call the guard does not watch, a failed call
(``errorCode``: it changed nothing; a DryRun is one), and the calls of the guard's own role
(``own_roles``, default ``keyless-guard``: the event's ``userIdentity.sessionContext.sessionIssuer``).
Not the role session name nor the User-Agent (playbooks/guard_remediate.yml sets both to
``keyless-guard...`` for people reading CloudTrail): any caller chooses those, and a drift-maker could
hide behind them; only a principal allowed to assume the guard's role can make a call of it. Without
that role the guard still never loops: its own changes are not drift, so the event of one plans
nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError

DETAIL_TYPE = "AWS API Call via CloudTrail"
# The role the guard acts through, by default (its calls are ignored: ``own_call``).
DEFAULT_OWN_ROLES = ("keyless-guard",)
_ASSUMED_ROLE = re.compile(r"^arn:aws[a-z-]*:sts::\d{12}:assumed-role/([^/]+)/")

# What an event concerns.
PROFILE = "instance_profile"          # the profile an instance carries
OPTIONS = "metadata_options"          # an instance's IMDS options
TEMPLATE = "launch_template"          # a launch template's default version
DEFAULTS = "account_defaults"         # the region's account-level IMDS defaults
PROFILE_ROLE = "profile_role"         # the role a profile holds
ROLE_TRUST = "role_trust"             # a role's trust in EC2

EC2 = "ec2.amazonaws.com"
IAM = "iam.amazonaws.com"
# eventName -> (eventSource, what it concerns). The rulebook's rules and the EventBridge pattern of
# playbooks/guard_setup.yml name exactly these (tests/unit/plugins/module_utils/test_guard.py).
EVENTS = {
    "RunInstances": (EC2, (PROFILE, OPTIONS)),
    "ModifyInstanceMetadataOptions": (EC2, (OPTIONS,)),
    "DisassociateIamInstanceProfile": (EC2, (PROFILE,)),
    "ReplaceIamInstanceProfileAssociation": (EC2, (PROFILE,)),
    "ModifyInstanceMetadataDefaults": (EC2, (DEFAULTS,)),
    "CreateLaunchTemplateVersion": (EC2, (TEMPLATE,)),
    "ModifyLaunchTemplate": (EC2, (TEMPLATE,)),
    "RemoveRoleFromInstanceProfile": (IAM, (PROFILE_ROLE,)),
    "UpdateAssumeRolePolicy": (IAM, (ROLE_TRUST,)),
}


# ---- the event -------------------------------------------------------------------------------


def _get(data, *path):
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def as_items(value):
    """A list as CloudTrail records it, as a Python list: ``{"items": [...]}`` (the older EC2
    actions), a JSON array, one item standing for a list of one (the newer ones), and members
    ``{"tag": N, "content": value}`` as their value; [] for none (``None``, ``{}``)."""
    if value is None or value == {}:
        return []
    if isinstance(value, dict) and "items" in value and isinstance(value["items"], list):
        value = value["items"]
    if not isinstance(value, list):
        value = [value]
    return [item["content"] if isinstance(item, dict) and set(item) == {"tag", "content"} else item for item in value]


def cloudtrail_event(event):
    """The EventBridge event in ``event``: as EventBridge delivers it, as ansible-rulebook's
    ``amazon.aws.aws_sqs_queue`` hands it on (``{"body": event, "meta": {...}}``; a body still in
    JSON text is decoded), or as ``ansible_eda`` carries it (``{"event": ...}``)."""
    for _level in range(3):
        if not isinstance(event, dict) or "detail" in event:
            break
        if isinstance(event.get("event"), dict):
            event = event["event"]
        elif "body" in event:
            body = event["body"]
            if isinstance(body, str):
                try:
                    body = json.loads(body)
                except ValueError:
                    body = None
            event = body
        else:
            break
    named = isinstance(event, dict) and isinstance(event.get("detail"), dict) and _get(event, "detail", "eventName")
    if not named:
        raise KeylessError(
            "event: this is not an EventBridge event of an AWS API call (no detail.eventName). Give the event as "
            "EventBridge delivers it (detail-type \"AWS API Call via CloudTrail\"), or as ansible-rulebook hands it on "
            "(ansible_eda.event, with the event in body).", param="event")
    return event


def event_summary(event):
    """What the result says about the event: name, source, ids, time, account, region, who."""
    detail = event["detail"]
    identity = detail.get("userIdentity") or {}
    return {
        "name": detail.get("eventName"),
        "source": detail.get("eventSource"),
        "id": event.get("id"),
        "event_id": detail.get("eventID"),
        "time": detail.get("eventTime") or event.get("time"),
        "account_id": event.get("account") or detail.get("recipientAccountId") or identity.get("accountId"),
        "region": detail.get("awsRegion") or event.get("region"),
        "principal": identity.get("arn") or identity.get("invokedBy") or identity.get("type"),
        "error_code": detail.get("errorCode"),
    }


def caller_role(detail):
    """The name of the role whose session made the call (``sessionContext.sessionIssuer`` of an
    assumed role, else the role in its ARN), or None for any other caller."""
    identity = detail.get("userIdentity") or {}
    issuer = _get(identity, "sessionContext", "sessionIssuer") or {}
    if issuer.get("type") == "Role" and issuer.get("userName"):
        return issuer["userName"]
    match = _ASSUMED_ROLE.match(identity.get("arn") or "")
    return match.group(1) if match else None


def own_call(detail, own_roles):
    """Whether the call was made by a session of one of the guard's own roles."""
    role = caller_role(detail)
    return role is not None and role in own_roles


def ignore_reason(event, own_roles=DEFAULT_OWN_ROLES):
    """Why the guard does nothing for this event, in a sentence; None when it looks."""
    detail = event["detail"]
    name = detail["eventName"]
    detail_type = event.get("detail-type")
    if detail_type is not None and detail_type != DETAIL_TYPE:
        return "it is a {0!r} event, not an {1!r} one".format(detail_type, DETAIL_TYPE)
    if name not in EVENTS:
        return "the guard does not watch {0} calls".format(name)
    source = detail.get("eventSource")
    if source is not None and source != EVENTS[name][0]:
        return "it is a {0} call of {1}, not of {2}".format(name, source, EVENTS[name][0])
    if detail.get("errorCode"):
        return "the call failed ({0}), so it changed nothing".format(detail["errorCode"])
    if own_call(detail, own_roles):
        return "it is the guard's own call (a session of its role {0})".format(caller_role(detail))
    return None


def _wrapped(detail, part):
    """requestParameters.<Action>Request or responseElements.<Action>Response (the newer EC2 actions)."""
    key = "requestParameters" if part == "Request" else "responseElements"
    return _get(detail, key, detail["eventName"] + part) or {}


def instance_ids_of(event):
    """The instances an EC2 event is about, sorted: a RunInstances' launches (its answer), the
    instance of ModifyInstanceMetadataOptions (request, else answer), of a disassociation or a
    replacement (the answer: their request names only the association)."""
    detail = event["detail"]
    name = detail["eventName"]
    if name == "RunInstances":
        ids = [_get(item, "instanceId") for item in as_items(_get(detail, "responseElements", "instancesSet"))]
    elif name == "ModifyInstanceMetadataOptions":
        ids = [_get(_wrapped(detail, "Request"), "InstanceId") or _get(_wrapped(detail, "Response"), "instanceId")]
    elif name in ("DisassociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation"):
        ids = [_get(_wrapped(detail, "Response"), "iamInstanceProfileAssociation", "instanceId")]
    else:
        ids = []
    return sorted(set(i for i in ids if isinstance(i, str) and i))


def template_of(event):
    """{id, name} of the launch template of CreateLaunchTemplateVersion or ModifyLaunchTemplate (the
    answer, else the request; either may be None), or None when the event names none."""
    detail = event["detail"]
    response = _wrapped(detail, "Response")
    answer = response.get("launchTemplateVersion") or response.get("launchTemplate") or {}
    request = _wrapped(detail, "Request")
    template_id = answer.get("launchTemplateId") or request.get("LaunchTemplateId")
    name = answer.get("launchTemplateName") or request.get("LaunchTemplateName")
    if not (isinstance(template_id, str) and template_id) and not (isinstance(name, str) and name):
        return None
    return {"id": template_id or None, "name": name or None}


def iam_subject_of(event):
    """{instance_profile, role} an IAM event names (either may be None)."""
    request = event["detail"].get("requestParameters") or {}
    return {"instance_profile": request.get("instanceProfileName"), "role": request.get("roleName")}


def enforcement_turned_off(event):
    """Whether a ModifyInstanceMetadataDefaults asked to turn IMDSv2 enforcement off."""
    asked = _wrapped(event["detail"], "Request").get("HttpTokensEnforced")
    return asked in ("disabled", "no-preference")
