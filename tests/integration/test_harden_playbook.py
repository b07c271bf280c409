"""playbooks/harden.yml against a seeded sandbox: the --check --diff run predicts exactly what the
real run then changes, and changes nothing itself."""

import base64
import json
import os

import pytest

from runner import ROOT
from sandbox.seed import wait_until

PLAYBOOK = os.path.join(ROOT, "playbooks", "harden.yml")
MUTATING = ("ModifyInstanceMetadataOptions", "CreateLaunchTemplateVersion", "ModifyLaunchTemplate",
            "ModifyInstanceMetadataDefaults")
OPTION_KEYS = ("HttpTokens", "HttpEndpoint", "HttpPutResponseHopLimit", "InstanceMetadataTags", "HttpProtocolIpv6")
SNAKE = {"HttpTokens": "http_tokens", "HttpEndpoint": "http_endpoint",
         "HttpPutResponseHopLimit": "http_put_response_hop_limit", "InstanceMetadataTags": "instance_metadata_tags",
         "HttpProtocolIpv6": "http_protocol_ipv6"}


def seed(sandbox):
    """Instances and templates in every state the playbook can meet."""
    ec2 = sandbox.client("ec2")

    def launch(team, **options):
        spec = dict(ImageId="ami-12345678", MinCount=1, MaxCount=1,
                    TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": team}]}])
        if options:
            spec["MetadataOptions"] = options
        return ec2.run_instances(**spec)["Instances"][0]["InstanceId"]

    ids = {
        "web_v1": launch("web", HttpTokens="optional"),
        "web_v2": launch("web", HttpTokens="required"),  # already hardened
        "web_containers": launch("web", HttpTokens="optional", HttpPutResponseHopLimit=2),
        "db": launch("db", HttpTokens="optional"),  # targeted by nothing
        "named": launch("batch", HttpTokens="optional"),
    }
    gone = launch("web", HttpTokens="optional")
    ec2.terminate_instances(InstanceIds=[gone])  # matched by the filter, skipped
    # As a careful client, wait until the fleet is past pending / shutting-down (the sandbox,
    # like EC2, shows them for a moment): the playbook meets a settled fleet.
    wait_until(sandbox, list(ids.values()), ("running",))
    wait_until(sandbox, [gone], ("terminated",))
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData={
        "ImageId": "ami-12345678", "InstanceType": "t3.micro", "MetadataOptions": {"HttpTokens": "optional"}})
    ec2.create_launch_template(LaunchTemplateName="hardened", LaunchTemplateData={
        "ImageId": "ami-12345678", "MetadataOptions": {"HttpTokens": "required"}})
    leaky = base64.b64encode(("#!/bin/sh\nexport AWS_ACCESS_KEY_ID={0}\n".format(sandbox.ACCESS_KEY)).encode()).decode()
    ec2.create_launch_template(LaunchTemplateName="leaky", LaunchTemplateData={
        "ImageId": "ami-12345678", "UserData": leaky, "MetadataOptions": {"HttpTokens": "optional"}})
    return ids


def state(sandbox):
    """Everything the playbook could change: instance options, template versions, account defaults."""
    ec2 = sandbox.client("ec2")
    instances = {}
    for reservation in ec2.describe_instances()["Reservations"]:
        for instance in reservation["Instances"]:
            if instance["State"]["Name"] != "terminated":
                options = instance["MetadataOptions"]
                instances[instance["InstanceId"]] = dict((SNAKE[k], options[k]) for k in OPTION_KEYS if k in options)
    templates = {}
    for template in ec2.describe_launch_templates()["LaunchTemplates"]:
        default = ec2.describe_launch_template_versions(
            LaunchTemplateId=template["LaunchTemplateId"], Versions=["$Default"])["LaunchTemplateVersions"][0]
        options = default["LaunchTemplateData"].get("MetadataOptions", {})
        templates[template["LaunchTemplateName"]] = {
            "default_version": template["DefaultVersionNumber"],
            "latest_version": template["LatestVersionNumber"],
            "options": dict((SNAKE[k], options[k]) for k in OPTION_KEYS if k in options),
        }
    account = ec2.get_instance_metadata_defaults()["AccountLevel"]
    return {"instances": instances, "templates": templates,
            "account": dict((SNAKE[k], account[k]) for k in OPTION_KEYS if k in account)}


def harden(playbook, tmp_path, name, *args, **extra_vars):
    report = tmp_path / (name + ".json")
    extra_vars.setdefault("harden_report_path", str(report))
    run = playbook(PLAYBOOK, "-e", json.dumps(extra_vars), *args, name="harden-" + name)
    assert run.returncode == 0, "harden.yml {0} failed (log: {1}):\n{2}".format(name, run.log_path, run.output[-6000:])
    return run, (json.loads(report.read_text()) if report.exists() else None)


