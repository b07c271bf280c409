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
"""

from ansible_collections.keyless.aws.plugins.module_utils.associations import read_associations
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
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
    return checked


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str"),
        filters=dict(type="dict"),
        instance_profile=dict(type="str", aliases=["iam_instance_profile"]),
    )
    module = KeylessModule(argument_spec=argument_spec, supports_check_mode=True)

    def run():
        params = validated(module.params, module.region)
        iam = module.retrying_client("iam") if params.get("instance_profile") else None
        return read_associations(module.retrying_client("ec2"), iam, params, region=module.region)

    module.run(run)


if __name__ == "__main__":
    main()
