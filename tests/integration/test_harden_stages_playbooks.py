"""playbooks/harden.yml's staged rollout, through ansible-playbook against the sandbox, with the
IMDSv1 evidence the IMDS emulator published from real IMDSv1 requests (tests/sandbox/imds.py):

* the plan skips the instance whose software called IMDSv1 in the window; a canary share of the
  others goes first, then the rest; ``--check --diff`` predicts every stage, instance and diff of
  the real run, which changes them in that order;
* the software is fixed (it calls IMDSv2 now), its old IMDSv1 calls fall out of a shorter window,
  and harden enforces it; a re-run changes nothing;
* a canary whose software starts failing (IMDSv1 calls refused once IMDSv2 is required) stops the
  rollout after the soak: the rest is left as it was, and the job says which canary and why.
"""

import datetime
import http.client
import json
import os
import re
import threading
import time

import pytest

from runner import ROOT

PLAYBOOK = os.path.join(ROOT, "playbooks", "harden.yml")
MUTATING = ("ModifyInstanceMetadataOptions", "CreateLaunchTemplateVersion", "ModifyLaunchTemplate",
            "ModifyInstanceMetadataDefaults")

# Instances settle at once: these tests are about stages and metrics (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("instant_transitions")


def launch(ec2, count, team="web"):
    instances = ec2.run_instances(
        ImageId="ami-12345678", MinCount=count, MaxCount=count, MetadataOptions={"HttpTokens": "optional"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": team}]}])["Instances"]
    return sorted(i["InstanceId"] for i in instances)


def tokens(ec2, instance_ids):
    described = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    return dict((i["InstanceId"], i["MetadataOptions"]["HttpTokens"]) for r in described for i in r["Instances"])


def imds_get(emulator, token=None):
    """One GET of the instance id, as software on the instance makes it: IMDSv1 without a token."""
    connection = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    try:
        headers = {"X-aws-ec2-metadata-token": token} if token else {}
        connection.request("GET", "/latest/meta-data/instance-id", headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def imds_token(emulator):
    connection = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    try:
        connection.request("PUT", "/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        response = connection.getresponse()
        return response.read().decode()
    finally:
        connection.close()


def harden(sandbox, playbook, tmp_path, name, *args, expect_success=True, **extra_vars):
    report = tmp_path / (name + ".json")
    extra_vars.setdefault("harden_report_path", str(report))
    sandbox.app.clear_log()
    run = playbook(PLAYBOOK, "-e", json.dumps(extra_vars), *args, name="harden-stages-" + name)
    if expect_success:
        assert run.returncode == 0, "harden.yml {0} failed (log: {1}):\n{2}".format(
            name, run.log_path, run.output[-6000:])
    mutations = [(c["action"], c.get("params", {})) for c in sandbox.calls() if c["action"] in MUTATING]
    return run, (json.loads(report.read_text()) if report.exists() else None), mutations


def modified_instance(call):
    """The instance id a ModifyInstanceMetadataOptions call named (the request log's parameters)."""
    params = call[1]
    return params.get("InstanceId") or params.get("InstanceId.1")


def test_stages_skip_imdsv1_users_and_check_predicts_each_stage(sandbox, playbook, tmp_path, imds):
    ec2 = sandbox.client("ec2")
    fleet = launch(ec2, 5)
    legacy, clean = fleet[2], [i for i in fleet if i != fleet[2]]
    launch(ec2, 1, team="db")  # not targeted
    # legacy's software called IMDSv1 three days ago: real requests, published by its emulator then.
    three_days_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=3)
    emulator = imds(legacy, now=lambda: three_days_ago)
    for _call in range(4):
        assert imds_get(emulator) == 200
    inputs = dict(harden_instance_filters={"tag:team": "web"}, harden_canary_percent=25)

    check_run, predicted, check_mutations = harden(sandbox, playbook, tmp_path, "check", "--check", "--diff",
                                                   **inputs)
    assert check_mutations == []
    assert tokens(ec2, fleet) == dict((i, "optional") for i in fleet)
    assert predicted["stages"] == [
        {"stage": "canary", "instance_ids": clean[:1], "changed": clean[:1]},
        {"stage": "rest", "instance_ids": clean[1:], "changed": clean[1:]}]
    assert [(s["instance_id"], s["imdsv1_calls"]) for s in predicted["skipped_for_imdsv1_use"]] == [(legacy, 4)]
    assert predicted["imdsv1_window_days"] == 14
    assert "Stage 1 of 2, the canaries; instance(s): 1" in check_run.output
    assert ("The rest, the launch templates and the account default; stage and instance(s): 2 of 2, 3"
            in check_run.output)
    assert "skipped           1 instance(s) that made IMDSv1 calls in the last 14 days: {0} (4 calls)".format(
        legacy) in check_run.output
    check_headers = sorted(line for line in check_run.output.splitlines() if line.startswith("--- before: "))
    assert check_headers == sorted("--- before: instance {0} metadata options".format(i) for i in clean)

    real_run, real, mutations = harden(sandbox, playbook, tmp_path, "real", "--diff", **inputs)
    for key in ("changed", "instances", "stages", "skipped_for_imdsv1_use"):
        assert predicted[key] == real[key], key
    assert sorted(line for line in real_run.output.splitlines() if line.startswith("--- before: ")) == check_headers
    # The canary first, then the rest; the IMDSv1 user left as it was.
    assert [modified_instance(call) for call in mutations][0] == clean[0]
    assert sorted(modified_instance(call) for call in mutations) == clean
    assert tokens(ec2, fleet) == dict((i, "optional" if i == legacy else "required") for i in fleet)
    skipped_entry = [i for i in real["instances"] if i["instance_id"] == legacy][0]
    assert (skipped_entry["changed"], skipped_entry["skipped_for_imdsv1_use"]) == (False, True)

    # The software on legacy is fixed: it asks for a token now. Its old IMDSv1 calls are three days
    # old: a 2-day window no longer holds them, and harden enforces legacy.
    emulator.now = lambda: datetime.datetime.now(datetime.timezone.utc)
    assert imds_get(emulator, token=imds_token(emulator)) == 200
    fixed_run, fixed, fixed_mutations = harden(sandbox, playbook, tmp_path, "fixed", harden_imdsv1_usage_window=2,
                                               **inputs)
    assert [modified_instance(call) for call in fixed_mutations] == [legacy]
    assert fixed["stages"][0] == {"stage": "canary", "instance_ids": [legacy], "changed": [legacy]}
    assert fixed["skipped_for_imdsv1_use"] == []
    assert tokens(ec2, fleet) == dict((i, "required") for i in fleet)
    assert imds_get(emulator) == 401  # IMDSv1 refused now

    _again_run, again, again_mutations = harden(sandbox, playbook, tmp_path, "again", **inputs)
    assert again["changed"] is False and again_mutations == []
    assert again["stages"] == [{"stage": "canary", "instance_ids": [], "changed": []},
                               {"stage": "rest", "instance_ids": [], "changed": []}]


def test_a_canary_that_refuses_imdsv1_stops_the_rollout(sandbox, playbook, tmp_path, imds):
    ec2 = sandbox.client("ec2")
    fleet = launch(ec2, 4)
    canary = fleet[0]
    emulator = imds(canary)
    inputs = dict(harden_instance_ids=fleet, harden_canary_percent=25, harden_canary_soak_seconds=5)

    # --check predicts the stages, and waits for nothing.
    _check_run, predicted, check_mutations = harden(sandbox, playbook, tmp_path, "check", "--check", **inputs)
    assert check_mutations == []
    assert [s["instance_ids"] for s in predicted["stages"]] == [[canary], fleet[1:]]

    # Software on the canary calls IMDSv1 again as soon as IMDSv2 is required there: refused.
    refused = []

    def software_on_the_canary():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and tokens(sandbox.client("ec2"), [canary])[canary] != "required":
            time.sleep(0.2)
        for _call in range(3):
            refused.append(imds_get(emulator))

    thread = threading.Thread(target=software_on_the_canary, daemon=True)
    thread.start()
    run, report, mutations = harden(sandbox, playbook, tmp_path, "canary-fails", expect_success=False, **inputs)
    thread.join(timeout=130)
    assert refused == [401, 401, 401]
    assert run.returncode != 0
    assert "Stopped after the canary stage: 1 canary instance(s) refused IMDSv1 calls" in run.output
    assert "{0}: 3 refused".format(canary) in run.output
    assert "The other 3 instance(s)" in run.output
    assert [modified_instance(call) for call in mutations] == [canary]
    assert tokens(ec2, fleet) == dict((i, "required" if i == canary else "optional") for i in fleet)
    assert report is None  # the job stopped before the report: nothing claims the rest was done
    # The troubleshooting page quotes the message as a user sees it (its made-up id for the canary's).
    said = re.search(r"Stopped after the canary stage:.*?then run again\.", run.output).group(0)
    with open(os.path.join(ROOT, "docs", "troubleshooting.md")) as handle:
        page = handle.read()
    quoted = re.search(r"```text\n(Stopped after the canary stage:.*?)\n```", page, re.S).group(1)
    assert quoted.replace("i-0123456789abcdef0", canary) == said
