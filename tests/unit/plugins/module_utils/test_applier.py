"""applier.py: applying a plan and waiting for it, with scripted clients and a fake clock
(nothing here really sleeps)."""

import threading

import pytest
from botocore.exceptions import ClientError

from ansible_collections.keyless.aws.plugins.module_utils import applier as AP
from ansible_collections.keyless.aws.plugins.module_utils import association_plan as A
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from association_support import P1, P_OTHER, FakeTime, assoc, client_error, cur, propagation_error, retrying, timing


# ---- apply: a scripted EC2 ------------------------------------------------------------------


class ScriptedEC2:
    """EC2 as far as the Applier needs it. ``fail[(action, instance_or_association)]`` is a list
    of exceptions raised, one per call, before the call succeeds."""

    def __init__(self, associations=None, fail=None, delay=None):
        self.associations = dict(associations or {})   # instance_id -> boto3 association
        self.fail = dict(fail or {})
        self.calls = []
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._n = 0

    def _enter(self, action, key):
        with self._lock:
            self.calls.append((action, key))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            script = self.fail.get((action, key)) or self.fail.get((action, "*"))
            problem = script.pop(0) if script else None
        if self.delay:
            self.delay()
        with self._lock:
            self.in_flight -= 1
        if problem is not None:
            raise problem

    def _new_id(self):
        with self._lock:
            self._n += 1
            return "iip-assoc-{0:017d}".format(self._n)

    def associate_iam_instance_profile(self, InstanceId, IamInstanceProfile):
        self._enter("associate", InstanceId)
        new = assoc(InstanceId, IamInstanceProfile["Arn"], "associating", self._new_id())
        self.associations[InstanceId] = dict(new, State="associated")
        return {"IamInstanceProfileAssociation": new}

    def replace_iam_instance_profile_association(self, AssociationId, IamInstanceProfile):
        self._enter("replace", AssociationId)
        instance_id = next(i for i, a in self.associations.items() if a["AssociationId"] == AssociationId)
        new = assoc(instance_id, IamInstanceProfile["Arn"], "associating", self._new_id())
        self.associations[instance_id] = dict(new, State="associated")
        return {"IamInstanceProfileAssociation": new}

    def disassociate_iam_instance_profile(self, AssociationId):
        self._enter("disassociate", AssociationId)
        instance_id = next(i for i, a in self.associations.items() if a["AssociationId"] == AssociationId)
        old = self.associations.pop(instance_id)
        return {"IamInstanceProfileAssociation": dict(old, State="disassociating")}

    def describe_instances(self, **kwargs):
        ids = [v for f in kwargs.get("Filters") or [] if f["Name"] == "instance-id" for v in f["Values"]]
        self.calls.append(("describe", ("instances",) + tuple(ids)))
        states = getattr(self, "states", {})
        return {"Reservations": [{"Instances": [{"InstanceId": i, "State": {"Name": states.get(i, "running")}}
                                                for i in ids]}]}

    def describe_iam_instance_profile_associations(self, **kwargs):
        ids = None
        for f in kwargs.get("Filters") or []:
            if f["Name"] == "instance-id":
                ids = set(f["Values"])
        self.calls.append(("describe", tuple(sorted(ids)) if ids else None))
        items = [a for i, a in sorted(self.associations.items()) if ids is None or i in ids]
        return {"IamInstanceProfileAssociations": items}


PROFILE = {"InstanceProfileName": "web", "Arn": P1, "Roles": [{"RoleName": "web"}]}


def apply(ec2, fake, steps, **kwargs):
    applier = AP.Applier(retrying(ec2, fake), PROFILE, timing=timing(fake), **kwargs)
    return applier.apply(steps)


def test_propagation_error_is_retried_with_backoff_until_ec2_knows_the_profile():
    fake = FakeTime()
    ec2 = ScriptedEC2(fail={("associate", "i-1"): [propagation_error(), propagation_error(), propagation_error()]})
    done, failures = apply(ec2, fake, A.plan(["i-1"], {}, "present", P1), propagation_timeout=120)
    assert failures == []
    assert [c for c in ec2.calls if c[0] == "associate"] == [("associate", "i-1")] * 4
    assert fake.sleeps == [0.5, 1.0, 2.0]          # backoff, and no real sleeping
    assert done[0][1]["IamInstanceProfile"]["Arn"] == P1


