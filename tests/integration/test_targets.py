"""Every tests/integration/targets/<name>/main.yml, run by ansible-playbook against the sandbox.

A target is a playbook that asserts what it expects (the check / real / check-rerun /
real-rerun pattern); it passes when ansible-playbook exits 0. The sandbox is reset before
each target; the sandbox's URL is in the environment as KEYLESS_SANDBOX_URL (its request log
is at $KEYLESS_SANDBOX_URL/_sandbox/log).
"""

import os

import pytest

from runner import ROOT, run_playbook

TARGETS_DIR = os.path.join(ROOT, "tests", "integration", "targets")
TARGETS = sorted(
    name for name in os.listdir(TARGETS_DIR)
    if os.path.isfile(os.path.join(TARGETS_DIR, name, "main.yml"))
)


@pytest.mark.parametrize("target", TARGETS)
def test_target(target, sandbox):
    run = run_playbook(sandbox, os.path.join(TARGETS_DIR, target, "main.yml"), name=target)
    assert run.returncode == 0, "target {0} failed (full log: {1}):\n{2}".format(
        target, run.log_path, run.output[-6000:])
