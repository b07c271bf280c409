"""Helpers and fixtures of tests/packaging/: the collection as its users get it, a built
tarball installed somewhere that is not this checkout.

Every command here runs the way a user's machine would: its own ANSIBLE_HOME and ansible.cfg
in a temporary folder, never this repository's ansible.cfg or .build/collections.
``amazon.aws`` comes from the site-packages of the Python running the tests (the ``ansible``
package installs it there), which ansible finds by itself (``collections_scan_sys_path``), so
no install here needs Galaxy.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

# A command run with its output and log: the same result the integration runner returns.
from integration.runner import PlaybookRun as Run  # noqa: E402  (tests/ is on sys.path: tests/conftest.py)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
OUTPUT = os.path.join(ROOT, "tests", "output", "packaging")

# A playbook of somebody else's: uses our modules, our filter and our action group beside
# amazon.aws, and asserts on what they return.
SMOKE_PLAYBOOK = """\
---
- name: Smoke test of an installed keyless.aws
  hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/keyless.aws.aws:
      region: us-east-1
  tasks:
    - name: A role EC2 may assume (amazon.aws, reached by the keyless.aws action group)
      amazon.aws.iam_role:
        name: keyless-smoke
        assume_role_policy_document: "{{ 'us-east-1' | keyless.aws.ec2_trust_policy | to_json }}"
        create_instance_profile: false

    - name: The instance profile that carries it
      keyless.aws.iam_instance_profile:
        name: keyless-smoke
        role: keyless-smoke
      register: created

    - name: Read it back
      keyless.aws.iam_instance_profile_info:
        name: keyless-smoke
      register: found

    - name: Check what the modules said
      ansible.builtin.assert:
        that:
          - created is changed
          - found.iam_instance_profiles | length == 1
          - found.iam_instance_profiles[0].roles[0].role_name == 'keyless-smoke'
          - found.iam_instance_profiles[0].role_trusts_ec2
"""


def user_env(home, extra=None):
    """The environment of a user's shell: nothing of this checkout's ANSIBLE_*/AWS_* settings.

    ``home`` is a folder for ANSIBLE_HOME and ansible's temporary files. The venv's bin comes
    first on PATH (ansible-playbook, ansible-galaxy, ansible-runner, ansible-builder).
    """
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("ANSIBLE_", "AWS_", "KEYLESS_", "PYTEST_", "MOLECULE_"))
        and key not in ("PYTHONPATH",)
    }
    os.makedirs(home, exist_ok=True)
    env.update(
        PATH=BIN + os.pathsep + env.get("PATH", ""),
        ANSIBLE_HOME=os.path.join(home, "ansible-home"),
        ANSIBLE_LOCAL_TEMP=os.path.join(home, "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        # Nothing ever reads the real instance metadata service or the user's AWS files.
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    env.update(extra or {})
    return env


def write_ansible_cfg(folder, collections_path):
    """A user's ansible.cfg: collections from ``collections_path`` (and site-packages)."""
    path = os.path.join(folder, "ansible.cfg")
    with open(path, "w") as handle:
        handle.write(
            "[defaults]\n"
            "collections_path = {0}\n"
            "interpreter_python = auto_silent\n"
            "retry_files_enabled = false\n"
            "# amazon.aws 10 announces removals on every iam_role run.\n"
            "deprecation_warnings = false\n".format(collections_path)
        )
    return path


def run(args, env, cwd, name, timeout=900):
    """Run a command; its output also goes to tests/output/packaging/<name>.log."""
    completed = subprocess.run(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=timeout, check=False)
    output = completed.stdout.decode("utf-8", "replace")
    os.makedirs(OUTPUT, exist_ok=True)
    log_path = os.path.join(OUTPUT, name + ".log")
    with open(log_path, "w") as handle:
        handle.write("$ {0}\n(cwd {1})\n{2}".format(" ".join(args), cwd, output))
    return Run(args, completed.returncode, output, log_path)


def playbook_args(playbook, *args):
    return [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
            "-e", "ansible_python_interpreter=" + sys.executable, playbook] + list(args)


def sandbox_aws_env(sandbox):
    """The sandbox's endpoint and dummy credentials, as a user's shell would export them."""
    env = dict(sandbox.env())
    env["KEYLESS_SANDBOX_URL"] = sandbox.url
    return env


