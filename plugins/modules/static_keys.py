#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: static_keys
short_description: Retire IAM access keys once they have left the instances - deactivate after a soak, delete when asked
version_added: 0.2.0
description:
  - The last step from keys to keyless. For each key named by O(fingerprints), deactivates it in IAM
    (C(UpdateAccessKey) C(Inactive), reversible) only when it is safe, and with O(state=absent) deletes it only when it
    is already inactive and a second window has passed.
  - Safe means all of these, else the key is left as it is and RV(keys[].reason) says why.
  - No instance holds it any more (O(still_found) names no place for it; give what
    M(keyless.aws.credential_sources_info) still finds on the instances).
  - It was not used since it left the instances (C(GetAccessKeyLastUsed) is older than O(removed_at)); a key used
    after its removal is never deactivated, and the result says when, with which service and region.
  - The soak window (O(soak_hours)) since O(removed_at) has passed.
  - Nothing is deactivated or deleted that the task did not name. Check mode and diff show each key's status before
    and after. Never returns a whole key id.
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  fingerprints:
    description:
      - The keys, by fingerprint (16 hex digits, as M(keyless.aws.credential_sources_info) and
        M(keyless.aws.static_keys_info) return them). Never give key ids here.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(inactive) deactivates each key when it is safe; V(absent) deletes a key that is already inactive, once
        O(delete_after_hours) more have passed.
    type: str
    choices: [inactive, absent]
    default: inactive
  removed_at:
    description:
      - When the keys left the instances (ISO 8601; M(keyless.aws.host_access_keys) ran then). A use after this time
        stops the retirement.
      - With O(removals), only for the keys those results give no time for. One of the two is required.
    type: str
  removals:
    description:
      - "What M(keyless.aws.host_access_keys) returned on each host: C({host: result}). Each key's removal time is
        the latest RV(keyless.aws.host_access_keys#module:removed_at) of the hosts, so a key shared by instances
        soaks from the day the last of them gave it up."
      - A key named that no result and no O(removed_at) gives a time for is kept, and the result says so.
    type: dict
  found_on:
    description:
      - "What M(keyless.aws.credential_sources_info) finds on each host after the removal: C({host: result}). A key
        any of them still lists is never deactivated (added to O(still_found), by host name)."
    type: dict
  soak_hours:
    description:
      - How long after O(removed_at) a key must go unused before it is deactivated. IAM records a use within hours, so
        less than a day is rarely safe.
    type: float
    default: 168
  delete_after_hours:
    description:
      - With O(state=absent), how many hours after the soak window ends an inactive key may be deleted.
    type: float
    default: 720
  still_found:
    description:
      - "Where each key is still found on instances: C({fingerprint: [places]}) (for example the hosts whose
        M(keyless.aws.credential_sources_info) still lists it). A key with any place is never deactivated."
    type: dict
    default: {}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - keyless.aws.attributes
  - keyless.aws.attributes.ACTIONGROUP
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
notes:
  - Needs C(iam:ListUsers), C(iam:ListAccessKeys), C(iam:GetAccessKeyLastUsed), C(iam:UpdateAccessKey) and, for
    O(state=absent), C(iam:DeleteAccessKey).
seealso:
  - module: keyless.aws.static_keys_info
  - module: keyless.aws.host_access_keys
  - name: From keys to keyless
    description: The guide page, from finding the keys to retiring them.
    link: https://github.com/keyless-aws/keyless.aws/blob/main/docs/keys-to-keyless.md
"""

EXAMPLES = r"""
- name: Deactivate the report writer's old key a week after it left the instances, if nobody used it since
  keyless.aws.static_keys:
    fingerprints: [f66134f3b6918246]
    removed_at: "2026-11-20T09:00:00+00:00"
    soak_hours: 168
  register: retired

- name: Say what happened to each key, and why
  ansible.builtin.debug:
    msg: "{{ retired['keys'] | map(attribute='reason') | list }}"
"""

RETURN = r"""
keys:
  description: Each key named that IAM holds, with what was done (RV(keys[].action)) and why.
  returned: always
  type: list
  elements: dict
  contains:
    user:
      description: The IAM user that holds the key.
      type: str
    suffix:
      description: The key id's last four characters.
      type: str
    fingerprint:
      description: The key's fingerprint.
      type: str
    status:
      description: The key's status after the run (V(Active), V(Inactive), or V(deleted)).
      type: str
    action:
      description: V(deactivate), V(delete) or V(keep).
      type: str
    reason:
      description: Why, in a sentence (where the key still lives, when it was last used, when the soak ends).
      type: str
    last_used:
      description: The key's last use (C(date), C(service), C(region)), or null.
      type: dict
unmatched_fingerprints:
  description: Fingerprints no user of this account holds (another account's key, or one deleted already).
  returned: always
  type: list
  elements: str
"""

from ansible_collections.keyless.aws.plugins.module_utils.key_retirement import retire_keys
from ansible_collections.keyless.aws.plugins.module_utils.module import KeylessModule


def main():
    module = KeylessModule(
        argument_spec=dict(
            fingerprints=dict(type="list", elements="str", required=True, no_log=False),
            state=dict(type="str", choices=["inactive", "absent"], default="inactive"),
            removed_at=dict(type="str"),
            removals=dict(type="dict"),
            found_on=dict(type="dict"),
            soak_hours=dict(type="float", default=168),
            delete_after_hours=dict(type="float", default=720),
            still_found=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    module.run(lambda: retire_keys(module.retrying_client("iam"), module.params, module.check_mode))


if __name__ == "__main__":
    main()
