"""playbooks/audit_merge.yml: the reports of the job slices of one audit, merged into the report
one run over every target writes.

First the real thing: playbooks/audit.yml over three targets of a static keyless_accounts inventory
(two regions of the sandbox, and one target that fails before any AWS call) in one run, then in two
slices (keyless_hosts patterns, as AWX's job slicing gives each job part of the hosts); the merge of
the slices' keyless-audit.json is that one run's report, its JSON and its Markdown byte for byte.
Then synthetic slices: a report written before the report had ``kinds``, a target that failed in one
slice and was audited in another, totals in the slices that disagree with their findings, and the
errors that name what is wrong.
"""

import json
import os

import pytest
import yaml

from runner import ROOT, run_playbook

from ansible_collections.keyless.aws.plugins.module_utils.audit_kinds import KINDS
from ansible_collections.keyless.aws.plugins.module_utils.audit_report import build_report
from ansible_collections.keyless.aws.plugins.module_utils.audit_report import merge_reports

AUDIT = os.path.join(ROOT, "playbooks", "audit.yml")
MERGE = os.path.join(ROOT, "playbooks", "audit_merge.yml")


def _read(report_dir):
    json_text = (report_dir / "keyless-audit.json").read_text()
    return json_text, json.loads(json_text), (report_dir / "keyless-audit.md").read_text()


