#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ec2_profile_association_info
short_description: Which IAM instance profile EC2 instances carry
version_added: 0.1.0
description:
  - Lists instance profile associations, in the entry shape of M(keyless.aws.ec2_profile_association), for the
    instances named by O(instance_ids) or selected by O(filters), for the instances that carry
    O(instance_profile), or for the whole region.
  - Reads are batched, whatever the number of instances. The truth is
    C(DescribeIamInstanceProfileAssociations), not the instance's own C(IamInstanceProfile) attribute.
  - With O(expected_instance_profile) or O(expected_metadata_options), it also says which of the instances selected
    are not as expected (RV(not_as_expected)), by the rule of the module that would change them
    (M(keyless.aws.ec2_profile_association), M(keyless.aws.ec2_metadata_options)), from the same read. A playbook or
    role then runs those modules only where there is something to change (the role C(keyless.aws.instance_profile)
    does, so that its re-run reads the instances once and changes nothing).
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  instance_ids:
    description:
      - The instances, by id; each gets an entry, with V(null) fields when it carries no profile.
      - Ids that do not exist in the region fail the module, naming them. Terminated instances are listed.
    type: list
    elements: str
  filters:
    description:
      - EC2 C(DescribeInstances) filters that select the instances, as a dict, for example C(tag:team) to V(web).
      - Unless the filters name C(instance-state-name), only live instances are selected.
    type: dict
  instance_profile:
    description:
      - Only instances that carry this profile (name or ARN).
      - Alone, lists every instance of the region that carries it. A profile that no longer exists still
        matches associations that name it.
    type: str
    aliases: ["iam_instance_profile"]
  selection:
    description:
      - How O(instance_ids) and O(filters) combine when both are given.
      - V(intersection) - the instances named by id that also match the filters.
      - V(union) - the instances named by id, and every live instance the filters match (as
        O(keyless.aws.ec2_profile_association#module:selection=union) selects them).
    type: str
    choices: [intersection, union]
    default: intersection
    version_added: 0.2.0
  expected_instance_profile:
    description:
      - The instance profile (name or ARN) the instances should carry. Each entry then gets RV(associations[].action),
        what M(keyless.aws.ec2_profile_association) with this profile would do to the instance, and
        RV(not_as_expected.instance_profile) lists the instances it would change.
      - A profile that does not exist (yet) is carried by no instance; an association still in flight and an instance
        that is gone count as not as expected (the module that changes them waits, or says why it cannot).
      - Needs instances (O(instance_ids) or O(filters)).
    type: str
    version_added: 0.2.0
  expected_metadata_options:
    description:
      - The metadata options the instances should have, as M(keyless.aws.ec2_metadata_options) takes them; options
        left out are not compared. Each entry then gets RV(associations[].metadata_options), and
        RV(not_as_expected.metadata_options) lists the instances whose options differ (an instance that is gone
        too).
      - Needs instances (O(instance_ids) or O(filters)).
    type: dict
    version_added: 0.2.0
    suboptions:
      http_tokens:
        description: V(required) or V(optional).
        type: str
        choices: ["optional", "required"]
      http_endpoint:
        description: V(enabled) or V(disabled).
        type: str
        choices: ["enabled", "disabled"]
      http_put_response_hop_limit:
        description: 1 to 64.
        type: int
      instance_metadata_tags:
        description: V(enabled) or V(disabled).
        type: str
        choices: ["enabled", "disabled"]
      http_protocol_ipv6:
        description: V(enabled) or V(disabled).
        type: str
        choices: ["enabled", "disabled"]
  expected_profile_details:
    description:
      - What M(keyless.aws.iam_instance_profile) would be given for O(expected_instance_profile) (its options of the
        same names). The result then says, in RV(profile_as_expected), whether that module would leave the profile as
        it is, decided by its own rules, and gives the profile in RV(instance_profile), from the same read.
      - So a caller that converges the profile and its instances (the instance_profile role) runs
        M(keyless.aws.iam_instance_profile) only when something is to change.
      - Needs O(expected_instance_profile).
    type: dict
    version_added: 0.2.0
    suboptions:
      role:
        description: The name of the role the profile should hold; V("") for none; left out, any.
        type: str
      path:
        description: The profile's path; left out, any.
        type: str
      tags:
        description: The profile's tags; left out, any.
        type: dict
      purge_tags:
        description: Whether tags not in O(expected_profile_details.tags) make the profile differ.
        type: bool
        default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - keyless.aws.attributes
  - keyless.aws.attributes.INFO_MODULE
  - keyless.aws.attributes.ACTIONGROUP
notes:
  - With no option set, every association of the region is listed.
seealso:
  - module: keyless.aws.ec2_profile_association
  - module: keyless.aws.iam_instance_profile_info
    description: The profiles themselves, with their role and, with include_usage, the instances they are attached to.
"""

EXAMPLES = r"""
- name: Which profile do these instances carry?
  keyless.aws.ec2_profile_association_info:
    instance_ids:
      - i-0123456789abcdef0
      - i-0fedcba9876543210
  register: carried

- name: Every instance of the region that carries web-app
  keyless.aws.ec2_profile_association_info:
    instance_profile: web-app
  register: web_app_users

- name: Instances tagged team=web that carry no profile at all
  keyless.aws.ec2_profile_association_info:
    filters:
      "tag:team": web
  register: web_fleet

- name: List them
  ansible.builtin.debug:
    msg: "{{ web_fleet.associations | selectattr('association_id', 'none') | map(attribute='instance_id') }}"

- name: Which of two instances and the web fleet do not carry web-app yet, or still allow IMDSv1?
  keyless.aws.ec2_profile_association_info:
    instance_ids:
      - i-0123456789abcdef0
      - i-0fedcba9876543210
    filters:
      "tag:team": web
    selection: union
    expected_instance_profile: web-app
    expected_metadata_options:
      http_tokens: required
  register: expected

- name: Attach web-app only where it is missing (a re-run makes no ec2_profile_association run)
  keyless.aws.ec2_profile_association:
    instance_ids: "{{ expected.not_as_expected.instance_profile }}"
    instance_profile: web-app
  when: expected.not_as_expected.instance_profile | length > 0
"""

RETURN = r"""
associations:
  description:
    - One entry per instance selected (O(instance_ids) order, else sorted by instance id); with
      O(instance_profile), only those that carry it.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: The instance.
      type: str
      sample: i-0123456789abcdef0
    association_id:
      description: The id of its association, V(null) when it carries no profile.
      type: str
      sample: iip-assoc-0123456789abcdef0
    instance_profile_arn:
      description: ARN of the profile it carries, V(null) for none.
      type: str
      sample: arn:aws:iam::123456789012:instance-profile/web-app
    state:
      description: The association's state (V(associating) or V(associated)), V(null) for none.
      type: str
      sample: associated
    action:
      description:
        - With O(expected_instance_profile), what M(keyless.aws.ec2_profile_association) with that profile would do
          to the instance - V(associated), V(replaced) or V(unchanged).
      returned: when O(expected_instance_profile) is set
      type: str
      sample: unchanged
      version_added: 0.2.0
    metadata_options:
      description: With O(expected_metadata_options), the instance's metadata options now.
      returned: when O(expected_metadata_options) is set
      type: dict
      sample: {"http_tokens": "required", "http_endpoint": "enabled", "http_put_response_hop_limit": 1,
               "instance_metadata_tags": "disabled", "http_protocol_ipv6": "disabled"}
      version_added: 0.2.0
not_as_expected:
  description:
    - The instances selected that are not as O(expected_instance_profile) and O(expected_metadata_options) say, in
      the order of RV(associations).
  returned: when O(expected_instance_profile) or O(expected_metadata_options) is set
  type: dict
  version_added: 0.2.0
  contains:
    instance_profile:
      description:
        - The instances M(keyless.aws.ec2_profile_association) would change (or wait for, or refuse), V(null)
          without O(expected_instance_profile).
      type: list
      elements: str
      sample: ["i-0123456789abcdef0"]
    metadata_options:
      description:
        - The instances M(keyless.aws.ec2_metadata_options) would change (or refuse), V(null) without
          O(expected_metadata_options).
      type: list
      elements: str
      sample: []
profile_as_expected:
  description:
    - Whether O(expected_instance_profile) exists and M(keyless.aws.iam_instance_profile) with O(expected_profile_details)
      would leave it as it is (the role it holds, its path, its tags).
  returned: when O(expected_profile_details) is set
  type: bool
  sample: true
  version_added: 0.2.0
instance_profile:
  description:
    - O(expected_instance_profile) as IAM has it, in the shape M(keyless.aws.iam_instance_profile) returns (V(null) when
      it does not exist).
  returned: when O(expected_profile_details) is set
  type: dict
  sample: {"instance_profile_name": "web-app", "arn": "arn:aws:iam::123456789012:instance-profile/web-app",
           "path": "/", "roles": [], "tags": {}}
  version_added: 0.2.0
"""

from ansible_collections.keyless.aws.plugins.module_utils.associations import read_associations
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.instance_expectations import checked_expectations
from ansible_collections.keyless.aws.plugins.module_utils.instance_expectations import read_and_compare
from ansible_collections.keyless.aws.plugins.module_utils.instances import check_filters
from ansible_collections.keyless.aws.plugins.module_utils.module import KeylessModule
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_instance_ids
from ansible_collections.keyless.aws.plugins.module_utils.validation import name_and_arn


def validated(params, region):
    checked = dict(params)
    if params["instance_ids"] is not None and not params["instance_ids"]:
        raise KeylessError("instance_ids: the list is empty; name at least one instance, or leave the option out.",
                           param="instance_ids")
    checked["instance_ids"] = check_instance_ids(params["instance_ids"], "instance_ids")
    checked["filters"] = check_filters(params["filters"])
    checked["instance_profile"], checked["instance_profile_arn"] = name_and_arn(
        params["instance_profile"], "instance_profile", "instance-profile", region)
    checked_expectations(checked, region)
    return checked


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str"),
        filters=dict(type="dict"),
        instance_profile=dict(type="str", aliases=["iam_instance_profile"]),
        selection=dict(type="str", default="intersection", choices=["intersection", "union"]),
        expected_instance_profile=dict(type="str"),
        expected_metadata_options=dict(
            type="dict",
            options=dict(
                http_tokens=dict(type="str", choices=["optional", "required"]),
                http_endpoint=dict(type="str", choices=["enabled", "disabled"]),
                http_put_response_hop_limit=dict(type="int"),
                instance_metadata_tags=dict(type="str", choices=["enabled", "disabled"]),
                http_protocol_ipv6=dict(type="str", choices=["enabled", "disabled"]),
            ),
        ),
        expected_profile_details=dict(
            type="dict",
            options=dict(
                role=dict(type="str"),
                path=dict(type="str"),
                tags=dict(type="dict"),
                purge_tags=dict(type="bool", default=True),
            ),
        ),
    )
    module = KeylessModule(argument_spec=argument_spec, supports_check_mode=True)

    def run():
        params = validated(module.params, module.region)
        if params["expected_instance_profile"] or params["expected_metadata_options"] is not None \
                or (params["selection"] == "union" and params["instance_ids"] and params["filters"]):
            return read_and_compare(module.retrying_client("ec2"), lambda: module.retrying_client("iam"), params,
                                    region=module.region)
        iam = module.retrying_client("iam") if params.get("instance_profile") else None
        return read_associations(module.retrying_client("ec2"), iam, params, region=module.region)

    module.run(run)


if __name__ == "__main__":
    main()
