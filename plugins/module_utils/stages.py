# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Staged rollouts: which items go first (the canaries) and which follow.

One rule for every staged job of the collection: the canaries are the first
``ceil(len(items) * percent / 100)`` items in the order given (callers sort them, so a re-run picks
the same ones); 0 percent means no canary stage, 100 percent means everything is a canary.

``instance_stages`` applies it to the instances a plan of keyless.aws.ec2_metadata_options would
change (its ``canary_percent``: playbooks/harden.yml's stages). The check of such canaries is
keyless.aws.ec2_imdsv1_usage_info's ``instances_refusing_imdsv1`` (imds_usage.py): they pass when
none of them refused an IMDSv1 call since IMDSv2 became required there.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError


def check_percent(value, param):
    """A share in percent, 0 to 100 (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 100:
        raise KeylessError("{0}: {1!r} is not a share in percent (0 to 100).".format(param, value), param=param)
    return value


def canary_split(items, percent):
    """(canaries, rest): the first ceil(len(items) * percent / 100) items, then the others."""
    items = list(items)
    count = int(math.ceil(len(items) * percent / 100.0))
    return items[:count], items[count:]


def instance_stages(instances, percent):
    """The stages of an instance rollout, from the per-instance results of a plan (check mode):
    {canary, rest, skipped}, each a list of instance ids sorted by id.

    Only the instances the plan would change are staged (``changed``); those it leaves as they are
    for their IMDSv1 use (``skipped_for_imdsv1_use``) are ``skipped``; the others need nothing and
    are in no list. The canaries are the first ``percent`` of the staged ones (``canary_split``)."""
    changing = sorted(entry["instance_id"] for entry in instances if entry.get("changed"))
    canary, rest = canary_split(changing, percent)
    skipped = sorted(entry["instance_id"] for entry in instances if entry.get("skipped_for_imdsv1_use"))
    return {"canary": canary, "rest": rest, "skipped": skipped}
