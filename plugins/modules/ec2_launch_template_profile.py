#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ec2_launch_template_profile
short_description: Give existing EC2 launch templates an IAM instance profile, so instances get it at launch
version_added: 0.2.0
description:
  - Attach at launch, for launch templates the collection does not write - made by another team, by a console
    user or by another tool, and used by Auto Scaling groups. Name the templates and the instance profile; the
    module makes each template launch instances that carry the profile.
  - Where the base version (O(launch_templates[].version)) does not already carry the profile, a new version is
    created from it (C(CreateLaunchTemplateVersion) with C(SourceVersion)) that changes only
    C(IamInstanceProfile), and it becomes the default version (O(set_default_version)). Every other launch
    parameter of the base is kept as it is.
  - With O(http_tokens) (and the other IMDS options), the same new version also changes C(MetadataOptions) - one
    version per template, not two. Every C(MetadataOptions) member of the base that is not named is kept.
  - Where the base version already carries the profile (and the options), no version is created; where the latest
    version already is exactly the base with the profile, it is used rather than made again. A re-run changes
    nothing.
  - Before any change the module checks that the profile exists, holds a role (O(require_role)) and that the role
    trusts EC2 (O(trust_check)), and that every template and version named exists.
  - The Auto Scaling groups that launch from each template (its C(LaunchTemplate), or its C(MixedInstancesPolicy)
    template and overrides) are reported in RV(auto_scaling_groups). Groups that follow V($Default) or V($Latest)
    launch their new instances with the new version by themselves. Groups pinned to a version number keep
    launching that version, without the profile; the module names them in a warning, and with
    O(update_pinned_auto_scaling_groups=true) moves them to the new version (C(UpdateAutoScalingGroup)).
  - Instances already running keep the profile they were launched with (or none). Attaching a profile to them is
    the job of M(keyless.aws.ec2_profile_association); an Auto Scaling group replaces them with instances that
    carry the profile only when it launches new ones (scaling, instance refresh).
  - EC2 does not check the profile when a launch template version is created (launch template parameters are not
    fully validated then); a profile EC2 does not know yet shows at launch. Auto Scaling does check the template
    when a group is moved to it, and right after a profile is created it may not know it for a while; the module
    retries that answer for up to O(propagation_timeout) seconds.
  - See the user guide page C(docs/attach-at-launch.md).
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  launch_templates:
    description:
      - The launch templates that should launch instances carrying the profile. They must exist.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the launch template. Give O(launch_templates[].name) or O(launch_templates[].id).
        type: str
      id:
        description: Id of the launch template (C(lt-...)).
        type: str
      version:
        description:
          - The version to start from, V($Default), V($Latest) or a version number.
          - The new version is created from it (C(SourceVersion)), with every launch parameter of it and only
            C(IamInstanceProfile) (and C(MetadataOptions)) changed.
        type: str
        default: $Default
  instance_profile:
    description:
      - The instance profile the templates' instances get at launch, by name or ARN.
      - A role name given here is the most common mistake; the module fails before any change, says that it is a
        role, and names the profiles that hold it.
      - The new version names the profile by its ARN. A version that names it by name already carries it.
    type: str
    required: true
    aliases: ["iam_instance_profile"]
  require_role:
    description:
      - Fail before any change when the profile holds no role; instances launched with such a profile get no
        credentials.
    type: bool
    default: true
  trust_check:
    description:
      - What to do when the profile's role does not allow C(sts:AssumeRole) for the EC2 service principal of its
        partition; instances launched with the profile then get no credentials.
      - V(fail) fails before any change, V(warn) warns and goes on, V(skip) does not look.
      - The verdict is returned as RV(role_trusts_ec2).
    type: str
    choices: ["fail", "warn", "skip"]
    default: fail
  http_tokens:
    description:
      - Also set the template's C(HttpTokens) in the same new version. V(required) is IMDSv2 only.
      - Left unset, C(MetadataOptions) is not changed.
    type: str
    choices: ["optional", "required"]
  http_endpoint:
    description: Also set the template's C(HttpEndpoint) (V(disabled) leaves instances without credentials).
    type: str
    choices: ["enabled", "disabled"]
  http_put_response_hop_limit:
    description: Also set the template's C(HttpPutResponseHopLimit), 1 to 64 (2 for containers on the instance).
    type: int
  instance_metadata_tags:
    description: Also set the template's C(InstanceMetadataTags).
    type: str
    choices: ["enabled", "disabled"]
  http_protocol_ipv6:
    description: Also set the template's C(HttpProtocolIpv6).
    type: str
    choices: ["enabled", "disabled"]
  set_default_version:
    description:
      - Make the version that carries the profile the template's default version (the one launches, and groups
        that follow V($Default), use). When the base version already carries it but is not the default, it
        becomes the default.
      - With V(false), the new version is created but the default is left as it is; groups that follow
        V($Default) then keep launching without the profile (the module warns).
    type: bool
    default: true
  version_description:
    description:
      - Description of the launch template versions the module creates.
      - Left unset, it says the version was made by this module, from which version and what changed.
    type: str
  update_pinned_auto_scaling_groups:
    description:
      - Move the Auto Scaling groups pinned to a version number of a template to the version that carries the
        profile (C(UpdateAutoScalingGroup); a mixed instances policy keeps its distribution and overrides).
      - With V(false), they are left where they are and named in a warning.
      - Groups that follow V($Default) or V($Latest) are never changed.
    type: bool
    default: false
  propagation_timeout:
    description:
      - How long, in seconds, to keep retrying while Auto Scaling does not know a profile that exists in IAM yet
        (C(ValidationError ... Invalid IAM Instance Profile name) or C(ARN)) when a pinned group is moved.
      - V(0) does not wait.
    type: int
    default: 120
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
      - A check-mode run makes no mutating AWS call and returns the same RV(launch_templates) (with the number the
        new version would get) and RV(auto_scaling_groups) as a real run would.
  diff_mode:
    support: full
    details:
      - Shows, for each template changed, the version, default version, profile and metadata options before and
        after; for each group moved, its version before and after.
  idempotent:
    support: full
