"""Helpers and fixtures of tests/packaging/: the collection as its users get it, a built
tarball installed somewhere that is not this checkout.

Every command here runs the way a user's machine would: its own ANSIBLE_HOME and ansible.cfg
in a temporary folder, never this repository's ansible.cfg or .build/collections.
``amazon.aws`` comes from the site-packages of the Python running the tests (the ``ansible``
package installs it there), which ansible finds by itself (``collections_scan_sys_path``), so
no install here needs Galaxy.
"""

import os
import subprocess
import sys

import pytest

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
