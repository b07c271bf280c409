#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ec2_imdsv1_usage_info
short_description: How much IMDSv1 EC2 instances used, and refused, over a window
version_added: 0.2.0
description:
  - Reads, for the instances named by O(instance_ids) or selected by O(filters) (or every live instance of the
    region), the IMDSv1 calls of each over the last O(imdsv1_usage_window) days from CloudWatch, with its metadata
    options as they are now - the evidence to look at before requiring IMDSv2, and after it.
  - EC2 publishes, per instance, C(MetadataNoToken) (IMDSv1 calls the metadata service served - software that
    breaks when IMDSv2 becomes required) and C(MetadataNoTokenRejected) (IMDSv1 calls it refused because IMDSv2 is
    required - software that is broken now), namespace C(AWS/EC2), dimension C(InstanceId). The metrics have no
    account-wide view per instance; this module reads many instances per call.
  - The metrics are read with C(GetMetricData), 250 instances (500 queries) per call, never one call per instance.
    The datapoints are summed per period of 1 hour for windows up to 8 days, else 1 day (2 or 3 days beyond 200
    days); the window is widened to whole periods (at most one period more than asked, the current period
    included). A period without a datapoint counts as no call.
  - Changes nothing. To require IMDSv2 only where nothing used IMDSv1, use M(keyless.aws.ec2_metadata_options)
    with O(keyless.aws.ec2_metadata_options#module:imdsv1_usage_window) and
    O(keyless.aws.ec2_metadata_options#module:skip_instances_using_imdsv1).
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  instance_ids:
    description:
      - The instances, by id. Ids that do not exist in the region fail the module, naming them; terminated
        instances are read too (CloudWatch keeps what EC2 published while they ran).
    type: list
    elements: str
  filters:
    description:
      - EC2 C(DescribeInstances) filters that select the instances, as a dict, for example C(tag:team) to V(web).
      - Unless the filters name C(instance-state-name), only live instances are selected.
      - With O(instance_ids) too, only the named instances that match the filters.
    type: dict
  imdsv1_usage_window:
    description:
      - How many days back (1 to 455; CloudWatch keeps the hourly datapoints 455 days) to read.
    type: int
    default: 14
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - keyless.aws.attributes
  - keyless.aws.attributes.INFO_MODULE
  - keyless.aws.attributes.ACTIONGROUP
notes:
  - With neither O(instance_ids) nor O(filters), every live instance of the region is read.
  - Needs C(ec2:DescribeInstances) and C(cloudwatch:GetMetricData).
  - RV(instances[].last_imdsv1_call) is the start of the newest period (an hour, or a day for longer windows) with
    an IMDSv1 call, not the moment of the call. EC2 publishes the metrics every 5 minutes (every minute with
    detailed monitoring), so the newest calls may not show yet.
seealso:
  - module: keyless.aws.ec2_metadata_options
  - name: "Transition to using Instance Metadata Service Version 2"
    description: AWS's advice, to watch MetadataNoToken before requiring IMDSv2.
    link: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-transition-to-version-2.html
"""

EXAMPLES = r"""
- name: Which instances of team web called IMDSv1 in the last two weeks?
  keyless.aws.ec2_imdsv1_usage_info:
    filters:
      "tag:team": web
  register: usage

- name: Those that would break if IMDSv2 were required now
  ansible.builtin.debug:
    msg: "{{ usage.instances | selectattr('allows_imdsv1') | selectattr('imdsv1_calls') | map(attribute='instance_id') }}"

- name: Did anything on these instances call IMDSv1 since yesterday, now that IMDSv2 is required?
  keyless.aws.ec2_imdsv1_usage_info:
    instance_ids:
      - i-0123456789abcdef0
    imdsv1_usage_window: 1
  register: since

- name: Software there still calls IMDSv1, and is refused
  ansible.builtin.debug:
    msg: "{{ since.imdsv1_usage.instances_refusing_imdsv1 }}"
"""

RETURN = r"""
instances:
  description: One entry per instance read (O(instance_ids) order, else sorted by id).
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: The instance.
      type: str
      sample: i-0123456789abcdef0
    state:
      description: Its state now.
      type: str
      sample: running
    http_tokens:
      description: Its C(HttpTokens) now (V(optional) allows IMDSv1, V(required) does not).
      type: str
      sample: optional
    http_endpoint:
      description: Its C(HttpEndpoint) now.
      type: str
      sample: enabled
    allows_imdsv1:
      description: Whether its metadata service serves IMDSv1 now (C(HttpTokens) not V(required), the endpoint on).
      type: bool
      sample: true
    imdsv1_calls:
      description: The IMDSv1 calls served in the window (the Sum of C(MetadataNoToken)); V(0) without datapoints.
      type: int
      sample: 42
    imdsv1_calls_rejected:
      description: The IMDSv1 calls refused in the window (the Sum of C(MetadataNoTokenRejected)).
      type: int
      sample: 0
    last_imdsv1_call:
      description:
        - The start (UTC) of the newest period of the window with an IMDSv1 call, served or refused; V(null) for none.
      type: str
      sample: "2026-11-30T14:00:00Z"
imdsv1_usage:
  description: The window read, and the totals.
  returned: always
  type: dict
  contains:
    window_days:
      description: The window asked for, in days.
      type: int
      sample: 14
    start:
      description: The start of the window read (inclusive, UTC, aligned to the period).
      type: str
      sample: "2026-11-16T00:00:00Z"
    end:
      description: The end of the window read (exclusive, UTC; the end of the current period).
      type: str
      sample: "2026-12-01T00:00:00Z"
    period_seconds:
      description: The period the datapoints were summed over.
      type: int
      sample: 86400
    instances_read:
      description: How many instances were read.
      type: int
      sample: 12
    instances_using_imdsv1:
      description: The instances with IMDSv1 calls served in the window, sorted.
      type: list
      elements: str
      sample: ["i-0123456789abcdef0"]
    instances_refusing_imdsv1:
      description: The instances with IMDSv1 calls refused in the window, sorted.
      type: list
      elements: str
      sample: []
    imdsv1_calls:
      description: IMDSv1 calls served, all instances together.
      type: int
      sample: 42
    imdsv1_calls_rejected:
      description: IMDSv1 calls refused, all instances together.
      type: int
      sample: 0
"""

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.imds_usage import check_window
from ansible_collections.keyless.aws.plugins.module_utils.imds_usage import usage_report
from ansible_collections.keyless.aws.plugins.module_utils.instances import LIVE_STATES
from ansible_collections.keyless.aws.plugins.module_utils.instances import check_filters
from ansible_collections.keyless.aws.plugins.module_utils.instances import select_instances
from ansible_collections.keyless.aws.plugins.module_utils.module import KeylessModule
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_instance_ids


def validated(params):
    if params["instance_ids"] is not None and not params["instance_ids"]:
        raise KeylessError("instance_ids: the list is empty; name at least one instance, or leave the option out.",
                           param="instance_ids")
    return {
        "instance_ids": check_instance_ids(params["instance_ids"], "instance_ids"),
        "filters": check_filters(params["filters"]),
        "imdsv1_usage_window": check_window(params["imdsv1_usage_window"]),
    }


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str"),
        filters=dict(type="dict"),
        imdsv1_usage_window=dict(type="int", default=14),
    )
    module = KeylessModule(argument_spec=argument_spec, supports_check_mode=True)

    def run():
        params = validated(module.params)
        filters = params["filters"]
        if not params["instance_ids"] and not filters:
            filters = {"instance-state-name": list(LIVE_STATES)}
        instances = select_instances(module.retrying_client("ec2"), params["instance_ids"], filters,
                                     region=module.region, allow_gone=True)
        return usage_report(lambda: module.retrying_client("cloudwatch"), instances, params["imdsv1_usage_window"])

    module.run(run)


if __name__ == "__main__":
    main()
