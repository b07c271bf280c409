"""A playbook written for amazon.aws.iam_instance_profile passes with only the FQCN changed."""

import os

from runner import ROOT, run_playbook

PLAYBOOK = os.path.join(ROOT, "tests", "integration", "compat", "iam_instance_profile_amazon.yml")


def test_playbook_passes_with_amazon_aws_as_written(sandbox):
    run = run_playbook(sandbox, PLAYBOOK, name="compat-amazon")
    assert run.returncode == 0, run.output[-5000:]


def test_same_playbook_passes_with_keyless_aws(sandbox, tmp_path):
    with open(PLAYBOOK) as handle:
        text = handle.read()
    switched = text.replace("amazon.aws.iam_instance_profile", "keyless.aws.iam_instance_profile")
    # Only the FQCNs changed; the roles are still made with amazon.aws.iam_role.
    assert switched.count("keyless.aws.iam_instance_profile") == text.count("amazon.aws.iam_instance_profile") > 10
    copy = tmp_path / "iam_instance_profile_keyless.yml"
    copy.write_text(switched)
    run = run_playbook(sandbox, str(copy), name="compat-keyless")
    assert run.returncode == 0, run.output[-5000:]