def run_smoke(sandbox, env, cwd, name):
    """Write SMOKE_PLAYBOOK to ``cwd`` and run it there; check the result through the API."""
    playbook = os.path.join(cwd, "smoke.yml")
    with open(playbook, "w") as handle:
        handle.write(SMOKE_PLAYBOOK)
    result = run(playbook_args(playbook), env, cwd, name)
    assert result.returncode == 0, "smoke playbook failed (log {0}):\n{1}".format(result.log_path, result.output[-5000:])
    profile = sandbox.client("iam").get_instance_profile(InstanceProfileName="keyless-smoke")["InstanceProfile"]
    assert [role["RoleName"] for role in profile["Roles"]] == ["keyless-smoke"]
    return result


def galaxy_version():
    with open(os.path.join(ROOT, "galaxy.yml")) as handle:
        for line in handle:
            if line.startswith("version:"):
                return line.split(":", 1)[1].strip().strip("'\"")
    raise AssertionError("galaxy.yml has no version")


@pytest.fixture(scope="session")
def collection_tarball(tmp_path_factory):
    """``ansible-galaxy collection build`` of this checkout, as a release would make it."""
    dist = tmp_path_factory.mktemp("dist")
    env = user_env(str(tmp_path_factory.mktemp("build-home")))
    result = run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(dist), ROOT],
                 env, str(dist), "collection-build")
    assert result.returncode == 0, result.output
    path = dist / "keyless-aws-{0}.tar.gz".format(galaxy_version())
    assert path.is_file(), result.output
    return path


@pytest.fixture(scope="session")
def installed_collections(collection_tarball, tmp_path_factory):
    """The tarball installed offline into an empty collections path; the path (holding ansible_collections/)."""
    target = tmp_path_factory.mktemp("installed")
    collections = target / "collections"
    env = user_env(str(target / "home"))
    result = run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline",
                  str(collection_tarball), "-p", str(collections)], env, str(target), "collection-install")
    assert result.returncode == 0, result.output
    # amazon.aws is found where the `ansible` package put it, not fetched.
    assert "amazon.aws" in result.output and "already installed" in result.output, result.output
    assert (collections / "ansible_collections" / "keyless" / "aws" / "MANIFEST.json").is_file()
    return collections


# ---- AWX jobs through ansible-runner (test_ansible_runner.py, test_awx_credential_type.py) -------

_KEY_ID = re.compile(r"Credential=([^/]+)/")


@pytest.fixture
def request_signers(sandbox):
    """Who signed each AWS request the sandbox receives, in order: [{"service", "action", "key" (the
    access key id), "token" (X-Amz-Security-Token), "account" (the account moto files it under:
    an assumed role's key acts in the role's account)}]."""
    from sandbox.limits import request_account

    seen = []

    def record(info):
        if info["service"] is not None:
            match = _KEY_ID.search(info["environ"].get("HTTP_AUTHORIZATION", ""))
            seen.append({"service": info["service"], "action": info["action"], "key": match.group(1) if match else None,
                         "token": info["environ"].get("HTTP_X_AMZ_SECURITY_TOKEN"), "account": request_account(info)})
        return None

    sandbox.app.interceptors.append(record)
    try:
        yield seen
    finally:
        sandbox.app.interceptors.remove(record)


def awx_inventory_script(data, slice_number=1, slice_count=1):
    """The job's inventory as AWX writes it (awx/main/tasks/jobs.py ``write_inventory_file``: an
    executable Python script that prints the inventory's JSON, from ``Inventory.get_script_data``).

    ``data``: the inventory AWX holds (``ansible-inventory --list`` JSON, as an inventory update
    imports it). As AWX does: the hosts sorted by name, with job slicing (``job_slice_count``) the
    hosts ``[slice_number - 1::slice_count]`` (``get_sliced_hosts``), and each host's
    ``remote_tower_enabled``/``remote_tower_id`` and ``remote_host_*`` variables."""
    hostvars = data.get("_meta", {}).get("hostvars", {})
    names = sorted(hostvars)
    if slice_count > 1:
        names = names[slice_number - 1::slice_count]
    script = {"_meta": {"hostvars": {}}, "all": {"children": []}}
    for number, name in enumerate(sorted(hostvars), 1):
        if name in names:
            variables = dict(hostvars[name])
            for prefix in ("host", "tower"):
                variables.update({"remote_{0}_enabled".format(prefix): "true", "remote_{0}_id".format(prefix): number})
            script["_meta"]["hostvars"][name] = variables
    for group, content in data.items():
        if group in ("_meta", "all") or not isinstance(content, dict):
            continue
        hosts = [host for host in content.get("hosts", []) if host in names]
        if hosts or content.get("children"):
            script[group] = dict(content, hosts=hosts) if "hosts" in content else dict(content)
            script["all"]["children"].append(group)
    grouped = set(host for group in script["all"]["children"] for host in script[group].get("hosts", []))
    script["all"]["hosts"] = [name for name in names if name not in grouped]
    return "#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(script)


