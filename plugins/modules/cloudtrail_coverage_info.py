#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: cloudtrail_coverage_info
short_description: Whether a CloudTrail trail records the API calls EventBridge is to deliver
version_added: 0.2.0
description:
  - Says whether a CloudTrail trail records the write management events of each service of O(event_sources) in the
    module's region. EventBridge receives C(AWS API Call via CloudTrail) events only from a logging trail that
    records them; without one, a rule on such events (the keyless guard's) never fires, and nothing says so.
  - A trail counts when it is logging, covers the region (multi-region, or homed there; an organization trail seen
    from a member account counts when its status and selectors can be read), and its event selectors take the
    service's write management events - none set, a basic selector with C(IncludeManagementEvents) and
    C(ReadWriteType) V(All) or V(WriteOnly) that does not exclude the service, or an advanced selector whose
    C(eventCategory) admits C(Management), whose C(readOnly) (when set) admits V(false) and whose C(eventSource) (when
    set) admits the service.
  - IAM is a global service - its events are recorded by a trail that includes global service events and is
    multi-region or homed in us-east-1, and they reach EventBridge in us-east-1 only.
  - When a service is not recorded, the module warns, in one sentence per service, saying why for each trail.
  - M(amazon.aws.cloudtrail_info) lists trails and their status but not their event selectors, so it cannot tell.
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  event_sources:
    description: The services, as CloudTrail names them (C(eventSource)).
    type: list
    elements: str
    default: [ec2.amazonaws.com, iam.amazonaws.com]
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - keyless.aws.attributes
  - keyless.aws.attributes.INFO_MODULE
  - keyless.aws.attributes.ACTIONGROUP
notes:
  - "Calls: C(DescribeTrails) (shadow trails included) in the module's region; C(GetTrailStatus) and
    C(GetEventSelectors) of each trail, in its home region. Needs C(cloudtrail:DescribeTrails),
    C(cloudtrail:GetTrailStatus) and C(cloudtrail:GetEventSelectors)."
seealso:
  - module: keyless.aws.event_queue
  - module: amazon.aws.cloudtrail
    description: Creates a trail.
  - module: amazon.aws.cloudtrail_info
  - name: AWS service events delivered via AWS CloudTrail
    description: The EventBridge user guide on the events a trail must record.
    link: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html
"""

EXAMPLES = r"""
- name: Does a trail record the EC2 and IAM calls of this region?
  keyless.aws.cloudtrail_coverage_info:
  register: coverage

- name: Stop here when it does not
  ansible.builtin.assert:
    that: coverage.all_recorded
    fail_msg: "{{ coverage.msg }}"

- name: EC2 only, in another region
  keyless.aws.cloudtrail_coverage_info:
    event_sources: [ec2.amazonaws.com]
    region: eu-west-1
"""

RETURN = r"""
recorded:
  description: Per service of O(event_sources), whether a trail records its write management events here.
  returned: always
  type: dict
  sample: {"ec2.amazonaws.com": true, "iam.amazonaws.com": false}
all_recorded:
  description: Whether every service is recorded.
  returned: always
  type: bool
  sample: false
trails:
  description:
    - The trails that apply to the region (shadow trails included) - C(name), C(arn), C(home_region),
      C(is_multi_region_trail), C(is_organization_trail), C(include_global_service_events), C(is_logging) (V(null)
      when unreadable), C(selectors) (V(none), V(basic), V(advanced), or V(null) when unreadable), C(records) and
      C(why) per service, and C(error) when a detail could not be read.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "management", "arn": "arn:aws:cloudtrail:us-east-1:123456789012:trail/management",
            "home_region": "us-east-1", "is_multi_region_trail": true, "is_organization_trail": false,
            "include_global_service_events": true, "is_logging": true, "selectors": "none",
            "records": {"ec2.amazonaws.com": true}, "why": {"ec2.amazonaws.com": "no event selectors: every management event"}}]
problems:
  description: Per service not recorded, the sentence the module also warns with (why, per trail, and the way out).
  returned: always
  type: list
  elements: str
msg:
  description: One line - which services are recorded, by which trail, or which are not.
  returned: always
  type: str
  sample: "Recorded by a logging trail: ec2.amazonaws.com (management), iam.amazonaws.com (management)."
"""

from ansible_collections.keyless.aws.plugins.module_utils.cloudtrail_coverage import coverage
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryingClient
from ansible_collections.keyless.aws.plugins.module_utils.common import botocore_config
from ansible_collections.keyless.aws.plugins.module_utils.module import KeylessModule


def main():
    module = KeylessModule(
        argument_spec=dict(
            event_sources=dict(type="list", elements="str", default=["ec2.amazonaws.com", "iam.amazonaws.com"]),
        ),
        supports_check_mode=True,
    )
    regional = {}

    def clients(region):
        """CloudTrail in ``region`` (a trail's home region), or the module's."""
        if region is None or region == module.region:
            return module.retrying_client("cloudtrail")
        if region not in regional:
            raw = module.client("cloudtrail", config=botocore_config(), region=region)
            regional[region] = RetryingClient(raw, module.retry_policy, None, module.call_stats)
        return regional[region]

    module.run(lambda: coverage(clients, module.params["event_sources"], module.region))


if __name__ == "__main__":
    main()
