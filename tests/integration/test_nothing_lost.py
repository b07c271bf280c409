"""Nothing lost: what a task does not name, it does not touch.

* A profile in use is never deleted without ``force`` (nor in check mode with it); with ``force``
  it is detached from exactly the instances that used it, then deleted.
* ``state: absent`` on associations removes only the associations of the profile (or role) it
  names, on the instances it names.
* The role's teardown refuses, changing nothing, while an instance its variables do not name still
  uses the profile; once they name every user, it removes exactly the role, its profile and their
  associations, and nothing else (compared as snapshots of IAM and EC2).
"""

import copy
import json
import os

import pytest

from reliability_support import RELIABILITY
from reliability_support import launch
from reliability_support import make_profile
from reliability_support import make_role
from reliability_support import mutating_calls
from reliability_support import profile_arn
from reliability_support import record_figures
from reliability_support import run_module
from reliability_support import run_with_vars
from reliability_support import settled_snapshot
from sandbox_snapshot import active_associations
from sandbox_snapshot import diff
from sandbox_snapshot import snapshot

TEARDOWN = os.path.join(RELIABILITY, "teardown.yml")


def without_associations(state, instance_ids):
    expected = copy.deepcopy(state)
    associations = expected["ec2"]["associations"]
    for association_id in [a for a, v in associations.items() if v["instance_id"] in instance_ids]:
        del associations[association_id]
    return expected


def test_a_profile_in_use_is_deleted_only_with_force(sandbox):
    iam, ec2 = sandbox.client("iam"), sandbox.client("ec2")
    make_role(iam, "busy")
    make_profile(iam, "busy", "busy")
    make_profile(iam, "bystander", "busy")
    sandbox.rules.settle()  # profiles EC2 knows, as minutes after they were made
    users = launch(ec2, 3, profile="busy")
    others = launch(ec2, 2, profile="bystander")
    before = snapshot(sandbox)

    refused = run_module(sandbox, "iam_instance_profile", {"name": "busy", "state": "absent"})
    assert refused["failed"] and refused["param"] == "force" and sorted(refused["instances"]) == users
    predicted = run_module(sandbox, "iam_instance_profile", {"name": "busy", "state": "absent", "force": True},
                           check_mode=True)
    assert predicted["changed"] and sorted(predicted["disassociated_instances"]) == users
    assert diff(before, snapshot(sandbox)) == []

    forced = run_module(sandbox, "iam_instance_profile", {"name": "busy", "state": "absent", "force": True})
    assert forced["changed"] and forced["actions"] == ["disassociated", "role_removed", "deleted"]
    expected = without_associations(before, users)
    del expected["iam"]["instance_profiles"]["busy"]
    # The module does not wait for EC2 to finish the disassociations (they are `disassociating` for
    # a moment): compare once EC2 has.
    after = settled_snapshot(sandbox)
    assert diff(expected, after) == []  # the bystander profile, its role and instances untouched
    assert set(active_associations(after)) == set(others)


def test_absent_removes_only_the_associations_it_names(sandbox):
    iam, ec2 = sandbox.client("iam"), sandbox.client("ec2")
    for name in ("a", "b"):
        make_role(iam, name)
        make_profile(iam, name, name)
    make_profile(iam, "a-too", "a")
    sandbox.rules.settle()  # profiles EC2 knows, as minutes after they were made
    carrying_a = launch(ec2, 3, profile="a")
    carrying_a_too = launch(ec2, 2, profile="a-too")
    carrying_b = launch(ec2, 3, profile="b")
    bare = launch(ec2, 2)
    named = carrying_a[:2] + carrying_a_too + carrying_b + bare  # carrying_a[2] is not named
    before = snapshot(sandbox)

    sandbox.app.clear_log()
    by_profile = run_module(sandbox, "ec2_profile_association", {
        "instance_ids": named, "instance_profile": "a", "state": "absent"})
    assert by_profile["changed"] and by_profile["summary"]["disassociated"] == 2
    assert sorted(c["params"]["AssociationId"] for c in mutating_calls(sandbox.calls())) == sorted(
        a for a, v in before["ec2"]["associations"].items() if v["instance_id"] in carrying_a[:2])
    after_profile = snapshot(sandbox)
    assert diff(without_associations(before, carrying_a[:2]), after_profile) == []

    by_arn = run_module(sandbox, "ec2_profile_association", {
        "instance_ids": named, "instance_profile": profile_arn("b"), "state": "absent", "wait": False})
    assert by_arn["summary"]["disassociated"] == 3
    by_role = run_module(sandbox, "ec2_profile_association", {
        "instance_ids": named, "role": "a", "state": "absent"})
    assert by_role["summary"]["disassociated"] == 2  # a-too holds role a; carrying_a[2] is not named
    final = settled_snapshot(sandbox)  # by_arn did not wait (wait: false) for EC2 to finish
    assert diff(without_associations(before, carrying_a[:2] + carrying_a_too + carrying_b), final) == []
    assert active_associations(final) == {carrying_a[2]: [profile_arn("a")]}
    again = run_module(sandbox, "ec2_profile_association", {"instance_ids": named, "role": "a", "state": "absent"})
    assert not again["changed"]
    record_figures("nothing-lost-associations", detach_cases=4, state_diffs=0)


