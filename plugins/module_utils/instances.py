# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one reader of EC2 instances and of their instance profile associations, within EC2's
limits. Every module (associations, metadata options, profiles) selects instances and reads
associations through here, so ``filters`` and the instance states mean one thing everywhere:

* ``instance_ids`` are read in batches through the ``instance-id`` filter (an id that does not
  exist is found in the same calls, not one error at a time); ids that do not exist fail,
  naming them; terminated or shutting-down instances fail too unless the caller reads only.
* ``filters`` alone select *live* instances (an empty dict selects none, never "all") (pending, running, stopping, stopped) unless they
  say otherwise with ``instance-state-name``; with ``instance_ids``, they narrow the ids
  (``selection="intersection"``, as DescribeInstances reads them both), or add the instances
  they match to the ids (``selection="union"``: one task for "these ids and whatever the
  filters match").
* No describe call carries more than ``FILTER_VALUE_LIMIT`` filter values in all: EC2 answers
  ``FilterLimitExceeded`` ("The maximum number of filter values specified on a single call is
  200"). Filters are ANDed across names and their values ORed, so the filter with the most
  values is split into chunks and the answers are joined, which keeps the meaning; filters that
  cannot be split that way (too many names with values of their own) are refused, naming the
  parameter.
* Transitional instance states (``pending``, ``stopping``) are waited out on request
  (``wait_for_states``): EC2 attaches profiles only to running or stopped instances.

The truth about associations is ``DescribeIamInstanceProfileAssociations``, never the
instance's own ``IamInstanceProfile`` (it lags on AWS; moto does not update it on replace).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import Timing
from ansible_collections.keyless.aws.plugins.module_utils.common import aws_failure
from ansible_collections.keyless.aws.plugins.module_utils.common import paginate
from ansible_collections.keyless.aws.plugins.module_utils.common import poll

try:
    from ansible_collections.amazon.aws.plugins.module_utils.transformation import ansible_dict_to_boto3_filter_list
except ImportError:  # pragma: no cover - amazon.aws is a declared dependency
    ansible_dict_to_boto3_filter_list = None

# EC2: at most 200 filter values in one describe call, all filters together.
FILTER_VALUE_LIMIT = 200
# Page size of the describe calls (the most each API allows).
PAGE_SIZE = 1000

# Instance states (DescribeInstances).
GONE_STATES = ("shutting-down", "terminated")
LIVE_STATES = ("pending", "running", "stopping", "stopped")
# A state on its way to another: pending -> running, stopping -> stopped.
SETTLES_TO = {"pending": "running", "stopping": "stopped"}
# Association states (DescribeIamInstanceProfileAssociations).
ACTIVE_ASSOCIATION_STATES = ("associating", "associated")


def ids_text(ids, limit=20):
    """'a, b, c and 7 more': ids for a message, never a wall of them."""
    ids = list(ids)
    text = ", ".join(ids[:limit])
    if len(ids) > limit:
        text += " and {0} more".format(len(ids) - limit)
    return text


def chunks(items, size):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def boto3_filters(filters):
    """Ansible's filter dict ({"tag:team": "web", "instance-state-name": ["running"]}) as EC2 wants it."""
    return ansible_dict_to_boto3_filter_list(filters) if filters else []


def check_filters(filters, param="filters"):
    """EC2 filters: a dict of filter names to a value or a list of values."""
    if filters is None:
        return None
    for name, value in filters.items():
        if not isinstance(name, str) or not name.strip():
            raise KeylessError("{0}: filter names must be non-empty strings, such as 'tag:team'.".format(param),
                               param=param)
        values = value if isinstance(value, list) else [value]
        if not values or any(v is None or isinstance(v, (dict, list)) for v in values):
            raise KeylessError(
                "{0}: filter {1!r} needs a value or a list of values (strings), for example "
                "{{'tag:team': 'web'}} or {{'instance-state-name': ['running', 'stopped']}}.".format(param, name),
                param=param,
            )
    return filters


def split_filters(filters, param="filters", limit=FILTER_VALUE_LIMIT):
    """The boto3 filter list as one or more filter lists of at most ``limit`` values each, whose
    answers joined are the answer to the whole list.

    Only the filter with the most values is split (its values are ORed, the filters ANDed, so
    the union of the parts is the whole); the others go whole into every part.
    """
    filters = [dict(f, Values=list(f["Values"])) for f in filters or []]
    total = sum(len(f["Values"]) for f in filters)
    if total <= limit:
        return [filters]
    largest = max(range(len(filters)), key=lambda index: len(filters[index]["Values"]))
    room = limit - (total - len(filters[largest]["Values"]))
    if room < 1:
        names = ", ".join(sorted(set(f["Name"] for f in filters)))
        raise KeylessError(
            "{0}: the filters carry {1} values in all ({2}), and EC2 takes at most {3} filter values in one "
            "call (FilterLimitExceeded); only the values of one filter can be split over several calls. Select "
            "with fewer values, for example a tag that the instances share. Nothing was changed.".format(
                param, total, names, limit),
            param=param,
        )
    parts = []
    for values in chunks(filters[largest]["Values"], room):
        part = list(filters)
        part[largest] = dict(filters[largest], Values=values)
        parts.append(part)
    return parts


def describe_instances(ec2, filters, param="filters"):
    """{instance id: instance (boto3 shape)} for a boto3 filter list, every page, within the
    filter value limit."""
    found = {}
    for part in split_filters(filters, param):
        try:
            reservations = paginate(ec2.describe_instances, "Reservations", token_in="NextToken",
                                    token_out="NextToken", Filters=part, MaxResults=PAGE_SIZE)
        except Exception as exc:  # pylint: disable=broad-except
            raise aws_failure(exc, "describing instances")
        for reservation in reservations:
            for instance in reservation.get("Instances") or []:
                found[instance["InstanceId"]] = instance
    return found


def instances_by_id(ec2, instance_ids):
    """{instance id: instance} of these ids (those EC2 still knows): the one way the collection reads
    instances again by id (after a change, while waiting), within the filter value limit."""
    return describe_instances(ec2, [{"Name": "instance-id", "Values": sorted(instance_ids)}], "instance_ids")


def state_of(instance):
    return ((instance or {}).get("State") or {}).get("Name")


SELECTIONS = ("intersection", "union")


def select_instances(ec2, instance_ids=None, filters=None, region=None, allow_gone=False, gone_reason=None,
                     selection="intersection"):
    """The instances a task is about (boto3 shape, in the order of ``instance_ids``, else by id;
    with ``selection="union"``, the ids' instances then those only the filters match), read
    before anything changes. See the module docstring for what ``filters`` mean.

    ``gone_reason`` completes the sentence for terminated instances ("..., and <reason>: ids").
    """
    gone_reason = gone_reason or "nothing can be changed on them"
    if not instance_ids and not filters:
        return []  # an empty filter dict selects no instance, never "every instance"
    if selection == "union" and instance_ids and filters:
        named = select_instances(ec2, instance_ids, None, region, allow_gone, gone_reason)
        seen = set(i["InstanceId"] for i in named)
        matched = select_instances(ec2, None, filters, region, allow_gone, gone_reason)
        return named + [i for i in matched if i["InstanceId"] not in seen]
    user_filters = boto3_filters(filters)
    where = " in {0}".format(region) if region else ""
    if instance_ids:
        found = describe_instances(ec2, user_filters + [{"Name": "instance-id", "Values": list(instance_ids)}])
        missing = [i for i in instance_ids if i not in found]
        if missing and user_filters:
            # Tell "does not exist" from "does not match the filters" (only when something is missing).
            exist = instances_by_id(ec2, missing)
            missing = [i for i in missing if i not in exist]
        if missing:
            raise KeylessError(
                "instance_ids: {0} instance(s) do not exist{1}: {2}. Check the ids and the region. "
                "Nothing was changed.".format(len(missing), where, ids_text(missing)),
                param="instance_ids", missing_instance_ids=missing,
            )
        selected = [found[i] for i in instance_ids if i in found]
        gone = [i for i in selected if state_of(i) in GONE_STATES]
        if gone and not allow_gone:
            raise KeylessError(
                "instance_ids: {0} instance(s) are terminated or shutting down, and {1}: {2}. Remove them from "
                "instance_ids. Nothing was changed.".format(
                    len(gone), gone_reason,
                    ", ".join("{0} ({1})".format(i["InstanceId"], state_of(i)) for i in gone[:20])),
                param="instance_ids", gone_instance_ids=[i["InstanceId"] for i in gone],
            )
        return selected
    if not any(f["Name"] == "instance-state-name" for f in user_filters):
        user_filters.append({"Name": "instance-state-name", "Values": list(LIVE_STATES)})
    found = describe_instances(ec2, user_filters)
    selected = [found[i] for i in sorted(found)]
    gone = [i for i in selected if state_of(i) in GONE_STATES]
    if gone and not allow_gone:
        raise KeylessError(
            "filters: they select {0} instance(s) that are terminated or shutting down: {1}. Narrow the "
            "instance-state-name filter to live states. Nothing was changed.".format(
                len(gone), ids_text(i["InstanceId"] for i in gone)),
            param="filters",
        )
    return selected


def wait_for_states(ec2, instances, timeout, timing=None):
    """Wait until none of ``instances`` (boto3 shape) is ``pending`` or ``stopping``; returns the
    list with the settled instances read again (same order). One batched read per poll, of the
    instances still on their way only. On timeout, fails naming them and their states."""
    latest = dict((i["InstanceId"], i) for i in instances)
    waiting = [i for i, instance in latest.items() if state_of(instance) in SETTLES_TO]
    if not waiting:
        return instances
    first = [True]

    def read():
        if first[0]:  # what the caller read is the first look
            first[0] = False
        else:
            latest.update(instances_by_id(ec2, waiting))
        waiting[:] = [i for i in waiting if state_of(latest[i]) in SETTLES_TO]
        return waiting

    def timed_out(_waiting):
        return KeylessError(
            "wait_timeout: after {0:g} s, {1} instance(s) are still on their way to running or stopped, and EC2 "
            "attaches profiles only to running or stopped instances: {2}. Run the task again once they have "
            "settled, or raise wait_timeout.".format(
                timeout, len(waiting), ", ".join("{0} ({1})".format(i, state_of(latest[i])) for i in waiting[:20])),
            param="wait_timeout", pending_instance_ids=list(waiting),
        )

    poll(read, lambda still: not still, timeout, timing or Timing(), timed_out)
    return [latest[i["InstanceId"]] for i in instances]


# ---- associations ------------------------------------------------------------------------


def describe_associations(ec2, instance_ids=None):
    """{instance_id: [association, ...]} for ``instance_ids`` (every instance that has one when
    None), in boto3 shape, associations in state ``disassociated`` left out.

    Up to FILTER_VALUE_LIMIT instances: one ``instance-id`` filtered call. More: one region-wide
    scan in pages of PAGE_SIZE, which for a fleet is fewer calls than chunks of 200.
    """
    kwargs = {"MaxResults": PAGE_SIZE}
    wanted = None
    if instance_ids is not None:
        wanted = set(instance_ids)
        if not wanted:
            return {}
        if len(wanted) <= FILTER_VALUE_LIMIT:
            kwargs["Filters"] = [{"Name": "instance-id", "Values": sorted(wanted)}]
    try:
        items = paginate(ec2.describe_iam_instance_profile_associations, "IamInstanceProfileAssociations",
                         token_in="NextToken", token_out="NextToken", **kwargs)
    except Exception as exc:  # pylint: disable=broad-except
        raise aws_failure(exc, "reading instance profile associations")
    result = {}
    for association in items:
        instance_id = association.get("InstanceId")
        if association.get("State") == "disassociated":
            continue
        if wanted is not None and instance_id not in wanted:
            continue
        result.setdefault(instance_id, []).append(association)
    return result


def current_association(associations):
    """The association an instance carries now (associating or associated), simplified to
    {association_id, instance_profile_arn, state}; None when it carries none."""
    active = [a for a in associations or [] if a.get("State") in ACTIVE_ASSOCIATION_STATES]
    if not active:
        return None
    # During a swap AWS can briefly list the old (disassociating) and the new one; with two
    # active ones (should not happen) the newest wins.
    latest = sorted(active, key=lambda a: str(a.get("Timestamp") or ""))[-1]
    return {
        "association_id": latest.get("AssociationId"),
        "instance_profile_arn": (latest.get("IamInstanceProfile") or {}).get("Arn"),
        "state": latest.get("State"),
    }


def is_settled(associations):
    """Nothing in flight: no association still associating, and none disassociating unless a
    new one is already active (the old half of a swap)."""
    associations = associations or []
    if any(a.get("State") == "associating" for a in associations):
        return False
    if any(a.get("State") == "disassociating" for a in associations):
        return any(a.get("State") == "associated" for a in associations)
    return True


def profile_usage(ec2, profile_arns=None):
    """{profile ARN: [{instance_id, association_id, state}]} for the region's associations
    (DescribeIamInstanceProfileAssociations cannot filter by profile: one region-wide scan),
    narrowed to ``profile_arns`` when given."""
    usage = {}
    for instance_id, associations in describe_associations(ec2).items():
        for association in associations:
            arn = (association.get("IamInstanceProfile") or {}).get("Arn")
            if profile_arns is not None and arn not in profile_arns:
                continue
            usage.setdefault(arn, []).append({"instance_id": instance_id,
                                              "association_id": association["AssociationId"],
                                              "state": association.get("State")})
    for entries in usage.values():
        entries.sort(key=lambda e: e["instance_id"])
    return usage
