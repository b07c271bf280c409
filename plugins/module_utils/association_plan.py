# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The plan of instance profile associations, pure: what each instance needs (``associated``,
``replaced``, ``disassociated``, ``unchanged``), the EC2 calls that takes in its state, and the
result entry the module reports for it (``entry_for``: the one place an entry is built).

EC2 replaces the association of running instances only (ReplaceIamInstanceProfileAssociation:
"for the specified running instance"; on a stopped one it answers IncorrectState, aws/aws-cli
issue 5251), so a swap on a stopped instance is two calls: disassociate, then associate.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.keyless.aws.plugins.module_utils.common import error_code
from ansible_collections.keyless.aws.plugins.module_utils.common import error_message

ASSOCIATED = "associated"
REPLACED = "replaced"
DISASSOCIATED = "disassociated"
UNCHANGED = "unchanged"
ACTIONS = (ASSOCIATED, REPLACED, DISASSOCIATED, UNCHANGED)

ASSOCIATE = "AssociateIamInstanceProfile"
REPLACE = "ReplaceIamInstanceProfileAssociation"
DISASSOCIATE = "DisassociateIamInstanceProfile"

# Every form in which EC2 says "I do not know this profile (yet)" (IAM-to-EC2 propagation):
# * InvalidParameterValue "... Invalid IAM Instance Profile name" / "ARN": right after the profile
#   was created, and for a profile that does not exist at all (EC2 cannot tell the two apart);
# * InvalidParameterValue 'IAM Instance Profile "arn:..." has no associated IAM Roles': right after a
#   role was added to the profile (hashicorp/terraform-provider-aws retries it on RunInstances);
# * IncorrectState "ResultDetail: { Code=InstanceIdentityProfileNotFound, ... }" on
#   AssociateIamInstanceProfile (hashicorp/terraform-provider-aws issue 12533).
_PROPAGATION_FORMS = (
    ("InvalidParameterValue", re.compile(r"Invalid IAM Instance Profile (name|ARN)", re.I)),
    ("InvalidParameterValue", re.compile(r"has no associated IAM Roles", re.I)),
    ("IncorrectState", re.compile(r"InstanceIdentityProfileNotFound")),
)


def is_propagation_error(exc):
    """EC2 does not know the profile (yet): one of the forms above. Right after a profile is
    created or given its role this means "not yet"; whether the profile still exists is IAM's
    to say (the Applier asks it between retries)."""
    code = error_code(exc)
    if code is None:
        return False
    message = error_message(exc)
    return any(code == form_code and pattern.search(message) for form_code, pattern in _PROPAGATION_FORMS)


# ---- planning (pure) -----------------------------------------------------------------------


def calls_for(action, instance_state):
    """The EC2 calls a step makes (what check mode predicts, and what the real run does)."""
    if action == ASSOCIATED:
        return [ASSOCIATE]
    if action == DISASSOCIATED:
        return [DISASSOCIATE]
    if action == REPLACED:
        # EC2 replaces the association of running instances only (ReplaceIamInstanceProfileAssociation:
        # "for the specified running instance"); on a stopped one it answers IncorrectState.
        return [REPLACE] if instance_state == "running" else [DISASSOCIATE, ASSOCIATE]
    return []


def plan(instance_ids, current, state, profile_arn=None, matches=None, instance_states=None):
    """What to do on each instance: a list of steps, in the order of ``instance_ids``.

    ``current``: {instance_id: None or {association_id, instance_profile_arn, state}} (see
    ``current_association``); ``state``: ``present`` (``profile_arn`` wanted everywhere) or
    ``absent`` (detach where ``matches(arn)`` is true; every association when ``matches`` is
    None); ``instance_states``: {instance_id: running|stopped} (running when not given). Each
    step: {instance_id, instance_state, action, calls, association_id, before, after} where
    before/after are profile ARNs (None: no profile) and association_id is the current one's.
    """
    if state == "present" and not profile_arn:
        raise ValueError("state present needs the profile ARN")
    instance_states = instance_states or {}
    steps = []
    for instance_id in instance_ids:
        have = current.get(instance_id)
        before = have["instance_profile_arn"] if have else None
        association_id = have["association_id"] if have else None
        if state == "present":
            if have is None:
                action = ASSOCIATED
            elif before == profile_arn:
                action = UNCHANGED
            else:
                action = REPLACED
            after = profile_arn
        else:
            if have is not None and (matches is None or matches(before)):
                action = DISASSOCIATED
                after = None
            else:
                action = UNCHANGED
                after = before
        instance_state = instance_states.get(instance_id, "running")
        steps.append({"instance_id": instance_id, "instance_state": instance_state, "action": action,
                      "calls": calls_for(action, instance_state), "association_id": association_id,
                      "before": before, "after": after})
    return steps


def summarize(entries):
    summary = dict((action, 0) for action in ACTIONS)
    for entry in entries:
        summary[entry["action"]] += 1
    return summary


def predicted_entry(step, current_state, wait):
    """The result entry a check-mode run reports for a step (association ids of new
    associations are unknown until AWS creates them)."""
    action = step["action"]
    if action == UNCHANGED:
        association_id, state = step["association_id"], current_state
    elif action == DISASSOCIATED:
        association_id, state = step["association_id"], "disassociated" if wait else "disassociating"
    else:
        association_id, state = None, "associated" if wait else "associating"
    return entry_for(step, association_id, state)


def entry_for(step, association_id, state):
    """One instance's entry in the module's ``associations`` result (the one place it is built)."""
    return {
        "instance_id": step["instance_id"],
        "action": step["action"],
        "calls": list(step["calls"]),
        "association_id": association_id,
        "instance_profile_arn": step["after"],
        "previous_instance_profile_arn": step["before"],
        "state": state,
    }
