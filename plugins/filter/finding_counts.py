# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Jinja filter: the totals of an audit's findings per kind, overall or per account, region or
any other key of the findings (the counting of module_utils/audit_report.py, which builds the
audit's report across targets)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.keyless.aws.plugins.module_utils.audit_report import finding_counts as count_findings


def finding_counts(findings, kinds=(), by=None):
    """{kind: count} for ``findings`` (dicts with a ``kind``), every kind of ``kinds`` included
    (0 when none); with ``by`` (a key of the findings, such as ``account_id``), {value of that key:
    {kind: count}} for each value the findings have, sorted."""
    try:
        return count_findings(findings, kinds, by=by)
    except ValueError as error:
        raise AnsibleFilterError("finding_counts: {0}".format(error))


class FilterModule(object):
    def filters(self):
        return {"finding_counts": finding_counts}