def test_propagation_retries_stop_at_propagation_timeout():
    fake = FakeTime()
    ec2 = ScriptedEC2(fail={("associate", "i-1"): [propagation_error() for dummy in range(100)]})
    done, failures = apply(ec2, fake, A.plan(["i-1"], {}, "present", P1), propagation_timeout=10)
    assert done == [] and A.is_propagation_error(failures[0][1])
    assert fake.now < 10 + 20  # the last sleep may start just before the deadline; no more after it
    assert 3 <= len(ec2.calls) < 10


def test_propagation_timeout_zero_does_not_retry_it():
    fake = FakeTime()
    ec2 = ScriptedEC2(fail={("associate", "i-1"): [propagation_error()]})
    _done, failures = apply(ec2, fake, A.plan(["i-1"], {}, "present", P1), propagation_timeout=0)
    assert len(failures) == 1 and ec2.calls == [("associate", "i-1")] and fake.sleeps == []


def test_other_invalid_parameter_errors_are_never_retried():
    fake = FakeTime()
    other = client_error("InvalidParameterValue", "Value (i-1) for parameter instanceId is invalid.")
    ec2 = ScriptedEC2(fail={("associate", "i-1"): [other]})
    _done, failures = apply(ec2, fake, A.plan(["i-1"], {}, "present", P1))
    assert failures[0][1] is other and len(ec2.calls) == 1 and fake.sleeps == []


def test_throttling_is_retried_by_the_clients_policy():
    fake = FakeTime()
    ec2 = ScriptedEC2(fail={("disassociate", "*"): [client_error("RequestLimitExceeded", "slow down")] * 2})
    current = {"i-1": cur(P1, "iip-assoc-a")}
    ec2.associations = {"i-1": assoc("i-1", P1, association_id="iip-assoc-a")}
    done, failures = apply(ec2, fake, A.plan(["i-1"], current, "absent"))
    assert failures == [] and len(done) == 1 and len(fake.sleeps) == 2


def test_a_profile_ec2_never_learns_is_tried_on_one_instance_only():
    """The canary: when the first instance cannot get the profile, no other instance is touched."""
    fake = FakeTime()
    ec2 = ScriptedEC2(fail={("associate", "*"): [propagation_error() for dummy in range(1000)]})
    ids = ["i-{0}".format(n) for n in range(20)]
    done, failures = apply(ec2, fake, A.plan(ids, {}, "present", P1), propagation_timeout=5)
    assert done == []
    assert set(c[1] for c in ec2.calls) == {"i-0"}
    assert A.is_propagation_error(failures[0][1]) and failures[0][0]["instance_id"] == "i-0"
    assert [s["instance_id"] for s, problem in failures[1:] if problem == "skipped"] == ids[1:]


def test_changes_run_in_parallel_but_never_above_max_concurrency():
    fake = FakeTime()
    gate = threading.Event()
    ec2 = ScriptedEC2(delay=lambda: gate.wait(0.01))
    ids = ["i-{0}".format(n) for n in range(60)]
    done, failures = apply(ec2, fake, A.plan(ids, {}, "present", P1), max_concurrency=4)
    assert failures == [] and len(done) == 60
    assert sorted(c[1] for c in ec2.calls) == sorted(ids)
    assert ec2.max_in_flight <= 4


def test_after_a_failure_no_new_instance_is_started():
    fake = FakeTime()
    ec2 = ScriptedEC2(fail={("associate", "i-1"): [client_error("UnauthorizedOperation", "no")]})
    ids = ["i-0", "i-1"] + ["i-{0}".format(n) for n in range(2, 40)]
    done, failures = apply(ec2, fake, A.plan(ids, {}, "present", P1), max_concurrency=1)
    assert [s["instance_id"] for s, _a in done] == ["i-0"]
    assert failures[0][0]["instance_id"] == "i-1" and error_code_of(failures[0][1]) == "UnauthorizedOperation"
    assert all(problem == "skipped" for _s, problem in failures[1:]) and len(failures) == 39


def error_code_of(exc):
    return exc.response["Error"]["Code"]


