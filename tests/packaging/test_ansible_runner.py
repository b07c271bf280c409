"""ansible-runner, the engine under AWX, runs playbooks/provision.yml as a job template would.

The job's private data directory is laid out as AWX lays it out: the project (here the
installed collection, as an AWX project of this repository would hold it), an inventory,
``env/extravars`` (the survey's answers) and ``env/envvars``, where AWX's built-in "Amazon Web
Services" credential injects AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the STS token as
AWS_SESSION_TOKEN and AWS_SECURITY_TOKEN.
The runner process itself has no AWS credentials at all: the sandbox sees every request signed
with the injected key, carrying the injected session token, and no secret reaches the job's
output.
"""

import glob
import json
import os
import re
import shutil
import sys

import pytest
import yaml

from packaging_support import BIN, run, user_env

pytest.importorskip("ansible_runner", reason="ansible-runner is in requirements-dev.txt, not in this venv")

INJECTED_KEY = "AKIAAWXJOBCREDENTIAL"
INJECTED_SECRET = "awxInjectedSecretKeyNeverShownAnywhere00"
INJECTED_TOKEN = "awxInjectedSessionTokenNeverShown000000000000"
_KEY_ID = re.compile(r"Credential=([^/]+)/")


@pytest.fixture
def signed_requests(sandbox):
    """Who signed each AWS request the sandbox receives: [(access key id, session token)]."""
    seen = []

    def record(info):
        auth = info["environ"].get("HTTP_AUTHORIZATION", "")
        match = _KEY_ID.search(auth)
        if info["service"] is not None:
            seen.append((match.group(1) if match else None, info["environ"].get("HTTP_X_AMZ_SECURITY_TOKEN")))
        return None

    sandbox.app.interceptors.append(record)
    try:
        yield seen
    finally:
        sandbox.app.interceptors.remove(record)


def private_data_dir(base, installed_collections, sandbox):
    pdd = base / "job"
    # The project: this repository's content, as an AWX project (SCM checkout) holds it.
    shutil.copytree(str(installed_collections / "ansible_collections" / "keyless" / "aws"), str(pdd / "project"))
    (pdd / "inventory").mkdir()
    (pdd / "inventory" / "hosts").write_text(
        "localhost ansible_connection=local ansible_python_interpreter={0}\n".format(sys.executable))
    (pdd / "env").mkdir()
    envvars = {
        # What the "Amazon Web Services" credential injects (AWX 21.10 and later: the STS token
        # under both names; amazon.aws 10 and later read only AWS_SESSION_TOKEN).
        "AWS_ACCESS_KEY_ID": INJECTED_KEY,
        "AWS_SECRET_ACCESS_KEY": INJECTED_SECRET,
        "AWS_SESSION_TOKEN": INJECTED_TOKEN,
        "AWS_SECURITY_TOKEN": INJECTED_TOKEN,
        # What the execution environment provides: the collections, and (sandbox only) the
        # endpoint and region a custom credential type or the EE's settings would give.
        "ANSIBLE_COLLECTIONS_PATH": str(installed_collections),
        "AWS_URL": sandbox.url,
        "AWS_REGION": sandbox.REGION,
    }
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    # The survey's answers.
    extravars = {"keyless_role_name": "awx-web", "keyless_tags": {"team": "web", "managed-by": "awx"}}
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    (pdd / "env" / "settings").write_text(yaml.safe_dump({"suppress_ansible_output": True}))
    return pdd


def test_runner_runs_provision_with_injected_credentials(installed_collections, sandbox, signed_requests, tmp_path):
    pdd = private_data_dir(tmp_path, installed_collections, sandbox)
    env = user_env(str(tmp_path / "home"))
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"} & set(env)
    result = run([os.path.join(BIN, "ansible-runner"), "run", str(pdd), "-p", "playbooks/provision.yml",
                  "--ident", "job1"], env, str(tmp_path), "ansible-runner-provision")
    job_requests = list(signed_requests)  # before this test's own checks below add theirs

    artifacts = pdd / "artifacts" / "job1"
    stdout = (artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else result.output
    assert result.returncode == 0, "ansible-runner failed (log {0}):\n{1}".format(result.log_path, stdout[-5000:])
    assert (artifacts / "status").read_text().strip() == "successful"
    assert (artifacts / "rc").read_text().strip() == "0"

    # The job did its work, through the API.
    iam = sandbox.client("iam")
    profile = iam.get_instance_profile(InstanceProfileName="awx-web")["InstanceProfile"]
    assert [role["RoleName"] for role in profile["Roles"]] == ["awx-web"]
    tags = {tag["Key"]: tag["Value"] for tag in iam.list_role_tags(RoleName="awx-web")["Tags"]}
    assert tags.get("team") == "web"

    # Every AWS request was signed with the injected credentials, and only with them.
    assert job_requests, "the job made no AWS request"
    assert {request[0] for request in job_requests} == {INJECTED_KEY}
    assert {request[1] for request in job_requests} == {INJECTED_TOKEN}

    # No secret in what AWX shows and stores: the job's output and its events.
    events = sorted(glob.glob(str(artifacts / "job_events" / "*.json")))
    assert events
    shown = stdout + "".join(open(path).read() for path in events)
    for secret in (INJECTED_SECRET, INJECTED_TOKEN):
        assert secret not in shown
    stats = [event for event in (json.loads(open(path).read()) for path in events) if event["event"] == "playbook_on_stats"]
    assert len(stats) == 1
    assert not stats[0]["event_data"].get("failures") and not stats[0]["event_data"].get("dark")
