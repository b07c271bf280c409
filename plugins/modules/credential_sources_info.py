#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: credential_sources_info
short_description: On an EC2 instance, find the static AWS keys that shadow its role, and which credentials each program really gets
version_added: 0.2.0
description:
  - Runs B(on the instance). Every AWS SDK takes the first credentials it finds and the instance role comes last, so a
    forgotten C(~/.aws/credentials), keys exported by a service, or keys passed in user data silently win over the
    role the instance carries. This module finds them and says, for every running program, every user and every
    systemd service that sets AWS variables, which source botocore would take first.
  - Walks botocore's credential chain offline, in its order and with its method names (C(env), C(assume-role),
    C(assume-role-with-web-identity), C(sso), C(shared-credentials-file), C(login), C(custom-process),
    C(config-file), C(ec2-credentials-file), C(boto-config), C(container-role), C(iam-role)), with no call to AWS and
    no network. A program whose RV(programs[].method) is not C(iam-role) does not use the instance's role.
  - Reads C(/proc/<pid>/environ) of every process (services and the processes of containers alike, a container's
    own files through C(/proc/<pid>/root)), the users' C(~/.aws/credentials), C(~/.aws/config) and C(~/.boto)
    (and the files C(AWS_SHARED_CREDENTIALS_FILE), C(AWS_CONFIG_FILE), C(AWS_CREDENTIAL_FILE) and C(BOTO_CONFIG)
    name), C(/etc/boto.cfg), C(/etc/environment), systemd units' C(Environment=) and C(EnvironmentFile=) (drop-ins
    included), and cloud-init's copy of the instance's user data.
  - Judges each file as the program's user would see it; a file that user cannot read counts as absent, as it does
    for the SDK. Run it with C(become=true) to see other users' files and processes; what it could not read is
    listed in RV(unreadable), never skipped in silence.
  - B(Never returns or logs a secret), nor a whole access key id. A key is shown as its kind (C(long-term) for
    C(AKIA...), C(temporary) for C(ASIA...)), its last four characters, the account its id encodes, and a
    fingerprint that the controller side computes alike to match it with IAM's keys.
  - Needs only Python's standard library on the instance. Changes nothing.
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  root:
    description:
      - The folder the host's files are read below. V(/) on a live instance; another folder to judge a mounted disk
        or an image.
    type: path
    default: /
  proc:
    description:
      - Where the process table is read (C(/proc) on Linux).
    type: path
    default: /proc
  pids:
    description:
      - Only these processes. By default every process, except the module's own and its ancestors (the run itself).
    type: list
    elements: int
  processes:
    description:
      - Look at running processes. V(false) judges files, users and services only.
    type: bool
    default: true
  units:
    description:
      - Look at systemd units (under C(/etc/systemd/system), C(/run/systemd/system), C(/usr/lib/systemd/system) and
        C(/lib/systemd/system)) that set AWS variables.
    type: bool
    default: true
extends_documentation_fragment:
  - keyless.aws.attributes
  - keyless.aws.attributes.INFO_MODULE
notes:
  - Run it on the instance, for instance as a task of a play whose hosts are the instances, with C(become=true).
  - The module makes no AWS API call, so it takes no AWS connection options and is not part of the C(keyless.aws.aws)
    action group.
  - Programs that are not Python may order their chain differently; RV(programs[].sdk_note) says how for Java and
    JavaScript runtimes. Keys that only C(amazon.aws) modules read (C(AWS_ACCESS_KEY), C(AWS_SECRET_KEY)) are
    reported in RV(programs[].amazon_aws).
seealso:
  - name: From keys to keyless
    description: The user guide page on finding the keys that shadow the role, and retiring them.
    link: https://github.com/keyless-aws/keyless.aws/blob/main/docs/keys-to-keyless.md
  - name: botocore's credential chain
    description: The order every method is tried in, as the AWS SDK for Python documents it.
    link: https://boto3.amazonaws.com/v1/documentation/api/latest/guide/credentials.html
  - module: keyless.aws.imds_credentials
    description: Proves the role's credentials arrive; this module proves the programs use them.
"""

EXAMPLES = r"""
- name: Which credentials each program on the instance really gets
  keyless.aws.credential_sources_info:
  become: true
  register: sources

- name: Say which programs use a key instead of the role
  ansible.builtin.debug:
    msg: >-
      {{ sources.programs | selectattr('static_key') | map(attribute='command') | list }}
      use a static key instead of the instance role

