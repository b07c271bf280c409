# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""IMDS options on instances: plan from the one reader of instances (instances.py), change,
wait while EC2 says ``pending``; and the IMDSv1 evidence of the instances that would lose IMDSv1.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import Timing
from ansible_collections.keyless.aws.plugins.module_utils.common import aws_failure
from ansible_collections.keyless.aws.plugins.module_utils.common import poll
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import OPTIONS
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import SKIP_OPTION
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import WINDOW_OPTION
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import _options_of
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import call_options
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import changes_needed
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import snake_options
from ansible_collections.keyless.aws.plugins.module_utils.imds_usage import imdsv1_usage
from ansible_collections.keyless.aws.plugins.module_utils.imds_usage import window_summary
from ansible_collections.keyless.aws.plugins.module_utils.instances import GONE_STATES
from ansible_collections.keyless.aws.plugins.module_utils.instances import instances_by_id
from ansible_collections.keyless.aws.plugins.module_utils.instances import select_instances
from ansible_collections.keyless.aws.plugins.module_utils.instances import state_of


GONE_REASON = "their metadata options cannot change"


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
        seen = instances_by_id(ec2, pending)
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
    parts = ["{0} was sent as {1!r} and is reported as {2!r}".format(
        names.get(member, member), value, options.get(member)) for member, value in sorted(disagree.items())]
    return KeylessError(
        "instance {0}: the endpoint reports its metadata options {1} but not as they were sent: {2}. Waiting "
        "cannot help; check what answers for EC2 (a plain moto_server drops options a call leaves out; real EC2 "
        "keeps them).".format(instance_id, "applied" if options.get("State") else "settled", "; ".join(parts)),
        instance_id=instance_id, not_applied=sorted(names.get(member, member) for member in disagree))


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
