"""`make demo-guard`: Keyless, continuously, against the embedded sandbox (no AWS account).

What a user does (docs/keyless-continuously.md), in order: a trail records the account's management
events; playbooks/guard_setup.yml makes the EventBridge rule and the SQS queue; ansible-rulebook runs
extensions/eda/rulebooks/keyless_guard.yml (feedback on, persistence in its H2 file); then drift:
an instance launched without a profile and allowing IMDSv1, HttpTokens set back to optional on a
running one, and an exempt instance. Each line says how many seconds after the call the state was
put right. The rulebook's runtime (Python >= 3.12, a JDK >= 17) is built on demand by
scripts/rulebook-venv.sh (about a minute the first time).

    make demo-guard            # or: .venv/bin/python scripts/demo_guard.py
"""

import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))

from guard_support import GuardRulebook, RuntimeMissing, build_runtime  # noqa: E402
from guard_support import carried, http_tokens, launch, make_guard_role, make_trail, wait_for  # noqa: E402
from sandbox.seed import make_profile  # noqa: E402
from sandbox.server import Sandbox  # noqa: E402

SETUP = os.path.join(ROOT, "playbooks", "guard_setup.yml")
PROFILES = [{"tags": {"team": "web"}, "instance_profile": "web-app"}]
WAIT = 120


def step(number, title):
    print("\n\033[1m== {0}/5 {1}\033[0m".format(number, title), flush=True)


def setup_playbook(sandbox, workdir):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=os.path.join(workdir, "ansible-tmp"))
    env.update(sandbox.env())
    completed = subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), SETUP], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    output = completed.stdout.decode("utf-8", "replace")
    if completed.returncode != 0:
        print(output[-4000:])
        raise SystemExit("guard_setup.yml failed")
    summary = [line.split('"msg": "', 1)[-1].rstrip('"').strip() for line in output.splitlines()
               if "sends the guarded calls" in line]
    print("guard_setup.yml: " + (summary[0] if summary else "done"))


def put_right(ec2, instance_id, profile, started):
    """Seconds from ``started`` until the instance requires IMDSv2 (and carries ``profile``)."""
    done = wait_for(lambda: http_tokens(ec2, instance_id) == "required"
                    and (profile is None or carried(ec2, instance_id) == [profile]), WAIT, step=0.1)
    if not done:
        raise SystemExit("{0} was not put right within {1} s".format(instance_id, WAIT))
    return time.monotonic() - started


def demo(sandbox, workdir):
    step(1, "The rulebook's runtime (ansible-rulebook, a JDK, amazon.aws 11.4), built on demand")
    try:
        wrapper = build_runtime()
    except RuntimeMissing as missing:
        raise SystemExit("demo-guard needs what this machine lacks: {0}".format(missing))
    print("ansible-rulebook: " + wrapper)

    step(2, "The fleet's profile web-app, the guard's role keyless-guard, a trail recording management events")
    make_profile(sandbox, "web-app", settled=True)
    make_guard_role(sandbox)
    make_trail(sandbox)
    print("profile web-app (role web-app, trusting EC2); role keyless-guard; trail management, logging")

    step(3, "playbooks/guard_setup.yml: the EventBridge rule and the SQS queue")
    setup_playbook(sandbox, workdir)

    step(4, "ansible-rulebook -r extensions/eda/rulebooks/keyless_guard.yml --persistence-id 1")
    inventory_vars = {"keyless_guard_profiles": PROFILES, "keyless_assume_role_name": "keyless-guard"}
    ec2 = sandbox.client("ec2")
    with GuardRulebook(sandbox, wrapper, workdir, inventory_vars) as guard:
        print("polling the queue {0:.1f} s after start (JVM, rule engine, source)".format(guard.started_seconds))

        step(5, "Drift, put right")
        started = time.monotonic()
        [web] = launch(ec2, tokens="optional", team="web")
        seconds = put_right(ec2, web, "web-app", started)
        print("an instance launched with IMDSv1 allowed and no profile ({0}): IMDSv2 required again and "
              "profile web-app attached {1:.1f} s later".format(web, seconds))

        started = time.monotonic()
        ec2.modify_instance_metadata_options(InstanceId=web, HttpTokens="optional")
        seconds = put_right(ec2, web, None, started)
        print("HttpTokens set back to optional on {0}: required again {1:.1f} s later".format(web, seconds))

        [exempt] = launch(ec2, tokens="optional", team="web", keyless__guard="exempt")
        wait_for(lambda: any(line["exempt"] for line in guard.lines()), WAIT, step=0.2)
        print("an instance tagged keyless:guard=exempt ({0}): left alone, HttpTokens {1}, profiles {2}".format(
            exempt, http_tokens(ec2, exempt), carried(ec2, exempt) or "none"))
        handled = len(guard.lines())
    print("\n== demo-guard done: {0} event(s) handled by playbooks/guard_remediate.yml; the guard's own calls "
          "(as keyless-guard) ran nothing".format(handled))


def main(sandbox=None):
    with tempfile.TemporaryDirectory(prefix="keyless-demo-guard-") as workdir:
        if sandbox is not None:
            demo(sandbox, workdir)
            return 0
        with Sandbox() as own:
            with own.transitions.instant():
                demo(own, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
