"""The transitional states of tests/sandbox/moto_fixes.py, through boto3: each transition with its
exact states and codes, the answers of the state-changing calls, the refusals, the association
states, the settings (Python and control API) and the reset.

A transition under test is given a long delay (LONG) to be seen in flight, whatever the speed of
the machine, a short one (SHORT) to be seen settled after SETTLE seconds, or, to be seen both in
flight and settled, MEDIUM on a clock the test moves itself (``moved``: MEDIUM_SETTLE seconds
later by that clock it has settled, however slow the machine is). rules.py's
propagation window is closed here (``propagation_seconds`` 0): the profiles are not the subject.
"""

import json
import time

import botocore.config
import botocore.exceptions
import pytest
from moved_clock import MovedClock

from sandbox import moto_fixes
from sandbox.moto_fixes import DEFAULT_SECONDS
from sandbox.moto_fixes import TransitionsError

AMI = "ami-1e749f67"
LONG = 60
SHORT = 0.05
SETTLE = 0.15
MEDIUM = 0.5
MEDIUM_SETTLE = 0.6
NO_RETRIES = botocore.config.Config(retries={"total_max_attempts": 1})
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
ALL_SHORT = dict((name, SHORT) for name in DEFAULT_SECONDS)


def pass_time(sandbox, seconds):
    """Let ``seconds`` pass for the transitions: on the moved clock when a test moves it, else really."""
    clock = sandbox.transitions.clock
    if isinstance(clock, MovedClock):
        clock.advance(seconds)
    else:
        time.sleep(seconds)


@pytest.fixture
def moved(sandbox):
    """The transitions timed by a clock the test moves (restored afterwards)."""
    clock = MovedClock()
    sandbox.transitions.clock = clock
    yield clock
    sandbox.transitions.clock = time.monotonic


@pytest.fixture(autouse=True)
def no_propagation_window(sandbox):
    with sandbox.rules.configured({"propagation_seconds": 0}):
        yield


@pytest.fixture
def ec2(sandbox):
    return sandbox.client("ec2", config=NO_RETRIES)


def state(ec2, instance_id):
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    return instance["State"]["Name"], instance["State"]["Code"]


def launch(ec2, count=1, **kwargs):
    return [i["InstanceId"] for i in ec2.run_instances(ImageId=AMI, MinCount=count, MaxCount=count,
                                                       **kwargs)["Instances"]]


def settled(sandbox, ec2, count=1, **kwargs):
    """Instances that went through pending and are running (short delays)."""
    with sandbox.transitions.configured(pending_seconds=SHORT):
        ids = launch(ec2, count, **kwargs)
    pass_time(sandbox, SETTLE)
    assert set(state(ec2, i) for i in ids) == {("running", 16)}
    return ids


def change(answer, key):
    entry = answer[key][0]
    return (entry["PreviousState"]["Name"], entry["PreviousState"]["Code"],
            entry["CurrentState"]["Name"], entry["CurrentState"]["Code"])


def refused(call, **kwargs):
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(**kwargs)
    return raised.value.response["Error"]


def make_profile(sandbox, name):
    iam = sandbox.client("iam")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)


def associations(ec2, **kwargs):
    return [(a["InstanceId"], a["State"]) for a in
            ec2.describe_iam_instance_profile_associations(**kwargs)["IamInstanceProfileAssociations"]]


def moto_instance(instance_id):
    from moto.ec2.models import ec2_backends

    return ec2_backends["123456789012"]["us-east-1"].get_instance(instance_id)


# ---- instances --------------------------------------------------------------------------------


def test_a_launch_is_pending_then_running(sandbox, ec2):
    sandbox.transitions.configure(pending_seconds=LONG)
    answer = ec2.run_instances(ImageId=AMI, MinCount=2, MaxCount=2)
    assert [(i["State"]["Name"], i["State"]["Code"]) for i in answer["Instances"]] == [("pending", 0)] * 2
    instance_id = answer["Instances"][0]["InstanceId"]
    assert state(ec2, instance_id) == ("pending", 0)
    assert state(ec2, instance_id) == ("pending", 0)  # reads do not hurry it
    sandbox.transitions.configure(pending_seconds=SHORT)
    instance_id = launch(ec2)[0]
    pass_time(sandbox, SETTLE)
    assert state(ec2, instance_id) == ("running", 16)


def test_another_module_reading_moto_s_backend_sees_the_settled_state(sandbox, ec2, moved):
    sandbox.transitions.configure(pending_seconds=MEDIUM)
    instance_id = launch(ec2)[0]
    assert moto_instance(instance_id)._state.name == "pending"  # pylint: disable=protected-access
    pass_time(sandbox, MEDIUM_SETTLE)
    assert moto_instance(instance_id)._state.name == "running"  # pylint: disable=protected-access  # no API read