def test_associate_that_loses_a_race_to_the_same_profile_is_done():
    fake = FakeTime()
    ec2 = ScriptedEC2(fail={("associate", "i-1"): [client_error(
        "IncorrectState", "There is an existing association for instance i-1")]})
    ec2.associations = {"i-1": assoc("i-1", P1, association_id="iip-assoc-theirs")}
    done, failures = apply(ec2, fake, A.plan(["i-1"], {}, "present", P1))
    assert failures == [] and done[0][1]["AssociationId"] == "iip-assoc-theirs"
    assert [c[0] for c in ec2.calls] == ["associate", "describe"]


def test_associate_that_loses_a_race_to_another_profile_replaces_it():
    fake = FakeTime()
    ec2 = ScriptedEC2(fail={("associate", "i-1"): [client_error("IncorrectState", "existing association")]})
    ec2.associations = {"i-1": assoc("i-1", P_OTHER, association_id="iip-assoc-theirs")}
    done, failures = apply(ec2, fake, A.plan(["i-1"], {}, "present", P1))
    assert failures == []
    assert [c for c in ec2.calls if c[0] != "describe"] == [("associate", "i-1"), ("replace", "iip-assoc-theirs")]
    assert done[0][0]["action"] == "associated"  # what the plan said; the entry says what happened


def test_detach_of_an_association_already_gone_is_done():
    fake = FakeTime()
    ec2 = ScriptedEC2(fail={("disassociate", "iip-assoc-a"): [client_error(
        "InvalidAssociationID.NotFound", "An invalid association-id of 'iip-assoc-a' was given")]})
    done, failures = apply(ec2, fake, A.plan(["i-1"], {"i-1": cur(P1, "iip-assoc-a")}, "absent"))
    assert failures == [] and done == [(done[0][0], None)]


# ---- wait ----------------------------------------------------------------------------------


class SettlingEC2(ScriptedEC2):
    """Associations that report 'associating' for the first ``polls`` describes."""

    def __init__(self, associations, polls):
        super().__init__(associations)
        self.polls = dict(polls)

    def describe_iam_instance_profile_associations(self, **kwargs):
        answer = super().describe_iam_instance_profile_associations(**kwargs)
        items = []
        for a in answer["IamInstanceProfileAssociations"]:
            left = self.polls.get(a["InstanceId"], 0)
            if left > 0:
                self.polls[a["InstanceId"]] = left - 1
                a = dict(a, State="associating")
            items.append(a)
        return {"IamInstanceProfileAssociations": items}


def test_wait_polls_only_what_is_not_there_yet_and_never_really_sleeps():
    fake = FakeTime()
    ec2 = SettlingEC2({"i-1": assoc("i-1", P1), "i-2": assoc("i-2", P1)}, {"i-2": 2})
    final = AP.wait_for(ec2, {"i-1": AP.has_profile(P1), "i-2": AP.has_profile(P1)}, 300, timing(fake), "attached")
    assert final["i-2"][0]["State"] == "associated"
    assert ec2.calls == [("describe", ("i-1", "i-2")), ("describe", ("i-2",)), ("describe", ("i-2",))]
    assert fake.sleeps == [1.0, 2.0]


def test_wait_that_times_out_names_the_instances_and_their_state():
    fake = FakeTime()
    ec2 = SettlingEC2({"i-1": assoc("i-1", P1)}, {"i-1": 1000})
    with pytest.raises(KeylessError) as raised:
        AP.wait_for(ec2, {"i-1": AP.has_profile(P1)}, 30, timing(fake), "attached or detached as asked")
    assert raised.value.param == "wait_timeout"
    assert raised.value.message == (
        "wait_timeout: after 30 s, 1 instance(s) are still not attached or detached as asked: i-1 (associating). "
        "AWS may still finish; run the task again to check, or raise wait_timeout.")
    assert fake.now <= 30


def test_wait_for_a_detach_is_over_when_no_association_is_left():
    fake = FakeTime()
    ec2 = ScriptedEC2({})
    assert AP.wait_for(ec2, {"i-1": AP.has_none}, 10, timing(fake), "detached") == {"i-1": []}
    assert not AP.has_none([assoc("i-1", P1, "disassociating")])
    assert AP.has_none([assoc("i-1", P1, "disassociated")])