def awx_private_data_dir(base, installed_collections, sandbox, inventory, extravars, envvars=None, cmdline=()):
    """A job's private data directory laid out as AWX lays it out (awx/main/tasks/jobs.py,
    ``BaseTask.run``): ``project/`` (the installed collection, as an AWX project of this
    repository holds it), ``inventory/hosts`` (``inventory``: the script of
    ``awx_inventory_script``, or a static inventory's text), ``env/extravars`` (the job template's
    variables and the survey's answers), ``env/envvars`` (the job's environment: ``envvars``, the
    credentials' env injectors, plus what the execution environment provides: the collections and,
    sandbox only, the endpoint and region), ``env/cmdline`` (the arguments, where AWX puts the
    credentials' ``-e @file`` of extra_vars injectors) and ``env/settings``."""
    import ansible_runner.utils

    pdd = base / "job"
    shutil.copytree(str(installed_collections / "ansible_collections" / "keyless" / "aws"), str(pdd / "project"))
    (pdd / "inventory").mkdir()
    hosts = pdd / "inventory" / "hosts"
    hosts.write_text(inventory)
    if inventory.startswith("#!"):
        os.chmod(str(hosts), 0o700)
    (pdd / "env").mkdir(exist_ok=True)
    environment = dict(envvars or {})
    environment.update({"ANSIBLE_COLLECTIONS_PATH": str(installed_collections), "AWS_URL": sandbox.url,
                        "AWS_REGION": sandbox.REGION})
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(environment))
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    if cmdline:
        (pdd / "env" / "cmdline").write_text(ansible_runner.utils.args2cmdline(*cmdline))
    (pdd / "env" / "settings").write_text(yaml.safe_dump({"suppress_ansible_output": True}))
    return pdd


class AwxJob:
    """An ansible-runner run of a private data directory: ``result`` (a Run), ``status``, ``rc``,
    ``stdout`` and ``events`` (the job_events, parsed), what AWX stores and shows of a job."""

    def __init__(self, pdd, ident, result):
        artifacts = pdd / "artifacts" / ident
        self.result = result
        self.status = (artifacts / "status").read_text().strip() if (artifacts / "status").exists() else None
        self.rc = (artifacts / "rc").read_text().strip() if (artifacts / "rc").exists() else None
        self.stdout = (artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else result.output
        paths = sorted(glob.glob(str(artifacts / "job_events" / "*.json")))
        self.events_text = "".join(open(path).read() for path in paths)
        self.events = [json.loads(open(path).read()) for path in paths]

    def shown(self):
        """Everything AWX shows or stores of the job: its output and its events."""
        return self.stdout + self.events_text

    def stats(self):
        found = [event["event_data"] for event in self.events if event["event"] == "playbook_on_stats"]
        assert len(found) == 1, "{0} playbook_on_stats events".format(len(found))
        return found[0]


def run_awx_job(pdd, playbook, ident, home, name):
    """``ansible-runner run`` of ``pdd`` as AWX starts a job: ``playbook`` relative to the project,
    a process environment with no AWS credentials at all; an AwxJob."""
    env = user_env(str(home))
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                "AWS_PROFILE"} & set(env)
    result = run([os.path.join(BIN, "ansible-runner"), "run", str(pdd), "-p", playbook, "--ident", ident],
                 env, str(home), name)
    return AwxJob(pdd, ident, result)
