"""`make demo`'s script, as a new user runs it: the whole job against a fresh sandbox."""

import os
import re
import subprocess

from runner import ROOT


def test_demo_runs_end_to_end(sandbox):
    env = dict(os.environ)
    env.update(sandbox.env())
    env.update(KEYLESS_SANDBOX_URL=sandbox.url, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_NOCOLOR="1")
    completed = subprocess.run(["bash", os.path.join(ROOT, "scripts", "demo.sh")], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900, check=False)
    output = completed.stdout.decode("utf-8", "replace")
    os.makedirs(os.path.join(ROOT, "tests", "output", "integration"), exist_ok=True)
    with open(os.path.join(ROOT, "tests", "output", "integration", "demo.log"), "w") as handle:
        handle.write(output)
    assert completed.returncode == 0, output[-6000:]
    summary = output[output.index("== demo done"):]
    for line in ("launched from template keyless-demo-app with instance profile arn:aws:iam::123456789012:"
                 "instance-profile/keyless-demo-app-profile and HttpTokens=required",
                 "EC2 did not know the profile yet: the launch was refused",
                 "credentials from          iam-role",
                 "s3 create_bucket()        denied: AccessDenied",
                 "is an IAM role, not an instance profile",
                 "does not trust EC2",
                 "IMDSv1 request            HTTP 401",
                 "imds_credentials waited for them",
                 "answered 200 (no gap)",
                 "provisioning re-run: changed=0",
                 # IMDSv2 all the way: evidence, stages, enforcement
                 "audit: 9 finding(s) in us-east-1",
                 "1 instance_used_imdsv1",
                 "skipped           1 instance(s) that made IMDSv1 calls in the last 14 days",
                 "instances         2 of 3 changed",
                 "instances         1 of 3 changed",
                 "account default   changed in us-east-1",
                 "fixed software (IMDSv2)   HTTP 200; an IMDSv1 call: HTTP 401",
                 "launch allowing IMDSv1    refused: (UnsupportedOperation) when calling the RunInstances operation: "
                 "You can't launch instances with IMDSv1 because httpTokensEnforced is enabled",
                 # From keys to keyless
                 "before: the old software takes shared-credentials-file arn:aws:iam::123456789012:user/legacy-reports",
                 "audit: on host legacy-reports-1, these take a key kept on the host before the instance role: "
                 "service reports.service (env, key ...",
                 "user app (shared-credentials-file, key ...",
                 "used by legacy-reports-1: service reports.service, legacy-reports-1: user app; replaced by role "
                 "keyless-legacy-reports",
                 "canaries: legacy-reports-1; then: none; left as they are: none",
                 "of legacy-reports: deactivate, now Inactive (no instance holds it and it was not used since",
                 "after: the old software takes iam-role arn:aws:sts::123456789012:assumed-role/keyless-legacy-reports/i-",
                 "the key in IAM: ...",
                 "Inactive; retire_keys re-run: changed=0"):
        assert line in summary, line
    # --check --diff predicted the stages the real run then went through.
    imdsv2 = summary[summary.index("IMDSV2 ALL THE WAY"):]
    predicted = imdsv2[imdsv2.index("predicted:"):imdsv2.index("harden did:")]
    did = imdsv2[imdsv2.index("harden did:"):imdsv2.index("the old software fixed")]
    predicted_lines = [line for line in predicted.splitlines()[1:] if line.strip()]
    assert len(predicted_lines) == 2  # the stages, the skipped instance
    for line in predicted_lines:
        assert line in did, line
    assert sandbox.SECRET_KEY not in output
    # The legacy user's key is shown by its last four characters only: no whole key id but the sandbox's own.
    assert set(re.findall(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", output)) <= {sandbox.ACCESS_KEY}
