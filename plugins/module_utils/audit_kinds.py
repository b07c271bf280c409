# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The kinds of finding the audit reports, in the report's order, with their titles: the one list
keyless.aws.audit_info, playbooks/audit.yml's report and the merge of sliced reports share."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

KINDS = (
    ("instance_without_profile", "Instances without an instance profile"),
    ("instance_allows_imdsv1", "Instances that still allow IMDSv1"),
    ("instance_used_imdsv1", "Instances whose software used IMDSv1 (requiring IMDSv2 would break it)"),
    ("instance_refused_imdsv1", "Instances that refused IMDSv1 calls (software there is broken now)"),
    ("launch_template_allows_imdsv1", "Launch templates that still allow IMDSv1"),
    ("launch_template_user_data_keys", "Launch templates whose user data looks like it holds keys"),
    ("instance_user_data_keys", "Instances whose own user data looks like it holds keys"),
    ("instance_static_keys", "Instances where programs take static keys before the role"),
    ("profile_without_role", "Instance profiles with no role"),
    ("role_does_not_trust_ec2", "Roles (held by instance profiles) that do not trust EC2"),
    ("profile_unused", "Instance profiles attached to nothing"),
)

KIND_NAMES = tuple(kind for kind, _title in KINDS)
TITLES = dict(KINDS)
