"""keyless.aws.audit_info, through playbooks/audit.yml, finds exactly what the audit found when its
findings were computed in Jinja from six modules (tests/integration/playbooks/audit_reference/, the
0.1.0 playbook kept for this comparison): the same kinds, resources, ids and sentences on the same
seeded account, with each thing read once. With a host whose files and services hold an IAM
user's key (a folder standing for the instance, as in the other key tests), the audit also names
the programs that take the key before the role, showing the key only by its last four characters.
"""

import json
import os
import subprocess
import sys

import yaml

from runner import ROOT
from runner import run_playbook
from test_audit import seed_findings

AUDIT = os.path.join(ROOT, "playbooks", "audit.yml")
REFERENCE = os.path.join(ROOT, "tests", "integration", "playbooks", "audit_reference", "audit_jinja.yml")
WINDOW_FIELDS = ("window_days", "instances_read", "instances_using_imdsv1", "instances_refusing_imdsv1",
                 "imdsv1_calls", "imdsv1_calls_rejected")


def _report(sandbox, tmp_path, playbook, name, *args):
    report_dir = tmp_path / name
    run = run_playbook(sandbox, playbook, "-e", "audit_report_dir={0}".format(report_dir), *args, name=name)
    assert run.returncode == 0, run.output[-4000:]
    return run, json.loads((report_dir / "keyless-audit.json").read_text())


def _write(root, path, text):
    real = os.path.join(str(root), path.lstrip("/"))
    os.makedirs(os.path.dirname(real), exist_ok=True)
    with open(real, "w") as handle:
        handle.write(text)


def _instance_named(sandbox, name):
    reservations = sandbox.client("ec2").describe_instances(
        Filters=[{"Name": "tag:Name", "Values": [name]}, {"Name": "instance-state-name", "Values": ["running"]}])
    return reservations["Reservations"][0]["Instances"][0]["InstanceId"]


def _key_host(sandbox, tmp_path, instance_id):
    """An instance's files: the app user's ~/.aws/credentials and a service's Environment= hold the
    key of IAM user legacy; an inventory that reaches the folder as host legacy-1."""
    iam = sandbox.client("iam")
    iam.create_user(UserName="legacy")
    key = iam.create_access_key(UserName="legacy")["AccessKey"]
    root = tmp_path / "host"
    _write(root, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\napp:x:1001:1001::/home/app:/bin/bash\n")
    os.makedirs(str(root / "root"))
    _write(root, "/home/app/.aws/credentials", "[default]\naws_access_key_id = {0}\naws_secret_access_key = {1}\n"
           .format(key["AccessKeyId"], key["SecretAccessKey"]))
    os.chmod(str(root / "home/app/.aws/credentials"), 0o644)
    _write(root, "/etc/systemd/system/reports.service",
           "[Service]\nUser=app\nEnvironment=AWS_ACCESS_KEY_ID={0} AWS_SECRET_ACCESS_KEY={1}\n"
           "ExecStart=/usr/bin/python3 /opt/reports.py\n".format(key["AccessKeyId"], key["SecretAccessKey"]))
    quiet = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                             env=dict((k, v) for k, v in os.environ.items() if not k.startswith("AWS_")))
    host = {"instance_id": instance_id, "keyless_host_root": str(root), "keyless_host_pids": [quiet.pid],
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"keyless_key_hosts": {"hosts": {"legacy-1": host}}}}}))
    return key, str(inventory), quiet


def _by_kind_and_resource(findings):
    return sorted(findings, key=lambda f: (f["kind"], f["resource"]))


def test_the_module_finds_what_the_jinja_audit_found_reading_each_thing_once(sandbox, tmp_path, imds):
    expected = seed_findings(sandbox, imds)
    instance_id = _instance_named(sandbox, "no-profile")
    key, inventory, quiet = _key_host(sandbox, tmp_path, instance_id)
    try:
        since = len(sandbox.calls())
        _run, before = _report(sandbox, tmp_path, REFERENCE, "audit-jinja")
        reference_calls = sandbox.calls(since=since)
        since = len(sandbox.calls())
        run, after = _report(sandbox, tmp_path, AUDIT, "audit-module", "-i", inventory, "-vvv")
        module_calls = sandbox.calls(since=since)
    finally:
        quiet.kill()
        quiet.wait()
    assert {(f["kind"], f["resource"]) for f in before["findings"]} == expected
    on_host = [f for f in after["findings"] if f["kind"] == "instance_static_keys"]
    # Every finding of the Jinja audit, field for field and word for word; nothing else but the keys on the host.
    assert _by_kind_and_resource([f for f in after["findings"] if f["kind"] != "instance_static_keys"]) == \
        _by_kind_and_resource(before["findings"])
    for field in ("target", "account_id", "region", "checked", "account_metadata_defaults"):
        assert after["targets"][0][field] == before["targets"][0][field], field
    assert dict((f, after["targets"][0]["imdsv1_usage"][f]) for f in WINDOW_FIELDS) == \
        dict((f, before["targets"][0]["imdsv1_usage"][f]) for f in WINDOW_FIELDS)
    assert dict((k, v) for k, v in after["counts"].items() if k != "instance_static_keys") == before["counts"]
    assert after["counts"]["instance_static_keys"] == 1
    # The host's key: which programs take it, shown by its last four characters only.
    assert [(f["resource"], f["target"]) for f in on_host] == [(instance_id, "localhost")]
    detail = on_host[0]["detail"]
    assert detail.startswith("on host legacy-1, these take a key kept on the host before the instance role: ")
    assert "service reports.service (env, key ...{0} (long-term))".format(key["AccessKeyId"][-4:]) in detail
    assert "user app (shared-credentials-file, key ...{0}".format(key["AccessKeyId"][-4:]) in detail
    for text in (run.output, json.dumps(after)):
        assert key["AccessKeyId"] not in text and key["SecretAccessKey"] not in text
    # One read of each thing: the instances, the associations and the templates once, not once per module.
    reads = [(r["service"], r["action"]) for r in module_calls]
    for action in ("DescribeInstances", "DescribeIamInstanceProfileAssociations", "DescribeLaunchTemplateVersions",
                   "GetInstanceMetadataDefaults", "ListInstanceProfiles"):
        assert sum(1 for _service, a in reads if a == action) == 1, (action, reads)
    assert not [a for _service, a in reads if a in ("GetInstanceProfile", "GetRole", "DescribeLaunchTemplates")]
    assert len(module_calls) < len(reference_calls)
