"""The modules under EC2's real rate limits: the sandbox's AWS-like mode (tests/sandbox/limits.py:
EC2's token buckets per account and region, 503 RequestLimitExceeded, latency per call), each
case an ansible-playbook run as a user would make it, every count from the sandbox's request log:

* a bucket that other automation has mostly spent: EC2 refuses, the module slows down and
  converges, spending few calls on refusals (one wave of the calls in flight);
* ``max_request_rate``: the module keeps to a lower rate than EC2 allows (never refused);
* a throttle longer than the old limit of 10 attempts: the call is retried until it passes,
  while ``wait_timeout`` lasts, and fails naming the throttle when it does not;
* the role: one ec2_profile_association and one ec2_metadata_options call per converge for ids
  and filters together.

Nothing here asserts how fast anything is (``make bench-aws`` measures that); the one time
figure checked is a lower bound that follows from the rate the user asked for.
"""

import json
import os
import re

import pytest

from fleet_support import Run, arn, attached
from runner import ROOT, run_playbook
from sandbox.seed import launch_running, make_profile

PROVISION = os.path.join(ROOT, "playbooks", "provision.yml")

# The reliability tests (make test-faults) of rate limits.
pytestmark = pytest.mark.slow


def throttled(calls, action=None):
    return [c for c in calls if str(c.get("injected", "")).startswith(("limits:", "RequestLimitExceeded"))
            and (action is None or c["action"] == action)]


def test_a_bucket_other_automation_has_spent_slows_the_run_down_with_few_refusals(sandbox, tmp_path):
    make_profile(sandbox, "web")
    fleet = launch_running(sandbox, 30)
    # Another tool has spent all but 8 of the account's 100 attach tokens: the module believes
    # it has the documented burst, and EC2 tells it otherwise.
    with sandbox.limits.aws_like(buckets={"ec2": {"associations": {"capacity": 8}}}):
        run = Run(sandbox, tmp_path, "spent-bucket", instance_ids=fleet, instance_profile="web")
        stats = sandbox.limits.stats()
    assert not run.result.get("failed"), run.result.get("msg")
    assert set(a for a, _id in attached(sandbox, fleet).values()) == {arn("web")}
    refused = throttled(run.calls, "AssociateIamInstanceProfile")
    assert refused and all(c["status"] == 503 for c in refused)
    # One wave: the calls in flight when the bucket ran dry (max_concurrency 10), not one refusal
    # per call as an unpaced client meets once the burst is gone.
    assert len(refused) <= 10 + 2, len(refused)
    assert len(run.mutations) == 30 + len(refused)
    timing = run.result["timing"]
    assert timing["throttled"] == len(throttled(run.calls)) == sum(stats["throttled"].values())
    assert timing["api_calls"] == len(run.calls)
    assert timing["request_rates"]["ec2/associations"] < 5.0  # it slowed down
    assert timing["paced_seconds"] > 0
    assert set(timing["seconds"]) == {"read", "plan", "apply", "wait", "total"}


def test_max_request_rate_keeps_the_run_under_the_rate_asked_for(sandbox, tmp_path):
    make_profile(sandbox, "web")
    fleet = launch_running(sandbox, 24)
    with sandbox.limits.aws_like():
        run = Run(sandbox, tmp_path, "user-rate", instance_ids=fleet, instance_profile="web", max_request_rate=1)
    assert not run.result.get("failed"), run.result.get("msg")
    assert set(a for a, _id in attached(sandbox, fleet).values()) == {arn("web")}
    assert throttled(run.calls) == [] and run.result["timing"]["throttled"] == 0
    assert run.result["timing"]["request_rates"]["ec2/associations"] == 1.0
    # 1 a second with a burst of 100 * 1/5 = 20: the 24th attach cannot start before 4 s after
    # the first (a lower bound: a slower machine only spreads them more).
    times = sorted(c["time"] for c in run.calls if c["action"] == "AssociateIamInstanceProfile")
    assert len(times) == 24
    assert times[-1] - times[0] >= 3.5, times


