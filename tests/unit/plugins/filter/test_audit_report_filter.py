"""The audit_report and audit_merge filters: module_utils/audit_report.py's report, its errors as
filter errors that name the filter."""

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.keyless.aws.plugins.filter.audit_report import FilterModule
from ansible_collections.keyless.aws.plugins.filter.audit_report import audit_merge
from ansible_collections.keyless.aws.plugins.filter.audit_report import audit_report
from ansible_collections.keyless.aws.plugins.module_utils.audit_report import build_report

FINDING = {"kind": "instance_without_profile", "resource": "i-1", "detail": "carries no instance profile",
           "account_id": "111111111111", "region": "us-east-1", "target": "web"}
TARGET = {"target": "web", "account_id": "111111111111", "region": "us-east-1",
          "checked": {"instances": 1, "launch_templates": 0, "instance_profiles": 0},
          "account_metadata_defaults": {}, "imdsv1_usage": None, "counts": {"instance_without_profile": 1},
          "findings": [FINDING]}


def test_both_filters_are_listed():
    assert FilterModule().filters() == {"audit_report": audit_report, "audit_merge": audit_merge}


def test_audit_report_is_build_report():
    assert audit_report([TARGET], ["old"]) == build_report([TARGET], ["old"])
    assert audit_report([TARGET])["failed_targets"] == []


def test_audit_merge_reads_the_files_text_and_merges():
    report = audit_report([TARGET])
    other = audit_report([dict(TARGET, target="batch", findings=[dict(FINDING, target="batch")])], ["web"])
    merged = audit_merge([json.dumps(report), other], ["/run/1/keyless-audit.json", "/run/2/keyless-audit.json"])
    assert [t["target"] for t in merged["targets"]] == ["web", "batch"]
    assert merged["failed_targets"] == [] and merged["counts"]["instance_without_profile"] == 2


@pytest.mark.parametrize("call, message", [
    (lambda: audit_report("web"), "^audit_report: give a list of target reports, not str$"),
    (lambda: audit_report([dict(TARGET, findings=None)]), r"^audit_report: target report 1 \(web\): findings is not a list"),
    (lambda: audit_merge([{"targets": []}], ["/run/1/keyless-audit.json"]),
     r"^audit_merge: /run/1/keyless-audit.json: has no findings"),
    (lambda: audit_merge([]), r"^audit_merge: give a non-empty list of reports to merge"),
])
def test_errors_name_the_filter(call, message):
    with pytest.raises(AnsibleFilterError, match=message):
        call()
