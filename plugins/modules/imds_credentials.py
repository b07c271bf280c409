#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: imds_credentials
short_description: Prove on an EC2 instance that its role credentials arrive from the instance metadata service
version_added: 0.1.0
description:
  - Runs B(on the instance) and asks its instance metadata service (IMDS) for the role credentials, exactly as
    the AWS SDKs do, so you know an application there will get them with no configuration at all.
  - Uses IMDSv2 (a session token from C(PUT /latest/api/token), then the token on every request). Falls back to
    IMDSv1 only with O(allow_imdsv1=true); a host where only IMDSv1 works fails with a message that says so and why.
  - Waits, with backoff, up to O(timeout) seconds until C(iam/info) reports success and the role's credentials are
    served, and reports how long it waited (RV(waited_seconds)). Right after a profile is attached or swapped, the
    credentials can take a few seconds to appear.
  - Fails at once, naming the cause and the fix, when waiting cannot help, for instance when EC2 cannot assume the
    role (its trust policy does not allow C(ec2.amazonaws.com)), when the profile was deleted, or when the metadata
    endpoint is turned off.
  - Checks the role and the instance profile against O(expected_role) and O(expected_instance_profile), and reports
    whether the host still answers IMDSv1 (RV(imdsv1_enabled)).
  - Needs no boto3 on the instance, only Python's standard library and Ansible's URL helpers; botocore only for
    O(verify_with_sts=true).
  - B(Never returns or logs a secret), neither the secret access key, nor the session token, nor the IMDS token, nor
    the full access key id (only its last four characters, RV(access_key_id_suffix)). They are registered as values
    to mask in any output.
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  expected_role:
    description:
      - The role the instance must get credentials for, by name or ARN.
      - While the instance serves another role (a profile swap still propagating), the module keeps waiting; at
        O(timeout) it fails naming the role and profile it found.
      - With an ARN, the account must also match the instance profile's account (IMDS shows role names, not paths).
    type: str
  expected_instance_profile:
    description:
      - The instance profile the instance must carry, by name or ARN (compared with C(InstanceProfileArn) of
        C(iam/info)).
      - While the instance shows another profile, the module keeps waiting; at O(timeout) it fails naming what it
        found.
    type: str
  allow_imdsv1:
    description:
      - Accept a host where only IMDSv1 works (the token request is refused or never answered) and use IMDSv1 there,
        with a warning.
      - When V(false), such a host fails with a message saying why IMDSv2 did not work (for instance a
        C(HttpPutResponseHopLimit) too low for a container).
    type: bool
    default: false
  require_imdsv2:
    description:
      - Fail when the host still answers IMDSv1 (requests without a session token), that is when the instance's
        C(HttpTokens) is not V(required).
      - RV(imdsv1_enabled) is returned either way.
    type: bool
    default: false
  timeout:
    description:
      - How long to wait, in seconds, for the credentials to be served (and for the metadata service to answer).
      - V(0) looks once.
    type: float
    default: 120
  verify_with_sts:
    description:
      - Also call STS C(GetCallerIdentity) with the fetched credentials and return the assumed-role ARN as
        RV(assumed_role_arn); fails when STS does not recognise them as the role's.
      - Needs botocore on the host that runs the module and a route to STS. The STS endpoint and settings come from
        botocore's usual configuration (for instance C(AWS_ENDPOINT_URL_STS)); the region is the instance's.
    type: bool
    default: false
  endpoint:
    description:
      - The base URL of the metadata service.
      - Defaults to the environment variable E(AWS_EC2_METADATA_SERVICE_ENDPOINT) when set (as the SDKs do), else
        to C(http://169.254.169.254), or C(http://[fd00:ec2::254]) with O(endpoint_mode=ipv6).
    type: str
  endpoint_mode:
    description:
      - Which address of the metadata service to use when O(endpoint) is not set, V(ipv4) or V(ipv6) (in any case).
        The IPv6 address works on Nitro instances in an IPv6-enabled subnet whose C(HttpProtocolIpv6)
        is V(enabled).
      - Defaults to the environment variable E(AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE) when set, else V(ipv4).
    type: str
extends_documentation_fragment:
  - keyless.aws.attributes
  - keyless.aws.attributes.INFO_MODULE
notes:
  - Run it on the instance (not on the controller with C(connection=local)), for instance as a task of a play
    whose hosts are the instances, or with C(delegate_to) the instance.
  - The module honours E(AWS_EC2_METADATA_SERVICE_ENDPOINT) and E(AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE) but not
    E(AWS_EC2_METADATA_DISABLED), since checking the metadata service is its whole purpose.
  - The module makes no AWS API call (only O(verify_with_sts=true) calls STS), so it takes no AWS connection
    options and is not part of the C(keyless.aws.aws) action group.
  - Requests to the metadata service never go through a proxy.
seealso:
  - name: How your application gets credentials
    description: The user guide page on IMDS, the SDKs' credential chain and the pitfalls this module catches.
    link: https://github.com/keyless-aws/keyless.aws/blob/main/docs/credentials.md
  - name: Use IMDSv2
    description: AWS documentation of the instance metadata service and its session tokens.
    link: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html
  - module: keyless.aws.iam_instance_profile
  - module: keyless.aws.ec2_profile_association
    description: Attaches or swaps the instance's profile (on the controller); this module then waits for the new role.
  - module: keyless.aws.ec2_metadata_options
    description: Requires IMDSv2 on the instance, which O(require_imdsv2) checks from the inside.
"""

EXAMPLES = r"""
- name: Wait until the instance gets the credentials of its role
  keyless.aws.imds_credentials:
    expected_role: web-app
  register: creds

- name: Show what arrived (no secret is ever returned)
  ansible.builtin.debug:
    msg: "{{ creds.instance_id }} has {{ creds.role_name }} credentials until {{ creds.expiration }}
      (waited {{ creds.waited_seconds }}s)"

- name: Check the profile too, insist on IMDSv2 only, and ask STS who the credentials are
  keyless.aws.imds_credentials:
    expected_instance_profile: arn:aws:iam::123456789012:instance-profile/web-app
    expected_role: web-app
    require_imdsv2: true
    verify_with_sts: true
    timeout: 60

- name: Swap the instance to the profile web-app-v2 (from the controller, where the AWS modules run)
  keyless.aws.ec2_profile_association:
    instance_ids:
      - "{{ creds.instance_id }}"
    instance_profile: web-app-v2
  delegate_to: localhost

- name: Right after swapping profiles, wait for the new role to show
  keyless.aws.imds_credentials:
    expected_role: web-app-v2
    timeout: 180

- name: A legacy host behind a metadata proxy that only knows IMDSv1
  keyless.aws.imds_credentials:
    allow_imdsv1: true

- name: Over IPv6 (Nitro instance, IPv6 subnet, HttpProtocolIpv6=enabled)
  keyless.aws.imds_credentials:
    endpoint_mode: ipv6
"""

RETURN = r"""
instance_id:
  description: The instance's id, from the metadata service.
  returned: when the metadata service answered
  type: str
  sample: i-0123456789abcdef0
region:
  description: The instance's region (C(placement/region)).
  returned: when the metadata service answered
  type: str
  sample: us-east-1
availability_zone:
  description: The instance's availability zone.
  returned: when the metadata service answered
  type: str
  sample: us-east-1a
instance_profile_arn:
  description: The instance profile the instance carries (C(InstanceProfileArn) of C(iam/info)).
  returned: success
  type: str
  sample: arn:aws:iam::123456789012:instance-profile/web-app
instance_profile_id:
  description: The profile's id (C(InstanceProfileId) of C(iam/info)).
  returned: success
  type: str
  sample: AIPAJEXAMPLEID1234567
role_name:
  description: The role the credentials are for.
  returned: success
  type: str
  sample: web-app
expiration:
  description: When the served credentials expire (the SDKs refresh them before).
  returned: success
  type: str
  sample: "2026-01-12T17:18:29Z"
last_updated:
  description: When EC2 last refreshed the credentials.
  returned: success
  type: str
  sample: "2026-01-12T11:18:29Z"
credentials_type:
  description: The credentials' type as IMDS reports it.
  returned: success
  type: str
  sample: AWS-HMAC
access_key_id_suffix:
  description:
    - The last four characters of the temporary access key id, to find its calls in CloudTrail. The full id, the
      secret key and the session token are never returned.
  returned: success
  type: str
  sample: WXYZ
waited_seconds:
  description:
    - How long the module waited for the credentials, from its first look at C(iam/info) to the look that found
      them (V(0) when they were there at once). Also in the failure result when waiting did not help.
  returned: success
  type: float
  sample: 4.2
attempts:
  description: How many times the module looked at C(iam/info) and the credentials.
  returned: when the metadata service answered
  type: int
  sample: 3
imdsv1_enabled:
  description:
    - Whether the host still answers IMDSv1, requests without a session token (the instance's C(HttpTokens) is
      V(optional)). V(false) means IMDSv2 is enforced.
  returned: when the metadata service answered
  type: bool
  sample: false
imds_version:
  description: The protocol the module used, V(v2) (session token) or V(v1) (only with O(allow_imdsv1=true)).
  returned: when the metadata service answered
  type: str
  sample: v2
endpoint:
  description: The metadata service the module asked.
  returned: always
  type: str
  sample: http://169.254.169.254
assumed_role_arn:
  description: The caller ARN STS C(GetCallerIdentity) gives for the credentials.
  returned: when O(verify_with_sts=true)
  type: str
  sample: arn:aws:sts::123456789012:assumed-role/web-app/i-0123456789abcdef0
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.basic import env_fallback

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import failure_result
from ansible_collections.keyless.aws.plugins.module_utils.imds import botocore_sts_check
from ansible_collections.keyless.aws.plugins.module_utils.imds import check_instance_credentials
from ansible_collections.keyless.aws.plugins.module_utils.imds import open_url_sender


def main():
    argument_spec = dict(
        expected_role=dict(type="str"),
        expected_instance_profile=dict(type="str"),
        allow_imdsv1=dict(type="bool", default=False),
        require_imdsv2=dict(type="bool", default=False),
        timeout=dict(type="float", default=120),
        verify_with_sts=dict(type="bool", default=False),
        endpoint=dict(type="str", fallback=(env_fallback, ["AWS_EC2_METADATA_SERVICE_ENDPOINT"])),
        endpoint_mode=dict(type="str", fallback=(env_fallback, ["AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"])),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)

    def protect(value):
        # Any secret read from IMDS is masked wherever it could end up in the output.
        if value:
            module.no_log_values.add(value)

    try:
        result = check_instance_credentials(
            module.params,
            open_url_sender(),
            protect=protect,
            sts_check=botocore_sts_check if module.params["verify_with_sts"] else None,
        )
    except KeylessError as error:
        module.fail_json(**failure_result(error))
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
