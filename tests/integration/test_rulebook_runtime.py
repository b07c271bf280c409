"""The Event-Driven Ansible runtime, end to end, with a real ansible-rulebook.

scripts/rulebook-venv.sh builds the runtime on demand (Python >= 3.12, a JDK >= 17, ansible-rulebook,
amazon.aws 11.4 for the ``aws_sqs_queue`` source; about 20 s the first time, a no-op under a second
afterwards). The sandbox publishes the CloudTrail event of a ModifyInstanceMetadataOptions call
(tests/sandbox/cloudtrail_events.py), an EventBridge rule routes it to an SQS queue, and
ansible-rulebook, reading that queue over loopback with the sandbox's dummy keys, fires the rule of
tests/integration/rulebooks/imdsv1_smoke.yml: it prints the event and runs a playbook with it.

The test skips only when the build script says the machine lacks what it cannot install itself
(exit 3: no Python >= 3.12, no JDK >= 17 without root and apt); any other failure fails.
Figures (seconds): ansible-rulebook's start-up to its first ReceiveMessage, call to rule fired,
call to playbook done, the trivial rulebook's whole run, go to tests/output/integration/rulebook-runtime.json.
"""

import json
import os
import signal
import subprocess
import time

import botocore.exceptions
import pytest

import guard_support
from guard_support import RuntimeMissing
from guard_support import build_runtime
from guard_support import rulebook_env
from guard_support import wait_for
from runner import OUTPUT, ROOT
from sandbox.cloudtrail_events import route_events
from sandbox.seed import AMI

RULEBOOKS = os.path.join(ROOT, "tests", "integration", "rulebooks")


@pytest.fixture(scope="session")
def rulebook_runtime():
    """keyless-rulebook (ansible-rulebook with its JDK and collections), built or refreshed once per
    test process; its build time in seconds."""
    started = time.monotonic()
    try:
        path = build_runtime()
    except RuntimeMissing as missing:
        pytest.skip("the rulebook runtime cannot be built on this machine: {0}".format(missing))
    return path, time.monotonic() - started


def write_inventory(tmp_path, python):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
                         "      ansible_python_interpreter: {0}\n".format(python))
    return str(inventory)


class Output(guard_support.Output):
    """ansible-rulebook's output, read as it comes, each line with the time it arrived."""

    def first(self, text, timeout):
        """The arrival time of the first line holding ``text``, waiting up to ``timeout`` s; None."""
        def arrived():
            with self._lock:
                return next((when for when, line in self.lines if text in line), None)
        return wait_for(arrived, timeout, step=0.02)


def save_figures(figures):
    os.makedirs(OUTPUT, exist_ok=True)
    path = os.path.join(OUTPUT, "rulebook-runtime.json")
    previous = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            previous = json.load(handle)
    previous.update(figures)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(previous, handle, indent=2, sort_keys=True)


def test_trivial_rulebook_start_up(rulebook_runtime, tmp_path):
    """A rulebook with one event of eda.builtin.range and one rule: the whole run (JVM, Drools,
    ansible-galaxy finding the collections) as a figure, and the rule fired."""
    wrapper, build_seconds = rulebook_runtime
    python = os.path.join(os.path.dirname(wrapper), "python")
    rulebook = tmp_path / "trivial.yml"
    rulebook.write_text("---\n- name: Trivial\n  hosts: all\n  sources:\n    - eda.builtin.range:\n        limit: 1\n"
                        "  rules:\n    - name: First event\n      condition: event.i == 0\n"
                        "      action:\n        print_event:\n")
    started = time.monotonic()
    completed = subprocess.run([wrapper, "--rulebook", str(rulebook), "-i", write_inventory(tmp_path, python)],
                               env=rulebook_env(str(tmp_path)), cwd=str(tmp_path), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=300, check=False)
    seconds = time.monotonic() - started
    output = completed.stdout.decode("utf-8", "replace")
    assert completed.returncode == 0, output
    assert "'i': 0" in output, output
    version_started = time.monotonic()
    version = subprocess.run([wrapper, "--version"], env=rulebook_env(str(tmp_path)), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=120, check=True).stdout.decode()
    assert "Java version = " in version and "Ansible core version = 2.21" in version, version
    save_figures({"build_or_check_seconds": round(build_seconds, 2), "trivial_rulebook_seconds": round(seconds, 2),
                  "version_seconds": round(time.monotonic() - version_started, 2)})