def _seed(sandbox):
    """us-east-1: an instance with no profile that allows IMDSv1, a template that allows IMDSv1, and
    account defaults (two of them, in the order the module returns them: not sorted); eu-west-1: an
    instance with no profile."""
    east = sandbox.client("ec2", region_name="us-east-1")
    east.run_instances(ImageId="ami-12345678", InstanceType="t3.micro", MinCount=1, MaxCount=1,
                       MetadataOptions={"HttpTokens": "optional", "HttpEndpoint": "enabled"})
    east.create_launch_template(LaunchTemplateName="v1-lt", LaunchTemplateData={
        "ImageId": "ami-12345678", "MetadataOptions": {"HttpTokens": "optional"}})
    east.modify_instance_metadata_defaults(HttpTokens="required", HttpPutResponseHopLimit=2)
    west = sandbox.client("ec2", region_name="eu-west-1")
    west.run_instances(ImageId="ami-12345678", InstanceType="t3.micro", MinCount=1, MaxCount=1,
                       MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled"})


@pytest.mark.usefixtures("instant_transitions")
def test_the_merge_of_slices_is_the_report_of_one_run(sandbox, tmp_path):
    _seed(sandbox)
    inventory = tmp_path / "targets.yml"
    # broken fails on its own (a session duration STS refuses, checked before any call).
    inventory.write_text(yaml.safe_dump({"keyless_accounts": {"hosts": {
        "east": {"keyless_region": "us-east-1"}, "west": {"keyless_region": "eu-west-1"},
        "broken": {"keyless_region": "us-east-1", "keyless_session_duration": 5}}}}))

    def audit(report_dir, name, *args):
        return run_playbook(sandbox, AUDIT, "-i", str(inventory), "-e", "audit_imdsv1_usage_window=0",
                            "-e", "audit_report_dir={0}".format(report_dir), *args, name=name)

    whole = audit(tmp_path / "whole", "audit-merge-whole")
    assert whole.returncode == 2, whole.output[-4000:]  # broken failed, the others went on
    for number, hosts in (("1", "east"), ("2", "west,broken")):
        part = audit(tmp_path / "run" / number, "audit-merge-slice-" + number, "-e", "keyless_hosts=" + hosts)
        assert part.returncode == (2 if "broken" in hosts else 0), part.output[-4000:]

    merge = run_playbook(sandbox, MERGE, "-e", "audit_merge_dir={0}".format(tmp_path / "run"), name="audit-merge-slices")
    assert merge.returncode == 0, merge.output[-4000:]

    whole_json, whole_report, whole_md = _read(tmp_path / "whole")
    merged_json, merged_report, merged_md = _read(tmp_path / "run")
    # What the run found, so the equality below compares reports with something in them.
    assert [t["target"] for t in whole_report["targets"]] == ["east", "west"]
    assert whole_report["failed_targets"] == ["broken"]
    assert sorted((f["kind"], f["target"]) for f in whole_report["findings"]) == [
        ("instance_allows_imdsv1", "east"), ("instance_without_profile", "east"), ("instance_without_profile", "west"),
        ("launch_template_allows_imdsv1", "east")]
    assert all("findings" not in t for t in whole_report["targets"])
    assert whole_report["kinds"] == dict(KINDS)  # (the JSON file has its keys sorted; the Markdown keeps the order)
    assert whole_report["counts_by_region"]["eu-west-1"]["instance_without_profile"] == 1
    assert '| east | 123456789012 | us-east-1 | 1 | 1 | ' in whole_md
    assert '{"http_put_response_hop_limit": 2, "http_tokens": "required"} |' in whole_md
    assert "1 target(s) that could not be audited: broken (the run says why)" in whole_md.replace("\n", " ")
    # The merge of the slices is that report, byte for byte.
    assert merged_report == whole_report
    assert merged_json == whole_json
    assert merged_md == whole_md
    assert "4 finding(s) in 2 target(s), from 2 report(s): 2 instance_without_profile, 1 instance_allows_imdsv1, " \
           "1 launch_template_allows_imdsv1. Not audited: broken (their slices say why). Report: {0}/keyless-audit.md".format(
               tmp_path / "run") in merge.output
    # AWS was not called by the merge.
    sandbox.app.clear_log()
    again = run_playbook(sandbox, MERGE, "-e", "audit_merge_dir={0}".format(tmp_path / "run"), name="audit-merge-again")
    assert again.returncode == 0, again.output[-4000:]
    assert sandbox.calls() == []
    assert "changed=0" in again.output  # its own report in the folder is not one of the slices
    assert _read(tmp_path / "run")[0] == merged_json


def _finding(kind, resource, target, account, region):
    return {"kind": kind, "resource": resource, "detail": "why " + resource, "account_id": account,
            "region": region, "target": target}


def _target(name, account, region, findings):
    counts = dict((kind, 0) for kind, _title in KINDS)
    for finding in findings:
        counts[finding["kind"]] = counts.get(finding["kind"], 0) + 1
    return {"target": name, "account_id": account, "region": region,
            "checked": {"instances": 1, "launch_templates": 0, "instance_profiles": 0},
            "account_metadata_defaults": {}, "imdsv1_usage": None, "counts": counts, "findings": findings}


def _write(path, report):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return str(path)


def test_old_and_new_slices_merge_and_fail_on_findings(sandbox, tmp_path):
    web = _target("web", "111111111111", "us-east-1", [
        _finding("instance_without_profile", "i-1", "web", "111111111111", "us-east-1")])
    batch = _target("batch", "222222222222", "eu-west-1", [
        _finding("profile_unused", "spare", "batch", "222222222222", "eu-west-1"),
        _finding("retired_kind", "r-1", "batch", "222222222222", "eu-west-1")])
    retried = _target("retried", "222222222222", "us-east-1", [])
    first = build_report([web], ["retried"])  # retried failed in this slice...
    first["counts"]["instance_without_profile"] = 40  # ...and its totals were edited by hand
    old = build_report([batch, retried])  # ...and was audited in this one, written before kinds
    del old["kinds"]
    run = tmp_path / "run"
    slices = [_write(run / "7" / "keyless-audit.json", first), _write(run / "8" / "keyless-audit.json", old)]
    (run / "keyless-audit.json").write_text("not a slice: the merged report of an earlier merge is never read\n")

    merge = run_playbook(sandbox, MERGE, "-e", "audit_merge_dir={0}/".format(run), "-e", "audit_fail_on_findings=true",
                         name="audit-merge-old-and-new")
    assert merge.returncode == 2, merge.output[-4000:]
    assert "The audit found 3 problem(s) in 3 target(s); see {0}/keyless-audit.md.".format(run) in merge.output
    _text, report, markdown = _read(run)
    assert report == json.loads(json.dumps(merge_reports([json.loads(open(p).read()) for p in slices])))
    assert [t["target"] for t in report["targets"]] == ["web", "batch", "retried"]
    assert report["failed_targets"] == []
    assert report["counts"]["instance_without_profile"] == 1 and report["counts"]["retired_kind"] == 1
    assert report["kinds"]["retired_kind"] == "retired_kind"
    assert "| Instances without an instance profile | 1 |\n" in markdown
    # The kind this version does not know comes last, titled with its name.
    assert "| Instance profiles attached to nothing | 1 |\n| retired_kind | 1 |\n\n## " in markdown
    assert "\n## retired_kind\n\n- `r-1` in 222222222222 eu-west-1: why r-1\n" in markdown
    assert "**3 finding(s)** in 3 account and region\npair(s).\n" in markdown

    # The reports named one by one (audit_merge_reports), written to another folder.
    out = tmp_path / "out"
    listed = run_playbook(sandbox, MERGE, "-e", json.dumps({"audit_merge_reports": slices, "audit_report_dir": str(out)}),
                          name="audit-merge-listed")
    assert listed.returncode == 0, listed.output[-4000:]
    assert _read(out)[1] == report and _read(out)[2] == markdown


@pytest.mark.parametrize("case, message", [
    ("overlap", "audit_merge: target web is in two reports, {run}/1/keyless-audit.json and {run}/2/keyless-audit.json: "
                "the job slices of one audit never share a target"),
    ("not-a-report", "audit_merge: {run}/1/keyless-audit.json: has no targets and no findings"),
    ("not-json", "audit_merge: {run}/1/keyless-audit.json: not JSON"),
    ("empty", "No report to merge: {run}/*/keyless-audit.json matches no file."),
    ("unnamed", "Name the reports to merge: audit_merge_dir"),
])
def test_bad_slices_are_named(sandbox, tmp_path, case, message):
    run = tmp_path / "run"
    run.mkdir()
    web = build_report([_target("web", "111111111111", "us-east-1", [])])
    if case == "overlap":
        _write(run / "1" / "keyless-audit.json", web)
        _write(run / "2" / "keyless-audit.json", web)
    elif case == "not-a-report":
        _write(run / "1" / "keyless-audit.json", {"kinds": {}})
    elif case == "not-json":
        (run / "1").mkdir()
        (run / "1" / "keyless-audit.json").write_text("<html>502 Bad Gateway</html>\n")
    args = [] if case == "unnamed" else ["-e", "audit_merge_dir={0}".format(run)]
    result = run_playbook(sandbox, MERGE, *args, name="audit-merge-" + case)
    assert result.returncode == 2, result.output[-4000:]
    assert message.format(run=run) in result.output.replace("\n", " ").replace("  ", " "), result.output[-4000:]
    assert not (run / "keyless-audit.json").exists()
