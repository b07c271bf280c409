# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The jobs of keyless.aws.ec2_profile_association (``converge``) and its _info module
(``read_associations``), in named steps: what to converge (profiles.py), which instances (the
one EC2 reader, instances.py: pending and stopping ones waited out), their associations, the
plan (association_plan.py), apply and wait (applier.py), the result.

Functions take boto3 clients (``RetryingClient`` in the modules) and return plain data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.keyless.aws.plugins.module_utils.applier import Applier
from ansible_collections.keyless.aws.plugins.module_utils.applier import failure_sentence
from ansible_collections.keyless.aws.plugins.module_utils.applier import has_none
from ansible_collections.keyless.aws.plugins.module_utils.applier import has_profile
from ansible_collections.keyless.aws.plugins.module_utils.applier import wait_for
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import ASSOCIATED
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import DISASSOCIATED
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import REPLACED
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import UNCHANGED
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import entry_for
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import plan
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import predicted_entry
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import summarize
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import Stopwatch
from ansible_collections.keyless.aws.plugins.module_utils.common import Timing
from ansible_collections.keyless.aws.plugins.module_utils.common import error_code
from ansible_collections.keyless.aws.plugins.module_utils.instances import current_association
from ansible_collections.keyless.aws.plugins.module_utils.instances import describe_associations
from ansible_collections.keyless.aws.plugins.module_utils.instances import ids_text
from ansible_collections.keyless.aws.plugins.module_utils.instances import is_settled
from ansible_collections.keyless.aws.plugins.module_utils.instances import select_instances
from ansible_collections.keyless.aws.plugins.module_utils.instances import state_of
from ansible_collections.keyless.aws.plugins.module_utils.instances import wait_for_states
from ansible_collections.keyless.aws.plugins.module_utils.profiles import profile_matcher
from ansible_collections.keyless.aws.plugins.module_utils.profiles import profile_summary
from ansible_collections.keyless.aws.plugins.module_utils.profiles import wanted_profile

GONE_REASON = "a profile cannot be attached to or detached from them"

# keyless.aws.ec2_profile_association's options: the module's argument spec and the one place
# its defaults live (``with_defaults`` fills them in for callers that are not the module).
ARGUMENT_SPEC = dict(
    instance_ids=dict(type="list", elements="str"),
    filters=dict(type="dict"),
    instance_profile=dict(type="str", aliases=["iam_instance_profile"]),
    role=dict(type="str"),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    require_role=dict(type="bool", default=True),
    trust_check=dict(type="str", default="fail", choices=["fail", "warn", "skip"]),
    propagation_timeout=dict(type="int", default=120),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=300),
    max_concurrency=dict(type="int", default=10),
    max_request_rate=dict(type="float"),
    selection=dict(type="str", default="intersection", choices=["intersection", "union"]),
)


def with_defaults(params):
    """``params`` with every option the caller left out at its argument-spec default."""
    full = dict((name, spec.get("default")) for name, spec in ARGUMENT_SPEC.items())
    full.update((k, v) for k, v in params.items() if v is not None or k not in full)
    return full


# ---- the whole job of keyless.aws.ec2_profile_association ----------------------------------


