"""Every tests/integration/playbooks/<name>/main.yml, run by ansible-playbook against the sandbox.

Each is a playbook that asserts what it expects (the check / real / check-rerun / real-rerun
pattern); it passes when ansible-playbook exits 0. (Not ansible-test targets: no aliases, no
tasks/; plain playbooks.) The sandbox is reset before each; the sandbox's URL is in the environment as KEYLESS_SANDBOX_URL (its request log
is at $KEYLESS_SANDBOX_URL/_sandbox/log).
"""

import os

import pytest

from runner import ROOT, run_playbook

PLAYBOOKS_DIR = os.path.join(ROOT, "tests", "integration", "playbooks")
PLAYBOOKS = sorted(
    name for name in os.listdir(PLAYBOOKS_DIR)
    if os.path.isfile(os.path.join(PLAYBOOKS_DIR, name, "main.yml"))
)


@pytest.mark.parametrize("name", PLAYBOOKS)
def test_playbook(name, sandbox):
    run = run_playbook(sandbox, os.path.join(PLAYBOOKS_DIR, name, "main.yml"), name=name)
    assert run.returncode == 0, "playbook {0} failed (full log: {1}):\n{2}".format(
        name, run.log_path, run.output[-6000:])
