#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: host_access_keys
short_description: On an EC2 instance, take named static AWS keys out of its files and services, recoverably
version_added: 0.2.0
description:
  - Runs B(on the instance). Takes the keys named by O(fingerprints) (as M(keyless.aws.credential_sources_info) and
    M(keyless.aws.static_keys_info) return them) off the host, so its programs reach the instance role instead.
  - Only what holds those keys changes. In a credentials, config or boto file, the C(aws_access_key_id) line and, in
    the same section, the secret and session token lines; the section's other settings and every other profile stay.
    In an environment file (C(/etc/environment), a unit's C(EnvironmentFile=), an C(AWS_CREDENTIAL_FILE)), the key's
    line and the file's secret and session token lines. On a systemd unit's C(Environment=) line, only the key
    variables' words; the unit then gets a drop-in of ours, C(keyless-aws-no-static-keys.conf), that sets
    C(UnsetEnvironment=) for the key variables.
  - Before a file changes, every line removed is saved to C(<backup_dir>/<fingerprint>.json) (a folder and files only
    root can read), named in RV(backups), so it can be put back until the key is retired.
  - The instance's user data and the environment of running processes cannot change here; they are listed in
    RV(left). Services are restarted only with O(restart_services=true).
  - Check mode and diff show what would be removed, by file and line, with the key as its last four characters and
    never a secret. A second run changes nothing.
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  fingerprints:
    description:
      - The keys to take off the host, by fingerprint (16 hex digits). Never give key ids here.
    type: list
    elements: str
    required: true
  state:
    description:
      - V(absent) takes the keys off the host.
    type: str
    choices: [absent]
    default: absent
  root:
    description:
      - The folder the host's files are below (V(/) on a live instance).
    type: path
    default: /
  proc:
    description:
      - Where the process table is read, to list the processes that still hold a key.
    type: path
    default: /proc
  backup_dir:
    description:
      - Where the removed lines are kept (below O(root)).
    type: path
    default: /var/lib/keyless-aws/removed-keys
  restart_services:
    description:
      - Reload systemd and restart the services that got a drop-in, so they start without the key. Only on a live host
        (O(root=/)).
    type: bool
    default: false
extends_documentation_fragment:
  - keyless.aws.attributes
notes:
  - Run it on the instance with C(become=true). The module makes no AWS API call, and takes no AWS connection options.
  - Deactivating the key in IAM is a separate step, once no instance holds it and it has not been used since.
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
seealso:
  - module: keyless.aws.credential_sources_info
    description: Finds the keys and which programs use them; run it again afterwards to see every program on the role.
  - name: From keys to keyless
    description: The guide page on finding the keys that shadow the role, and retiring them.
    link: https://github.com/keyless-aws/keyless.aws/blob/main/docs/keys-to-keyless.md
"""

EXAMPLES = r"""
- name: Find the keys on the instance
  keyless.aws.credential_sources_info:
  become: true
  register: sources

- name: Take them off the instance (the lines are kept in a root-only backup)
  keyless.aws.host_access_keys:
    fingerprints: "{{ sources['keys'] | selectattr('kind', 'equalto', 'long-term') | map(attribute='fingerprint') | list }}"
    restart_services: false
  become: true
  register: removal
"""

RETURN = r"""
removed:
  description: The files changed, with the lines taken out (masked) and the keys they held.
  returned: always
  type: list
  elements: dict
  sample: [{"file": "/home/app/.aws/credentials", "lines": [2, 3], "fingerprints": ["f66134f3b6918246"],
            "removed": ["line 2: aws_access_key_id = ...MPLE", "line 3: aws_secret_access_key = (secret, not shown)"]}]
drop_ins:
  description: The systemd units that got the drop-in, and its path.
  returned: always
  type: list
  elements: dict
restarted:
  description: The units restarted (O(restart_services=true)).
  returned: always
  type: list
  elements: str
left:
  description: Where a key still stands that this module cannot change (user data, running processes), and why.
  returned: always
  type: list
  elements: dict
found:
  description: The fingerprints found on the host.
  returned: always
  type: list
  elements: str
not_found:
  description: The fingerprints asked for that the host does not hold (any more).
  returned: always
  type: list
  elements: str
backups:
  description: The backup files written (root-only), one per key.
  returned: always
  type: list
  elements: str
removed_at:
  description:
    - "When this host last gave up each key its backups hold (named in this run or an earlier one), from the backup
      files: C({fingerprint: ISO 8601 time}). A re-run that finds nothing left to remove still returns it, so
      M(keyless.aws.static_keys) counts its soak from the run that took the key away; O(fingerprints=[]) in check
      mode reads just that."
  returned: always
  type: dict
  sample: {"f66134f3b6918246": "2026-12-04T09:30:00+00:00"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.keyless.aws.plugins.module_utils.access_keys import check_fingerprints
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.host_keys import check_host_paths
from ansible_collections.keyless.aws.plugins.module_utils.host_keys import host_argument_spec
from ansible_collections.keyless.aws.plugins.module_utils.key_removal import remove_keys


def main():
    argument_spec = host_argument_spec()
    argument_spec.update(
        fingerprints=dict(type="list", elements="str", required=True, no_log=False),
        state=dict(type="str", choices=["absent"], default="absent"),
        backup_dir=dict(type="path", default="/var/lib/keyless-aws/removed-keys"),
        restart_services=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        fingerprints = check_fingerprints(params["fingerprints"])
        check_host_paths(params["root"])
    except KeylessError as error:
        module.fail_json(msg=error.message, param=error.param)
    if params["restart_services"] and params["root"] != "/":
        module.fail_json(msg="restart_services: services can be restarted only on the live host (root: /), not "
                             "below {0}".format(params["root"]), param="restart_services")
    try:
        result = remove_keys(params["root"], params["proc"], fingerprints, module.check_mode, params["backup_dir"])
    except KeylessError as error:
        module.fail_json(msg=error.message)
    result["restarted"] = []
    if result["drop_ins"] and params["root"] == "/" and not module.check_mode:
        module.run_command(["systemctl", "daemon-reload"], check_rc=True)
        for entry in result["drop_ins"] if params["restart_services"] else []:
            module.run_command(["systemctl", "restart", entry["unit"]], check_rc=True)
            result["restarted"].append(entry["unit"])
    for entry in result["left"]:
        module.warn("the key with fingerprint {0} stays in {1}: {2}".format(
            entry["fingerprint"], entry.get("file") or "pid {0} ({1})".format(entry.get("pid"), entry.get("command")),
            entry["why"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