def test_a_state_filter_filters_on_the_settled_state(sandbox, ec2, moved):
    sandbox.transitions.configure(pending_seconds=MEDIUM)
    instance_id = launch(ec2)[0]

    def running():
        return [i["InstanceId"] for r in ec2.describe_instances(
            Filters=[{"Name": "instance-state-name", "Values": ["running"]}])["Reservations"] for i in r["Instances"]]

    assert running() == []
    pass_time(sandbox, MEDIUM_SETTLE)
    assert running() == [instance_id]


def test_stop_is_stopping_then_stopped(sandbox, ec2):
    instance_id = settled(sandbox, ec2)[0]
    sandbox.transitions.configure(stopping_seconds=LONG)
    answer = ec2.stop_instances(InstanceIds=[instance_id])
    assert change(answer, "StoppingInstances") == ("running", 16, "stopping", 64)
    assert state(ec2, instance_id) == ("stopping", 64)
    again = ec2.stop_instances(InstanceIds=[instance_id])  # changes nothing, says so
    assert change(again, "StoppingInstances") == ("stopping", 64, "stopping", 64)

    other = settled(sandbox, ec2)[0]
    sandbox.transitions.configure(stopping_seconds=SHORT)
    ec2.stop_instances(InstanceIds=[other])
    pass_time(sandbox, SETTLE)
    assert state(ec2, other) == ("stopped", 80)
    assert change(ec2.stop_instances(InstanceIds=[other]), "StoppingInstances") == ("stopped", 80, "stopped", 80)


def test_start_is_pending_then_running(sandbox, ec2):
    instance_id = settled(sandbox, ec2)[0]
    with sandbox.transitions.configured(stopping_seconds=SHORT):
        ec2.stop_instances(InstanceIds=[instance_id])
    pass_time(sandbox, SETTLE)
    sandbox.transitions.configure(pending_seconds=LONG)
    answer = ec2.start_instances(InstanceIds=[instance_id])
    assert change(answer, "StartingInstances") == ("stopped", 80, "pending", 0)
    assert state(ec2, instance_id) == ("pending", 0)
    assert change(ec2.start_instances(InstanceIds=[instance_id]), "StartingInstances") == (
        "pending", 0, "pending", 0)

    running = settled(sandbox, ec2)[0]
    assert change(ec2.start_instances(InstanceIds=[running]), "StartingInstances") == ("running", 16, "running", 16)
    with sandbox.transitions.configured(stopping_seconds=SHORT, pending_seconds=SHORT):
        ec2.stop_instances(InstanceIds=[running])
        pass_time(sandbox, SETTLE)
        ec2.start_instances(InstanceIds=[running])
    pass_time(sandbox, SETTLE)
    assert state(ec2, running) == ("running", 16)


def test_terminate_is_shutting_down_then_terminated_and_idempotent(sandbox, ec2):
    instance_id = settled(sandbox, ec2)[0]
    sandbox.transitions.configure(shutting_down_seconds=LONG)
    answer = ec2.terminate_instances(InstanceIds=[instance_id])
    assert change(answer, "TerminatingInstances") == ("running", 16, "shutting-down", 32)
    assert state(ec2, instance_id) == ("shutting-down", 32)
    assert change(ec2.terminate_instances(InstanceIds=[instance_id]), "TerminatingInstances") == (
        "shutting-down", 32, "shutting-down", 32)

    other = settled(sandbox, ec2)[0]
    sandbox.transitions.configure(shutting_down_seconds=SHORT)
    ec2.terminate_instances(InstanceIds=[other])
    pass_time(sandbox, SETTLE)
    assert state(ec2, other) == ("terminated", 48)
    assert change(ec2.terminate_instances(InstanceIds=[other]), "TerminatingInstances") == (
        "terminated", 48, "terminated", 48)


def test_a_stopping_or_terminated_instance_cannot_be_started(sandbox, ec2):
    stopping, terminated = settled(sandbox, ec2, 2)
    sandbox.transitions.configure(stopping_seconds=LONG, shutting_down_seconds=SHORT)
    ec2.stop_instances(InstanceIds=[stopping])
    ec2.terminate_instances(InstanceIds=[terminated])
    pass_time(sandbox, SETTLE)
    for instance_id, now in ((stopping, ("stopping", 64)), (terminated, ("terminated", 48))):
        assert refused(ec2.start_instances, InstanceIds=[instance_id]) == {
            "Code": "IncorrectInstanceState",
            "Message": "The instance '{0}' is not in a state from which it can be started.".format(instance_id)}
        assert state(ec2, instance_id) == now


