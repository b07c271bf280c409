"""Four ansible-playbook processes converge the same role, profile and 50 instances at once.

As several AWX jobs would: the same role (playbooks/reliability/role.yml: IAM role, inline policy,
profile, launch template, instances by id and by tag, IMDSv2), started together against one
sandbox, with 10 % of the calls failing with retryable errors so the runs interleave even more.
Every run must end green, or fail with a conflict it names (an AWS "already exists" or "another
run" sentence, never a traceback) and end green when run again. Then each instance has exactly one
association, to the right profile; one role, one profile; and one more run changes nothing.
"""

import json
import re
import threading

import pytest

from reliability_support import ACCOUNT
from reliability_support import launch
from reliability_support import make_profile
from reliability_support import make_role
from reliability_support import profile_arn
from reliability_support import recap
from reliability_support import record_figures
from reliability_support import run_with_vars
from sandbox_snapshot import active_associations
from sandbox_snapshot import diff
from sandbox_snapshot import snapshot
from test_faults_converge import ROLE

RUNNERS = 4
FAULTS = {"seed": 4, "rules": [{"services": ["iam", "ec2"], "rate": 0.1,
                                "kinds": ["throttle", "ServiceUnavailable", "InternalError", "reset"]}]}
# What a run may fail with when it loses a race: a conflict, named.
NAMED_CONFLICT = re.compile(r"EntityAlreadyExists|AlreadyExists|ConcurrentModification|IncorrectState|LimitExceeded|"
                            r"another run|kept changing under this run")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|MODULE FAILURE|Unexpected failure")


def fleet(sandbox):
    iam, ec2 = sandbox.client("iam"), sandbox.client("ec2")
    make_role(iam, "legacy")
    make_profile(iam, "legacy", "legacy")
    sandbox.rules.settle("legacy")  # the fleet was there before the race: EC2 knows legacy
    by_id = launch(ec2, 25)
    tagged = launch(ec2, 15, tags={"team": "race"}) + launch(ec2, 10, profile="legacy", tags={"team": "race"})
    return by_id, tagged, {"fleet_role": "racer", "instance_ids": by_id, "team": "race", "template": "race-web"}


def put_between_reads(sandbox, role, policy_name, document):
    """An interceptor that plays the parallel run at the worst moment: right before the second
    ListRolePolicies of ``role`` (amazon.aws.iam_policy's second read of the role's policies in
    one run), the policy is put, as another run would put it. Once only. Returns the list of the
    policies it put (empty while it has not fired)."""
    from moto.iam.models import iam_backends

    lists, put = [], []

    def intercept(info):
        if (info["service"], info["action"]) != ("iam", "ListRolePolicies") or put:
            return None
        if info["params"].get("RoleName") != role:
            return None
        lists.append(1)
        if len(lists) == 2:
            iam_backends[ACCOUNT]["aws"].put_role_policy(role, policy_name, json.dumps(document))
            put.append(policy_name)
        return None

    sandbox.app.interceptors.append(intercept)
    return put


@pytest.mark.slow
def test_a_policy_put_between_iam_policys_two_reads_is_read_again(sandbox, tmp_path):
    """The race test_four_runs... meets one run in four, made certain: amazon.aws.iam_policy ends
    with an uncaught KeyError naming the policy another run put between its two reads; the role
    tries the task again (its `until`), the next attempt reads the policy, and the run ends green."""
    ec2 = sandbox.client("ec2")
    variables = {"fleet_role": "racer", "instance_ids": launch(ec2, 1), "team": "race", "template": "race-web"}
    document = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::fleet-config/*"}]}
    put = put_between_reads(sandbox, "racer", "read-config", document)
    run, result = run_with_vars(sandbox, ROLE, tmp_path, "race-between-reads", variables)
    assert put == ["read-config"], "the interceptor never saw the second read: the test tests nothing"
    assert "FAILED - RETRYING" in run.output and "Inline policies of the role" in run.output, run.output[-5000:]
    assert run.returncode == 0, run.output[-5000:]
    assert result is not None and list(snapshot(sandbox)["iam"]["roles"]["racer"]["inline_policies"]) == ["read-config"]


def race(sandbox, tmp_path, variables, runners):
    runs = [None] * runners

    def one(number):
        runs[number] = run_with_vars(sandbox, ROLE, tmp_path, "race-{0}".format(number), variables)

    threads = [threading.Thread(target=one, args=(number,)) for number in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return runs


@pytest.mark.slow
def test_four_runs_of_the_role_converge_one_fleet_at_once(sandbox, tmp_path):
    by_id, tagged, variables = fleet(sandbox)
    sandbox.faults.configure(FAULTS)
    runs = race(sandbox, tmp_path, variables, RUNNERS)
    green, conflicts = 0, []
    for run, _result in runs:
        assert not TRACEBACK.search(run.output), run.log_path
        if run.returncode == 0:
            green += 1
            continue
        failed = [line for line in run.output.splitlines() if line.startswith(("fatal:", "[ERROR]"))]
        assert failed and NAMED_CONFLICT.search(run.output), (
            "a run failed without naming a conflict (log: {0}):\n{1}".format(run.log_path, run.output[-5000:]))
        conflicts.append(run.log_path)
    # A run that lost a race ends green when run again, as an operator would run it again.
    for number, log_path in enumerate(conflicts):
        again, _result = run_with_vars(sandbox, ROLE, tmp_path, "race-again-{0}".format(number), variables)
        assert again.returncode == 0, "a run that lost a race failed again (first: {0}):\n{1}".format(
            log_path, again.output[-5000:])
    injected = sandbox.faults.injected_total()
    sandbox.faults.clear()

    state = snapshot(sandbox)
    attached = active_associations(state)
    assert attached == dict((i, [profile_arn("racer")]) for i in by_id + tagged)  # one association each
    assert all(a["state"] == "associated" for a in state["ec2"]["associations"].values())
    assert sorted(state["iam"]["roles"]) == ["legacy", "racer"]
    assert sorted(state["iam"]["instance_profiles"]) == ["legacy", "racer"]
    assert state["iam"]["instance_profiles"]["racer"]["roles"] == ["racer"]
    template = state["ec2"]["launch_templates"]["race-web"]
    default = template["versions"][str(template["default_version"])]["data"]
    assert default["IamInstanceProfile"] == {"Arn": profile_arn("racer")}

    # One more run (no faults, no race) changes nothing.
    again, result = run_with_vars(sandbox, ROLE, tmp_path, "race-after", variables)
    assert again.returncode == 0, again.output[-5000:]
    assert recap(again.output)[1] == 1, again.output[-5000:]  # only the task that writes the results file
    assert set(result["instances"].values()) == {"unchanged"}
    assert diff(state, snapshot(sandbox)) == []
    record_figures("races", races_run=1, runners=RUNNERS, instances=len(by_id + tagged), green=green,
                   named_conflicts=len(conflicts), faults_injected=injected, state_diffs=0)