def test_a_throttle_longer_than_ten_attempts_is_outlasted_while_wait_timeout_lasts(sandbox, tmp_path):
    make_profile(sandbox, "web")
    fleet = launch_running(sandbox, 1)
    rule = {"service": "ec2", "action": "AssociateIamInstanceProfile", "rate": 1.0,
            "kinds": ["RequestLimitExceeded"], "limit": 12}
    with sandbox.faults.configured({"seed": 1, "rules": [rule]}):
        run = Run(sandbox, tmp_path, "long-throttle", instance_ids=fleet, instance_profile="web")
    assert not run.result.get("failed"), run.result.get("msg")
    assert attached(sandbox, fleet)[fleet[0]][0] == arn("web")
    statuses = [c["status"] for c in run.calls if c["action"] == "AssociateIamInstanceProfile"]
    assert statuses == [503] * 12 + [200]  # 13 attempts: more than the 10 of the old policy
    assert run.result["timing"]["throttled"] == 12


def test_a_throttle_that_outlasts_wait_timeout_fails_naming_it_and_changes_nothing(sandbox, tmp_path):
    make_profile(sandbox, "web")
    fleet = launch_running(sandbox, 2)
    rule = {"service": "ec2", "action": "AssociateIamInstanceProfile", "rate": 1.0, "kinds": ["RequestLimitExceeded"]}
    with sandbox.faults.configured({"seed": 1, "rules": [rule]}):
        run = Run(sandbox, tmp_path, "endless-throttle", instance_ids=fleet, instance_profile="web", wait_timeout=3)
    assert run.result.get("failed")
    assert "RequestLimitExceeded" in run.result["msg"] and "No instance was changed." in run.result["msg"]
    assert run.result["code"] == "RequestLimitExceeded"
    assert run.result["timing"]["throttled"] > 1
    # the canary alone was tried: the other instance was never sent
    assert set(c["params"]["InstanceId"] for c in run.calls if c["action"] == "AssociateIamInstanceProfile") == {
        fleet[0]}
    assert attached(sandbox, fleet) == dict((i, (None, None)) for i in fleet)


def test_the_role_converges_ids_and_filters_with_one_call_of_each_module(sandbox, tmp_path):
    named = launch_running(sandbox, 1)
    tagged = launch_running(sandbox, 2)
    sandbox.client("ec2").create_tags(Resources=tagged, Tags=[{"Key": "team", "Value": "web"}])
    variables = tmp_path / "vars.json"
    variables.write_text(json.dumps({"keyless_role_name": "paced", "keyless_instance_ids": named,
                                     "keyless_instance_filters": {"tag:team": "web"}}))
    with sandbox.limits.aws_like():
        sandbox.app.clear_log()
        first = run_playbook(sandbox, PROVISION, "-e", "@" + str(variables), name="rate-limits-role")
        calls = [c for c in sandbox.calls() if c["service"] == "ec2"]
    assert first.returncode == 0, first.output[-4000:]
    everyone = named + tagged
    assert set(a for a, _id in attached(sandbox, everyone).values()) == {arn("paced")}
    reply = sandbox.client("ec2").describe_instances(InstanceIds=everyone)
    assert set(i["MetadataOptions"]["HttpTokens"] for r in reply["Reservations"] for i in r["Instances"]) == {
        "required"}
    tasks = re.findall(r"^TASK \[keyless\.aws\.instance_profile : (.*?)\] \**$", first.output, re.M)
    assert tasks.count("The instances named by id or matched by the filters carry profile paced") == 1
    assert tasks.count("The metadata service of those instances, and the account default, require IMDSv2") == 1
    assert [c["action"] for c in calls].count("AssociateIamInstanceProfile") == 3
    assert [c["action"] for c in calls].count("ModifyInstanceMetadataOptions") == 3
    assert throttled(calls) == []
