"""The guard as a user runs it, for tests, the bench and `make demo-guard`: playbooks/guard_setup.yml
made the queue and the rule, and a real ansible-rulebook (scripts/rulebook-venv.sh) runs
extensions/eda/rulebooks/keyless_guard.yml from the collection's root, with the inventory and the
variables docs/keyless-continuously.md shows (``--persistence-id`` and the rule engine's H2 file
included), its AWS calls going to the sandbox.

``GuardRulebook`` starts it, waits for its first ReceiveMessage, reads its output as it comes and the
remediation's report file (a JSON line per event handled), and stops it."""

import json
import os
import signal
import subprocess
import threading
import time

from runner import ROOT
from sandbox.seed import AMI

SCRIPT = os.path.join(ROOT, "scripts", "rulebook-venv.sh")
RULEBOOK = os.path.join(ROOT, "extensions", "eda", "rulebooks", "keyless_guard.yml")
MISSING = 3  # rulebook-venv.sh's exit code for "this machine lacks Python >= 3.12 or a JDK >= 17"
GUARD_ROLE = "keyless-guard"


class RuntimeMissing(Exception):
    """The machine lacks what scripts/rulebook-venv.sh cannot install itself (its message)."""


def build_runtime(timeout=900):
    """The path of keyless-rulebook, built or found current by scripts/rulebook-venv.sh."""
    completed = subprocess.run(["bash", SCRIPT], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=timeout, check=False)
    stderr = completed.stderr.decode("utf-8", "replace")
    if completed.returncode == MISSING:
        raise RuntimeMissing(stderr.strip()[-2000:])
    if completed.returncode != 0:
        raise RuntimeError("scripts/rulebook-venv.sh failed (exit {0}):\n{1}".format(
            completed.returncode, stderr[-4000:]))
    path = completed.stdout.decode().strip()
    if not os.access(path, os.X_OK):
        raise RuntimeError("scripts/rulebook-venv.sh named {0!r}, which is not a program".format(path))
    return path


def rulebook_env(workdir, extra=None):
    """ansible-rulebook's environment: none of this checkout's ANSIBLE_* (ansible.cfg names .venv's
    collections), Ansible's scratch folders under ``workdir``, then ``extra`` (the sandbox's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PYTEST_", "JAVA_HOME"))}
    env.update(ANSIBLE_HOME=os.path.join(workdir, "ansible-home"),
               ANSIBLE_LOCAL_TEMP=os.path.join(workdir, "ansible-tmp"), ANSIBLE_NOCOLOR="1", PYTHONUNBUFFERED="1")
    env.update(extra or {})
    return env


def make_guard_role(sandbox, account="123456789012"):
    """The guard's own role, keyless-guard, which the remediation assumes (keyless_assume_role_name):
    trusting the account (the sandbox's key is its root), allowed everything (the sandbox does not
    evaluate identity policies; the docs list what it needs)."""
    iam = sandbox.client("iam")
    iam.create_role(RoleName=GUARD_ROLE, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": account}, "Action": "sts:AssumeRole"}]}))
    return "arn:aws:iam::{0}:role/{1}".format(account, GUARD_ROLE)


class Output:
    """A process's output, read as it comes, each line with the time it arrived."""

    def __init__(self, stream):
        self.lines = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream):
        for raw in iter(stream.readline, b""):
            with self._lock:
                self.lines.append((time.monotonic(), raw.decode("utf-8", "replace").rstrip("\n")))

    def text(self):
        with self._lock:
            return "\n".join(line for _arrived, line in self.lines)


