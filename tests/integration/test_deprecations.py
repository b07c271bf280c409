"""No ansible-core deprecation comes from our own code, and the suite says so when one does.

Every ansible-playbook run of the tests (runner.run_playbook) records the deprecations a
keyless.aws module's result carries (callback_plugins/keyless_deprecations.py) and fails the test
on any: ansible.cfg hides deprecation warnings (amazon.aws's own modules announce removals that are
not ours), so without this a deprecation of ours would go unseen until the core version that
removes the feature breaks the module.
"""

import json
import os

import pytest

from runner import ROOT
from runner import check_deprecations
from runner import run_playbook

PLAYBOOK = os.path.join(ROOT, "tests", "integration", "playbooks", "deprecations", "deprecations.yml")
WARNING = "http_protocol_ipv6 is not an account-level default setting"


def test_a_module_that_warns_triggers_no_deprecation_and_warns_once(sandbox):
    """AnsibleAWSModule (amazon.aws 10) hands its warnings to exit_json, which ansible-core 2.19
    deprecates; KeylessModule warns through Ansible's own module warning instead."""
    run = run_playbook(sandbox, PLAYBOOK, "-vvv", name="deprecations-warn")  # fails here on a deprecation
    assert run.returncode == 0, run.output[-4000:]
    assert run.output.count("[WARNING]: " + WARNING) == 1, run.output[-4000:]


def test_a_recorded_deprecation_fails_the_run(tmp_path):
    path = tmp_path / "run.deprecations.jsonl"
    check_deprecations(str(path), "run.log")  # none recorded: nothing to say
    path.write_text(json.dumps({"action": "keyless.aws.ec2_metadata_options", "task": "Harden",
                                "msg": "Passing `warnings` to `exit_json` or `fail_json` is deprecated."}) + "\n")
    with pytest.raises(AssertionError, match=r"keyless.aws.ec2_metadata_options \(Harden\): Passing `warnings`"):
        check_deprecations(str(path), "run.log")