notes:
  - A launch template version cannot change; a new version is the only way to give a template the profile.
  - An instance carries at most one instance profile, and a profile holds at most one role.
seealso:
  - module: keyless.aws.ec2_profile_association
    description: Gives instances that are already running the profile (attach after launch).
  - module: keyless.aws.iam_instance_profile
  - module: keyless.aws.ec2_metadata_options
    description: Requires IMDSv2 on instances, templates and the account defaults.
  - module: amazon.aws.ec2_launch_template
    description: Writes a whole launch template (for templates whose data you own).
"""

EXAMPLES = r"""
- name: Instances launched from the template web (made by another team) get the profile web-app
  keyless.aws.ec2_launch_template_profile:
    launch_templates:
      - name: web
    instance_profile: web-app

- name: The profile and IMDSv2 in one new version of the latest version of a template given by id
  keyless.aws.ec2_launch_template_profile:
    launch_templates:
      - id: lt-0123456789abcdef0
        version: $Latest
    instance_profile: arn:aws:iam::123456789012:instance-profile/web-app
    http_tokens: required

- name: What would change, and which Auto Scaling groups are pinned (check mode)
  keyless.aws.ec2_launch_template_profile:
    launch_templates:
      - name: web
    instance_profile: web-app
    http_tokens: required
  check_mode: true
  register: web_template

- name: Say which groups would launch without the profile
  ansible.builtin.debug:
    msg: "{{ web_template.auto_scaling_groups | selectattr('action', 'equalto', 'pinned')
             | map(attribute='auto_scaling_group_name') | list }}"

- name: Move the groups pinned to a version of the template to the version with the profile
  keyless.aws.ec2_launch_template_profile:
    launch_templates:
      - name: web
    instance_profile: web-app
    http_tokens: required
    update_pinned_auto_scaling_groups: true
