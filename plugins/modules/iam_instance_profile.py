#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: iam_instance_profile
short_description: Manage IAM instance profiles, the containers that carry a role to EC2 instances
version_added: 0.1.0
description:
  - Create, update and delete IAM instance profiles, add, replace or remove the role a profile holds,
    and manage its tags.
  - A drop-in replacement for M(amazon.aws.iam_instance_profile), with the same option names, aliases and
    return value, so a playbook switches by changing only the module name.
  - Beyond it, this module checks that the profile's role trusts EC2 (O(trust_check)), refuses a role that
    does not exist before changing anything, refuses to delete a profile that instances still use unless
    O(force=true), never silently recreates a profile to change its path, and converges instead of failing
    when a parallel run created the same profile first.
  - All input IAM would reject (names, paths, tags) fails before any AWS call, naming the parameter.
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  name:
    description:
      - Name of the instance profile. 1 to 128 characters of letters, digits and C(+=,.@_-).
      - Profile names are unique in an account whatever their path.
    aliases: ["instance_profile_name"]
    type: str
    required: true
  path:
    description:
      - The profile's path. Used when the profile is created; new profiles get V(/) when it is not set.
      - IAM cannot change the path of an existing profile. When the profile exists with another path the
        module fails and says so; it never deletes and recreates the profile on its own.
      - Left unset, an existing profile's path is accepted whatever it is.
    aliases: ["path_prefix", "prefix"]
    type: str
  role:
    description:
      - The role the profile holds, by name or ARN. A profile holds at most one role.
      - When the profile holds another role, that role is removed and this one added.
      - Set to V("") to remove the role from the profile. Left unset, the profile's role is left as it is.
      - The role must exist; the module fails before any change when it does not.
    type: str
  state:
    description:
      - V(present) creates or updates the profile; V(absent) removes its role and deletes it.
    type: str
    choices: ["present", "absent"]
    default: present
  trust_check:
    description:
      - What to do when the profile's role does not allow C(sts:AssumeRole) for the EC2 service principal
        of its partition (C(ec2.amazonaws.com), or C(ec2.amazonaws.com.cn) in C(aws-cn)); instances then get
        no credentials from the profile.
      - V(fail) fails before any change, V(warn) warns and goes on, V(skip) does not look.
      - The verdict is returned as RV(role_trusts_ec2).
    type: str
    choices: ["fail", "warn", "skip"]
    default: warn
  force:
    description:
      - With O(state=absent), delete the profile even when it is attached to instances in the module's
        region. It is first detached from them (they lose their role credentials), and they are listed in
        RV(disassociated_instances).
      - Without it, the module refuses to delete a profile in use and lists the instances.
    type: bool
    default: false
  role_change_in_use:
    description:
      - What to do when O(role) changes or removes the role of a profile that instances in the module's region
        carry. Those instances keep the old role's credentials until their next scheduled rotation, then get the
        new role's (or none), so the change reaches them at a moment nobody chose.
      - V(warn) makes the change and warns, naming the instances and the way without a gap (a new profile with
        the new role, then M(keyless.aws.ec2_profile_association) swaps the instances to it). V(fail) refuses
        before any change.
      - The instances are returned as RV(instances_in_use).
    type: str
    choices: ["warn", "fail"]
    default: warn
    version_added: 0.2.0
  tags:
    description:
      - Tags for the profile. Left unset, tags are left as they are.
    aliases: ["resource_tags"]
    type: dict
  purge_tags:
    description:
      - Remove tags not named in O(tags). Tags whose key starts with C(aws:) are never touched.
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - keyless.aws.attributes
  - keyless.aws.attributes.ACTIONGROUP
attributes:
  check_mode:
    support: full
    details:
      - A check-mode run predicts exactly what a real run changes (C(changed), RV(actions), the profile
        returned) without any mutating AWS call.
  diff_mode:
    support: full
    details:
      - Shows the profile's name, path, role and tags before and after.
  idempotent:
    support: full
notes:
  - When O(role) changes or removes the role of an existing profile, the module reads the region's instance profile
    associations to find the instances that carry it (see O(role_change_in_use)).
  - With O(state=absent) the module reads the region's instance profile associations to find instances that
    use the profile, so a region is needed.
  - Putting a role in the profile (C(iam:AddRoleToInstanceProfile)) also needs C(iam:PassRole) on that role; a
    refusal names both, since AWS's does not say which was missing.
