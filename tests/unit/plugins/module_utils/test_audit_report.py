"""module_utils/audit_report.py: the audit's report across targets, built from one run's targets and
merged from job slices' reports, so that a merged report is the report one run would have written."""

import copy
import json

import pytest

from ansible_collections.keyless.aws.plugins.module_utils.audit_kinds import KINDS
from ansible_collections.keyless.aws.plugins.module_utils.audit_kinds import KIND_NAMES
from ansible_collections.keyless.aws.plugins.module_utils.audit_report import build_report
from ansible_collections.keyless.aws.plugins.module_utils.audit_report import finding_counts
from ansible_collections.keyless.aws.plugins.module_utils.audit_report import merge_reports

WEB, BATCH = "111111111111", "222222222222"


def finding(kind, resource, target, account, region, **extra):
    return dict({"kind": kind, "resource": resource, "detail": "why " + resource, "account_id": account,
                 "region": region, "target": target}, **extra)


def target(name, account, region, findings, defaults=None):
    """A target's report as keyless.aws.audit_info returns it (counts of every kind, with its findings)."""
    counts = dict((kind, 0) for kind in KIND_NAMES)
    for f in findings:
        if f.get("kind") in counts:
            counts[f["kind"]] += 1
    return {"target": name, "account_id": account, "region": region,
            "checked": {"instances": 2, "launch_templates": 1, "instance_profiles": 1},
            "account_metadata_defaults": defaults or {}, "imdsv1_usage": None, "counts": counts,
            "findings": findings}


def targets():
    """Three targets of one run, in the run's order (not sorted)."""
    return [
        target("web-us-east-1", WEB, "us-east-1", [
            finding("instance_without_profile", "i-1", "web-us-east-1", WEB, "us-east-1"),
            finding("profile_unused", "spare", "web-us-east-1", WEB, "us-east-1", id="arn:aws:iam::1:instance-profile/spare"),
        ], defaults={"http_tokens": "required", "http_put_response_hop_limit": 2}),
        target("batch-eu-west-1", BATCH, "eu-west-1", [
            finding("instance_allows_imdsv1", "i-2", "batch-eu-west-1", BATCH, "eu-west-1"),
            finding("instance_without_profile", "i-2", "batch-eu-west-1", BATCH, "eu-west-1"),
        ]),
        target("web-eu-west-1", WEB, "eu-west-1", []),
    ]


def slice_report(targets_of_slice, failed=()):
    """A slice's keyless-audit.json, as audit.yml writes it (JSON, keys sorted) and the merge reads it."""
    return json.loads(json.dumps(build_report(targets_of_slice, failed), sort_keys=True))


def test_build_one_run():
    given = targets()
    report = build_report(given, ["old-us-east-1", "closed-eu-west-1"])
    assert [t["target"] for t in report["targets"]] == ["web-us-east-1", "batch-eu-west-1", "web-eu-west-1"]
    assert all("findings" not in t for t in report["targets"])
    assert report["targets"][1] == dict((k, v) for k, v in given[1].items() if k != "findings")
    assert report["failed_targets"] == ["closed-eu-west-1", "old-us-east-1"]
    assert report["findings"] == given[0]["findings"] + given[1]["findings"]
    assert list(report["counts"]) == list(KIND_NAMES)
    assert dict((k, n) for k, n in report["counts"].items() if n) == {
        "instance_without_profile": 2, "instance_allows_imdsv1": 1, "profile_unused": 1}
    assert report["counts_by_account"][WEB]["instance_without_profile"] == 1
    assert report["counts_by_account"][BATCH]["instance_allows_imdsv1"] == 1
    assert list(report["counts_by_region"]) == ["eu-west-1", "us-east-1"]
    assert sum(report["counts_by_region"]["eu-west-1"].values()) == 2
    assert list(report["kinds"].items()) == list(KINDS)
    assert sorted(report) == ["counts", "counts_by_account", "counts_by_region", "failed_targets", "findings",
                              "kinds", "targets"]
    # The inputs are left as they were.
    assert given == targets()


def test_build_sorts_the_account_defaults_as_the_json_file_has_them():
    """The Markdown shows them as JSON: from a run and from its JSON file (sorted keys), the same text."""
    report = build_report(targets())
    assert list(report["targets"][0]["account_metadata_defaults"]) == ["http_put_response_hop_limit", "http_tokens"]


def test_build_nothing_audited():
    report = build_report([], ["a"])
    assert report["targets"] == [] and report["findings"] == [] and report["failed_targets"] == ["a"]
    assert report["counts"] == dict((kind, 0) for kind in KIND_NAMES)
    assert report["counts_by_account"] == {} and report["counts_by_region"] == {}