- name: One sentence per host (assert on sources.keyless to stop a rollout instead)
  ansible.builtin.debug:
    msg: "{{ sources.msg }}"

- name: Files, users and services only (for a disk mounted elsewhere, set root to its mount point)
  keyless.aws.credential_sources_info:
    root: /
    processes: false
  become: true
"""

RETURN = r"""
keyless:
  description:
    - V(true) when no key was found anywhere and no program, user or service resolves to a key kept on the host.
  returned: always
  type: bool
  sample: false
complete:
  description: V(false) when some place could not be read (see RV(unreadable)); then RV(keyless) may be wrong.
  returned: always
  type: bool
msg:
  description: One sentence on what was found.
  returned: always
  type: str
  sample: "2 keys found on this host; 1 program resolves to a static key instead of the instance role: python3 (pid 812, env)"
keys:
  description: Every access key id found, once per key, with every place it stands.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: V(long-term) (C(AKIA), a user's key), V(temporary) (C(ASIA), from STS) or V(unrecognised).
      type: str
    suffix:
      description: The key id's last four characters.
      type: str
    account:
      description: The account the key id encodes (keys made since about 2019), or null.
      type: str
    fingerprint:
      description: A SHA-256 fingerprint of the key id (16 hex digits), the same the audit computes from IAM.
      type: str
    places:
      description: Where it stands, as C(file) and C(line) (with C(user_data) for user data), or C(pid), C(command)
        and C(variable).
      type: list
      elements: dict
programs:
  description: Per running process, the source its credential chain takes first.
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: The process id.
      type: int
    command:
      description: The program's name (never its arguments, which may hold a secret).
      type: str
    user:
      description: The user it runs as.
      type: str
    unit:
      description: The systemd unit it belongs to, if any.
      type: str
    container:
      description: The container id (12 digits) for a process in a container.
      type: str
    method:
      description: botocore's method name of the source taken first, or V(none) when nothing answers.
      type: str
      sample: shared-credentials-file
    evidence:
      description: Where that source is, as C(variable), or C(file), C(line) and C(profile).
      type: dict
    key:
      description: The key the source yields, described as in RV(keys) (null for sources without a key).
      type: dict
    error:
      description: Where botocore would raise instead of going on (a key id without its secret, a missing profile).
      type: str
    static_key:
      description: Whether the program uses a key kept on the host.
      type: bool
    uses_instance_role:
      description: Whether the program gets the instance role's credentials.
      type: bool
    checked:
      description: The methods walked before the one taken.
      type: list
      elements: str
    sdk_note:
      description: How the program's runtime orders its chain, where it differs from botocore's.
      type: str
    amazon_aws:
      description: Keys only amazon.aws modules read (C(AWS_ACCESS_KEY)), which beat the whole chain in an Ansible run.
      type: dict
users:
  description: Per user with a home, the source a login of that user (with C(/etc/environment)) takes first; the
    same fields as RV(programs), with C(user) and C(home).
  returned: always
  type: list
  elements: dict
services:
  description: Per systemd service that sets AWS variables, the source it starts with; the same fields as
    RV(programs), with C(unit) and C(user).
  returned: always
  type: list
  elements: dict
user_data:
  description: Keys in cloud-init's copy of the instance's user data, as C(file), C(line) and C(key).
  returned: always
  type: list
  elements: dict
unreadable:
  description: Places that could not be read (run with C(become=true)).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.host_keys import check_host_paths
from ansible_collections.keyless.aws.plugins.module_utils.host_keys import host_argument_spec
from ansible_collections.keyless.aws.plugins.module_utils.host_keys import scan
from ansible_collections.keyless.aws.plugins.module_utils.host_keys import summary


def main():
    argument_spec = host_argument_spec()
    argument_spec.update(
        pids=dict(type="list", elements="int"),
        processes=dict(type="bool", default=True),
        units=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        check_host_paths(params["root"], params["proc"] if params["processes"] else None)
    except KeylessError as error:
        module.fail_json(msg=error.message, param=error.param)
    result = scan(root=params["root"], proc=params["proc"], pids=params["pids"], processes=params["processes"],
                  units=params["units"])
    if result["unreadable"]:
        module.warn("{0} places could not be read ({1}); run the task with become=true to judge them".format(
            len(result["unreadable"]), ", ".join(result["unreadable"][:5])))
    module.exit_json(changed=False, msg=summary(result), **result)


if __name__ == "__main__":
    main()
