# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Jinja filters for EC2 trust policies: render one for a region's partition, check one."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import partition_for_region
from ansible_collections.keyless.aws.plugins.module_utils.trust import analyse_trust
from ansible_collections.keyless.aws.plugins.module_utils.trust import render_trust_policy


def _partition(region_or_partition):
    value = region_or_partition or "us-east-1"
    if value.startswith("aws"):
        return value
    return partition_for_region(value)


def ec2_trust_policy(region, conditions=None, extra_statements=None):
    """The trust policy that lets EC2 of ``region``'s partition assume a role."""
    try:
        return render_trust_policy(_partition(region), conditions=conditions, extra_statements=extra_statements)
    except KeylessError as error:
        raise AnsibleFilterError("ec2_trust_policy: {0}".format(error.message))


def ec2_trust_report(policy, region=None):
    """How a trust policy treats EC2 in ``region``'s partition (see analyse_trust)."""
    try:
        return analyse_trust(policy, _partition(region))
    except KeylessError as error:
        raise AnsibleFilterError("ec2_trust_report: {0}".format(error.message))


class FilterModule(object):
    def filters(self):
        return {
            "ec2_trust_policy": ec2_trust_policy,
            "ec2_trust_report": ec2_trust_report,
        }