def test_a_refused_instance_leaves_the_others_of_the_call_alone(sandbox, ec2):
    stopped, stopping = settled(sandbox, ec2, 2)
    with sandbox.transitions.configured(stopping_seconds=SHORT):
        ec2.stop_instances(InstanceIds=[stopped])
    pass_time(sandbox, SETTLE)
    sandbox.transitions.configure(stopping_seconds=LONG)
    ec2.stop_instances(InstanceIds=[stopping])
    error = refused(ec2.start_instances, InstanceIds=[stopped, stopping])
    assert error["Code"] == "IncorrectInstanceState" and stopping in error["Message"]
    assert state(ec2, stopped) == ("stopped", 80)


def test_an_instance_that_never_ran_cannot_be_stopped(sandbox, ec2):
    sandbox.transitions.configure(pending_seconds=LONG)
    instance_id = launch(ec2)[0]
    assert refused(ec2.stop_instances, InstanceIds=[instance_id]) == {
        "Code": "IncorrectInstanceState",
        "Message": "Instance '{0}' cannot be stopped as it has never reached the 'running' state.".format(instance_id)}
    assert state(ec2, instance_id) == ("pending", 0)


def test_a_restarting_instance_can_be_stopped(sandbox, ec2):
    instance_id = settled(sandbox, ec2)[0]
    with sandbox.transitions.configured(stopping_seconds=SHORT):
        ec2.stop_instances(InstanceIds=[instance_id])
    pass_time(sandbox, SETTLE)
    sandbox.transitions.configure(pending_seconds=LONG, stopping_seconds=LONG)
    ec2.start_instances(InstanceIds=[instance_id])
    assert change(ec2.stop_instances(InstanceIds=[instance_id]), "StoppingInstances") == (
        "pending", 0, "stopping", 64)


def test_a_terminated_instance_cannot_be_stopped(sandbox, ec2):
    instance_id = settled(sandbox, ec2)[0]
    sandbox.transitions.configure(shutting_down_seconds=LONG)
    ec2.terminate_instances(InstanceIds=[instance_id])
    assert refused(ec2.stop_instances, InstanceIds=[instance_id]) == {
        "Code": "IncorrectInstanceState",
        "Message": "The instance '{0}' is not in a state from which it can be stopped.".format(instance_id)}
    assert state(ec2, instance_id) == ("shutting-down", 32)


# ---- associations -----------------------------------------------------------------------------


def test_an_association_is_associating_then_associated(sandbox, ec2, moved):
    make_profile(sandbox, "web")
    slow, fast = settled(sandbox, ec2, 2)
    sandbox.transitions.configure(associating_seconds=LONG)
    answer = ec2.associate_iam_instance_profile(InstanceId=slow, IamInstanceProfile={"Name": "web"})
    assert answer["IamInstanceProfileAssociation"]["State"] == "associating"
    assert associations(ec2) == [(slow, "associating")]
    sandbox.transitions.configure(associating_seconds=MEDIUM)
    ec2.associate_iam_instance_profile(InstanceId=fast, IamInstanceProfile={"Name": "web"})
    assert associations(ec2, Filters=[{"Name": "state", "Values": ["associated"]}]) == []
    pass_time(sandbox, MEDIUM_SETTLE)
    assert associations(ec2, Filters=[{"Name": "state", "Values": ["associated"]}]) == [(fast, "associated")]
    assert sorted(associations(ec2)) == sorted([(slow, "associating"), (fast, "associated")])


def test_a_replaced_association_is_new_and_associating(sandbox, ec2):
    make_profile(sandbox, "web")
    make_profile(sandbox, "db")
    instance_id = settled(sandbox, ec2)[0]
    with sandbox.transitions.configured(associating_seconds=SHORT):
        first = ec2.associate_iam_instance_profile(InstanceId=instance_id, IamInstanceProfile={"Name": "web"})
    pass_time(sandbox, SETTLE)
    sandbox.transitions.configure(associating_seconds=LONG)
    answer = ec2.replace_iam_instance_profile_association(
        AssociationId=first["IamInstanceProfileAssociation"]["AssociationId"], IamInstanceProfile={"Name": "db"})
    association = answer["IamInstanceProfileAssociation"]
    assert association["State"] == "associating"
    assert association["AssociationId"] != first["IamInstanceProfileAssociation"]["AssociationId"]
    assert association["IamInstanceProfile"]["Arn"].endswith(":instance-profile/db")
    assert associations(ec2) == [(instance_id, "associating")]


