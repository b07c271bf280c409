# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""keyless.aws.ec2_profile_association_info compared with what is expected of the instances: of
the instances selected, which do not carry the expected profile, and whose metadata options differ
from the expected ones - each decided by the rule of the module that would change it:
``association_plan.plan`` (keyless.aws.ec2_profile_association) and ``imds_options.call_options``
(keyless.aws.ec2_metadata_options).

One read of the instances and their associations answers both, so a caller that converges many
things (the instance_profile role) runs the module that changes instances only where there is
something to change: a re-run that finds everything as expected runs neither.

The comparison errs towards "not as expected": an association still in flight, an instance that is
gone (its module then says why it cannot be changed) or a profile that does not exist yet counts as
not as expected, never the other way round.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.keyless.aws.plugins.module_utils.association_plan import UNCHANGED
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import plan
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import _options_of
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import call_options
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import desired_options
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import snake_options
from ansible_collections.keyless.aws.plugins.module_utils.instance_profile import Desired
from ansible_collections.keyless.aws.plugins.module_utils.instance_profile import check_path
from ansible_collections.keyless.aws.plugins.module_utils.instance_profile import ensure_role
from ansible_collections.keyless.aws.plugins.module_utils.instance_profile import ensure_tags
from ansible_collections.keyless.aws.plugins.module_utils.instances import GONE_STATES
from ansible_collections.keyless.aws.plugins.module_utils.instances import current_association
from ansible_collections.keyless.aws.plugins.module_utils.instances import describe_associations
from ansible_collections.keyless.aws.plugins.module_utils.instances import is_settled
from ansible_collections.keyless.aws.plugins.module_utils.instances import select_instances
from ansible_collections.keyless.aws.plugins.module_utils.instances import state_of
from ansible_collections.keyless.aws.plugins.module_utils.profiles import get_profile
from ansible_collections.keyless.aws.plugins.module_utils.profiles import normalize_profile
from ansible_collections.keyless.aws.plugins.module_utils.profiles import profile_matcher
from ansible_collections.keyless.aws.plugins.module_utils.validation import name_and_arn

EXPECTED_PROFILE = "expected_instance_profile"
EXPECTED_OPTIONS = "expected_metadata_options"
EXPECTED_DETAILS = "expected_profile_details"

# A profile that does not exist (yet): no association carries it.
_NO_SUCH_PROFILE = "(no such instance profile)"


def checked_expectations(params, region=None):
    """(profile name or None, its ARN when given as one, desired options {API member: value} or
    None): the expectations, checked before any AWS call."""
    profile, profile_arn = name_and_arn(params.get(EXPECTED_PROFILE), EXPECTED_PROFILE, "instance-profile", region)
    desired = None
    if params.get(EXPECTED_OPTIONS) is not None:
        try:
            desired = desired_options(params[EXPECTED_OPTIONS])
        except KeylessError as error:
            raise KeylessError("{0}: {1}".format(EXPECTED_OPTIONS, error.message), param=EXPECTED_OPTIONS)
        if not desired:
            raise KeylessError("{0}: name at least one option to compare (http_tokens, http_endpoint, "
                               "http_put_response_hop_limit, instance_metadata_tags, http_protocol_ipv6), or leave "
                               "{0} out.".format(EXPECTED_OPTIONS), param=EXPECTED_OPTIONS)
    if params.get(EXPECTED_DETAILS) is not None and not profile:
        raise KeylessError("{0}: it describes the profile of {1}; give {1} too, or leave {0} out.".format(
            EXPECTED_DETAILS, EXPECTED_PROFILE), param=EXPECTED_DETAILS)
    if (profile or desired is not None) and not (params.get("instance_ids") or params.get("filters")):
        param = EXPECTED_PROFILE if profile else EXPECTED_OPTIONS
        raise KeylessError("{0}: the instances are compared with it; name them (instance_ids or filters), or leave "
                           "{0} out.".format(param), param=param)
    return profile, profile_arn, desired


def profile_as_expected(profile, details):
    """Whether keyless.aws.iam_instance_profile, given ``details`` ({role, path, tags, purge_tags},
    its options), would leave ``profile`` (boto3 shape, None for none) as it is - decided by that
    module's own rules (``instance_profile.check_path``, ``ensure_role`` and ``ensure_tags``, in
    check mode: no call). A profile that does not exist, or on a path IAM cannot change, is not."""
    if profile is None:
        return False
    desired = Desired(profile["InstanceProfileName"], details.get("path"), details.get("role"), details.get("tags"),
                      details.get("purge_tags", True))
    try:
        check_path(profile, desired)
    except KeylessError:
        return False
    role = {"RoleName": desired.role} if desired.role else None
    role_changed, _state = ensure_role(None, profile, desired, role, check_mode=True)
    tags_changed, _state = ensure_tags(None, profile, desired, check_mode=True)
    return not (role_changed or tags_changed)


