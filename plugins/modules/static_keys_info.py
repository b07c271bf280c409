#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: static_keys_info
short_description: The account's IAM access keys - who holds each, its status and its last use - matched with keys found on instances
version_added: 0.2.0
description:
  - Lists the access keys of the account's IAM users (or of O(user_names)), each with its owner, its status
    (C(Active) or C(Inactive)), its creation date and its last use (C(GetAccessKeyLastUsed) - date, service,
    region), and the same description M(keyless.aws.credential_sources_info) gives of a key found on an instance
    (kind, last four characters, account, fingerprint).
  - With O(fingerprints) (the RV(keyless.aws.credential_sources_info#module:keys[].fingerprint) values of the
    instances' keys), returns only those keys, so "which IAM user holds the key this service on that instance uses,
    and is it still used?" is one task; RV(unmatched_fingerprints) names the keys no user of this account holds.
  - Reads IAM once per run (C(ListUsers), C(ListAccessKeys) per user, C(GetAccessKeyLastUsed) per key returned),
    however many instances share a key, through the collection's retry policy.
  - B(Never returns a whole access key id) (nor, as IAM never gives it again, a secret).
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  user_names:
    description:
      - Only the keys of these IAM users. Each must exist. By default every user of the account.
    type: list
    elements: str
  fingerprints:
    description:
      - Only the keys with these fingerprints (16 hex digits, as M(keyless.aws.credential_sources_info) returns
        them). Never give key ids here.
      - With O(found_on) and without this option, the fingerprints of every key found on the hosts.
    type: list
    elements: str
  found_on:
    description:
      - "What M(keyless.aws.credential_sources_info) returned on each instance, by host: C({host: result}), each
        result with the host's C(instance_id) added (the C(amazon.aws.aws_ec2) inventory gives it as a host
        variable). With it, the module also returns RV(plan): the migration of those instances off their keys."
      - The plan reads each key owner's permissions from IAM (C(GetUser), the user's and its groups' managed and
        inline policies), once per owner however many hosts share a key.
    type: dict
  role_name:
    description:
      - With O(found_on), the role every migrating instance gets, instead of one role per key owner named
        C(keyless-<user>) with the owner's permissions. Use it for a host holding keys of two users, or an owner
        whose permissions do not fit in one role.
    type: str
  canary_percent:
    description:
      - With O(found_on), the share of the migrating instances that go first (the canaries, in host name order);
        C(ceil(n * canary_percent / 100)) of them. V(0) plans no canary stage.
    type: float
    default: 10
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - keyless.aws.attributes
  - keyless.aws.attributes.INFO_MODULE
  - keyless.aws.attributes.ACTIONGROUP
notes:
  - Needs C(iam:ListUsers), C(iam:ListAccessKeys) and C(iam:GetAccessKeyLastUsed); with O(found_on) also
    C(iam:GetUser), C(iam:ListAttachedUserPolicies), C(iam:ListUserPolicies), C(iam:GetUserPolicy),
    C(iam:ListGroupsForUser), C(iam:ListAttachedGroupPolicies), C(iam:ListGroupPolicies) and C(iam:GetGroupPolicy).
  - The plan refuses, for that owner's hosts, a role that would break IAM's default quotas (10 managed policies, 10,240
    characters of inline policies, white space not counted) before anything is created; name a role then.
  - IAM records a key's last use within hours, not at once; a key used minutes ago may still show an older date.
seealso:
  - module: keyless.aws.credential_sources_info
    description: Finds the keys on the instance, and which programs use them.
  - name: From keys to keyless
    description: The guide page on finding the keys that shadow the role, and retiring them.
    link: https://github.com/keyless-aws/keyless.aws/blob/main/docs/keys-to-keyless.md
"""

EXAMPLES = r"""
- name: Every access key of the account, with its owner and last use
  keyless.aws.static_keys_info:
  register: account_keys

- name: The keys an instance holds, on the instance
  keyless.aws.credential_sources_info:
  become: true
  register: sources

- name: Who holds them, and when each was last used
  keyless.aws.static_keys_info:
    fingerprints: "{{ sources['keys'] | map(attribute='fingerprint') | list }}"
  register: owners

- name: The keys of one user
  keyless.aws.static_keys_info:
    user_names: [report-writer]
"""

RETURN = r"""
access_keys:
  description: The keys, sorted by user and creation date.
  returned: always
  type: list
  elements: dict
  contains:
    user:
      description: The IAM user that holds the key.
      type: str
      sample: report-writer
    status:
      description: V(Active) or V(Inactive).
      type: str
    created:
      description: When the key was made (ISO 8601).
      type: str
    kind:
      description: V(long-term) (C(AKIA)); IAM users' keys always are.
      type: str
    suffix:
      description: The key id's last four characters.
      type: str
    account:
      description: The account the key id encodes.
      type: str
    fingerprint:
      description: The fingerprint M(keyless.aws.credential_sources_info) computes alike.
      type: str
    last_used:
      description: The key's last use (C(date), C(service), C(region)), or null if it was never used.
      type: dict
unmatched_fingerprints:
  description: Fingerprints from O(fingerprints) that no user of this account holds (a key of another account, or a
    key deleted since).
  returned: always
  type: list
  elements: str
plan:
  description:
    - With O(found_on), the migration off the keys, decided for the play to carry out (C(playbooks/retire_keys.yml)
      does); null without it.
  returned: always
  type: dict
  contains:
    keys:
      description:
        - "Each key found on the hosts (C(kind), C(suffix), C(account), C(fingerprint)), with its owner (C(user), null
          for a key no user of this account holds), C(status), C(last_used), C(owner_permissions) (managed policies,
          groups, inline policy names, permissions boundary), the C(hosts) that hold it, C(used_by) (the programs,
          services and users whose chain takes it, per host, each with a C(label) such as
          C(web-1: service report.service)) and the C(role_name) that replaces it."
      type: list
      elements: dict
    roles:
      description:
        - Each role the migration gives instances - C(role_name), C(owner), C(managed_policies), C(inline_policies)
          (name to document), C(permissions_boundary), C(named) (V(true) for O(role_name), whose permissions are left
          as they are), C(canary_instance_ids) and C(rest_instance_ids).
      type: list
      elements: dict
    hosts:
      description: Per host - C(host), C(instance_id), the C(fingerprints) it gives up, C(role_name), C(stage)
        (V(canary), V(rest) or V(skipped)) and, when skipped, C(reason).
      type: list
      elements: dict
    canaries:
      description: The hosts of the first stage.
      type: list
      elements: str
    rest:
      description: The hosts of the second stage.
      type: list
      elements: str
    skipped:
      description: The hosts left as they are, each with C(reason) (no instance id, keys of no user of this account,
        keys of two users, an owner whose permissions do not fit in one role).
      type: list
      elements: dict
"""

from ansible_collections.keyless.aws.plugins.module_utils.key_migration import keys_and_plan
from ansible_collections.keyless.aws.plugins.module_utils.module import KeylessModule


def main():
    module = KeylessModule(
        argument_spec=dict(
            user_names=dict(type="list", elements="str"),
            fingerprints=dict(type="list", elements="str", no_log=False),
            found_on=dict(type="dict"),
            role_name=dict(type="str"),
            canary_percent=dict(type="float", default=10),
        ),
        supports_check_mode=True,
    )
    module.run(lambda: keys_and_plan(module.retrying_client("iam"), module.params))


if __name__ == "__main__":
    main()
