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
    type: list
    elements: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - keyless.aws.attributes
  - keyless.aws.attributes.INFO_MODULE
  - keyless.aws.attributes.ACTIONGROUP
notes:
  - Needs C(iam:ListUsers), C(iam:ListAccessKeys) and C(iam:GetAccessKeyLastUsed).
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
"""

from ansible_collections.keyless.aws.plugins.module_utils.access_keys import key_owners
from ansible_collections.keyless.aws.plugins.module_utils.module import KeylessModule


def main():
    module = KeylessModule(
        argument_spec=dict(
            user_names=dict(type="list", elements="str"),
            fingerprints=dict(type="list", elements="str", no_log=False),
        ),
        supports_check_mode=True,
    )
    module.run(lambda: key_owners(module.retrying_client("iam"), module.params["user_names"],
                                  module.params["fingerprints"]))


if __name__ == "__main__":
    main()