def wait_for(predicate, timeout, step=0.05):
    """``predicate()``'s first true value within ``timeout`` seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(step)


class GuardRulebook:
    """ansible-rulebook running keyless_guard.yml against the sandbox (a context manager).

    ``inventory_vars``: localhost's variables (the remediation's: keyless_guard_profiles, ...);
    ``rulebook_vars``: the rulebook's (--vars: keyless_guard_queue, ..., drools_db_file_path).
    The report file (keyless_guard_report_file) is ``workdir``/report.jsonl."""

    def __init__(self, sandbox, wrapper, workdir, inventory_vars=None, rulebook_vars=None, persistence_id="1"):
        self.sandbox = sandbox
        self.wrapper = wrapper
        self.workdir = str(workdir)
        self.report = os.path.join(self.workdir, "report.jsonl")
        self.inventory_vars = dict(inventory_vars or {})
        self.inventory_vars.setdefault("keyless_guard_report_file", self.report)
        self.rulebook_vars = {"keyless_guard_queue": "keyless-guard", "keyless_guard_region": sandbox.REGION,
                              "keyless_guard_poll_seconds": 1,
                              "drools_db_file_path": os.path.join(self.workdir, "drools", "events")}
        self.rulebook_vars.update(rulebook_vars or {})
        self.persistence_id = persistence_id
        self.process = None
        self.output = None
        self.started_seconds = None

    def _write(self):
        os.makedirs(os.path.join(self.workdir, "drools"), exist_ok=True)
        python = os.path.join(os.path.dirname(self.wrapper), "python")
        host = dict(self.inventory_vars, ansible_connection="local", ansible_python_interpreter=python)
        inventory = os.path.join(self.workdir, "guard-inventory.yml")
        with open(inventory, "w", encoding="utf-8") as handle:
            json.dump({"all": {"hosts": {"localhost": host}}}, handle)
        variables = os.path.join(self.workdir, "guard-vars.yml")
        with open(variables, "w", encoding="utf-8") as handle:
            json.dump(self.rulebook_vars, handle)
        return inventory, variables

    def start(self, timeout=180):
        inventory, variables = self._write()
        command = [self.wrapper, "--rulebook", RULEBOOK, "-i", inventory, "--vars", variables]
        if self.persistence_id:
            command += ["--persistence-id", str(self.persistence_id)]
        receives = len(self.sandbox.calls("sqs", "ReceiveMessage"))
        started = time.monotonic()
        self.process = subprocess.Popen(command, env=rulebook_env(self.workdir, self.sandbox.env()), cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.output = Output(self.process.stdout)
        polling = wait_for(lambda: len(self.sandbox.calls("sqs", "ReceiveMessage")) > receives
                           or self.process.poll() is not None, timeout=timeout)
        if not polling or self.process.poll() is not None:
            text = self.output.text()
            self.stop()
            raise AssertionError("ansible-rulebook never polled the queue:\n" + text[-6000:])
        self.started_seconds = time.monotonic() - started
        return self

    def lines(self):
        """The report file's lines (dicts), one per event the remediation handled."""
        if not os.path.exists(self.report):
            return []
        with open(self.report, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.process.stdout.close()
        # The stopped source's last long poll may still be answered (and logged) for up to its wait:
        # let it end, so that the next start counts only its own polls.
        poll = float(self.rulebook_vars.get("keyless_guard_poll_seconds") or 1)
        time.sleep(poll + 1)

    def __enter__(self):
        return self.start()

    def __exit__(self, *_exc):
        self.stop()
        return False


# ---- the sandbox's fleet, as the guard's tests and the bench make and read it ----------------------
def make_trail(sandbox):
    sandbox.client("s3").create_bucket(Bucket="keyless-trail")
    cloudtrail = sandbox.client("cloudtrail")
    cloudtrail.create_trail(Name="management", S3BucketName="keyless-trail", IsMultiRegionTrail=True,
                            IncludeGlobalServiceEvents=True)
    cloudtrail.start_logging(Name="management")


def launch(ec2, count=1, tokens="required", profile=None, **tags):
    kwargs = dict(ImageId=AMI, MinCount=count, MaxCount=count, MetadataOptions={"HttpTokens": tokens})
    if profile:
        kwargs["IamInstanceProfile"] = {"Name": profile}
    if tags:
        kwargs["TagSpecifications"] = [{"ResourceType": "instance", "Tags": [
            {"Key": k.replace("__", ":").replace("_", "-"), "Value": v} for k, v in tags.items()]}]
    return [i["InstanceId"] for i in ec2.run_instances(**kwargs)["Instances"]]


def http_tokens(ec2, instance_id):
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]["MetadataOptions"][
        "HttpTokens"]


def carried(ec2, instance_id):
    found = ec2.describe_iam_instance_profile_associations(Filters=[{"Name": "instance-id", "Values": [instance_id]}])
    arns = [a["IamInstanceProfile"]["Arn"] for a in found["IamInstanceProfileAssociations"]
            if a["State"] in ("associating", "associated")]
    return [arn.rsplit("/", 1)[-1] for arn in arns]


def template_versions(ec2, template_id):
    versions = ec2.describe_launch_template_versions(LaunchTemplateId=template_id)["LaunchTemplateVersions"]
    return dict((v["VersionNumber"], (v["DefaultVersion"], v["LaunchTemplateData"].get("MetadataOptions", {}).get(
        "HttpTokens"))) for v in versions)