def test_detach_that_finds_another_profile_attached_meanwhile_leaves_it_when_a_profile_was_named():
    fake = FakeTime()
    gone = client_error("InvalidAssociationID.NotFound", "An invalid association-id of 'iip-assoc-a' was given")
    ec2 = ScriptedEC2({"i-1": assoc("i-1", P_OTHER, association_id="iip-assoc-b")},
                      fail={("disassociate", "iip-assoc-a"): [gone]})
    steps = A.plan(["i-1"], {"i-1": cur(P1, "iip-assoc-a")}, "absent", matches=lambda arn: arn == P1)
    applier = AP.Applier(retrying(ec2, fake), None, timing=timing(fake), matches=lambda arn: arn == P1)
    done, failures = applier.apply(steps)
    assert failures == [] and done[0][1] is None
    assert [c for c in ec2.calls if c[0] == "disassociate"] == [("disassociate", "iip-assoc-a")]
    assert "i-1" in ec2.associations  # the other run's profile stays


def test_detach_everything_that_finds_another_profile_attached_meanwhile_detaches_that_too():
    fake = FakeTime()
    gone = client_error("InvalidAssociationID.NotFound", "An invalid association-id of 'iip-assoc-a' was given")
    ec2 = ScriptedEC2({"i-1": assoc("i-1", P_OTHER, association_id="iip-assoc-b")},
                      fail={("disassociate", "iip-assoc-a"): [gone]})
    steps = A.plan(["i-1"], {"i-1": cur(P1, "iip-assoc-a")}, "absent")
    done, failures = AP.Applier(retrying(ec2, fake), None, timing=timing(fake)).apply(steps)
    assert failures == [] and len(done) == 1
    assert [c for c in ec2.calls if c[0] == "disassociate"] == [("disassociate", "iip-assoc-a"),
                                                                ("disassociate", "iip-assoc-b")]
    assert ec2.associations == {}


# ---- EC2's rules: stopped swaps, every propagation form, a profile deleted while waiting ---------


class FakeIAM:
    """GetInstanceProfile: each profile while ``exists`` (and it is not in ``gone``), then NoSuchEntity."""

    def __init__(self, exists=True, gone=()):
        self.exists = exists
        self.gone = set(gone)
        self.calls = 0

    def get_instance_profile(self, InstanceProfileName):
        self.calls += 1
        if not self.exists or InstanceProfileName in self.gone:
            raise ClientError({"Error": {"Code": "NoSuchEntity", "Message": "Instance Profile {0} cannot be found."
                                         .format(InstanceProfileName)}}, "GetInstanceProfile")
        return {"InstanceProfile": {"InstanceProfileName": InstanceProfileName, "Roles": [{"RoleName": "r"}],
                                    "Arn": "arn:aws:iam::123456789012:instance-profile/" + InstanceProfileName}}


def stopped_swap_steps(*ids):
    current = dict((i, cur(P_OTHER, "iip-assoc-" + i)) for i in ids)
    return A.plan(list(ids), current, "present", P1, instance_states=dict((i, "stopped") for i in ids))


def test_a_stopped_instance_is_swapped_by_detach_wait_attach_and_never_by_replace():
    fake = FakeTime()
    ec2 = ScriptedEC2(associations={"i-1": assoc("i-1", P_OTHER, association_id="iip-assoc-i-1")})
    done, failures = apply(ec2, fake, stopped_swap_steps("i-1"))
    assert failures == []
    assert [c for c in ec2.calls if c[0] != "describe"] == [("disassociate", "iip-assoc-i-1"), ("associate", "i-1")]
    assert ("describe", ("i-1",)) in ec2.calls  # waited until the old association was gone
    assert done[0][1]["IamInstanceProfile"]["Arn"] == P1 and done[0][0]["action"] == "replaced"


