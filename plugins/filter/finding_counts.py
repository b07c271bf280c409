# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Jinja filter: the totals of an audit's findings per kind, overall or per account, region or
any other key of the findings (playbooks/audit.yml's report across many targets)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError


def _kind_counts(findings, kinds):
    counts = dict((kind, 0) for kind in kinds)
    for finding in findings:
        counts[finding["kind"]] = counts.get(finding["kind"], 0) + 1
    return counts


def finding_counts(findings, kinds=(), by=None):
    """{kind: count} for ``findings`` (dicts with a ``kind``), every kind of ``kinds`` included
    (0 when none); with ``by`` (a key of the findings, such as ``account_id``), {value of that key:
    {kind: count}} for each value the findings have, sorted."""
    if not isinstance(findings, (list, tuple)) or not all(isinstance(f, dict) and "kind" in f for f in findings):
        raise AnsibleFilterError("finding_counts: give a list of findings, each a dict with a kind")
    kinds = list(kinds or ())
    if by is None:
        return _kind_counts(findings, kinds)
    missing = [f for f in findings if by not in f]
    if missing:
        raise AnsibleFilterError("finding_counts: {0} finding(s) have no {1!r}, such as {2!r}".format(
            len(missing), by, missing[0]))
    values = sorted(set(str(f[by]) for f in findings))
    return dict((value, _kind_counts([f for f in findings if str(f[by]) == value], kinds)) for value in values)


class FilterModule(object):
    def filters(self):
        return {"finding_counts": finding_counts}