def test_build_a_kind_it_does_not_know_is_counted_and_titled_with_its_name():
    odd = target("web-us-east-1", WEB, "us-east-1", [finding("instance_without_profile", "i-1", "web-us-east-1", WEB,
                                                             "us-east-1")])
    odd["findings"].append(finding("future_kind", "x", "web-us-east-1", WEB, "us-east-1"))
    report = build_report([odd])
    assert list(report["kinds"])[-1] == "future_kind" and report["kinds"]["future_kind"] == "future_kind"
    assert list(report["counts"])[-1] == "future_kind" and report["counts"]["future_kind"] == 1
    assert report["counts_by_region"]["us-east-1"]["future_kind"] == 1


@pytest.mark.parametrize("given, failed, message", [
    ("nope", (), "give a list of target reports, not str"),
    ([["web"]], (), r"target report 1 is not a dict with a target \(its name\): \['web'\]"),
    ([{"account_id": WEB}], (), r"target report 1 is not a dict with a target \(its name\): \['account_id'\]"),
    ([dict(target("a", WEB, "us-east-1", [])), {"target": "b"}], (), r"target report 2 \(b\): has no findings"),
    ([target("a", WEB, "us-east-1", []), target("a", WEB, "us-east-1", [])], (),
     r"target report 2 \(a\): the target is given twice"),
    ([dict(target("a", WEB, "us-east-1", []), findings="none")], (), r"target report 1 \(a\): findings is not a list"),
    ([target("a", WEB, "us-east-1", [{"resource": "i-1"}])], (), r"target report 1 \(a\): finding 1 is not a dict with a kind"),
    ([target("a", WEB, "us-east-1", [{"kind": "profile_unused", "resource": "p", "region": "us-east-1"}])], (),
     r"target report 1 \(a\): finding 1 \(profile_unused p\) has no account_id"),
    ([], "old", r"failed targets: failed_targets is not a list of target names: 'old'"),
])
def test_build_bad_input_is_named(given, failed, message):
    with pytest.raises(ValueError, match=message):
        build_report(given, failed)


def test_merge_of_slices_is_the_report_of_one_run():
    """Three slices (AWX gives every N-th host to a slice), merged in the slices' order: the report
    one run over every target writes, targets and findings in the slices' order."""
    web_east, batch, web_west = targets()
    slices = [slice_report([web_east], ["closed-eu-west-1"]), slice_report([batch]),
              slice_report([web_west], ["old-us-east-1"])]
    merged = merge_reports(slices)
    assert merged == slice_report(targets(), ["old-us-east-1", "closed-eu-west-1"])
    assert list(merged["kinds"]) == list(KIND_NAMES)  # in KINDS order again, whatever order the files had
    assert list(merged["counts"]) == list(KIND_NAMES)
    # And merging a merged report alone changes nothing.
    assert merge_reports([merged]) == merged


def test_merge_recounts_from_the_findings():
    """The slices' totals are never added up: a slice whose counts disagree with its findings (edited
    by hand, or written by a faulty version) does not make the merged totals wrong."""
    first, second = slice_report(targets()[:1]), slice_report(targets()[1:])
    first["counts"] = dict((kind, 100) for kind in KIND_NAMES)
    second["counts_by_account"] = {"999999999999": {"profile_unused": 7}}
    second["counts_by_region"] = {}
    merged = merge_reports([first, second])
    assert merged["counts"]["instance_without_profile"] == 2 and sum(merged["counts"].values()) == 4
    assert sorted(merged["counts_by_account"]) == [WEB, BATCH]
    assert merged["counts_by_region"] == build_report(targets())["counts_by_region"]


def test_merge_a_target_in_two_reports_is_an_error_naming_it_and_both():
    web_east, batch, _web_west = targets()
    with pytest.raises(ValueError, match=r"target batch-eu-west-1 is in two reports, /run/12/keyless-audit.json and "
                                         r"/run/13/keyless-audit.json: the job slices of one audit never share a target"):
        merge_reports([slice_report([web_east]), slice_report([batch]), slice_report([batch])],
                      ["/run/11/keyless-audit.json", "/run/12/keyless-audit.json", "/run/13/keyless-audit.json"])
    with pytest.raises(ValueError, match=r"target web-us-east-1 is in two reports, report 1 of 2 and report 2 of 2"):
        merge_reports([slice_report([web_east]), slice_report([web_east])])