def test_a_disassociation_is_disassociating_then_gone(sandbox, ec2, moved):
    make_profile(sandbox, "web")
    instance_id = settled(sandbox, ec2)[0]
    sandbox.transitions.configure(associating_seconds=0, disassociating_seconds=MEDIUM)
    association_id = ec2.associate_iam_instance_profile(
        InstanceId=instance_id, IamInstanceProfile={"Name": "web"})["IamInstanceProfileAssociation"]["AssociationId"]
    answer = ec2.disassociate_iam_instance_profile(AssociationId=association_id)
    assert answer["IamInstanceProfileAssociation"]["State"] == "disassociating"
    assert associations(ec2) == [(instance_id, "disassociating")]
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert instance["IamInstanceProfile"]["Id"] == association_id
    pass_time(sandbox, MEDIUM_SETTLE)
    assert associations(ec2) == []
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    assert "IamInstanceProfile" not in instance
    assert refused(ec2.disassociate_iam_instance_profile, AssociationId=association_id)["Code"] == (
        "InvalidAssociationID.NotFound")
    ec2.associate_iam_instance_profile(InstanceId=instance_id, IamInstanceProfile={"Name": "web"})


def test_while_disassociating_the_instance_takes_no_new_association(sandbox, ec2):
    make_profile(sandbox, "web")
    make_profile(sandbox, "db")
    instance_id = settled(sandbox, ec2)[0]
    sandbox.transitions.configure(associating_seconds=0, disassociating_seconds=LONG)
    association_id = ec2.associate_iam_instance_profile(
        InstanceId=instance_id, IamInstanceProfile={"Name": "web"})["IamInstanceProfileAssociation"]["AssociationId"]
    ec2.disassociate_iam_instance_profile(AssociationId=association_id)
    assert refused(ec2.associate_iam_instance_profile, InstanceId=instance_id, IamInstanceProfile={"Name": "db"}) == {
        "Code": "IncorrectState", "Message": "There is an existing association for instance {0}".format(instance_id)}
    assert refused(ec2.replace_iam_instance_profile_association, AssociationId=association_id,
                   IamInstanceProfile={"Name": "db"}) == {
        "Code": "IncorrectState", "Message": "The association {0} is not the active association".format(association_id)}
    again = ec2.disassociate_iam_instance_profile(AssociationId=association_id)
    assert again["IamInstanceProfileAssociation"]["State"] == "disassociating"
    assert associations(ec2) == [(instance_id, "disassociating")]


def test_associating_reads_count_instead_of_the_time(sandbox, ec2):
    make_profile(sandbox, "web")
    instance_id = settled(sandbox, ec2)[0]
    sandbox.transitions.configure(associating_seconds=LONG)
    sandbox.faults.configure({"associating_reads": 1})
    answer = ec2.associate_iam_instance_profile(InstanceId=instance_id, IamInstanceProfile={"Name": "web"})
    assert answer["IamInstanceProfileAssociation"]["State"] == "associating"
    assert [associations(ec2)[0][1] for _read in range(3)] == ["associating", "associated", "associated"]


def test_a_launch_with_a_profile_is_associated_while_the_instance_is_pending(sandbox, ec2):
    make_profile(sandbox, "web")
    sandbox.transitions.configure(pending_seconds=LONG, associating_seconds=LONG)
    ids = launch(ec2, 2, IamInstanceProfile={"Name": "web"})
    assert sorted(associations(ec2)) == sorted((i, "associated") for i in ids)
    assert set(state(ec2, i) for i in ids) == {("pending", 0)}


def test_terminating_an_instance_disassociates_its_profile(sandbox, ec2, moved):
    make_profile(sandbox, "web")
    instance_id = settled(sandbox, ec2, IamInstanceProfile={"Name": "web"})[0]
    sandbox.transitions.configure(shutting_down_seconds=SHORT, disassociating_seconds=MEDIUM)
    ec2.terminate_instances(InstanceIds=[instance_id])
    assert associations(ec2) == [(instance_id, "disassociating")]
    pass_time(sandbox, MEDIUM_SETTLE)
    assert associations(ec2) == [] and state(ec2, instance_id) == ("terminated", 48)


# ---- settings -----------------------------------------------------------------------------------


