#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: audit_info
short_description: Audit an account and region for what keeps EC2 instances from being keyless
version_added: 0.2.0
description:
  - Reads one account and region in one run and returns its findings, one per resource and kind; changes nothing.
    This is the module C(playbooks/audit.yml) runs once per target.
  - "The findings: V(instance_without_profile) (a live instance that carries no instance profile),
    V(instance_allows_imdsv1) (its metadata service still answers IMDSv1), V(instance_used_imdsv1) (it allows
    IMDSv1 and made IMDSv1 calls in the window: requiring IMDSv2 there breaks software that calls it),
    V(instance_refused_imdsv1) (its metadata service refused IMDSv1 calls in the window: software there is broken
    now), V(launch_template_allows_imdsv1) (the default version does not require IMDSv2; unset counts unless the
    account default requires it), V(launch_template_user_data_keys) and V(instance_user_data_keys) (user data that
    looks like it holds keys), V(instance_static_keys) (with O(found_on): keys on an instance, and the programs that
    take them before the role), V(profile_without_role), V(role_does_not_trust_ec2) (a role held by a profile whose
    trust policy does not let EC2 in) and V(profile_unused) (attached to no instance of the region)."
  - Each thing is read once, every call paced as the collection paces all calls - C(DescribeInstances) of the live
    instances, one C(DescribeIamInstanceProfileAssociations) scan, one C(DescribeLaunchTemplateVersions) for the
    default and latest versions of every template, C(GetInstanceMetadataDefaults), C(ListInstanceProfiles) (each
    role with its trust policy), CloudWatch C(GetMetricData) (500 series a call) and, per live instance,
    C(DescribeInstanceAttribute) for its user data.
  - A key is shown only by its kind, its last four characters and its fingerprint, never whole.
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  imdsv1_usage_window:
    description:
      - Days back (1 to 455) to read each live instance's IMDSv1 calls, served and refused, from CloudWatch's
        C(MetadataNoToken) and C(MetadataNoTokenRejected) metrics (needs C(cloudwatch:GetMetricData)).
      - V(0) reads no metric (no V(instance_used_imdsv1) or V(instance_refused_imdsv1) finding).
    type: int
    default: 14
  instance_user_data:
    description:
      - Read each live instance's own user data for keys (one C(DescribeInstanceAttribute) call per instance).
    type: bool
    default: true
  found_on:
    description:
      - "What M(keyless.aws.credential_sources_info) returned on instances, by host: C({host: result}), each result
        with the host's C(instance_id) added (the C(amazon.aws.aws_ec2) inventory gives it as a host variable).
        Hosts whose instance is live in this account and region give V(instance_static_keys) findings; the others
        are left to the audit of their own account and region."
    type: dict
  account_id:
    description:
      - The account audited, as the findings name it. When omitted, the account of the O(assume_role) session, else
        read with C(sts:GetCallerIdentity).
    type: str
  assume_role:
    description:
      - A role to assume (C(sts:AssumeRole), with the connection's credentials) before the first read; every read is
        then made in the role's session. One module process per target instead of two
        (M(amazon.aws.sts_assume_role) and then this module); C(playbooks/audit.yml) gives the role of each host of
        the P(keyless.aws.accounts#inventory) inventory here.
      - Checked before any call; a refusal fails the module with what to check (the role, its trust policy, the
        external id, the account), and the other targets of the play go on.
      - Without O(assume_role.role_arn) (or without this option), the connection's credentials read the target.
    type: dict
    suboptions:
      role_arn:
        description:
          - The role's ARN, V(arn:<partition>:iam::<account id>:role/<path and name>).
        type: str
        required: true
      external_id:
        description:
          - The external id the role's trust policy asks for (2 to 1224 characters of letters, digits and
            C(+=,.@:/_-)). Never shown, in a result or a message.
        type: str
      session_name:
        description:
          - The session's name, as CloudTrail records it (2 to 64 characters of letters, digits and C(+=,.@_-)).
          - Defaults to V(keyless-aws); C(playbooks/audit.yml) gives C(keyless-audit-<play>-<UTC time>).
        type: str
      duration_seconds:
        description:
          - The session's length, 900 to 43200 seconds (and at most the role's maximum session duration, 3600 unless
            the role raises it). Defaults to STS's, one hour.
        type: int
  target:
    description:
      - The name of this target in the report (C(playbooks/audit.yml) gives the inventory host name).
    type: str
    default: localhost
  max_concurrency:
    description:
      - How many user data reads run at once (1 to 50); the calls stay within EC2's request rate whatever this is.
    type: int
    default: 10
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - keyless.aws.attributes
  - keyless.aws.attributes.INFO_MODULE
  - keyless.aws.attributes.ACTIONGROUP