def compare(instances, associations, profile_arn=None, desired=None):
    """The entries of ``instances`` (boto3 shape) and {instance_profile: [ids], metadata_options:
    [ids]}: those not as expected, in the order of ``instances``.

    ``associations``: {instance_id: its associations as DescribeIamInstanceProfileAssociations
    lists them}; ``profile_arn``: the expected profile's ARN, "" for a profile that does not exist,
    None when no profile is expected; ``desired``: {API member: value}, None when no option is."""
    ids = [i["InstanceId"] for i in instances]
    current = dict((i, current_association(associations.get(i))) for i in ids)
    states = dict((i["InstanceId"], state_of(i)) for i in instances)
    actions = {}
    if profile_arn is not None:
        steps = plan(ids, current, "present", profile_arn or _NO_SUCH_PROFILE, instance_states=states)
        actions = dict((step["instance_id"], step["action"]) for step in steps)
    entries, wrong_profile, wrong_options = [], [], []
    for instance in instances:
        instance_id = instance["InstanceId"]
        now = current[instance_id]
        entry = {
            "instance_id": instance_id,
            "association_id": now["association_id"] if now else None,
            "instance_profile_arn": now["instance_profile_arn"] if now else None,
            "state": now["state"] if now else None,
        }
        gone = states[instance_id] in GONE_STATES
        if profile_arn is not None:
            entry["action"] = actions[instance_id]
            if gone or actions[instance_id] != UNCHANGED or not is_settled(associations.get(instance_id)):
                wrong_profile.append(instance_id)
        if desired is not None:
            options = _options_of(instance.get("MetadataOptions"))
            entry["metadata_options"] = snake_options(options)
            if gone or call_options(options, desired):
                wrong_options.append(instance_id)
        entries.append(entry)
    return entries, {"instance_profile": wrong_profile if profile_arn is not None else None,
                     "metadata_options": wrong_options if desired is not None else None}


def read_and_compare(ec2, iam, params, region=None):
    """keyless.aws.ec2_profile_association_info's result for the instances it selects (``selection``
    of ``instance_ids`` and ``filters``), with the expectations (``checked_expectations``) compared:
    each entry's ``action`` and ``metadata_options``, and ``not_as_expected``. ``iam``: a function
    returning the IAM client, called only when a profile is named."""
    profile, profile_arn, desired = checked_expectations(params, region)
    matches, warnings = None, []
    if params.get("instance_profile"):
        matches, warnings = profile_matcher(iam(), params["instance_profile"], params.get("instance_profile_arn"))
    expected_arn, found = None, None
    if profile:
        found = get_profile(iam(), profile)
        expected_arn = found["Arn"] if found else ""
        if found and profile_arn and found["Arn"] != profile_arn:
            raise KeylessError("{0}: instance profile {1!r} has the ARN {2}, not {3}.".format(
                EXPECTED_PROFILE, profile, found["Arn"], profile_arn), param=EXPECTED_PROFILE)
    instances = select_instances(ec2, params.get("instance_ids"), params.get("filters"), region, allow_gone=True,
                                 selection=params.get("selection") or "intersection")
    associations = describe_associations(ec2, [i["InstanceId"] for i in instances])
    entries, not_as_expected = compare(instances, associations, expected_arn, desired)
    if matches is not None:
        kept = set(e["instance_id"] for e in entries
                   if e["instance_profile_arn"] is not None and matches(e["instance_profile_arn"]))
        entries = [e for e in entries if e["instance_id"] in kept]
        not_as_expected = dict((key, None if ids is None else [i for i in ids if i in kept])
                               for key, ids in not_as_expected.items())
        if matches.is_a_role and not entries:
            raise matches.named.not_a_profile("instance_profile")
    result = {"changed": False, "associations": entries, "warnings": warnings}
    if profile or desired is not None:
        result["not_as_expected"] = not_as_expected
    if params.get(EXPECTED_DETAILS) is not None:
        result["instance_profile"] = normalize_profile(found)
        result["profile_as_expected"] = profile_as_expected(found, params[EXPECTED_DETAILS])
    return result
