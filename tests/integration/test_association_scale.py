"""keyless.aws.ec2_profile_association at fleet scale, and through IAM-to-EC2 propagation.

One ansible-playbook task converges 200 instances: the first run makes one mutating call per
instance plus a constant few reads, a rerun makes only those reads (the same number as for a
fleet of 10), a swap replaces every association in one call each (new association ids), a
detach removes them. Every count comes from the sandbox's request log. The sandbox runs with
``aws_fidelity`` (moto then pages associations by MaxResults and gives a replaced association a
new id, as AWS does).

The module runs with a raised ``max_request_rate`` (an account whose EC2 limits AWS raised):
the pace of the default token buckets is test_rate_limits.py's subject, not this one's.
The counts and wall times are written to tests/output/integration/association_scale.json and
printed (pytest -s shows them); nothing here asserts a time.
"""

import json
import os
import time

from fleet_support import NOOP_READS, Run, arn, attached
from runner import OUTPUT
from sandbox.faults import aws_fidelity
from sandbox.faults import propagation_fault
from sandbox.seed import launch_running, make_profile


def test_two_hundred_instances_in_one_task(sandbox, tmp_path):
    started = time.monotonic()
    figures = {}
    with aws_fidelity():
        make_profile(sandbox, "web", settled=True)
        make_profile(sandbox, "web-v2", settled=True)
        fleet = launch_running(sandbox, 200)
        small = launch_running(sandbox, 10)

        def converge(name, ids, **variables):
            # The calls are what this test counts; the pace of EC2's token buckets (about 5 mutating
            # calls a second after a burst of 100: some 20 s of waiting per run of 200) is
            # test_rate_limits.py's. An account with raised limits, as max_request_rate allows.
            run = Run(sandbox, tmp_path, name, instance_ids=ids, max_request_rate=1000, **variables)
            figures[name] = run.figures()
            return run

        check = converge("check", fleet, instance_profile="web", check=True)
        assert check.mutations == []
        assert check.result["changed"]
        assert check.result["summary"] == {"associated": 200, "replaced": 0, "disassociated": 0, "unchanged": 0}
        assert set(attached(sandbox, fleet).values()) == {(None, None)}

        first = converge("first", fleet, instance_profile="web")
        assert first.result["changed"] and first.result["summary"] == check.result["summary"]
        assert first.mutations == ["AssociateIamInstanceProfile"] * 200
        # N mutating calls plus a constant: the reads of the no-op run, then batched reads until
        # every association is settled. New associations are `associating` for a moment (as on
        # EC2), so the first of those reads may still see some: one more, whatever N.
        assert first.reads[:len(NOOP_READS)] == NOOP_READS
        settle_reads = first.reads[len(NOOP_READS):]
        assert settle_reads in (["DescribeIamInstanceProfileAssociations"],
                                ["DescribeIamInstanceProfileAssociations"] * 2)
        assert [e["action"] for e in first.result["associations"]] == [e["action"] for e in check.result["associations"]]
        now = attached(sandbox, fleet)
        assert set(a for a, _id in now.values()) == {arn("web")}
        assert [e["association_id"] for e in first.result["associations"]] == [now[i][1] for i in fleet]

        rerun = converge("rerun", fleet, instance_profile="web")
        assert not rerun.result["changed"] and rerun.result["summary"]["unchanged"] == 200
        assert rerun.mutations == [] and rerun.reads == NOOP_READS

        converge("small-first", small, instance_profile="web")
        small_rerun = converge("small-rerun", small, instance_profile="web")
        assert small_rerun.reads == rerun.reads  # the same reads for 10 instances as for 200

        swap = converge("swap", fleet, instance_profile="web-v2")
        assert swap.result["summary"] == {"associated": 0, "replaced": 200, "disassociated": 0, "unchanged": 0}
        assert swap.mutations == ["ReplaceIamInstanceProfileAssociation"] * 200  # never a detach in between
        after_swap = attached(sandbox, fleet)
        for entry in swap.result["associations"]:
            assert entry["previous_instance_profile_arn"] == arn("web")
            assert entry["instance_profile_arn"] == arn("web-v2")
            assert entry["association_id"] == after_swap[entry["instance_id"]][1] != now[entry["instance_id"]][1]

        detach = converge("detach", fleet, instance_profile="web-v2", association_state="absent")
        assert detach.result["summary"]["disassociated"] == 200
        assert detach.mutations == ["DisassociateIamInstanceProfile"] * 200
        assert set(attached(sandbox, fleet).values()) == {(None, None)}

    figures["test_wall_seconds"] = round(time.monotonic() - started, 2)
    os.makedirs(OUTPUT, exist_ok=True)
    with open(os.path.join(OUTPUT, "association_scale.json"), "w") as handle:
        json.dump(figures, handle, indent=2)
    for name, figure in figures.items():
        print(name, figure)


def test_a_profile_ec2_does_not_know_yet_is_retried_until_it_does(sandbox, tmp_path):
    """EC2 refuses the fresh profile three times (as it does for a minute or two after the
    profile is created): the first instance waits it out, the others follow; nothing else is
    retried and nothing fails."""
    make_profile(sandbox, "fresh", settled=True)  # the armed fault plays EC2 not knowing it
    ids = launch_running(sandbox, 5)
    fault = propagation_fault(sandbox)
    fault.arm("fresh", 3)
    run = Run(sandbox, tmp_path, "propagation", instance_ids=ids, instance_profile="fresh")
    assert run.result["summary"]["associated"] == 5 and not run.result.get("failed")
    associates = [c for c in run.calls if c["action"] == "AssociateIamInstanceProfile"]
    assert [c["status"] for c in associates] == [400, 400, 400] + [200] * 5
    assert len(set(c["params"]["InstanceId"] for c in associates[:4])) == 1  # only the first instance waited
    assert fault.injected == 3
    assert set(a for a, _id in attached(sandbox, ids).values()) == {arn("fresh")}


def test_a_profile_ec2_never_learns_fails_with_the_guide_message_and_changes_nothing(sandbox, tmp_path):
    make_profile(sandbox, "fresh", settled=True)  # the armed fault plays EC2 not knowing it
    ids = launch_running(sandbox, 5)
    propagation_fault(sandbox).arm("fresh", 1000)
    run = Run(sandbox, tmp_path, "propagation-timeout", instance_ids=ids, instance_profile="fresh",
              propagation_timeout=0)
    assert run.result["failed"]
    assert run.result["msg"] == (
        "EC2 does not know instance profile 'fresh' yet (AWS said InvalidParameterValue: Value "
        "(arn:aws:iam::123456789012:instance-profile/fresh) for parameter iamInstanceProfile.arn is invalid. Invalid "
        "IAM Instance Profile ARN) and still did not after 0 s of retries; IAM changes can take a few minutes to reach "
        "EC2. Run again later, or raise propagation_timeout. No instance was changed.")
    assert run.result["associations"] == [] and run.result["failed_instance_ids"] == ids
    assert run.actions.count("AssociateIamInstanceProfile") == 1  # the canary; the others never tried
    assert set(attached(sandbox, ids).values()) == {(None, None)}
