"""Every module, and the role end to end, converge through the sandbox's fault-injection proxy.

* 20 % of IAM, EC2 and STS calls fail with retryable errors (throttling, 503, 500, connection
  resets), seeded so a failure reproduces;
* scripted propagation errors: the first calls that attach a profile created a moment ago fail
  as EC2 fails for a profile it does not know yet;
* lost answers: AWS did the change but the answer never arrived (the retry finds it done).

Each run must converge to exactly the expected state (compared as a snapshot of IAM and EC2),
with zero duplicate associations (one successful attach per instance, one active association
each); a re-run, faults still on, changes nothing (the snapshot is identical and every task
reports ``changed: false``). The figures go to tests/output/integration/reliability-figures.jsonl.
"""

import os

import pytest

from reliability_support import RELIABILITY
from reliability_support import launch
from reliability_support import make_profile
from reliability_support import make_role
from reliability_support import profile_arn
from reliability_support import recap
from reliability_support import record_figures
from reliability_support import run_module
from reliability_support import run_with_vars
from sandbox_snapshot import active_associations
from sandbox_snapshot import diff
from sandbox_snapshot import snapshot

MODULES = os.path.join(RELIABILITY, "modules.yml")
ROLE = os.path.join(RELIABILITY, "role.yml")

# 20 % of every IAM, EC2 and STS call fails with a retryable error, and the first 3 calls that
# attach or swap in a profile created in the last hour fail as EC2 fails for a profile it does not
# know yet.
FAULTS = {"seed": 20240601,
          "rules": [{"services": ["iam", "ec2", "sts"], "rate": 0.2,
                     "kinds": ["throttle", "ServiceUnavailable", "InternalError", "reset"]}],
          "scripted": [{"preset": "propagation", "first": 3, "younger_than": 3600}]}
LOST_ANSWERS = {"seed": 7, "rules": [
    {"services": ["iam", "ec2"], "rate": 0.2, "kinds": ["reset_after"], "max_consecutive": 2}]}

# The answer is lost after AWS did the work: for half the calls that change something (never
# twice in a row), for 20 % of the others.
CHANGES = ["CreateInstanceProfile", "AddRoleToInstanceProfile", "RemoveRoleFromInstanceProfile",
           "DeleteInstanceProfile", "TagInstanceProfile", "AssociateIamInstanceProfile",
           "ReplaceIamInstanceProfileAssociation", "DisassociateIamInstanceProfile", "ModifyInstanceMetadataOptions",
           "CreateLaunchTemplateVersion", "ModifyLaunchTemplate", "ModifyInstanceMetadataDefaults"]
LOST_ANSWERS = {"seed": 7, "rules": [
    {"services": ["iam", "ec2"], "actions": CHANGES, "rate": 0.5, "kinds": ["reset_after"], "max_consecutive": 1},
    {"services": ["iam", "ec2"], "rate": 0.2, "kinds": ["reset_after"], "max_consecutive": 2}]}


class World:
    """Roles fleet/other/old, profiles other/old/spare, 40 instances, launch template web."""

    def __init__(self, sandbox, user_data=None):
        iam, ec2 = sandbox.client("iam"), sandbox.client("ec2")
        for name in ("fleet", "other", "old"):
            make_role(iam, name)
        make_profile(iam, "other", "other")
        make_profile(iam, "old", "old")
        make_profile(iam, "spare")
        # The world was there before the run: EC2 knows these profiles (the run's propagation
        # refusals are the fault proxy's, scripted, and the sandbox's for the fresh profile fleet).
        sandbox.rules.settle()
        self.fresh = launch(ec2, 20)
        self.swap = launch(ec2, 10, profile="old")
        self.detach = launch(ec2, 5, profile="old")
        self.keep = launch(ec2, 5, profile="other")
        data = {"ImageId": "ami-12345678", "MetadataOptions": {"HttpTokens": "optional"}}
        if user_data:
            data["UserData"] = user_data
        ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData=data)
        self.imds = sandbox.imds.start(self.fresh[0])
        self.variables = {"fresh_ids": self.fresh, "swap_ids": self.swap, "detach_ids": self.detach,
                          "keep_ids": self.keep, "template": "web", "imds_endpoint": self.imds.url}

    def check(self, state):
        """The state every run must reach, whatever the faults."""
        iam, ec2 = state["iam"], state["ec2"]
        assert sorted(iam["instance_profiles"]) == ["fleet", "other"]
        assert iam["instance_profiles"]["fleet"]["roles"] == ["fleet"]
        assert iam["instance_profiles"]["fleet"]["tags"] == {"team": "fleet"}
        attached = active_associations(state)
        expected = {}
        expected.update((i, [profile_arn("fleet")]) for i in self.fresh)
        expected.update((i, [profile_arn("other")]) for i in self.swap + self.keep)
        assert attached == expected  # one active association each, to the right profile; none on detach
        assert all(a["state"] == "associated" for a in ec2["associations"].values())
        for instance_id, instance in ec2["instances"].items():
            wanted = "required" if instance_id in self.fresh else "optional"
            assert instance["metadata_options"]["HttpTokens"] == wanted, instance_id
        template = ec2["launch_templates"]["web"]
        assert template["default_version"] == template["latest_version"] == 2
        assert template["versions"]["2"]["data"]["MetadataOptions"]["HttpTokens"] == "required"
        assert ec2["account_metadata_defaults"].get("HttpTokens") == "required"