def test_instant_is_plain_moto_and_gives_the_settings_back(sandbox, ec2):
    """Delays 0: every state has settled by the next read; the answers are still AWS's."""
    make_profile(sandbox, "web")
    sandbox.transitions.configure(pending_seconds=LONG)
    with sandbox.transitions.instant():
        assert set(sandbox.transitions.settings().values()) == {0}
        launched = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]
        assert launched["State"] == {"Code": 0, "Name": "pending"}
        instance_id = launched["InstanceId"]
        assert state(ec2, instance_id) == ("running", 16)
        answer = ec2.associate_iam_instance_profile(InstanceId=instance_id, IamInstanceProfile={"Name": "web"})
        assert answer["IamInstanceProfileAssociation"]["State"] == "associating"
        assert associations(ec2) == [(instance_id, "associated")]
        assert change(ec2.stop_instances(InstanceIds=[instance_id]), "StoppingInstances") == (
            "running", 16, "stopping", 64)
        assert state(ec2, instance_id) == ("stopped", 80)
        association_id = answer["IamInstanceProfileAssociation"]["AssociationId"]
        gone = ec2.disassociate_iam_instance_profile(AssociationId=association_id)
        assert gone["IamInstanceProfileAssociation"]["State"] == "disassociating"
        assert associations(ec2) == []
        assert change(ec2.start_instances(InstanceIds=[instance_id]), "StartingInstances") == (
            "stopped", 80, "pending", 0)
        assert state(ec2, instance_id) == ("running", 16)
    assert sandbox.transitions.settings() == dict(DEFAULT_SECONDS, pending_seconds=LONG)


def test_configure_checks_what_it_is_given(sandbox):
    for settings, says in (({"pending": 1}, "unknown setting(s) pending; known: associating_seconds"),
                           ({"pending_seconds": -1}, "pending_seconds: give a number of seconds from 0 to 3600"),
                           ({"stopping_seconds": True}, "stopping_seconds: give a number of seconds"),
                           ({"stopping_seconds": "1"}, "stopping_seconds: give a number of seconds")):
        with pytest.raises(TransitionsError, match=says.replace("(", r"\(").replace(")", r"\)")):
            sandbox.transitions.configure(settings)
    assert sandbox.transitions.settings() == DEFAULT_SECONDS
    assert moto_fixes.configure(pending_seconds=2) == dict(DEFAULT_SECONDS, pending_seconds=2.0)
    assert moto_fixes.TRANSITIONS is sandbox.transitions


def test_the_defaults_are_short_and_on(sandbox, moved):
    assert DEFAULT_SECONDS == {"pending_seconds": 0.2, "stopping_seconds": 0.2, "shutting_down_seconds": 0.2,
                               "associating_seconds": 0.2, "disassociating_seconds": 0.2}
    assert sandbox.transitions.settings() == DEFAULT_SECONDS
    ec2 = sandbox.client("ec2")
    instance_id = launch(ec2)[0]
    assert state(ec2, instance_id) == ("pending", 0)  # however slow the machine: the clock moves when told
    moved.advance(0.3)
    assert state(ec2, instance_id) == ("running", 16)


def control(sandbox, method, body=None):
    return sandbox.control(method, "/_sandbox/transitions", body)


def test_the_control_api_reads_changes_and_restores(sandbox, ec2):
    assert control(sandbox, "GET") == (200, DEFAULT_SECONDS)
    assert control(sandbox, "POST", ALL_SHORT) == (200, ALL_SHORT)
    assert control(sandbox, "POST", {"pending_seconds": LONG}) == (200, dict(ALL_SHORT, pending_seconds=LONG))
    assert state(ec2, launch(ec2)[0]) == ("pending", 0)
    status, answer = control(sandbox, "POST", {"pending_seconds": "soon"})
    assert status == 400 and "pending_seconds: give a number of seconds" in answer["error"]
    status, answer = control(sandbox, "POST", {"colour": 1})
    assert status == 400 and "unknown setting(s) colour" in answer["error"]
    assert control(sandbox, "GET") == (200, dict(ALL_SHORT, pending_seconds=LONG))  # a refused POST changes nothing
    assert control(sandbox, "PUT", {})[0] == 405
    assert control(sandbox, "DELETE") == (200, DEFAULT_SECONDS)
    assert sandbox.transitions.settings() == DEFAULT_SECONDS


def test_a_sandbox_reset_restores_the_defaults(sandbox):
    sandbox.transitions.configure(ALL_SHORT)
    sandbox.reset()
    assert sandbox.transitions.settings() == DEFAULT_SECONDS


def test_the_fixes_are_re_exported_where_the_tests_import_them():
    from sandbox import faults

    for name in ("aws_fidelity", "associating_reads", "set_associating_reads", "forget_client_tokens"):
        assert getattr(faults, name) is getattr(moto_fixes, name)