@pytest.mark.slow
def test_the_role_teardown_touches_only_what_its_variables_name(sandbox, tmp_path):
    iam, ec2 = sandbox.client("iam"), sandbox.client("ec2")
    # What the role made for team-a (as its present run would), and what belongs to others.
    make_role(iam, "team-a")
    iam.put_role_policy(RoleName="team-a", PolicyName="read", PolicyDocument='{"Version": "2012-10-17", '
                        '"Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}')
    make_profile(iam, "team-a", "team-a")
    make_role(iam, "team-b")
    make_profile(iam, "team-b", "team-b")
    sandbox.rules.settle()  # profiles EC2 knows, as minutes after they were made
    by_id = launch(ec2, 2, profile="team-a")
    tagged = launch(ec2, 2, profile="team-a", tags={"team": "a"})
    forgotten = launch(ec2, 1, profile="team-a")  # uses team-a, named by no variable
    team_b = launch(ec2, 2, profile="team-b", tags={"team": "a"})  # matches the filter, carries team-b
    ec2.create_launch_template(LaunchTemplateName="team-a", LaunchTemplateData={
        "ImageId": "ami-12345678", "IamInstanceProfile": {"Name": "team-a"}})
    variables = {"fleet_role": "team-a", "instance_ids": by_id, "team": "a"}
    before = snapshot(sandbox)

    sandbox.app.clear_log()
    refused, _result = run_with_vars(sandbox, TEARDOWN, tmp_path, "teardown-refused", variables)
    assert refused.returncode != 0
    assert "is still attached to {0}".format(forgotten[0]) in refused.output
    assert "Nothing was changed." in refused.output
    assert mutating_calls(sandbox.calls()) == []
    assert diff(before, snapshot(sandbox)) == []

    run, _result = run_with_vars(sandbox, TEARDOWN, tmp_path, "teardown",
                                 dict(variables, instance_ids=by_id + forgotten))
    assert run.returncode == 0, run.output[-5000:]
    expected = without_associations(before, by_id + tagged + forgotten)
    del expected["iam"]["roles"]["team-a"]
    del expected["iam"]["instance_profiles"]["team-a"]
    after = snapshot(sandbox)
    assert diff(expected, after) == []  # team-b, its instances, the launch template: untouched
    assert set(active_associations(after)) == set(team_b)
    record_figures("nothing-lost-teardown", teardowns=2, refused=1, state_diffs=0)


def test_detaching_a_deleted_profile_again_is_a_no_op_even_when_a_role_has_its_name(sandbox):
    """A teardown re-run: profile old was detached and deleted, role old is still there."""
    iam, ec2 = sandbox.client("iam"), sandbox.client("ec2")
    make_role(iam, "old")
    instances = launch(ec2, 2)
    again = run_module(sandbox, "ec2_profile_association", {
        "instance_ids": instances, "instance_profile": "old", "state": "absent"})
    assert not again.get("failed") and not again["changed"], again
    assert "only a role of that name, which no profile holds" in json.dumps(again["warnings"])
    # When profiles do hold a role of that name, the user meant one of them: still an error.
    make_profile(iam, "old-profile", "old")
    meant = run_module(sandbox, "ec2_profile_association", {
        "instance_ids": instances, "instance_profile": "old", "state": "absent"})
    assert meant["failed"] and "the profile(s) that hold it: old-profile" in meant["msg"]
