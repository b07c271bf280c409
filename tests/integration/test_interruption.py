"""A run killed (SIGKILL, the whole process group) in the middle of converging a fleet, then run
again, converges: every instance ends with exactly one association, to the right profile, in
state ``associated`` (nothing stuck in ``associating``), and no instance was attached twice.

To catch the run in the middle, the sandbox answers each attach 0.2 s late and new associations
show ``associating`` for their first two reads (as AWS shows them for a moment); the run is
killed once a third of the fleet is done. Nothing waits on the clock to decide anything: the test
watches the sandbox's request log.
"""

import json
import os
import time

import pytest

from reliability_support import RELIABILITY
from reliability_support import kill_tree
from reliability_support import launch
from reliability_support import make_profile
from reliability_support import make_role
from reliability_support import playbook_process
from reliability_support import profile_arn
from reliability_support import record_figures
from reliability_support import run_with_vars
from sandbox_snapshot import active_associations
from sandbox_snapshot import snapshot

FLEET = os.path.join(RELIABILITY, "fleet.yml")
SLOW_CHANGES = {"seed": 1, "associating_reads": 2, "rules": [
    {"services": "ec2", "actions": ["AssociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation"],
     "rate": 1.0, "kinds": ["slow"], "delay": 0.2}]}


def changes_done(sandbox):
    return [c for c in sandbox.calls("ec2") if c["status"] == 200 and c["action"] in (
        "AssociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation")]


def wait_until(predicate, what, limit=600):
    """Poll the sandbox until ``predicate()`` holds (a safety limit only: never an assertion on time)."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("gave up waiting for " + what)
        time.sleep(0.05)


@pytest.mark.slow
def test_a_killed_run_then_a_rerun_converges(sandbox, tmp_path):
    iam, ec2 = sandbox.client("iam"), sandbox.client("ec2")
    for name in ("fleet", "old"):
        make_role(iam, name)
        make_profile(iam, name, name)
    sandbox.rules.settle()  # profiles EC2 knows, as minutes after they were made: this test is about the kill
    bare = launch(ec2, 40)
    carrying_old = launch(ec2, 20, profile="old")
    ids = bare + carrying_old
    variables = {"instance_ids": ids, "instance_profile": "fleet", "max_concurrency": 2}
    vars_file = tmp_path / "killed-vars.json"
    vars_file.write_text(json.dumps(dict(variables, result_file=str(tmp_path / "killed.json"))))

    sandbox.faults.configure(SLOW_CHANGES)
    process = playbook_process(sandbox, FLEET, "interruption-killed", "-e", "@" + str(vars_file))
    try:
        wait_until(lambda: len(changes_done(sandbox)) >= len(ids) // 3 or process.poll() is not None,
                   "a third of the fleet to be converged")
        assert process.poll() is None, "the run ended before it could be killed"
        killed = kill_tree(process)
    finally:
        process.log_file.close()
    # The calls already on their way still land; wait until the sandbox has seen the last one.
    seen = []
    wait_until(lambda: seen.append(len(sandbox.calls())) or (len(seen) > 10 and seen[-1] == seen[-10]),
               "the killed run's last calls")
    killed_after = len(changes_done(sandbox))
    assert killed_after < len(ids), "the kill came too late: the whole fleet was done"

    middle = snapshot(sandbox)
    states = [a["state"] for a in middle["ec2"]["associations"].values()]
    half_done = sum(1 for arns in active_associations(middle).values() if arns == [profile_arn("fleet")])
    assert 0 < half_done < len(ids)

    sandbox.faults.configure({"associating_reads": 2})  # no more slow answers; AWS still shows associating
    run, result = run_with_vars(sandbox, FLEET, tmp_path, "interruption-rerun", variables)
    assert run.returncode == 0, "the re-run after the kill failed (log: {0}):\n{1}".format(
        run.log_path, run.output[-5000:])
    sandbox.faults.clear()
    final = snapshot(sandbox)
    assert active_associations(final) == dict((i, [profile_arn("fleet")]) for i in ids)
    assert set(a["state"] for a in final["ec2"]["associations"].values()) == {"associated"}
    assert result["summary"]["unchanged"] == half_done
    assert result["summary"]["associated"] + result["summary"]["replaced"] == len(ids) - half_done
    attached = [c["params"]["InstanceId"] for c in sandbox.calls("ec2", "AssociateIamInstanceProfile")
                if c["status"] == 200]
    assert sorted(attached) == sorted(set(attached)) and set(attached) == set(bare)  # never attached twice
    record_figures("interruption", processes_killed=killed, killed_after_changes=killed_after,
                   converged_before_kill=half_done, associating_at_kill=states.count("associating"),
                   instances=len(ids), state_diffs=0)