def converge(ec2, iam, params, check_mode, region=None, timing=None):
    """Converge the selected instances; returns the module's result.

    ``params``: the module's validated parameters: instance_ids, filters, selection,
    instance_profile (a name) and instance_profile_arn (when given as an ARN), or role /
    role_arn, state, require_role, trust_check, propagation_timeout, wait, wait_timeout,
    max_concurrency. The result's ``timing`` says where the time went (phases, calls, throttles).
    """
    params = with_defaults(params)
    timing = timing or Timing()
    watch = Stopwatch(timing.clock)
    with watch.phase("read"):
        profile, trusts, matches, warnings = _what_to_converge(iam, params)
        instances, selection_warnings = _select(ec2, params, region, timing)
        ids = [i["InstanceId"] for i in instances]
        current = _current_associations(ec2, ids, params["wait_timeout"], timing)
    with watch.phase("plan"):
        steps = plan(ids, current, params["state"], profile["Arn"] if params["state"] == "present" else None,
                     matches, dict((i["InstanceId"], state_of(i)) for i in instances))
        if matches is not None and matches.is_a_role and not any(s["action"] == DISASSOCIATED for s in steps):
            warnings = warnings + _nothing_to_detach_for_role(matches.named)
        changed = any(s["action"] != UNCHANGED for s in steps)
    if check_mode or not changed:
        entries = [predicted_entry(s, (current[s["instance_id"]] or {}).get("state"), params["wait"]) for s in steps]
    else:
        entries = _apply(ec2, iam, profile, matches, steps, current, params, timing, watch)
    return {
        "changed": changed,
        "instance_profile": profile_summary(profile),
        "role_trusts_ec2": trusts,
        "diff": {
            "before": dict((s["instance_id"], s["before"]) for s in steps),
            "after": dict((s["instance_id"], s["after"]) for s in steps),
        },
        "warnings": warnings + selection_warnings,
        "associations": entries,
        "summary": summarize(entries),
        "timing": watch.result(ec2, iam),
    }


def _what_to_converge(iam, params):
    """(profile, role_trusts_ec2, matcher, warnings): the profile to attach, checked (state
    present), or the matcher of the associations to detach (state absent)."""
    if params["state"] == "present":
        profile, trusts, warnings = wanted_profile(iam, params)
        return profile, trusts, None, warnings
    if params.get("instance_profile") or params.get("role"):
        matches, warnings = profile_matcher(iam, params.get("instance_profile"), params.get("instance_profile_arn"),
                                            params.get("role"))
        return matches.profile, None, matches, warnings
    return None, None, None, []


def _select(ec2, params, region, timing):
    """(instances, warnings): the selected instances, pending and stopping ones waited out (EC2
    attaches profiles to running or stopped instances only)."""
    instances = select_instances(ec2, params.get("instance_ids"), params.get("filters"), region,
                                 gone_reason=GONE_REASON, selection=params["selection"])
    warnings = []
    if not instances and not params.get("instance_ids"):
        warnings.append("filters: no instance matches {0}; nothing to do.".format(params.get("filters")))
    return wait_for_states(ec2, instances, params["wait_timeout"], timing), warnings


def _current_associations(ec2, ids, wait_timeout, timing):
    """{instance_id: current association or None}, batched; any association in flight is let
    settle before the plan is made on it."""
    associations = describe_associations(ec2, ids)
    unsettled = [i for i in ids if not is_settled(associations.get(i))]
    if unsettled:
        associations.update(wait_for(ec2, dict((i, is_settled) for i in unsettled), wait_timeout, timing,
                                     "settled (an association was already in flight)"))
    return dict((i, current_association(associations.get(i))) for i in ids)


def _nothing_to_detach_for_role(named):
    """state absent named a role as instance_profile and nothing matched: a role that profiles
    hold means the user meant one of those (fail); a role no profile holds (its profile was
    detached and deleted, say by an earlier run) leaves nothing to detach (a warning)."""
    if named.holders:
        raise named.not_a_profile("instance_profile")
    return ["instance_profile: there is no instance profile named {0!r} (only a role of that name, which no "
            "profile holds), so no instance carries it; nothing to detach.".format(named.name)]


