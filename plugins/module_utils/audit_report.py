# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The audit's report across targets: built from the per-target reports of one run
(playbooks/audit.yml, filter keyless.aws.audit_report), or merged from the reports of the job
slices of one run (playbooks/audit_merge.yml, filter keyless.aws.audit_merge). Both give the same
shape, so a merged report reads exactly as one run over every target would:

``targets`` (each target's report without its findings), ``failed_targets`` (sorted),
``counts`` ({kind: n}, every kind), ``counts_by_account`` and ``counts_by_region`` ({value: {kind:
n}}), ``findings`` (every finding, targets in order) and ``kinds`` ({kind: title}, in the report's
order: audit_kinds.KINDS, then kinds it does not know, titled with their own name).

Every total is counted here from the findings, never added up from totals given: a merged report's
counts cannot drift from its findings. Bad input raises ValueError naming the report, the target or
the finding and what is wrong with it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.keyless.aws.plugins.module_utils.audit_kinds import KIND_NAMES
from ansible_collections.keyless.aws.plugins.module_utils.audit_kinds import TITLES


def kind_counts(findings, kinds=()):
    """{kind: n} over ``findings``: every kind of ``kinds`` first, in that order (0 when none), then
    the kinds the findings have that ``kinds`` lacks, in the order they first appear."""
    counts = dict((kind, 0) for kind in kinds)
    for finding in findings:
        counts[finding["kind"]] = counts.get(finding["kind"], 0) + 1
    return counts


def finding_counts(findings, kinds=(), by=None):
    """{kind: count} for ``findings`` (dicts with a ``kind``), every kind of ``kinds`` included
    (0 when none); with ``by`` (a key of the findings, such as ``account_id``), {value of that key:
    {kind: count}} for each value the findings have, sorted. ValueError on findings that are not
    such dicts, or that lack ``by``."""
    if not isinstance(findings, (list, tuple)) or not all(isinstance(f, dict) and "kind" in f for f in findings):
        raise ValueError("give a list of findings, each a dict with a kind")
    kinds = list(kinds or ())
    if by is None:
        return kind_counts(findings, kinds)
    missing = [f for f in findings if by not in f]
    if missing:
        raise ValueError("{0} finding(s) have no {1!r}, such as {2!r}".format(len(missing), by, missing[0]))
    values = sorted(set(str(f[by]) for f in findings))
    return dict((value, kind_counts([f for f in findings if str(f[by]) == value], kinds)) for value in values)


def report_kinds(findings, titles=()):
    """{kind: title} in the report's order: every kind the collection knows (audit_kinds.KINDS),
    then the other kinds ``titles`` (a list of {kind: title} from older or newer reports) or the
    findings name, in the order met, each with the title a report gave it, else its own name."""
    given = {}
    extra = []
    for named in titles:
        for kind, title in named.items():
            if title and kind not in given:
                given[kind] = title
            if kind not in TITLES and kind not in extra:
                extra.append(kind)
    for finding in findings:
        if finding["kind"] not in TITLES and finding["kind"] not in extra:
            extra.append(finding["kind"])
    kinds = dict((kind, TITLES[kind]) for kind in KIND_NAMES)
    for kind in extra:
        kinds[kind] = given.get(kind) or kind
    return kinds


def _target_entry(report):
    """A target's entry in ``targets``: its report without its findings (they are in ``findings``),
    the account's metadata defaults with their keys sorted, as the JSON report writes them, so the
    Markdown reads the same from a run and from its JSON file."""
    entry = dict((key, value) for key, value in report.items() if key != "findings")
    defaults = entry.get("account_metadata_defaults")
    if isinstance(defaults, dict):
        entry["account_metadata_defaults"] = dict((key, defaults[key]) for key in sorted(defaults))
    return entry


def _assemble(targets, failed_targets, findings, titles):
    kinds = report_kinds(findings, titles)
    names = list(kinds)
    audited = set(t["target"] for t in targets)
    return {
        "targets": [_target_entry(t) for t in targets],
        "failed_targets": sorted(set(failed_targets) - audited),
        "counts": kind_counts(findings, names),
        "counts_by_account": finding_counts(findings, names, by="account_id"),
        "counts_by_region": finding_counts(findings, names, by="region"),
        "findings": list(findings),
        "kinds": kinds,
    }


def _check_findings(findings, where):
    if not isinstance(findings, (list, tuple)):
        raise ValueError("{0}: findings is not a list but {1}".format(where, type(findings).__name__))
    for index, finding in enumerate(findings):
        if not isinstance(finding, dict) or not isinstance(finding.get("kind"), str):
            raise ValueError("{0}: finding {1} is not a dict with a kind: {2!r}".format(where, index + 1, finding))
        for key in ("account_id", "region"):
            if key not in finding:
                raise ValueError("{0}: finding {1} ({2} {3}) has no {4}".format(
                    where, index + 1, finding["kind"], finding.get("resource"), key))


def _check_failed(failed_targets, where):
    if not isinstance(failed_targets, (list, tuple)) or not all(isinstance(t, str) for t in failed_targets):
        raise ValueError("{0}: failed_targets is not a list of target names: {1!r}".format(where, failed_targets))


def build_report(target_reports, failed_targets=()):
    """The report of one run from the report of each target it audited (each a dict with its
    ``target``, ``account_id``, ``region``, ``checked``, ``account_metadata_defaults``,
    ``imdsv1_usage``, ``counts`` and ``findings``, as keyless.aws.audit_info returns it), in the
    run's order, and the names of the targets that could not be audited."""
    if not isinstance(target_reports, (list, tuple)):
        raise ValueError("give a list of target reports, not {0}".format(type(target_reports).__name__))
    _check_failed(failed_targets, "failed targets")
    seen = set()
    findings = []
    for index, report in enumerate(target_reports):
        if not isinstance(report, dict) or not isinstance(report.get("target"), str):
            raise ValueError("target report {0} is not a dict with a target (its name): {1!r}".format(
                index + 1, report if not isinstance(report, dict) else sorted(report)))
        where = "target report {0} ({1})".format(index + 1, report["target"])
        if report["target"] in seen:
            raise ValueError("{0}: the target is given twice; each target has one report".format(where))
        seen.add(report["target"])
        if "findings" not in report:
            raise ValueError("{0}: has no findings (give each target's report with its findings)".format(where))
        _check_findings(report["findings"], where)
        findings.extend(report["findings"])
    return _assemble(target_reports, failed_targets, findings, ())


def _parsed(report, where):
    """A report given as the text of a keyless-audit.json file, parsed."""
    if isinstance(report, (bytes, bytearray)):
        report = report.decode("utf-8")
    if isinstance(report, str):
        try:
            return json.loads(report)
        except ValueError as error:
            raise ValueError("{0}: not JSON ({1})".format(where, error))
    return report


def merge_reports(reports, names=None):
    """One report from the reports of the job slices of one audit (each a dict, or the text of a
    slice's keyless-audit.json), as the run would have written it over every target at once:
    targets and findings in the order of ``reports``, a target failed in one slice but audited in
    another counted as audited, every total counted again from the findings. Reports written before
    the report had ``kinds`` merge too. ``names`` (the files' paths, say) name the reports in errors;
    else their place in the list. A target in two reports is an error: slices never share one."""
    if not isinstance(reports, (list, tuple)) or not reports:
        raise ValueError("give a non-empty list of reports to merge, not {0}".format(
            repr(reports) if isinstance(reports, (list, tuple)) else type(reports).__name__))
    if names is not None and (not isinstance(names, (list, tuple)) or len(names) != len(reports)):
        raise ValueError("give one name per report: {0} report(s), names {1!r}".format(len(reports), names))
    targets = []
    target_from = {}
    failed = []
    findings = []
    titles = []
    for index, report in enumerate(reports):
        where = "report {0} of {1}".format(index + 1, len(reports)) if names is None else str(names[index])
        report = _parsed(report, where)
        if not isinstance(report, dict):
            raise ValueError("{0}: not a report (a dict with targets and findings) but {1}".format(
                where, type(report).__name__))
        missing = [key for key in ("targets", "findings") if key not in report]
        if missing:
            raise ValueError("{0}: has no {1} (is it a keyless-audit.json report?)".format(where, " and no ".join(missing)))
        if not isinstance(report["targets"], (list, tuple)):
            raise ValueError("{0}: targets is not a list but {1}".format(where, type(report["targets"]).__name__))
        for position, target in enumerate(report["targets"]):
            if not isinstance(target, dict) or not isinstance(target.get("target"), str):
                raise ValueError("{0}: target {1} is not a dict with a target (its name): {2!r}".format(
                    where, position + 1, target))
            if target["target"] in target_from:
                raise ValueError("target {0} is in two reports, {1} and {2}: the job slices of one audit never share "
                                 "a target; give each slice's report once, and only the slices of one run".format(
                                     target["target"], target_from[target["target"]], where))
            target_from[target["target"]] = where
            targets.append(target)
        _check_findings(report["findings"], where)
        findings.extend(report["findings"])
        _check_failed(report.get("failed_targets") or [], where)
        failed.extend(report.get("failed_targets") or [])
        kinds = report.get("kinds")
        if kinds is not None and not isinstance(kinds, dict):
            raise ValueError("{0}: kinds is not a dict of kind: title but {1}".format(where, type(kinds).__name__))
        titles.append(kinds or {})
    return _assemble(targets, failed, findings, titles)
