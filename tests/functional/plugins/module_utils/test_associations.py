"""associations.converge / read_associations against the sandbox (moto in this process):
the reads are batched, check mode changes nothing, and every error message is exactly what
docs/attach-after-launch.md says it is."""

import json

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import associations as A
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryingClient
from ansible_collections.keyless.aws.plugins.module_utils.instances import FILTER_VALUE_LIMIT
from sandbox.faults import aws_fidelity
from sandbox.seed import wait_until

AMI = "ami-1e749f67"  # one of moto's default images
ACCOUNT = "123456789012"
MUTATING = ("AssociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation", "DisassociateIamInstanceProfile")
EC2_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def arn(name):
    return "arn:aws:iam::{0}:instance-profile/{1}".format(ACCOUNT, name)


class World:
    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.ec2 = RetryingClient(sandbox.client("ec2"))
        self.iam = RetryingClient(sandbox.client("iam"))

    def role(self, name, trust=None):
        self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(EC2_TRUST if trust is None else trust))
        return name

    def profile(self, name, role=None):
        """A profile EC2 already knows (as minutes after it was made): these tests count calls;
        the propagation window has tests of its own (tests/integration/test_strict_ec2.py)."""
        self.iam.create_instance_profile(InstanceProfileName=name)
        if role:
            self.iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
        self.sandbox.rules.settle(name)
        return arn(name)

    def instances(self, count, tags=None):
        kwargs = {}
        if tags:
            kwargs["TagSpecifications"] = [{"ResourceType": "instance",
                                            "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
        reply = self.ec2.run_instances(ImageId=AMI, MinCount=count, MaxCount=count, **kwargs)
        ids = sorted(i["InstanceId"] for i in reply["Instances"])
        wait_until(self.sandbox, ids, ("running",))  # pending for a moment, as on EC2
        return ids

    def terminate_and_stop(self, terminated, stopped):
        self.ec2.terminate_instances(InstanceIds=[terminated])
        self.ec2.stop_instances(InstanceIds=[stopped])
        wait_until(self.sandbox, [terminated], ("terminated",))
        wait_until(self.sandbox, [stopped], ("stopped",))

    def attached(self, ids):
        found = A.describe_associations(self.ec2, ids)
        return dict((i, (A.current_association(found.get(i)) or {}).get("instance_profile_arn")) for i in ids)

    def converge(self, check_mode=False, **params):
        params.setdefault("state", "present")
        self.sandbox.app.clear_log()
        return A.converge(self.ec2, self.iam, params, check_mode, region="us-east-1")

    def actions(self, service=None):
        return [c["action"] for c in self.sandbox.calls(service=service)]

    def mutations(self):
        return [a for a in self.actions("ec2") if a in MUTATING]


@pytest.fixture
def world(sandbox):
    return World(sandbox)


@pytest.fixture
def web(world):
    """Role web (trusts EC2) in profile web, and three instances."""
    world.role("web")
    world.profile("web", "web")
    return world.instances(3)


def test_check_mode_predicts_the_real_run_without_a_single_mutating_call(world, web):
    check = world.converge(check_mode=True, instance_ids=web, instance_profile="web")
    assert world.mutations() == []
    assert world.attached(web) == dict((i, None) for i in web)
    real = world.converge(instance_ids=web, instance_profile="web")
    assert world.mutations() == ["AssociateIamInstanceProfile"] * 3
    assert check["summary"] == real["summary"] == {"associated": 3, "replaced": 0, "disassociated": 0, "unchanged": 0}

    def strip(entries):
        return [dict(e, association_id=None) for e in entries]

    assert strip(check["associations"]) == strip(real["associations"])
    assert check["changed"] and real["changed"]
    assert check["diff"] == real["diff"] == {"before": dict((i, None) for i in web),
                                             "after": dict((i, arn("web")) for i in web)}
    assert world.attached(web) == dict((i, arn("web")) for i in web)
    assert all(e["state"] == "associated" and e["association_id"].startswith("iip-assoc-")
               for e in real["associations"])
    assert real["instance_profile"] == {"instance_profile_name": "web", "arn": arn("web"), "role_name": "web"}
    assert real["role_trusts_ec2"] is True


def test_a_run_that_changes_nothing_makes_three_reads_whatever_the_fleet(world):
    world.role("web")
    world.profile("web", "web")
    counts = {}
    with aws_fidelity():  # moto pages associations at 100 whatever MaxResults says; AWS does not
        for size in (3, 101):
            ids = world.instances(size)
            world.converge(instance_ids=ids, instance_profile="web")
            rerun = world.converge(instance_ids=ids, instance_profile="web")
            assert not rerun["changed"] and rerun["summary"]["unchanged"] == size
            counts[size] = world.actions()
    assert counts[3] == counts[101] == [
        "GetInstanceProfile", "DescribeInstances", "DescribeIamInstanceProfileAssociations"]


def test_more_instances_than_a_chunk_are_read_in_chunks_and_one_association_scan(world):
    world.role("web")
    world.profile("web", "web")
    ids = world.instances(FILTER_VALUE_LIMIT + 1)
    with aws_fidelity():
        world.converge(check_mode=True, instance_ids=ids, instance_profile="web")
    assert world.actions() == ["GetInstanceProfile"] + ["DescribeInstances"] * 2 + [
        "DescribeIamInstanceProfileAssociations"]


def test_swap_replaces_in_one_call_and_never_leaves_the_instance_without_a_profile(world, web):
    world.role("web-v2")
    world.profile("web-v2", "web-v2")
    world.converge(instance_ids=web, instance_profile="web")
    before = dict((e["instance_id"], e["association_id"]) for e in
                  world.converge(instance_ids=web, instance_profile="web")["associations"])
    with aws_fidelity():  # AWS gives a replaced association a new id; moto keeps the old one
        swap = world.converge(instance_ids=web, instance_profile="web-v2")
    assert world.mutations() == ["ReplaceIamInstanceProfileAssociation"] * 3
    assert swap["summary"]["replaced"] == 3
    for entry in swap["associations"]:
        assert entry["previous_instance_profile_arn"] == arn("web")
        assert entry["instance_profile_arn"] == arn("web-v2")
        assert entry["association_id"] != before[entry["instance_id"]]
    assert world.attached(web) == dict((i, arn("web-v2")) for i in web)


def test_detach_with_a_profile_named_only_touches_that_profile(world, web):
    world.role("batch")
    world.profile("batch", "batch")
    world.converge(instance_ids=web[:2], instance_profile="web")
    world.converge(instance_ids=web[2:], instance_profile="batch")
    result = world.converge(instance_ids=web, instance_profile="web", state="absent")
    assert [e["action"] for e in result["associations"]] == ["disassociated", "disassociated", "unchanged"]
    assert world.mutations() == ["DisassociateIamInstanceProfile"] * 2
    assert world.attached(web) == {web[0]: None, web[1]: None, web[2]: arn("batch")}
    assert result["associations"][0]["state"] == "disassociated"
    assert result["associations"][0]["previous_instance_profile_arn"] == arn("web")
    again = world.converge(instance_ids=web, instance_profile="web", state="absent")
    assert not again["changed"] and world.mutations() == []
    everything = world.converge(instance_ids=web, state="absent")
    assert everything["summary"] == {"associated": 0, "replaced": 0, "disassociated": 1, "unchanged": 2}


def test_detach_by_a_profile_that_was_deleted_since(world, web):
    world.converge(instance_ids=web, instance_profile="web")
    world.iam.remove_role_from_instance_profile(InstanceProfileName="web", RoleName="web")
    world.iam.delete_instance_profile(InstanceProfileName="web")
    result = world.converge(instance_ids=web, instance_profile="web", state="absent")
    assert result["summary"]["disassociated"] == 3


def test_filters_select_a_tagged_fleet_and_skip_terminated_instances(world, web):
    tagged = world.instances(4, tags={"team": "web"})
    world.terminate_and_stop(tagged[0], tagged[1])
    result = world.converge(filters={"tag:team": "web"}, instance_profile="web")
    assert [e["instance_id"] for e in result["associations"]] == tagged[1:]
    assert result["summary"]["associated"] == 3
    narrowed = world.converge(check_mode=True, instance_ids=web + tagged[1:2], filters={"tag:team": "web"},
                              instance_profile="web", state="absent")
    assert [e["instance_id"] for e in narrowed["associations"]] == tagged[1:2]


def test_selection_union_takes_the_ids_and_whatever_the_filters_match_in_one_run(world, web):
    tagged = world.instances(2, tags={"team": "web"})
    both = world.converge(check_mode=True, instance_ids=web[:1] + tagged[:1], filters={"tag:team": "web"},
                          instance_profile="web", selection="union")
    # the ids first, in their order, then the matches not named (by id); an instance in both, once
    assert [e["instance_id"] for e in both["associations"]] == web[:1] + tagged[:1] + tagged[1:]
    narrowed = world.converge(check_mode=True, instance_ids=web[:1] + tagged[:1], filters={"tag:team": "web"},
                              instance_profile="web")
    assert [e["instance_id"] for e in narrowed["associations"]] == tagged[:1]


def test_the_result_says_where_the_time_went_per_phase_and_call(world, web):
    from ansible_collections.keyless.aws.plugins.module_utils.pacing import CallStats

    stats = CallStats()
    world.ec2.stats = world.iam.stats = stats
    result = world.converge(instance_ids=web, instance_profile="web")
    timing = result["timing"]
    assert set(timing["seconds"]) == {"read", "plan", "apply", "wait", "total"}
    assert all(value >= 0 for value in timing["seconds"].values())
    assert timing["seconds"]["total"] >= timing["seconds"]["read"] + timing["seconds"]["apply"]
    # the calls counted are the calls the sandbox saw, IAM and EC2 alike
    assert timing["api_calls"] == len(world.sandbox.calls())
    assert timing["calls_by_action"]["AssociateIamInstanceProfile"] == 3
    assert timing["throttled"] == 0
    rerun = world.converge(instance_ids=web, instance_profile="web")
    assert rerun["timing"]["seconds"]["apply"] == rerun["timing"]["seconds"]["wait"] == 0.0


def test_role_instead_of_profile(world, web):
    world.role("app")
    world.profile("app-profile", "app")
    result = world.converge(instance_ids=web, role="app")
    assert result["summary"]["associated"] == 3
    assert world.attached(web) == dict((i, arn("app-profile")) for i in web)
    assert world.actions("iam") == ["GetRole", "ListInstanceProfilesForRole"]
    detach = world.converge(instance_ids=web, role="app", state="absent")
    assert detach["summary"]["disassociated"] == 3


def test_filters_that_match_nothing_warn(world, web):
    result = world.converge(filters={"tag:team": "nobody"}, instance_profile="web")
    assert not result["changed"] and result["associations"] == []
    assert result["warnings"] == ["filters: no instance matches {'tag:team': 'nobody'}; nothing to do."]


# ---- every error, exactly as the user guide quotes it; nothing changed ------------------------


def fails(world, **params):
    with pytest.raises(KeylessError) as raised:
        world.converge(**params)
    assert world.mutations() == []
    return raised.value


def test_role_name_given_as_instance_profile(world, web):
    world.role("app")
    world.profile("app-profile", "app")
    error = fails(world, instance_ids=web, instance_profile="app")
    assert error.param == "instance_profile"
    assert error.message == (
        "instance_profile: 'app' is an IAM role, not an instance profile. EC2 attaches instance profiles, which "
        "hold a role; the profile(s) that hold it: app-profile; use one of those.")
    assert world.actions("ec2") == []


def test_profile_that_does_not_exist_fails_at_once(world, web):
    error = fails(world, instance_ids=web, instance_profile="nope")
    assert error.message == (
        "instance_profile: there is no instance profile named 'nope' (nor a role of that name). Create it with "
        "keyless.aws.iam_instance_profile, or check the spelling.")
    assert world.actions("ec2") == []  # never reaches EC2, so never waits for propagation


def test_role_held_by_no_profile_or_by_several(world, web):
    world.role("lonely")
    error = fails(world, instance_ids=web, role="lonely")
    assert error.param == "role" and error.message == (
        "role: no instance profile holds role 'lonely'; create one with keyless.aws.iam_instance_profile "
        "(name: lonely, role: lonely) and run again.")
    world.role("shared")
    world.profile("shared-a", "shared")
    world.profile("shared-b", "shared")
    error = fails(world, instance_ids=web, role="shared")
    assert error.message == (
        "role: role 'shared' is held by several instance profiles (shared-a, shared-b); name the one to use "
        "with instance_profile instead.")
    error = fails(world, instance_ids=web, role="ghost")
    assert error.message == "role: there is no IAM role named 'ghost'."


def test_profile_with_no_role(world, web):
    world.profile("empty")
    error = fails(world, instance_ids=web, instance_profile="empty")
    assert error.message == (
        "instance_profile: instance profile 'empty' holds no role, so instances given it get no credentials. "
        "Add a role to it (keyless.aws.iam_instance_profile with role: ...), or set require_role: false to "
        "attach it anyway.")
    result = world.converge(instance_ids=web, instance_profile="empty", require_role=False)
    assert result["summary"]["associated"] == 3 and result["role_trusts_ec2"] is None


def test_role_that_does_not_trust_ec2(world, web):
    world.role("lambda-only", LAMBDA_TRUST)
    world.profile("lambda-only", "lambda-only")
    error = fails(world, instance_ids=web, instance_profile="lambda-only")
    assert error.message == (
        "instance_profile: role 'lambda-only' of instance profile 'lambda-only' does not trust EC2, so instances "
        "given this profile get no credentials: no statement allows sts:AssumeRole for the service principal "
        "ec2.amazonaws.com; add {\"Effect\": \"Allow\", \"Principal\": {\"Service\": \"ec2.amazonaws.com\"}, "
        "\"Action\": \"sts:AssumeRole\"}. Fix the role's trust policy, or set trust_check to warn or skip.")
    warned = world.converge(instance_ids=web, instance_profile="lambda-only", trust_check="warn")
    assert warned["role_trusts_ec2"] is False and warned["warnings"][0].startswith(
        "instance_profile: role 'lambda-only' of instance profile 'lambda-only' does not trust EC2")
    skipped = world.converge(instance_ids=web, instance_profile="lambda-only", trust_check="skip", state="present")
    assert skipped["role_trusts_ec2"] is None and not skipped["changed"]


def test_instances_that_do_not_exist_are_all_named(world, web):
    missing = ["i-0123456789abcdef0", "i-0123456789abcdef1"]
    error = fails(world, instance_ids=web + missing, instance_profile="web")
    assert error.param == "instance_ids" and error.message == (
        "instance_ids: 2 instance(s) do not exist in us-east-1: i-0123456789abcdef0, i-0123456789abcdef1. "
        "Check the ids and the region. Nothing was changed.")
    assert world.attached(web) == dict((i, None) for i in web)


def test_terminated_instances_are_named_stopped_ones_are_fine(world, web):
    world.terminate_and_stop(web[0], web[1])
    error = fails(world, instance_ids=web, instance_profile="web")
    assert error.message == (
        "instance_ids: 1 instance(s) are terminated or shutting down, and a profile cannot be attached to or "
        "detached from them: {0} (terminated). Remove them from instance_ids. Nothing was changed.".format(web[0]))
    result = world.converge(instance_ids=web[1:], instance_profile="web")
    assert result["summary"]["associated"] == 2


def test_an_arn_of_another_profile_path_or_account(world, web):
    error = fails(world, instance_ids=web, instance_profile="web",
                  instance_profile_arn="arn:aws:iam::123456789012:instance-profile/team/web")
    assert error.message == (
        "instance_profile: the ARN 'arn:aws:iam::123456789012:instance-profile/team/web' does not match instance "
        "profile 'web' of this account, whose ARN is 'arn:aws:iam::123456789012:instance-profile/web'.")


def test_a_profile_named_by_arn(world, web):
    result = world.converge(instance_ids=web, instance_profile="web", instance_profile_arn=arn("web"))
    assert result["summary"]["associated"] == 3


# ---- the info side -------------------------------------------------------------------------


def test_read_associations_by_instances_profile_and_region(world, web):
    world.role("batch")
    world.profile("batch", "batch")
    world.converge(instance_ids=web[:1], instance_profile="web")
    world.converge(instance_ids=web[1:2], instance_profile="batch")
    by_ids = A.read_associations(world.ec2, world.iam, {"instance_ids": web})["associations"]
    assert [(e["instance_id"], e["instance_profile_arn"]) for e in by_ids] == [
        (web[0], arn("web")), (web[1], arn("batch")), (web[2], None)]
    assert by_ids[0]["state"] == "associated" and by_ids[2]["association_id"] is None
    by_profile = A.read_associations(world.ec2, world.iam, {"instance_profile": "web"})["associations"]
    assert [e["instance_id"] for e in by_profile] == [web[0]]
    region = A.read_associations(world.ec2, world.iam, {})["associations"]
    assert sorted(e["instance_id"] for e in region) == sorted(web[:2])
    world.role("app")
    with pytest.raises(KeylessError) as raised:
        A.read_associations(world.ec2, world.iam, {"instance_profile": "app"})
    assert "is an IAM role, not an instance profile" in raised.value.message


def test_a_failure_part_way_reports_what_was_converged_and_starts_nothing_new(world, web, sandbox):
    from sandbox.faults import ec2_error

    def refuse_second(info):
        if info["action"] == "AssociateIamInstanceProfile" and info["params"].get("InstanceId") == web[1]:
            return ec2_error(400, "UnauthorizedOperation", "You are not authorized to perform this operation.")
        return None

    sandbox.app.interceptors.append(refuse_second)
    try:
        error = fails_after_changes(world, instance_ids=web, instance_profile="web", max_concurrency=1)
    finally:
        sandbox.app.interceptors.remove(refuse_second)
    assert error.message == (
        "attaching {1} failed: AWS said UnauthorizedOperation: You are not authorized to perform this operation. "
        "(ec2:AssociateIamInstanceProfile, or iam:PassRole on the role it gives, is not allowed to the caller) "
        "1 of 3 instance(s) to change were converged (listed in associations); 2 were not: {1}, {2}. Run the task "
        "again to finish.".format(*web))
    assert [e["instance_id"] for e in error.details["associations"]] == web[:1]
    assert error.details["failed_instance_ids"] == web[1:]
    assert error.code == "UnauthorizedOperation"
    assert world.attached(web) == {web[0]: arn("web"), web[1]: None, web[2]: None}
    rerun = world.converge(instance_ids=web, instance_profile="web")
    assert rerun["summary"] == {"associated": 2, "replaced": 0, "disassociated": 0, "unchanged": 1}


def fails_after_changes(world, **params):
    params.setdefault("state", "present")
    world.sandbox.app.clear_log()
    with pytest.raises(KeylessError) as raised:
        A.converge(world.ec2, world.iam, params, False, region="us-east-1")
    return raised.value
