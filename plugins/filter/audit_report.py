# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Jinja filters: the audit's report across targets, from the targets' reports of one run
(audit_report, playbooks/audit.yml) or from the reports of the job slices of one run (audit_merge,
playbooks/audit_merge.yml); the logic is module_utils/audit_report.py's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.keyless.aws.plugins.module_utils.audit_report import build_report
from ansible_collections.keyless.aws.plugins.module_utils.audit_report import merge_reports


def audit_report(target_reports, failed_targets=()):
    """The report of one run: ``target_reports`` (each target's report with its findings, in the
    run's order) and the names of the targets that could not be audited."""
    try:
        return build_report(target_reports, failed_targets)
    except ValueError as error:
        raise AnsibleFilterError("audit_report: {0}".format(error))


def audit_merge(reports, names=None):
    """One report from the reports (dicts, or the text of their keyless-audit.json files) of the job
    slices of one run; ``names`` (their paths) name them in errors."""
    try:
        return merge_reports(reports, names)
    except ValueError as error:
        raise AnsibleFilterError("audit_merge: {0}".format(error))


class FilterModule(object):
    def filters(self):
        return {
            "audit_report": audit_report,
            "audit_merge": audit_merge,
        }