def successful_attaches(calls):
    """{instance_id: number of AssociateIamInstanceProfile calls moto carried out}."""
    done = {}
    for call in calls:
        if call["action"] == "AssociateIamInstanceProfile" and call["status"] == 200:
            done[call["params"]["InstanceId"]] = done.get(call["params"]["InstanceId"], 0) + 1
    return done


def converge_twice(sandbox, tmp_path, world, config, name):
    """Run modules.yml with ``config`` on, twice; check the state each time. Returns figures."""
    proxy = sandbox.faults
    proxy.configure(config)
    first, results = run_with_vars(sandbox, MODULES, tmp_path, name + "-1", world.variables)
    assert first.returncode == 0, "first run failed through faults (log: {0}):\n{1}".format(
        first.log_path, first.output[-6000:])
    after_first = snapshot(sandbox)
    world.check(after_first)
    for key in ("profile", "spare", "attached", "swapped", "detached", "old_deleted", "hardened"):
        assert results[key]["changed"] is True, key
    assert results["attached"]["summary"]["associated"] == 20
    assert results["swapped"]["summary"]["replaced"] == 10
    assert results["detached"]["summary"] == {"associated": 0, "replaced": 0, "disassociated": 5, "unchanged": 5}
    assert results["credentials"]["role_name"] == "fleet"
    assert results["credentials"]["assumed_role_arn"].endswith(":assumed-role/fleet/" + world.fresh[0])
    assert [e["instance_id"] for e in results["fleet_info"]["iam_instance_profiles"][0]["instances"]] == world.fresh
    calls_first = sandbox.calls()
    attaches = successful_attaches(calls_first)
    assert set(attaches) == set(world.fresh) and set(attaches.values()) == {1}, attaches  # no duplicate attach
    injected_first = proxy.injected_total()

    sandbox.app.clear_log()
    second, results = run_with_vars(sandbox, MODULES, tmp_path, name + "-2", world.variables)
    assert second.returncode == 0, "re-run failed through faults (log: {0}):\n{1}".format(
        second.log_path, second.output[-6000:])
    after_second = snapshot(sandbox)
    assert diff(after_first, after_second) == []
    changed = sorted(key for key, result in results.items() if result.get("changed"))
    assert changed == [], "the re-run changed {0}".format(changed)
    assert recap(second.output)[1] == 1  # only the task that writes the results file
    assert successful_attaches(sandbox.calls()) == {}
    status = proxy.status()
    proxy.clear()
    return {"faults_injected": status["injected_total"], "faults_first_run": injected_first,
            "by_kind": status["injected_by_kind"], "runs": 2, "state_diffs": 0}


@pytest.mark.slow
def test_every_module_converges_through_retryable_and_propagation_faults(sandbox, tmp_path):
    world = World(sandbox)
    figures = converge_twice(sandbox, tmp_path, world, FAULTS, "faults-modules")
    kinds = figures["by_kind"]
    assert {"reset", "ServiceUnavailable", "InternalError"} <= set(kinds)
    assert kinds.get("RequestLimitExceeded", 0) + kinds.get("Throttling", 0) > 0
    # fleet (attached) and other (swapped in) were created a moment ago: 3 refusals each, once.
    assert kinds["scripted:propagation"] == 6
    record_figures("modules-faults", **figures)


