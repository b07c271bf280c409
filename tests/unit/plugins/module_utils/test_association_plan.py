"""association_plan.py, pure: the plan of each instance, the calls it takes, its result entry, and
which EC2 answers mean "EC2 does not know the profile yet"."""

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import association_plan as A
from association_support import P1, P2, P_OTHER, client_error, cur, propagation_error


# ---- plan -----------------------------------------------------------------------------------


def test_plan_present_associates_replaces_and_leaves_alone():
    current = {"i-1": None, "i-2": cur(P1, "iip-assoc-2"), "i-3": cur(P_OTHER, "iip-assoc-3")}
    steps = A.plan(["i-1", "i-2", "i-3"], current, "present", P1)
    assert [(s["instance_id"], s["action"]) for s in steps] == [
        ("i-1", "associated"), ("i-2", "unchanged"), ("i-3", "replaced")]
    assert steps[0] == {"instance_id": "i-1", "instance_state": "running", "action": "associated",
                        "calls": ["AssociateIamInstanceProfile"], "association_id": None,
                        "before": None, "after": P1}
    assert steps[2] == {"instance_id": "i-3", "instance_state": "running", "action": "replaced",
                        "calls": ["ReplaceIamInstanceProfileAssociation"], "association_id": "iip-assoc-3",
                        "before": P_OTHER, "after": P1}
    assert steps[1]["before"] == steps[1]["after"] == P1
    assert steps[1]["calls"] == []


def test_plan_swaps_a_stopped_instance_by_detach_then_attach():
    """EC2 replaces associations of running instances only; on a stopped one the swap is two calls."""
    current = {"i-1": cur(P_OTHER, "iip-assoc-1"), "i-2": cur(P_OTHER, "iip-assoc-2"), "i-3": None}
    steps = A.plan(["i-1", "i-2", "i-3"], current, "present", P1,
                   instance_states={"i-1": "running", "i-2": "stopped", "i-3": "stopped"})
    assert [(s["action"], s["calls"]) for s in steps] == [
        ("replaced", ["ReplaceIamInstanceProfileAssociation"]),
        ("replaced", ["DisassociateIamInstanceProfile", "AssociateIamInstanceProfile"]),
        ("associated", ["AssociateIamInstanceProfile"])]


def test_plan_absent_detaches_everything_without_a_profile_named():
    current = {"i-1": None, "i-2": cur(P1, "iip-assoc-2"), "i-3": cur(P_OTHER, "iip-assoc-3")}
    steps = A.plan(["i-1", "i-2", "i-3"], current, "absent")
    assert [s["action"] for s in steps] == ["unchanged", "disassociated", "disassociated"]
    assert steps[1] == {"instance_id": "i-2", "instance_state": "running", "action": "disassociated",
                        "calls": ["DisassociateIamInstanceProfile"], "association_id": "iip-assoc-2",
                        "before": P1, "after": None}


def test_plan_absent_with_a_profile_only_detaches_that_profile():
    current = {"i-2": cur(P1, "iip-assoc-2"), "i-3": cur(P_OTHER, "iip-assoc-3")}
    steps = A.plan(["i-3", "i-2"], current, "absent", matches=lambda arn: arn == P1)
    assert [(s["instance_id"], s["action"]) for s in steps] == [("i-3", "unchanged"), ("i-2", "disassociated")]
    assert steps[0]["after"] == P_OTHER  # left as it was


def test_plan_keeps_the_order_given_and_needs_a_profile_to_attach():
    ids = ["i-{0}".format(n) for n in (5, 1, 4, 2, 3)]
    assert [s["instance_id"] for s in A.plan(ids, {}, "present", P1)] == ids
    with pytest.raises(ValueError):
        A.plan(ids, {}, "present")


def test_plan_of_nothing_is_nothing():
    assert A.plan([], {}, "present", P1) == []


def test_summary_counts_every_action_even_zero():
    entries = [{"action": "associated"}, {"action": "associated"}, {"action": "unchanged"}]
    assert A.summarize(entries) == {"associated": 2, "replaced": 0, "disassociated": 0, "unchanged": 1}


def test_check_mode_entries_predict_actions_arns_and_final_states():
    steps = A.plan(["i-1", "i-2", "i-3"], {"i-2": cur(P1, "iip-assoc-2"), "i-3": cur(P2, "iip-assoc-3")},
                   "present", P1)
    entries = [A.predicted_entry(s, "associated" if s["before"] else None, wait=True) for s in steps]
    assert entries[0] == {"instance_id": "i-1", "action": "associated", "calls": ["AssociateIamInstanceProfile"],
                          "association_id": None, "instance_profile_arn": P1, "previous_instance_profile_arn": None,
                          "state": "associated"}
    assert entries[1]["association_id"] == "iip-assoc-2" and entries[1]["action"] == "unchanged"
    assert entries[2]["association_id"] is None and entries[2]["previous_instance_profile_arn"] == P2
    detach = A.plan(["i-2"], {"i-2": cur(P1, "iip-assoc-2")}, "absent")[0]
    assert A.predicted_entry(detach, "associated", wait=False)["state"] == "disassociating"
    assert A.predicted_entry(detach, "associated", wait=True)["association_id"] == "iip-assoc-2"


def test_propagation_error_is_exactly_the_invalid_profile_message():
    assert A.is_propagation_error(propagation_error())
    assert A.is_propagation_error(client_error(
        "InvalidParameterValue", "Value (arn:aws:iam::1:instance-profile/x) for parameter iamInstanceProfile.arn "
                                 "is invalid. Invalid IAM Instance Profile ARN"))
    assert not A.is_propagation_error(client_error("InvalidParameterValue", "Value (x) for parameter instanceId "
                                                                            "is invalid."))
    assert A.is_propagation_error(client_error(
        "InvalidParameterValue", 'IAM Instance Profile "arn:aws:iam::1:instance-profile/x" has no associated IAM Roles'))
    assert A.is_propagation_error(client_error(
        "IncorrectState", "ResultDetail: { Code=InstanceIdentityProfileNotFound, Message=InstanceIdentityProfile not "
                          "found for the key: 123456789012/x }"))
    assert not A.is_propagation_error(client_error("IncorrectState", "There is an existing association for instance "
                                                                     "i-1"))
    assert not A.is_propagation_error(client_error("NoSuchEntity", "Invalid IAM Instance Profile name"))
    assert not A.is_propagation_error(ValueError("Invalid IAM Instance Profile name"))