"""

RETURN = r"""
launch_templates:
  description: One entry per template, in the order of O(launch_templates), with what the run did (in check mode,
    would do).
  returned: always
  type: list
  elements: dict
  contains:
    launch_template_id:
      description: The template's id.
      type: str
      sample: lt-0123456789abcdef0
    launch_template_name:
      description: The template's name.
      type: str
      sample: web
    base_version:
      description: The version the new one is made from (O(launch_templates[].version) resolved).
      type: int
      sample: 3
    new_version:
      description: The version created (in check mode, the number it would get), V(null) when none is.
      type: int
      sample: 4
    matching_version:
      description: The version that carries the profile (and the options) after the run.
      type: int
      sample: 4
    default_version:
      description: The template's default version after the run.
      type: int
      sample: 4
    latest_version:
      description: The template's latest version after the run.
      type: int
      sample: 4
    changed:
      description: Whether the template changed.
      type: bool
      sample: true
    actions:
      description: V(version_created) and/or V(default_version_set), in order; empty when nothing changed.
      type: list
      elements: str
      sample: ["version_created", "default_version_set"]
    before:
      description:
        - The base version - C(instance_profile), the ARN or name it names (V(null) for none), and
          C(metadata_options) (snake_case, only those set).
      type: dict
      sample: {"instance_profile": null, "metadata_options": {"http_tokens": "optional"}}
    after:
      description: The same for the version that carries the profile.
      type: dict
      sample: {"instance_profile": "arn:aws:iam::123456789012:instance-profile/web-app",
               "metadata_options": {"http_tokens": "required"}}
auto_scaling_groups:
  description:
    - One entry per Auto Scaling group and place in it that names one of the templates, sorted by group name.
  returned: always
  type: list
  elements: dict
  contains:
    auto_scaling_group_name:
      description: The group.
      type: str
      sample: web-asg
    launch_template_id:
      description: The template it launches from.
      type: str
      sample: lt-0123456789abcdef0
    launch_template_name:
      description: Its name.
      type: str
      sample: web
    where:
      description: V(LaunchTemplate), V(MixedInstancesPolicy), or V(MixedInstancesPolicy.Overrides[N]).
      type: str
      sample: LaunchTemplate
    version_before:
      description: The version the group names before the run - V($Default), V($Latest) or a number.
      type: str
      sample: "3"
    version_after:
      description: The version it names after the run (another number only when V(moved)).
      type: str
      sample: "4"
    action:
      description:
        - V(follows) - it follows V($Default) or V($Latest), which is now the version with the profile; new
          instances get the profile, nothing was changed in the group.
        - V(not_following) - it follows V($Default) or V($Latest), which is not that version (see
          O(set_default_version)); new instances launch without the profile.
        - V(pinned) - it is pinned to another version number and left there; new instances launch without the
          profile (see O(update_pinned_auto_scaling_groups)).
        - V(moved) - it was pinned and is moved to the version with the profile.
        - V(unchanged) - it is pinned to the version with the profile already.
      type: str
      sample: follows
    new_instances_get_profile:
      description: Whether instances the group launches after the run carry the profile.
      type: bool
      sample: true
instance_profile:
  description: The profile given to the templates, as found in IAM.
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
role_trusts_ec2:
  description: Whether the profile's role lets EC2 assume it; V(null) with O(trust_check=skip) or no role.
  returned: always
  type: bool
  sample: true
timing:
  description: Seconds per phase (V(read), V(apply), V(total)) and the AWS calls made (EC2, IAM, Auto Scaling).
  returned: always
  type: dict
  sample: {"seconds": {"read": 0.2, "apply": 0.3, "total": 0.5}, "api_calls": 6, "throttled": 0}
"""

from ansible_collections.keyless.aws.plugins.module_utils.launch_templates import ARGUMENT_SPEC
from ansible_collections.keyless.aws.plugins.module_utils.launch_templates import converge
from ansible_collections.keyless.aws.plugins.module_utils.module import KeylessModule


def main():
    module = KeylessModule(argument_spec=dict(ARGUMENT_SPEC), supports_check_mode=True)

    def run():
        return converge(module.retrying_client("ec2"), module.retrying_client("iam"),
                        module.retrying_client("autoscaling"), module.params, module.check_mode,
                        region=module.region)

    module.run(run)


if __name__ == "__main__":
    main()