class RoleWorld:
    """10 bare instances named by id, 10 tagged team=fleet-web (5 carrying profile legacy)."""

    def __init__(self, sandbox):
        iam, ec2 = sandbox.client("iam"), sandbox.client("ec2")
        make_role(iam, "legacy")
        make_profile(iam, "legacy", "legacy")
        sandbox.rules.settle("legacy")  # the world was there before the run: EC2 knows legacy
        self.by_id = launch(ec2, 10)
        self.tagged = (launch(ec2, 5, tags={"team": "fleet-web"})
                       + launch(ec2, 5, profile="legacy", tags={"team": "fleet-web"}))
        self.variables = {"fleet_role": "fleet-app", "instance_ids": self.by_id, "team": "fleet-web",
                          "template": "fleet-web"}

    def check(self, state):
        iam, ec2 = state["iam"], state["ec2"]
        role = iam["roles"]["fleet-app"]
        assert role["trust"]["Statement"] == [{
            "Sid": "AllowEC2AssumeRole", "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}]
        assert list(role["inline_policies"]) == ["read-config"]
        assert role["tags"] == {"team": "fleet-web"} and role["description"] == "EC2 instances of the fleet"
        assert sorted(iam["instance_profiles"]) == ["fleet-app", "legacy"]
        assert iam["instance_profiles"]["fleet-app"]["roles"] == ["fleet-app"]
        template = ec2["launch_templates"]["fleet-web"]
        data = template["versions"][str(template["default_version"])]["data"]
        assert data["IamInstanceProfile"] == {"Arn": profile_arn("fleet-app")}
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert active_associations(state) == dict(
            (i, [profile_arn("fleet-app")]) for i in self.by_id + self.tagged)
        assert all(i["metadata_options"]["HttpTokens"] == "required" for i in ec2["instances"].values())
        assert ec2["account_metadata_defaults"].get("HttpTokens") == "required"


@pytest.mark.slow
def test_the_role_converges_end_to_end_through_faults(sandbox, tmp_path):
    world = RoleWorld(sandbox)
    # Under EC2's rate limits and latency too (tests/sandbox/limits.py), as production runs it.
    with sandbox.limits.aws_like():
        proxy = sandbox.faults
        proxy.configure(FAULTS)
        first, result = run_with_vars(sandbox, ROLE, tmp_path, "faults-role-1", world.variables)
        assert first.returncode == 0, "the role failed through faults (log: {0}):\n{1}".format(
            first.log_path, first.output[-6000:])
        after_first = snapshot(sandbox)
        world.check(after_first)
        assert sorted(result["instances"].values()) == ["associated"] * 15 + ["replaced"] * 5
        attaches = successful_attaches(sandbox.calls())
        assert set(attaches.values()) == {1} and len(attaches) == 15  # no duplicate attach
        injected_first = proxy.injected_total()

        sandbox.app.clear_log()
        second, result = run_with_vars(sandbox, ROLE, tmp_path, "faults-role-2", world.variables)
        assert second.returncode == 0, "the role's re-run failed through faults (log: {0}):\n{1}".format(
            second.log_path, second.output[-6000:])
        assert diff(after_first, snapshot(sandbox)) == []
        assert recap(second.output)[1] == 1, second.output[-6000:]  # only the task that writes the results file
        assert set(result["instances"].values()) == {"unchanged"} and result["imds_changed"] == []
        status = proxy.status()
        assert status["injected"].get("ec2:AssociateIamInstanceProfile", {}).get("scripted:propagation") == 3
        record_figures("role-faults", faults_injected=status["injected_total"], faults_first_run=injected_first,
                       by_kind=status["injected_by_kind"], runs=2, state_diffs=0)


def module_steps(world):
    """modules.yml's tasks (but the one that runs on the instance), as (key, module, args)."""
    return [
        ("profile", "iam_instance_profile", {"name": "fleet", "role": "fleet", "trust_check": "fail",
                                             "tags": {"team": "fleet"}}),
        ("spare", "iam_instance_profile", {"name": "spare", "state": "absent"}),
        ("attached", "ec2_profile_association", {"instance_ids": world.fresh, "instance_profile": "fleet",
                                                 "max_concurrency": 5}),
        ("swapped", "ec2_profile_association", {"instance_ids": world.swap, "instance_profile": "other",
                                                "max_concurrency": 5}),
        ("detached", "ec2_profile_association", {"instance_ids": world.detach + world.keep,
                                                 "instance_profile": "old", "state": "absent",
                                                 "max_concurrency": 5}),
        ("old_deleted", "iam_instance_profile", {"name": "old", "state": "absent"}),
        ("hardened", "ec2_metadata_options", {"instance_ids": world.fresh, "launch_templates": [{"name": "web"}],
                                              "account_defaults": True, "http_tokens": "required"}),
        ("fleet_info", "iam_instance_profile_info", {"name": "fleet", "include_usage": True}),
        ("association_info", "ec2_profile_association_info", {
            "instance_ids": world.fresh + world.swap + world.detach + world.keep}),
    ]


@pytest.mark.slow
def test_every_module_converges_when_answers_are_lost(sandbox):
    """AWS did it, the answer never came: the retry must find it done, never do it twice."""
    world = World(sandbox)
    proxy = sandbox.faults
    proxy.configure(LOST_ANSWERS)
    for key, module, args in module_steps(world):
        result = run_module(sandbox, module, args)
        assert not result.get("failed"), "{0}: {1}".format(key, result.get("msg"))
    after_first = snapshot(sandbox)
    world.check(after_first)
    attaches = successful_attaches(sandbox.calls())
    assert set(attaches) == set(world.fresh) and set(attaches.values()) == {1}, attaches
    injected_first = proxy.injected_total()
    for key, module, args in module_steps(world):
        result = run_module(sandbox, module, args)
        assert not result.get("failed") and not result["changed"], "{0}: {1}".format(key, result)
    assert diff(after_first, snapshot(sandbox)) == []
    status = proxy.status()
    lost = set(action.split(":", 1)[1] for action, kinds in status["injected"].items() if "reset_after" in kinds)
    assert {"CreateInstanceProfile", "AddRoleToInstanceProfile", "AssociateIamInstanceProfile",
            "ReplaceIamInstanceProfileAssociation", "DisassociateIamInstanceProfile", "RemoveRoleFromInstanceProfile",
            "DeleteInstanceProfile", "ModifyInstanceMetadataOptions"} <= lost, lost
    record_figures("modules-lost-answers", faults_injected=status["injected_total"], faults_first_run=injected_first,
                   by_kind=status["injected_by_kind"], runs=2, state_diffs=0)
