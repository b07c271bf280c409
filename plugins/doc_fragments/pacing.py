# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    """The pacing option of the fleet modules (plugins/module_utils/pacing.py), documented once."""

    DOCUMENTATION = r"""
options:
  max_request_rate:
    description:
      - The most mutating EC2 calls a second this task makes, to leave part of the account's API budget to other
        automation (Auto Scaling, CI, other teams). The burst before that rate shrinks in proportion (for example
        V(2) allows a burst of 40 attach calls instead of EC2's 100, then 2 a second).
      - Above EC2's documented rates, for an account whose API limits AWS raised on request, the pace and the burst
        grow in proportion (V(20) allows 400 attach calls at once, then 20 a second). A throttled answer still slows
        the task down, so a rate the account does not have costs refused calls, not failures.
      - When not set, calls are paced at the rates EC2 documents for an account and region (for example 100 attach
        or IMDS calls at once, then 5 a second). A throttled answer slows the task down further, for everyone's
        sake, and is retried for as long as O(wait_timeout) lasts.
      - Reads are paced at EC2's documented rate for reads whatever this says.
    type: float
    version_added: 0.2.0
notes:
  - EC2 throttles each account and region with token buckets
    (U(https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html)), shared by everything in the
    account. The module paces its calls by those buckets inside the module process, across its threads, so a large
    fleet runs at EC2's limit and is hardly ever refused; RV(timing) says how the time went. Tasks running at the
    same time (several hosts, several forks) do not share one pacer; each slows down when EC2 refuses it.
"""