notes:
  - Needs C(ec2:DescribeInstances), C(ec2:DescribeIamInstanceProfileAssociations),
    C(ec2:DescribeLaunchTemplateVersions), C(ec2:GetInstanceMetadataDefaults), C(ec2:DescribeInstanceAttribute),
    C(iam:ListInstanceProfiles) and, with a window, C(cloudwatch:GetMetricData); without O(account_id) or
    O(assume_role), C(sts:GetCallerIdentity) (always allowed). With O(assume_role), the connection's credentials
    need C(sts:AssumeRole) on the role, and the role the reads.
  - CloudWatch publishes the IMDSv1 metrics only for instances that have called the metadata service; no datapoint
    reads as no call.
seealso:
  - module: keyless.aws.credential_sources_info
    description: Finds the keys on an instance and which programs use them; its results are O(found_on).
  - module: keyless.aws.static_keys_info
    description: Names each key's owner, status and last use.
  - module: keyless.aws.ec2_metadata_options
    description: Requires IMDSv2 on instances, launch templates and the account default.
"""

EXAMPLES = r"""
- name: Audit this account and region
  keyless.aws.audit_info:
    region: eu-west-1
  register: audit

- name: Fail a scheduled job when anything is found
  ansible.builtin.assert:
    that: audit.report.findings | length == 0
    fail_msg: "{{ audit.msg }}"

- name: Audit without reading CloudWatch, with what credential_sources_info found on the instances
  keyless.aws.audit_info:
    imdsv1_usage_window: 0
    # {host: its credential_sources_info result, with instance_id added}, as playbooks/audit.yml gathers it
    found_on: "{{ found_by_host }}"
  register: audit_with_hosts

- name: Audit an account in the role it keeps for the audit (its trust policy asks for an external id)
  keyless.aws.audit_info:
    region: eu-west-1
    assume_role:
      role_arn: arn:aws:iam::123456789012:role/keyless-audit
      external_id: "{{ audit_external_id }}"
      session_name: keyless-audit-nightly
    target: prod-eu-west-1
  register: prod_audit

- name: The findings name the role's account
  ansible.builtin.assert:
    that: prod_audit.report.account_id == "123456789012"
"""

RETURN = r"""
msg:
  description: One sentence - how many findings, of which kinds.
  returned: always
  type: str
  sample: "3 finding(s) in eu-west-1 (123456789012): 2 instance_allows_imdsv1, 1 profile_unused."
report:
  description: The target's report, in the shape of C(playbooks/audit.yml)'s report of one target.
  returned: always
  type: dict
  contains:
    target:
      description: O(target).
      type: str
    account_id:
      description: The account audited.
      type: str
      sample: "123456789012"
    region:
      description: The region audited.
      type: str
    checked:
      description: How many live instances, launch templates and instance profiles were read.
      type: dict
      sample: {"instances": 6, "launch_templates": 4, "instance_profiles": 4}
    account_metadata_defaults:
      description: The account's instance metadata defaults in this region (the options set, snake_case).
      type: dict
      sample: {"http_tokens": "required"}
    imdsv1_usage:
      description: The CloudWatch window read and its totals, as M(keyless.aws.ec2_imdsv1_usage_info) returns them;
        null when O(imdsv1_usage_window=0).
      type: dict
    counts:
      description: Findings per kind, every kind listed (0 when none).
      type: dict
    findings:
      description: One per resource and kind.
      type: list
      elements: dict
      contains:
        kind:
          description: The kind (see the description above).
          type: str
        resource:
          description: The instance id, the template's, profile's or role's name.
          type: str
        id:
          description: The template's id, the profile's or role's ARN, where the resource is named by name.
          type: str
        detail:
          description: What is wrong and why it matters, in one sentence; keys only as C(...) and their last four
            characters.
          type: str
        account_id:
          description: The account.
          type: str
        region:
          description: The region.
          type: str
        target:
          description: O(target).
          type: str
"""

from ansible_collections.keyless.aws.plugins.module_utils.assume import ASSUME_ROLE_SPEC
from ansible_collections.keyless.aws.plugins.module_utils.audit import audit
from ansible_collections.keyless.aws.plugins.module_utils.module import KeylessModule


def main():
    module = KeylessModule(
        argument_spec=dict(
            imdsv1_usage_window=dict(type="int", default=14),
            instance_user_data=dict(type="bool", default=True),
            found_on=dict(type="dict"),
            account_id=dict(type="str"),
            target=dict(type="str", default="localhost"),
            max_concurrency=dict(type="int", default=10),
            assume_role=ASSUME_ROLE_SPEC,
        ),
        supports_check_mode=True,
    )

    def clients(service):
        if service == "ec2":
            return module.retrying_client("ec2", max_pool_connections=max(10, module.params["max_concurrency"] or 10))
        return module.retrying_client(service)

    def run():
        # With assume_role, the session's account (no sts:GetCallerIdentity more).
        account_id = module.params["account_id"] or module.assumed_account_id()
        return audit(clients, module.params, module.region, account_id, module.params["target"])

    module.run(run)


if __name__ == "__main__":
    main()
