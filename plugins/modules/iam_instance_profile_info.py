#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: iam_instance_profile_info
short_description: List IAM instance profiles, with their role, its EC2 trust, and where they are used
version_added: 0.1.0
description:
  - Lists IAM instance profiles by name, path prefix, or the role they hold.
  - Returns the same RV(iam_instance_profiles) list as M(amazon.aws.iam_instance_profile_info), so a playbook
    switches by changing only the module name, plus whether each profile's role trusts EC2 and, with
    O(include_usage=true), the instances each profile is attached to.
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  name:
    description:
      - Name of an instance profile. Mutually exclusive with O(path_prefix).
    aliases: ["instance_profile_name"]
    type: str
  path_prefix:
    description:
      - Only profiles whose path starts with this prefix. Mutually exclusive with O(name).
    aliases: ["path", "prefix"]
    type: str
  role:
    description:
      - Only the profiles that hold this role (name or ARN). A role that does not exist holds no profile.
    type: str
  include_usage:
    description:
      - Also list, for each profile, the instances in the module's region it is associated with
        (RV(iam_instance_profiles[].instances)). Reads the region's associations once, whatever the number of
        profiles.
    type: bool
    default: false
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - keyless.aws.attributes
  - keyless.aws.attributes.INFO_MODULE
  - keyless.aws.attributes.ACTIONGROUP
seealso:
  - module: keyless.aws.iam_instance_profile
  - module: keyless.aws.ec2_profile_association_info
    description: Which profile each instance carries, the other way round.
  - module: amazon.aws.iam_instance_profile_info
"""

EXAMPLES = r"""
- name: All instance profiles under /batch/
  keyless.aws.iam_instance_profile_info:
    path_prefix: /batch/
  register: batch_profiles

- name: The profiles that hold the role web-app, and the instances they are attached to
  keyless.aws.iam_instance_profile_info:
    role: web-app
    include_usage: true
  register: web_profiles

- name: Those of them attached to no instance
  ansible.builtin.debug:
    msg: "{{ web_profiles.iam_instance_profiles | selectattr('instances', 'equalto', []) | map(attribute='instance_profile_name') }}"
"""

RETURN = r"""
iam_instance_profiles:
  description: The profiles found, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    arn:
      description: ARN of the profile.
      type: str
      returned: always
      sample: arn:aws:iam::123456789012:instance-profile/web-app
    create_date:
      description: When the profile was created.
      type: str
      returned: always
      sample: "2026-01-12T11:18:29+00:00"
    instance_profile_id:
      description: The profile's stable id.
      type: str
      returned: always
      sample: AIPA12345EXAMPLE54321
    instance_profile_name:
      description: Name of the profile.
      type: str
      returned: always
      sample: web-app
    path:
      description: Path of the profile.
      type: str
      returned: always
      sample: /
    roles:
      description: The role the profile holds (a list of at most one), in snake_case.
      type: list
      elements: dict
      returned: always
      sample: [{"role_name": "web-app", "arn": "arn:aws:iam::123456789012:role/web-app"}]
    tags:
      description: The profile's tags.
      type: dict
      returned: always
      sample: {"team": "web"}
    role_trusts_ec2:
      description: Whether the profile's role lets EC2 assume it; V(null) when the profile holds no role.
      type: bool
      returned: always
      sample: true
    instances:
      description: The instances in the region the profile is associated with.
      type: list
      elements: dict
      returned: when O(include_usage=true)
      sample: [{"instance_id": "i-0123456789abcdef0", "association_id": "iip-assoc-0123456789abcdef0", "state": "associated"}]
"""

from ansible_collections.keyless.aws.plugins.module_utils.module import KeylessModule
from ansible_collections.keyless.aws.plugins.module_utils.instance_profile import describe_profiles
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_iam_name
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_iam_path
from ansible_collections.keyless.aws.plugins.module_utils.validation import name_and_arn


def main():
    argument_spec = dict(
        name=dict(type="str", aliases=["instance_profile_name"]),
        path_prefix=dict(type="str", aliases=["path", "prefix"]),
        role=dict(type="str"),
        include_usage=dict(type="bool", default=False),
    )
    module = KeylessModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[["name", "path_prefix"]],
    )

    def run():
        params = module.params
        if params["name"] is not None:
            check_iam_name(params["name"], "name", "instance profile")
        check_iam_path(params["path_prefix"], "path_prefix")
        role = name_and_arn(params["role"], "role", "role")[0] if params["role"] else None
        profiles = describe_profiles(
            module.retrying_client("iam"),
            (lambda: module.retrying_client("ec2")) if params["include_usage"] else None,
            name=params["name"],
            path_prefix=params["path_prefix"],
            role=role,
        )
        return {"changed": False, "iam_instance_profiles": profiles}

    module.run(run)


if __name__ == "__main__":
    main()