def test_check_diff_predicts_exactly_what_the_real_run_changes(sandbox, playbook, tmp_path):
    ids = seed(sandbox)
    inputs = dict(harden_instance_ids=[ids["named"]], harden_instance_filters={"tag:team": "web"},
                  harden_launch_templates=["web", "hardened", "leaky"], harden_account_defaults=True)
    before = state(sandbox)
    sandbox.app.clear_log()

    check_run, predicted = harden(playbook, tmp_path, "check", "--check", "--diff", **inputs)
    assert [c["action"] for c in sandbox.calls() if c["action"] in MUTATING] == []
    assert state(sandbox) == before
    assert predicted["check_mode"] is True and predicted["changed"] is True

    real_run, real = harden(playbook, tmp_path, "real", "--diff", **inputs)
    after = state(sandbox)
    assert real["check_mode"] is False
    for key in ("changed", "instances", "launch_templates", "account_defaults", "user_data_findings"):
        assert predicted[key] == real[key], key

    # What the prediction says changes is exactly what changed, and to what it said.
    predicted_instances = dict((i["instance_id"], i) for i in predicted["instances"])
    assert sorted(predicted_instances) == sorted([ids["web_v1"], ids["web_v2"], ids["web_containers"], ids["named"]])
    changed_instances = sorted(i for i in after["instances"] if after["instances"][i] != before["instances"][i])
    assert changed_instances == sorted(i for i, p in predicted_instances.items() if p["changed"])
    assert changed_instances == sorted([ids["web_v1"], ids["web_containers"], ids["named"]])
    for instance_id, prediction in predicted_instances.items():
        assert prediction["before"] == before["instances"][instance_id]
        assert prediction["after"] == after["instances"][instance_id]
    assert after["instances"][ids["web_containers"]]["http_put_response_hop_limit"] == 2  # unset: left alone

    predicted_templates = dict((t["launch_template_name"], t) for t in predicted["launch_templates"])
    changed_templates = sorted(t for t in after["templates"] if after["templates"][t] != before["templates"][t])
    assert changed_templates == sorted(t for t, p in predicted_templates.items() if p["changed"]) == ["leaky", "web"]
    for name, prediction in predicted_templates.items():
        assert prediction["default_version"] == after["templates"][name]["default_version"]
        if prediction["new_version"]:
            assert prediction["new_version"] == after["templates"][name]["latest_version"]
        assert prediction["after"] == after["templates"][name]["options"]

    assert predicted["account_defaults"]["before"] == before["account"] == {}
    assert predicted["account_defaults"]["after"] == after["account"] == {"http_tokens": "required"}

    # --diff shows one block per changed target, the same in both runs.
    headers = sorted(line for line in check_run.output.splitlines() if line.startswith("--- before: "))
    assert headers == sorted(line for line in real_run.output.splitlines() if line.startswith("--- before: "))
    assert len(headers) == len(changed_instances) + len(changed_templates) + 1
    for instance_id in changed_instances:
        assert "--- before: instance {0} metadata options".format(instance_id) in headers

    # The baked key is reported by place, never printed.
    assert predicted["user_data_findings"][0]["launch_template_name"] == "leaky"
    assert sandbox.ACCESS_KEY not in check_run.output + real_run.output

    # A rerun has nothing left to do.
    _rerun, again = harden(playbook, tmp_path, "again", **inputs)
    assert again["changed"] is False
    assert state(sandbox) == after


def test_safe_defaults_change_nothing(sandbox, playbook, tmp_path):
    seed(sandbox)
    before = state(sandbox)
    sandbox.app.clear_log()
    run, report = harden(playbook, tmp_path, "defaults")
    assert report is None and "No target given" in run.output
    assert [c for c in sandbox.calls() if c["service"] == "ec2"] == []
    assert state(sandbox) == before


@pytest.mark.parametrize("extra, fragment", [
    ({"harden_http_put_response_hop_limit": 65}, "harden_http_put_response_hop_limit 1 to 64"),
    ({"harden_instance_ids": "i-0123456789abcdef0"}, "harden_instance_ids and harden_launch_templates are lists"),
])
def test_bad_input_fails_before_any_call(sandbox, playbook, tmp_path, extra, fragment):
    sandbox.app.clear_log()
    run = playbook(PLAYBOOK, "-e", json.dumps(dict(extra, harden_account_defaults=True)), name="harden-bad")
    assert run.returncode != 0 and fragment in run.output
    assert [c for c in sandbox.calls() if c["service"] == "ec2"] == []


def test_baked_keys_can_fail_the_job(sandbox, playbook, tmp_path):
    seed(sandbox)
    run = playbook(PLAYBOOK, "--check", "-e", json.dumps(dict(harden_launch_templates=["leaky"],
                                                              harden_fail_on_baked_keys=True)), name="harden-keys")
    assert run.returncode != 0 and "leaky version 1" in run.output
    assert sandbox.ACCESS_KEY not in run.output
