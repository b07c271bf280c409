"""Evidence before enforcement through ansible-playbook against the sandbox, as a user runs it:
``keyless.aws.ec2_metadata_options`` with ``imdsv1_usage_window`` and ``skip_instances_using_imdsv1``.

* three instances that allow IMDSv1: ``legacy`` makes real IMDSv1 calls to its IMDS emulator
  (which publishes ``MetadataNoToken`` to the sandbox's CloudWatch, tests/sandbox/imds.py),
  ``old`` used IMDSv1 five days ago (``publish_imds_usage``), ``clean`` never did;
* ``--check --diff`` predicts exactly what the real run does: ``clean`` enforced, the other two
  skipped and reported with their counts and last use, a warning naming how many;
* ``old``'s software was fixed five days ago: a 3-day window no longer holds its calls, and it
  is enforced; ``legacy`` with ``skip_instances_using_imdsv1: false`` is enforced anyway, with a
  warning; then a re-run changes nothing and reads no metric at all.
"""

import datetime
import http.client

import pytest

from runner import run_written
from sandbox.imds import publish_imds_usage

MUTATING = ("ModifyInstanceMetadataOptions", "CreateLaunchTemplateVersion", "ModifyLaunchTemplate",
            "ModifyInstanceMetadataDefaults")

PLAYBOOK = """---
- name: Require IMDSv2 where nothing uses IMDSv1
  hosts: localhost
  gather_facts: false
  tasks:
    - name: IMDSv2 on the instances that made no IMDSv1 call in the window
      keyless.aws.ec2_metadata_options:
        instance_ids: "{{ instance_ids }}"
        imdsv1_usage_window: "{{ window }}"
        skip_instances_using_imdsv1: "{{ skip }}"
      register: hardened

    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ hardened | to_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      check_mode: false
"""


# Instances settle at once: these tests are about metrics (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("instant_transitions")


class Run:
    def __init__(self, sandbox, tmp_path, name, *args, **variables):
        self.run, self.result = run_written(sandbox, tmp_path, PLAYBOOK, "imdsv1-evidence-" + name, variables, *args)
        self.mutations = [c["action"] for c in sandbox.calls() if c["action"] in MUTATING]
        self.metric_reads = [c["action"] for c in sandbox.calls() if c["service"] == "monitoring"]
        self.by_id = dict((entry["instance_id"], entry) for entry in self.result["instances"])


def v1_get(emulator):
    connection = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    try:
        connection.request("GET", "/latest/meta-data/instance-id")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def tokens(ec2, instance_ids):
    described = ec2.describe_instances(InstanceIds=instance_ids)["Reservations"]
    return dict((i["InstanceId"], i["MetadataOptions"]["HttpTokens"]) for r in described for i in r["Instances"])


def test_instances_that_used_imdsv1_are_skipped_then_enforced_once_fixed(sandbox, tmp_path, imds):
    ec2 = sandbox.client("ec2")
    instances = ec2.run_instances(ImageId="ami-12345678", MinCount=3, MaxCount=3,
                                  MetadataOptions={"HttpTokens": "optional"})["Instances"]
    legacy, old, clean = sorted(i["InstanceId"] for i in instances)
    emulator = imds(legacy)
    for _call in range(4):
        assert v1_get(emulator) == 200  # real IMDSv1 calls, published by the emulator as EC2 does
    five_days_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=5)
    publish_imds_usage(sandbox, old, no_token=9, when=five_days_ago)
    everyone = [legacy, old, clean]

    predicted = Run(sandbox, tmp_path, "check", "--check", "--diff", instance_ids=everyone, window=14, skip=True)
    assert predicted.mutations == [] and predicted.metric_reads == ["GetMetricData"]
    assert "instance {0} metadata options".format(clean) in predicted.run.output  # the diff
    assert "instance {0} metadata options".format(legacy) not in predicted.run.output
    real = Run(sandbox, tmp_path, "real", instance_ids=everyone, window=14, skip=True)
    for key in ("changed", "instances", "imdsv1_usage", "diff"):
        assert predicted.result[key] == real.result[key], key
    assert real.mutations == ["ModifyInstanceMetadataOptions"]
    assert tokens(ec2, everyone) == {legacy: "optional", old: "optional", clean: "required"}
    assert [(i, real.by_id[i]["skipped_for_imdsv1_use"], real.by_id[i]["imdsv1_calls"]) for i in everyone] == [
        (legacy, True, 4), (old, True, 9), (clean, False, 0)]
    day = five_days_ago.replace(hour=0, minute=0, second=0, microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert real.by_id[old]["last_imdsv1_call"] == day
    assert real.by_id[clean]["last_imdsv1_call"] is None
    usage = real.result["imdsv1_usage"]
    assert [s["instance_id"] for s in usage["skipped_instances"]] == [legacy, old]
    assert (usage["window_days"], usage["period_seconds"], usage["instances_read"]) == (14, 86400, 3)
    assert any("2 of the instances made IMDSv1 calls in the last 14 days" in w for w in real.result["warnings"])
    assert "2 of the instances made IMDSv1 calls" in real.run.output  # the user sees the warning

    # old's application was fixed five days ago: a 3-day window (hourly periods) no longer holds its calls.
    fixed = Run(sandbox, tmp_path, "fixed", instance_ids=everyone, window=3, skip=True)
    assert fixed.mutations == ["ModifyInstanceMetadataOptions"]
    assert fixed.result["imdsv1_usage"]["period_seconds"] == 3600
    assert fixed.result["imdsv1_usage"]["instances_read"] == 2  # clean needs no change: not read
    assert (fixed.by_id[old]["changed"], fixed.by_id[old]["imdsv1_calls"]) == (True, 0)
    assert fixed.by_id[legacy]["skipped_for_imdsv1_use"] is True
    assert tokens(ec2, everyone) == {legacy: "optional", old: "required", clean: "required"}

    # legacy enforced anyway (skip off): the module says it used IMDSv1.
    forced = Run(sandbox, tmp_path, "forced", instance_ids=[legacy], window=14, skip=False)
    assert forced.mutations == ["ModifyInstanceMetadataOptions"]
    assert forced.by_id[legacy]["imdsv1_calls"] == 4 and forced.by_id[legacy]["changed"] is True
    assert any(legacy in w and "skip_instances_using_imdsv1 is off" in w for w in forced.result["warnings"])
    assert v1_get(emulator) == 401

    # Everything requires IMDSv2: a re-run changes nothing and reads no metric.
    again = Run(sandbox, tmp_path, "again", instance_ids=everyone, window=14, skip=True)
    assert again.result["changed"] is False and again.mutations == [] and again.metric_reads == []