def test_merge_a_target_failed_in_one_report_and_audited_in_another_counts_as_audited():
    web_east, batch, web_west = targets()
    merged = merge_reports([slice_report([web_east], ["batch-eu-west-1", "old-us-east-1"]),
                            slice_report([batch, web_west], ["old-us-east-1", "closed-eu-west-1"])])
    assert merged["failed_targets"] == ["closed-eu-west-1", "old-us-east-1"]
    assert [t["target"] for t in merged["targets"]] == ["web-us-east-1", "batch-eu-west-1", "web-eu-west-1"]


def test_merge_reports_written_before_kinds():
    """Reports of 0.2.0's audit.yml have no kinds, and no failed_targets when written by hand; a kind
    this version no longer knows keeps the title a newer report gave it, else its own name."""
    web_east, batch, web_west = targets()
    old = slice_report([web_east])
    del old["kinds"]
    old["findings"].append(finding("retired_kind", "r-1", "web-us-east-1", WEB, "us-east-1"))
    bare = slice_report([batch])
    del bare["kinds"], bare["failed_targets"]
    titled = slice_report([web_west])
    titled["kinds"]["other_kind"] = "Something a newer version checks"
    merged = merge_reports([old, bare, titled])
    assert list(merged["kinds"].items()) == list(KINDS) + [("other_kind", "Something a newer version checks"),
                                                           ("retired_kind", "retired_kind")]
    assert merged["counts"]["retired_kind"] == 1 and merged["counts"]["other_kind"] == 0
    assert merged["failed_targets"] == []
    assert len(merged["findings"]) == 5


def test_merge_reads_the_json_text_of_the_files():
    web_east, batch, _web_west = targets()
    texts = [json.dumps(slice_report([web_east]), indent=2, sort_keys=True) + "\n",
             json.dumps(slice_report([batch])).encode("utf-8")]
    assert merge_reports(texts) == slice_report([web_east, batch])
    with pytest.raises(ValueError, match=r"^/run/12/keyless-audit.json: not JSON \(Expecting value: line 1 column 1"):
        merge_reports([texts[0], "<html>"], ["/run/11/keyless-audit.json", "/run/12/keyless-audit.json"])


def test_merge_does_not_change_its_input():
    slices = [slice_report(targets()[:1]), slice_report(targets()[1:])]
    before = copy.deepcopy(slices)
    merge_reports(slices)
    assert slices == before


@pytest.mark.parametrize("reports, names, message", [
    ([], None, r"give a non-empty list of reports to merge, not \[\]"),
    ({"targets": []}, None, "give a non-empty list of reports to merge, not dict"),
    ([{"targets": [], "findings": []}], ["a", "b"], r"give one name per report: 1 report\(s\), names \['a', 'b'\]"),
    ([{"targets": [], "findings": []}, ["x"]], None, r"^report 2 of 2: not a report \(a dict with targets and findings\) but list"),
    ([{"findings": []}], ["/run/11/keyless-audit.json"], r"^/run/11/keyless-audit.json: has no targets \(is it a keyless-audit.json report\?\)"),
    ([{"targets": []}], None, r"^report 1 of 1: has no findings"),
    ([{"kinds": {}}], None, r"^report 1 of 1: has no targets and no findings"),
    ([{"targets": {}, "findings": []}], None, r"^report 1 of 1: targets is not a list but dict"),
    ([{"targets": [{"account_id": WEB}], "findings": []}], None, r"^report 1 of 1: target 1 is not a dict with a target"),
    ([{"targets": [], "findings": [{"kind": "profile_unused", "account_id": WEB}]}], None,
     r"^report 1 of 1: finding 1 \(profile_unused None\) has no region"),
    ([{"targets": [], "findings": [], "failed_targets": "a"}], None, r"^report 1 of 1: failed_targets is not a list"),
    ([{"targets": [], "findings": [], "kinds": ["profile_unused"]}], None, r"^report 1 of 1: kinds is not a dict"),
])
def test_merge_bad_input_is_named(reports, names, message):
    with pytest.raises(ValueError, match=message):
        merge_reports(reports, names)


def test_finding_counts_messages():
    """The messages the finding_counts filter gives (after its name)."""
    with pytest.raises(ValueError, match="^give a list of findings, each a dict with a kind$"):
        finding_counts([{"resource": "i-1"}])
    with pytest.raises(ValueError, match=r"^1 finding\(s\) have no 'region', such as \{'kind': 'x'\}$"):
        finding_counts([{"kind": "x"}], by="region")