def test_a_cloudtrail_event_fires_a_rule(rulebook_runtime, sandbox, instant_transitions, tmp_path):  # pylint: disable=unused-argument
    wrapper, _build_seconds = rulebook_runtime
    python = os.path.join(os.path.dirname(wrapper), "python")
    ec2 = sandbox.client("ec2")
    instance_id = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1,
                                    MetadataOptions={"HttpTokens": "required"})["Instances"][0]["InstanceId"]
    route = route_events(sandbox, "keyless-drift", {
        "source": ["aws.ec2"], "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {"eventSource": ["ec2.amazonaws.com"], "eventName": ["ModifyInstanceMetadataOptions"]}})
    marker = tmp_path / "fired.txt"
    variables = tmp_path / "vars.yml"
    variables.write_text(json.dumps({"keyless_queue_name": "keyless-drift", "keyless_endpoint_url": sandbox.url,
                                     "keyless_playbook": os.path.join(RULEBOOKS, "record_event.yml"),
                                     "keyless_marker": str(marker)}))
    command = [wrapper, "--rulebook", os.path.join(RULEBOOKS, "imdsv1_smoke.yml"),
               "-i", write_inventory(tmp_path, python), "--vars", str(variables)]
    receives_before = len(sandbox.calls("sqs", "ReceiveMessage"))
    started = time.monotonic()
    process = subprocess.Popen(command, env=rulebook_env(str(tmp_path), sandbox.env()), cwd=str(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    output = Output(process.stdout)
    try:
        polling = wait_for(lambda: len(sandbox.calls("sqs", "ReceiveMessage")) > receives_before, timeout=120)
        assert polling, "ansible-rulebook never polled the queue:\n" + output.text()
        start_up = time.monotonic() - started

        # A refused call (no such instance) and a dry run: published with errorCode, the rule must
        # not fire on them.
        for call in ({"InstanceId": "i-0123456789abcdef0", "HttpTokens": "optional"},
                     {"InstanceId": instance_id, "HttpTokens": "optional", "DryRun": True}):
            with pytest.raises(botocore.exceptions.ClientError):
                ec2.modify_instance_metadata_options(**call)
        called = time.monotonic()
        ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpTokens="optional")
        fired = output.first(instance_id, timeout=60)
        assert fired is not None, "the rule did not fire:\n" + output.text()
        assert wait_for(marker.exists, timeout=120), "the playbook did not run:\n" + output.text()
        played = time.monotonic()
        assert marker.read_text().strip() == instance_id
        assert output.text().count("'eventName': 'ModifyInstanceMetadataOptions'") == 1, output.text()
        assert "Client.DryRunOperation" not in output.text()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        with open(os.path.join(OUTPUT, "rulebook-runtime.log"), "w", encoding="utf-8") as handle:
            handle.write(output.text())
    assert sandbox.cloudtrail_events.stats()["errors"] == []
    published = sandbox.cloudtrail_events.published("ModifyInstanceMetadataOptions")
    assert [e["detail"].get("errorCode") for e in published] == [
        "Client.InvalidInstanceID.NotFound", "Client.DryRunOperation", None]
    # The source deletes each message once queued (no feedback here): the queue is empty.
    sqs = route["client"]("sqs", route["region"])
    attributes = sqs.get_queue_attributes(QueueUrl=route["queue_url"], AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    save_figures({"rulebook_start_to_first_receive_seconds": round(start_up, 2),
                  "call_to_rule_fired_seconds": round(fired - called, 2),
                  "call_to_playbook_done_seconds": round(played - called, 2)})