def test_a_stopped_swap_whose_attach_fails_puts_the_old_profile_back():
    fake = FakeTime()
    refused = client_error("UnauthorizedOperation", "You are not authorized to perform this operation.")
    ec2 = ScriptedEC2(associations={"i-1": assoc("i-1", P_OTHER, association_id="iip-assoc-i-1")},
                      fail={("associate", "i-1"): [refused]})
    done, failures = apply(ec2, fake, stopped_swap_steps("i-1"))
    assert done == [] and failures[0][1] is refused
    assert ec2.associations["i-1"]["IamInstanceProfile"]["Arn"] == P_OTHER  # attached again
    sentence = AP.failure_sentence(failures[0][0], refused, PROFILE, 120)  #
    assert "'batch' was attached to it again" in sentence and "UnauthorizedOperation" in sentence


def test_a_replace_that_finds_the_instance_stopped_meanwhile_swaps_it_the_stopped_way():
    fake = FakeTime()
    not_active = client_error("IncorrectState", "The association iip-assoc-i-1 is not the active association",
                              "ReplaceIamInstanceProfileAssociation")
    ec2 = ScriptedEC2(associations={"i-1": assoc("i-1", P_OTHER, association_id="iip-assoc-i-1")},
                      fail={("replace", "iip-assoc-i-1"): [not_active]})
    ec2.states = {"i-1": "stopped"}
    steps = A.plan(["i-1"], {"i-1": cur(P_OTHER, "iip-assoc-i-1")}, "present", P1)
    done, failures = apply(ec2, fake, steps)
    assert failures == []
    assert [c[0] for c in ec2.calls if c[0] != "describe"] == ["replace", "disassociate", "associate"]


@pytest.mark.parametrize("error", [
    client_error("InvalidParameterValue", 'IAM Instance Profile "{0}" has no associated IAM Roles'.format(P1)),
    client_error("IncorrectState", "ResultDetail: { Code=InstanceIdentityProfileNotFound, Message="
                                   "InstanceIdentityProfile not found for the key: 123456789012/web }"),
    propagation_error(),
])
def test_every_propagation_form_is_retried_as_not_yet(error):
    fake = FakeTime()
    ec2 = ScriptedEC2(fail={("associate", "i-1"): [error, error]})
    iam = FakeIAM()
    done, failures = apply(ec2, fake, A.plan(["i-1"], {}, "present", P1), iam=iam)
    assert failures == [] and len(done) == 1
    assert [c for c in ec2.calls if c[0] == "associate"] == [("associate", "i-1")] * 3
    assert iam.calls == 2  # IAM asked between retries


def test_a_profile_deleted_while_waiting_for_ec2_ends_the_wait_at_once():
    fake = FakeTime()
    ec2 = ScriptedEC2(fail={("associate", "*"): [propagation_error() for dummy in range(1000)]})
    iam = FakeIAM()
    calls = {"n": 0}
    real_associate = ec2.associate_iam_instance_profile

    def associate_then_delete(**kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            iam.exists = False  # somebody deletes the profile while the run waits
        return real_associate(**kwargs)

    ec2.associate_iam_instance_profile = associate_then_delete
    done, failures = apply(ec2, fake, A.plan(["i-1", "i-2"], {}, "present", P1), iam=iam, propagation_timeout=120)
    assert done == [] and isinstance(failures[0][1], AP.ProfileGone)
    assert fake.now < 10  # not the whole propagation_timeout
    sentence = AP.failure_sentence(failures[0][0], failures[0][1], PROFILE, 120)  #
    assert sentence.startswith("instance profile 'web' no longer exists in IAM: it was deleted after this run "
                               "checked it, while the run waited ")
    assert "InvalidParameterValue" in sentence


def test_a_stopped_swap_to_a_deleted_profile_puts_the_old_one_back_asking_iam_about_the_old_one():
    """The restore names the old profile: whether it still exists is what IAM is asked then."""
    fake = FakeTime()
    ec2 = ScriptedEC2(associations={"i-1": assoc("i-1", P_OTHER, association_id="iip-assoc-i-1")},
                      fail={("associate", "i-1"): [propagation_error(), propagation_error("batch")]})
    iam = FakeIAM(gone={"web"})
    done, failures = apply(ec2, fake, stopped_swap_steps("i-1"), iam=iam)
    assert done == [] and isinstance(failures[0][1], AP.ProfileGone)
    assert failures[0][1].keyless_restored == P_OTHER
    assert ec2.associations["i-1"]["IamInstanceProfile"]["Arn"] == P_OTHER
