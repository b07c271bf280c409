#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ec2_profile_association
short_description: Attach, swap and detach IAM instance profiles on existing EC2 instances, one or a whole fleet
version_added: 0.1.0
description:
  - Gives running or stopped EC2 instances an IAM instance profile after launch, swaps the profile they carry
    for another, or takes it away. One task converges one instance or hundreds.
  - Instances are chosen by O(instance_ids), by O(filters) (for example tags), or by both (the filters then
    narrow the ids, or with O(selection=union) add the instances they match).
  - Where an instance carries no profile it is associated; where it carries another one, the profile is
    replaced; where it already carries the right one, nothing is done.
  - What EC2 allows in each instance state, and what the module does there. C(running) - a swap is one call,
    C(ReplaceIamInstanceProfileAssociation), so the instance is never left without credentials. C(stopped) - EC2
    replaces associations of running instances only (it answers C(IncorrectState) on a stopped one), so a swap
    is C(DisassociateIamInstanceProfile), a wait until the old association is gone, then
    C(AssociateIamInstanceProfile); nothing runs on a stopped instance, so there is no gap to avoid. The action
    is still V(replaced), and RV(associations[].calls) says which calls were made. When the attach fails, the
    old profile is attached again. C(pending) and C(stopping) - EC2 attaches profiles to running or stopped
    instances only, so the module waits (within O(wait_timeout)) until they are running or stopped, then
    converges them. C(shutting-down) and C(terminated) - nothing can be attached or detached; named by
    O(instance_ids), they fail the module before any change.
  - Reads are batched (instances and associations are described in chunks, never one call per instance) and
    changes run in parallel (O(max_concurrency)), so a run that changes nothing makes the same few API calls
    for 1 or 200 instances, and a first run makes one call per instance that changes plus those few.
  - EC2 throttles each account and region with token buckets (100 attach or detach calls at once, then 5 a
    second; 50 then 5 for swaps; 100 then 20 for reads). The module paces its calls by those documented
    rates, in the module process, across its threads, so a large fleet runs at that limit and is hardly ever
    refused; a throttled answer slows it down further (the budget is shared by everything else in the account)
    and is retried for as long as O(wait_timeout) lasts, never counted against a number of attempts.
    O(max_request_rate) leaves part of the budget to other automation. RV(timing) says where the time went.
  - No describe call carries more than the 200 filter values EC2 takes in one call (C(FilterLimitExceeded));
    O(instance_ids) together with O(filters) are read in as many calls as that needs.
  - Before any change the module checks that the profile exists, holds a role (O(require_role)) and that the
    role trusts EC2 (O(trust_check)), and that every instance named exists and is not terminated.
  - Right after a profile is created, or given its role, EC2 may not know it for a minute or two; the module
    retries every form of that answer for up to O(propagation_timeout) seconds (see O(propagation_timeout)). A
    profile that does not exist fails at once, before any change; one deleted while the module waits ends the
    wait at once, with a message that says so.
  - See the user guide page C(docs/attach-after-launch.md) for the common mistakes and the exact messages
    the module gives for each.
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  instance_ids:
    description:
      - The instances, by id. Each must exist in the module's region and must not be terminated or shutting
        down; the module fails naming those that do not qualify before any change. Stopped instances are fine.
      - With O(filters) too, only the instances that match the filters are converged (see O(selection)).
    type: list
    elements: str
  selection:
    description:
      - How O(instance_ids) and O(filters) combine when both are given.
      - V(intersection) - the instances named by id that also match the filters, as C(DescribeInstances) reads
        both.
      - V(union) - the instances named by id, and every live instance the filters match (one task for "these
        instances and the ones tagged so").
    type: str
    choices: [intersection, union]
    default: intersection
    version_added: 0.2.0
  filters:
    description:
      - EC2 C(DescribeInstances) filters that select the instances, as a dict of filter names to a value or a
        list of values, for example C(tag:team) to V(web) and C(instance-state-name) to V(running). See
        U(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstances.html) for the names.
      - EC2 takes at most 200 filter values in one call. The values of one filter are split over several calls
        where needed (that keeps the meaning); filters whose other values alone leave no room are refused,
        naming this parameter, before any change.
      - An empty dict selects no instance (never "all instances").
      - Unless the filters name C(instance-state-name), only live instances (pending, running, stopping,
        stopped) are selected.
      - Filters that match no instance are not an error; the module warns and changes nothing.
    type: dict
  instance_profile:
    description:
      - The instance profile to attach (O(state=present)) or to detach (O(state=absent)), by name or ARN.
      - A role name given here is the most common mistake; the module fails, says that it is a role, and names
        the profiles that hold it. Use O(role) to name the profile by its role instead.
      - With O(state=absent), only instances that carry this profile lose it; left unset, every selected
        instance loses whatever profile it carries.
      - Mutually exclusive with O(role).
    type: str
    aliases: ["iam_instance_profile"]
  role:
    description:
      - The IAM role (name or ARN) whose instance profile to attach. Exactly one profile must hold it; the
        module fails saying how to create one when none does, and lists them when several do.
      - With O(state=absent), instances that carry any profile holding this role lose it.
      - Mutually exclusive with O(instance_profile).
    type: str
  state:
    description:
      - V(present) gives every selected instance the profile (O(instance_profile) or O(role) is required).
      - V(absent) takes the profile away (see O(instance_profile)).
    type: str
    choices: ["present", "absent"]
    default: present
  require_role:
    description:
      - Fail before any change when the profile holds no role; such a profile gives instances no credentials.
      - Only with O(state=present).
    type: bool
    default: true
  trust_check:
    description:
      - What to do when the profile's role does not allow C(sts:AssumeRole) for the EC2 service principal of
        its partition; instances given the profile then get no credentials.
      - V(fail) fails before any change, V(warn) warns and goes on, V(skip) does not look.
      - Only with O(state=present). The verdict is returned as RV(role_trusts_ec2).
    type: str
    choices: ["fail", "warn", "skip"]
    default: fail
  propagation_timeout:
    description:
      - How long, in seconds, to keep retrying while EC2 does not know a profile that exists in IAM yet. EC2
        says so in several forms, all retried - C(InvalidParameterValue ... Invalid IAM Instance Profile name)
        (or C(ARN)); C(InvalidParameterValue IAM Instance Profile "..." has no associated IAM Roles) (right after
        a role was added to the profile); C(IncorrectState ResultDetail ... InstanceIdentityProfileNotFound).
      - Between retries the module asks IAM whether the profile still exists; when IAM says it is gone, the
        wait ends at once and the module fails saying so.
      - Only the first instance waits for it; the others are attached once EC2 knows the profile.
      - V(0) does not wait.
    type: int
    default: 120
  wait:
    description:
      - Wait until every association made is C(associated) (and every one removed is gone), as
        C(DescribeIamInstanceProfileAssociations) reports, before returning.
      - Associations already in flight (C(associating), C(disassociating)) when the module starts are always
        waited for before they are changed, within O(wait_timeout).
    type: bool
    default: true
  wait_timeout:
    description:
      - How long to wait, in seconds, for associations to settle (see O(wait)), for C(pending) and C(stopping)
        instances to become running or stopped, and, in a swap on a stopped instance, for the old association
        to be gone.
    type: int
    default: 300
  max_concurrency:
    description:
      - How many instances are changed at the same time (1 to 100). Every call still goes through the
        collection's pacing and retry policy, so throttling slows the run down rather than failing it; more
        threads hide the latency of each call, they do not raise the rate EC2 allows.
    type: int
    default: 10
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - keyless.aws.attributes
  - keyless.aws.attributes.ACTIONGROUP
  - keyless.aws.pacing
attributes:
  check_mode:
    support: full
    details:
      - A check-mode run makes no mutating AWS call and returns the same RV(associations) (actions, calls and
        profile ARNs) and RV(summary) as a real run would; the ids of associations a real run would create are
        V(null).
  diff_mode:
    support: full
    details:
      - Shows, for each selected instance, the ARN of the profile it carries before and after (V(null) for none).
  idempotent:
    support: full
notes:
  - The association is the truth (C(DescribeIamInstanceProfileAssociations)); the instance's own
    C(IamInstanceProfile) attribute can lag behind it.
  - An instance carries at most one instance profile, and a profile holds at most one role.
  - After an association changes, the instance's metadata service can take a few seconds to serve the new
    role's credentials.
  - Attaching or swapping a profile (C(ec2:AssociateIamInstanceProfile), C(ec2:ReplaceIamInstanceProfileAssociation))
    also needs C(iam:PassRole) on the profile's role; EC2 refuses either lack with the same
    C(UnauthorizedOperation), and the failure names both.
seealso:
  - module: keyless.aws.ec2_profile_association_info
  - module: keyless.aws.iam_instance_profile
  - module: keyless.aws.ec2_metadata_options
    description: Requires IMDSv2 on the instances, so the credentials the profile brings are served to session holders only.
  - module: keyless.aws.imds_credentials
    description: Proves on an instance that the credentials of the profile's role arrive after an attach or a swap.
  - module: amazon.aws.ec2_instance
    description: Sets a profile at launch; it cannot detach one from a running instance.
"""

EXAMPLES = r"""
- name: Attach after launch - give instances that are already running the profile web-app
  keyless.aws.ec2_profile_association:
    instance_ids:
      - i-0123456789abcdef0
      - i-0fedcba9876543210
    instance_profile: web-app

- name: Swap - instances carrying any other profile get web-app-v2, in one call each (no gap)
  keyless.aws.ec2_profile_association:
    instance_ids: "{{ web_instance_ids }}"
    instance_profile: web-app-v2

- name: Detach - take the profile web-app away from these instances (others' profiles are left alone)
  keyless.aws.ec2_profile_association:
    instance_ids: "{{ web_instance_ids }}"
    instance_profile: web-app
    state: absent

- name: Tagged fleet - every live instance tagged team=web, 20 at a time
  keyless.aws.ec2_profile_association:
    filters:
      "tag:team": web
    instance_profile: arn:aws:iam::123456789012:instance-profile/web-app
    max_concurrency: 20
  register: web_fleet

- name: Say what changed
  ansible.builtin.debug:
    msg: "{{ web_fleet.summary }}"

- name: Role instead of profile - attach whichever profile holds the role web-app-role
  keyless.aws.ec2_profile_association:
    filters:
      "tag:team": web
      instance-state-name: running
    role: web-app-role

- name: Large fleet sharing the account with other automation - at most 2 attach calls a second
  keyless.aws.ec2_profile_association:
    filters:
      "tag:Name": batch
    instance_profile: batch-worker
    max_request_rate: 2
    wait_timeout: 900
  register: batch_fleet

- name: Where the time went (seconds per phase, calls, throttled answers)
  ansible.builtin.debug:
    msg: "{{ batch_fleet.timing }}"

- name: The instances named by id and those tagged team=web, in one task
  keyless.aws.ec2_profile_association:
    instance_ids: "{{ new_instance_ids }}"
    filters:
      "tag:team": web
    selection: union
    instance_profile: web-app

- name: Attach a profile created a moment ago (EC2 may need a minute to know it)
  keyless.aws.ec2_profile_association:
    instance_ids: "{{ new_instance_ids }}"
    instance_profile: batch-worker
    propagation_timeout: 180
"""

RETURN = r"""
associations:
  description:
    - One entry per selected instance, in the order of O(instance_ids) (else sorted by instance id), with
      what the run did (in check mode, would do).
    - When the module fails part-way, the failure result carries the entries of the instances it did converge.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: The instance.
      type: str
      sample: i-0123456789abcdef0
    action:
      description:
        - V(associated) (it had no profile), V(replaced) (it had another one), V(disassociated) (the profile
          was taken away) or V(unchanged).
      type: str
      sample: associated
    calls:
      description:
        - The EC2 calls the action takes, in order (in check mode, the calls a real run would make) -
          V(ReplaceIamInstanceProfileAssociation) for a swap on a running instance,
          V(DisassociateIamInstanceProfile) then V(AssociateIamInstanceProfile) for a swap on a stopped one;
          empty for V(unchanged).
      type: list
      elements: str
      sample: ["ReplaceIamInstanceProfileAssociation"]
      version_added: 0.2.0
    association_id:
      description:
        - The association's id after the run (a swap gives a new one); for V(disassociated), the id of the
          association removed. V(null) when the instance carries no profile, and in check mode for
          associations the run would create.
      type: str
      sample: iip-assoc-0123456789abcdef0
    instance_profile_arn:
      description: ARN of the profile the instance carries after the run, V(null) for none.
      type: str
      sample: arn:aws:iam::123456789012:instance-profile/web-app
    previous_instance_profile_arn:
      description: ARN of the profile the instance carried before the run, V(null) for none.
      type: str
      sample: arn:aws:iam::123456789012:instance-profile/web-app-v1
    state:
      description:
        - The association's state, V(associated) once settled (V(associating) with O(wait=false));
          V(disassociated) (V(disassociating) with O(wait=false)) for a profile taken away; V(null) when the
          instance carries no profile.
      type: str
      sample: associated
summary:
  description: How many instances got each action.
  returned: always
  type: dict
  sample: {"associated": 198, "replaced": 2, "disassociated": 0, "unchanged": 0}
instance_profile:
  description:
    - The profile attached (or, with O(state=absent), named), as found in IAM.
    - V(null) when no profile was named, or the one named for a detach no longer exists.
  returned: always
  type: dict
  contains:
    instance_profile_name:
      description: Its name.
      type: str
      sample: web-app
    arn:
      description: Its ARN.
      type: str
      sample: arn:aws:iam::123456789012:instance-profile/web-app
    role_name:
      description: The role it holds, V(null) for none.
      type: str
      sample: web-app
timing:
  description:
    - Where the run's time went, so that "why did this take three minutes" has its answer in the result.
    - Also in the failure result when the module fails part-way.
  returned: always
  type: dict
  version_added: 0.2.0
  contains:
    seconds:
      description:
        - Seconds per phase - V(read) (the profile, the instances, their associations), V(plan), V(apply) (the
          EC2 calls, pacing included), V(wait) (until EC2 reports every change), and V(total).
      type: dict
      sample: {"read": 0.42, "plan": 0.0, "apply": 181.3, "wait": 1.1, "total": 182.9}
    api_calls:
      description: AWS API calls made (every attempt, retries included), EC2 and IAM.
      type: int
      sample: 1012
    throttled:
      description: How many of those AWS refused as throttled (and were retried).
      type: int
      sample: 0
    paced_seconds:
      description:
        - Seconds the calls waited for the client-side pacer (summed over the threads), that is for the
          account's rate limit.
      type: float
      sample: 178.4
    calls_by_action:
      description: The calls per API action.
      type: dict
      sample: {"AssociateIamInstanceProfile": 1000, "DescribeInstances": 1, "GetInstanceProfile": 1}
    request_rates:
      description:
        - Calls a second each pacer bucket allowed at the end of the run (service/bucket); lower than EC2's
          documented rate after throttled answers.
      type: dict
      sample: {"ec2/associations": 5.0, "ec2/non_mutating": 20.0}
role_trusts_ec2:
  description:
    - Whether the profile's role lets EC2 assume it. V(null) with O(state=absent), O(trust_check=skip) or a
      profile with no role.
  returned: always
  type: bool
  sample: true
"""

from ansible_collections.keyless.aws.plugins.module_utils.associations import ARGUMENT_SPEC
from ansible_collections.keyless.aws.plugins.module_utils.associations import converge
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.instances import check_filters
from ansible_collections.keyless.aws.plugins.module_utils.module import KeylessModule
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_instance_ids
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_request_rate
from ansible_collections.keyless.aws.plugins.module_utils.validation import name_and_arn

MAX_CONCURRENCY = 100


def validated(params, region):
    """The module's parameters, checked before any AWS call."""
    checked = dict(params)
    if params["instance_ids"] is not None and not params["instance_ids"] and not params["filters"]:
        raise KeylessError("instance_ids: the list is empty; name at least one instance, or select them with "
                           "filters.", param="instance_ids")
    checked["instance_ids"] = check_instance_ids(params["instance_ids"], "instance_ids")
    checked["filters"] = check_filters(params["filters"])
    for param, resource_type in (("instance_profile", "instance-profile"), ("role", "role")):
        checked[param], checked[param + "_arn"] = name_and_arn(params[param], param, resource_type, region)
    for param in ("propagation_timeout", "wait_timeout"):
        if params[param] < 0:
            raise KeylessError("{0}: {1} is negative; give a number of seconds, 0 or more.".format(
                param, params[param]), param=param)
    if not 1 <= params["max_concurrency"] <= MAX_CONCURRENCY:
        raise KeylessError("max_concurrency: {0} is out of range; give 1 to {1}.".format(
            params["max_concurrency"], MAX_CONCURRENCY), param="max_concurrency")
    checked["max_request_rate"] = check_request_rate(params["max_request_rate"])
    return checked


def main():
    argument_spec = dict(ARGUMENT_SPEC)
    module = KeylessModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_one_of=[["instance_ids", "filters"]],
        mutually_exclusive=[["instance_profile", "role"]],
        required_if=[["state", "present", ["instance_profile", "role"], True]],
    )

    def run():
        params = validated(module.params, module.region)
        ec2 = module.retrying_client("ec2", max_pool_connections=max(10, params["max_concurrency"]))
        return converge(ec2, module.retrying_client("iam"), params, module.check_mode, region=module.region)

    module.run(run)


if __name__ == "__main__":
    main()