seealso:
  - module: keyless.aws.iam_instance_profile_info
  - module: keyless.aws.ec2_profile_association
    description: Attaches the profile to instances that are already running, swaps or detaches it.
  - module: keyless.aws.imds_credentials
    description: Proves on an instance that the credentials of the profile's role arrive.
  - module: amazon.aws.iam_role
  - module: amazon.aws.iam_instance_profile
"""

EXAMPLES = r"""
- name: Create a profile that carries the role web-app to EC2 instances
  keyless.aws.iam_instance_profile:
    name: web-app
    role: web-app
    trust_check: fail
    tags:
      team: web

- name: Give the profile another role (the old one is removed first)
  keyless.aws.iam_instance_profile:
    name: web-app
    role: arn:aws:iam::123456789012:role/web-app-v2

- name: Keep the profile but take its role away
  keyless.aws.iam_instance_profile:
    name: web-app
    role: ""

- name: Create a profile under a path
  keyless.aws.iam_instance_profile:
    name: batch-worker
    path: /batch/
    role: batch-worker

- name: Delete a profile, detaching it from any instance that still uses it
  keyless.aws.iam_instance_profile:
    name: web-app
    state: absent
    force: true
"""

RETURN = r"""
iam_instance_profile:
  description:
    - The instance profile after the run (in check mode, the prediction). Empty after a delete.
    - The same fields as M(amazon.aws.iam_instance_profile) returns.
  returned: always
  type: complex
  contains:
    arn:
      description: ARN of the instance profile.
      returned: when the profile exists
      type: str
      sample: arn:aws:iam::123456789012:instance-profile/web-app
    create_date:
      description: When the profile was created.
      returned: when the profile exists
      type: str
      sample: "2026-01-12T11:18:29+00:00"
    instance_profile_id:
      description: The profile's stable id.
      returned: when the profile exists
      type: str
      sample: AIPA12345EXAMPLE54321
    instance_profile_name:
      description: Name of the profile.
      returned: always
      type: str
      sample: web-app
    path:
      description: Path of the profile.
      returned: always
      type: str
      sample: /
    roles:
      description: The role the profile holds (a list of at most one), in snake_case.
      returned: always
      type: list
      elements: dict
      sample: [{"role_name": "web-app", "arn": "arn:aws:iam::123456789012:role/web-app", "path": "/"}]
    tags:
      description: The profile's tags.
      returned: always
      type: dict
      sample: {"team": "web"}
role_trusts_ec2:
  description:
    - Whether the profile's role lets EC2 assume it. V(null) when the profile holds no role or
      O(trust_check=skip).
  returned: always
  type: bool
  sample: true
actions:
  description: What the run did (or, in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: ["created", "role_added"]
instances_in_use:
  description:
    - Instances in the module's region that carry the profile whose role this run changed or removed (they get the
      new role's credentials only at their next rotation). See O(role_change_in_use).
  returned: when the role of a profile in use changes
  type: list
  elements: str
  sample: ["i-0123456789abcdef0"]
  version_added: 0.2.0
disassociated_instances:
  description: Instances the profile was detached from before it was deleted (O(force=true)).
  returned: when a profile in use was deleted
  type: list
  elements: str
  sample: ["i-0123456789abcdef0"]
"""

from ansible_collections.keyless.aws.plugins.module_utils.module import KeylessModule
from ansible_collections.keyless.aws.plugins.module_utils.instance_profile import manage_profile
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_iam_name
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_iam_path
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_tags
from ansible_collections.keyless.aws.plugins.module_utils.validation import name_and_arn


def validated(params):
    """The module's parameters, checked as IAM would check them, before any AWS call."""
    checked = dict(params)
    check_iam_name(params["name"], "name", "instance profile")
    check_iam_path(params["path"], "path")
    checked["tags"] = check_tags(params["tags"], "tags")
    if params["role"]:  # "" removes the role
        checked["role"], checked["role_arn"] = name_and_arn(params["role"], "role", "role")
    return checked


def main():
    argument_spec = dict(
        name=dict(type="str", required=True, aliases=["instance_profile_name"]),
        path=dict(type="str", aliases=["path_prefix", "prefix"]),
        role=dict(type="str"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        trust_check=dict(type="str", default="warn", choices=["fail", "warn", "skip"]),
        force=dict(type="bool", default=False),
        role_change_in_use=dict(type="str", default="warn", choices=["warn", "fail"]),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
    )
    module = KeylessModule(argument_spec=argument_spec, supports_check_mode=True)

    def run():
        params = validated(module.params)
        return manage_profile(
            module.retrying_client("iam"),
            lambda: module.retrying_client("ec2"),
            params,
            module.check_mode,
        )

    module.run(run)


if __name__ == "__main__":
    main()