def _apply(ec2, iam, profile, matches, steps, current, params, timing, watch):
    """Run the plan, then (``wait``) wait until AWS says it is done; returns the entries. A
    failure carries the ``timing`` so far."""
    applier = Applier(ec2, profile, params["max_concurrency"], params["propagation_timeout"], timing, matches,
                      iam=iam, wait_timeout=params["wait_timeout"])
    with watch.phase("apply"):
        done, failures = applier.apply(steps)
    after_call = dict((step["instance_id"], association) for step, association in done)
    entries = []
    for step in steps:
        if step["action"] == UNCHANGED:
            entries.append(entry_for(step, step["association_id"], (current[step["instance_id"]] or {}).get("state")))
        elif step["instance_id"] in after_call:
            association = after_call[step["instance_id"]] or {}
            default_id = step["association_id"] if step["action"] == DISASSOCIATED else None
            entries.append(entry_for(step, association.get("AssociationId", default_id),
                                     association.get("State", "disassociated")))
    if failures:
        error = _failure(failures, done, entries, profile, applier.propagation_timeout)
        error.details["timing"] = watch.result(ec2, iam)
        raise error
    if params["wait"]:
        with watch.phase("wait"):
            try:
                _wait_done(ec2, steps, entries, profile, params["wait_timeout"], timing)
            except KeylessError as error:
                error.details["timing"] = watch.result(ec2, iam)
                raise
    return entries


def _failure(failures, done, entries, profile, propagation_timeout):
    sentences = []
    for step, problem in failures:
        sentence = failure_sentence(step, problem, profile, propagation_timeout)
        if sentence and sentence not in sentences:
            sentences.append(sentence)
    not_done = [step["instance_id"] for step, _problem in failures]
    if done:
        outcome = ("{0} of {1} instance(s) to change were converged (listed in associations); {2} were not: "
                   "{3}. Run the task again to finish.".format(
                       len(done), len(done) + len(not_done), len(not_done), ids_text(not_done)))
    else:
        outcome = "No instance was changed."
    codes = [error_code(getattr(p, "last_error", p)) for _s, p in failures]
    return KeylessError("{0} {1}".format(" ".join(sentences), outcome),
                        associations=entries, summary=summarize(entries), failed_instance_ids=not_done,
                        code=next((c for c in codes if c), None))


def _wait_done(ec2, steps, entries, profile, wait_timeout, timing):
    """Wait until DescribeIamInstanceProfileAssociations (the truth) shows every change; the
    entries get the final association ids and states."""
    expectations = {}
    for step in steps:
        if step["action"] in (ASSOCIATED, REPLACED):
            expectations[step["instance_id"]] = has_profile(profile["Arn"])
        elif step["action"] == DISASSOCIATED:
            expectations[step["instance_id"]] = has_none
    try:
        final = wait_for(ec2, expectations, wait_timeout, timing, "attached or detached as asked")
    except KeylessError as error:
        error.details.update(associations=entries, summary=summarize(entries))
        raise
    for entry in entries:
        if entry["instance_id"] not in final:
            continue
        if entry["action"] == DISASSOCIATED:
            entry["state"] = "disassociated"
        else:
            now = current_association(final[entry["instance_id"]])
            entry.update(association_id=now["association_id"], state=now["state"])


# ---- the whole job of keyless.aws.ec2_profile_association_info -----------------------------


def read_associations(ec2, iam, params, region=None):
    """Associations of the instances named by ``instance_ids`` / ``filters`` (an entry per
    instance, null fields when it carries no profile), narrowed to ``instance_profile`` when
    given; without instances, every association of that profile (or of the region)."""
    matches, warnings = None, []
    if params.get("instance_profile"):
        matches, warnings = profile_matcher(iam, params["instance_profile"], params.get("instance_profile_arn"))
    if params.get("instance_ids") or params.get("filters"):
        instances = select_instances(ec2, params.get("instance_ids"), params.get("filters"), region, allow_gone=True)
        ids = [i["InstanceId"] for i in instances]
        associations = describe_associations(ec2, ids)
    else:
        associations = describe_associations(ec2)
        ids = sorted(associations)
    entries = []
    for instance_id in ids:
        now = current_association(associations.get(instance_id))
        if matches is not None and (now is None or not matches(now["instance_profile_arn"])):
            continue
        entries.append({
            "instance_id": instance_id,
            "association_id": now["association_id"] if now else None,
            "instance_profile_arn": now["instance_profile_arn"] if now else None,
            "state": now["state"] if now else None,
        })
    if matches is not None and matches.is_a_role and not entries:
        raise matches.named.not_a_profile("instance_profile")
    return {"changed": False, "associations": entries, "warnings": warnings}
