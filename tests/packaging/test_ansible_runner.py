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

import sys

import pytest

from packaging_support import awx_private_data_dir, run_awx_job

pytest.importorskip("ansible_runner", reason="ansible-runner is in requirements-dev.txt, not in this venv")

INJECTED_KEY = "AKIAAWXJOBCREDENTIAL"
INJECTED_SECRET = "awxInjectedSecretKeyNeverShownAnywhere00"
INJECTED_TOKEN = "awxInjectedSessionTokenNeverShown000000000000"


def private_data_dir(base, installed_collections, sandbox):
    """The job of a "keyless: provision" template on localhost with the "Amazon Web Services"
    credential (AWX 21.10 and later inject the STS token under both names; amazon.aws 10 and later
    read only AWS_SESSION_TOKEN) and a survey's answers."""
    envvars = {"AWS_ACCESS_KEY_ID": INJECTED_KEY, "AWS_SECRET_ACCESS_KEY": INJECTED_SECRET,
               "AWS_SESSION_TOKEN": INJECTED_TOKEN, "AWS_SECURITY_TOKEN": INJECTED_TOKEN}
    survey = {"keyless_role_name": "awx-web", "keyless_tags": {"team": "web", "managed-by": "awx"}}
    inventory = "localhost ansible_connection=local ansible_python_interpreter={0}\n".format(sys.executable)
    return awx_private_data_dir(base, installed_collections, sandbox, inventory, survey, envvars)


def test_runner_runs_provision_with_injected_credentials(installed_collections, sandbox, request_signers, tmp_path):
    pdd = private_data_dir(tmp_path, installed_collections, sandbox)
    del request_signers[:]
    job = run_awx_job(pdd, "playbooks/provision.yml", "job1", tmp_path / "home", "ansible-runner-provision")
    job_requests = list(request_signers)  # before this test's own checks below add theirs
    failure = "ansible-runner failed (log {0}):\n{1}".format(job.result.log_path, job.stdout[-5000:])
    assert job.result.returncode == 0, failure
    assert (job.status, job.rc) == ("successful", "0")

    # The job did its work, through the API.
    iam = sandbox.client("iam")
    profile = iam.get_instance_profile(InstanceProfileName="awx-web")["InstanceProfile"]
    assert [role["RoleName"] for role in profile["Roles"]] == ["awx-web"]
    tags = {tag["Key"]: tag["Value"] for tag in iam.list_role_tags(RoleName="awx-web")["Tags"]}
    assert tags.get("team") == "web"

    # Every AWS request was signed with the injected credentials, and only with them.
    assert job_requests, "the job made no AWS request"
    assert {request["key"] for request in job_requests} == {INJECTED_KEY}
    assert {request["token"] for request in job_requests} == {INJECTED_TOKEN}

    # No secret in what AWX shows and stores: the job's output and its events.
    assert job.events
    for secret in (INJECTED_SECRET, INJECTED_TOKEN):
        assert secret not in job.shown()
    stats = job.stats()
    assert not stats.get("failures") and not stats.get("dark")
