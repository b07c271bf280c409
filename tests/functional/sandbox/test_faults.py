"""The sandbox's fault-injection proxy (tests/sandbox/faults.py): what each kind of fault looks
like to botocore, that runs are reproducible from the seed, scripted faults and their presets (one
per propagation form), the control API, the request log, and the moto fixes the reliability tests
lean on (moto_fixes.py; their transitional states are tested in test_moto_fixes.py).

The propagation faults are the subject here, not rules.py's propagation window: it is closed for
every test of this module (``propagation_seconds`` 0). Instances are used once ``running``, as
EC2 wants them for an association (rules.py).
"""

import json
import time

import botocore.config
import botocore.exceptions
import pytest

from ansible_collections.keyless.aws.plugins.module_utils.common import RetryingClient
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryPolicy
from ansible_collections.keyless.aws.plugins.module_utils.common import is_retryable
from sandbox.faults import ConfigError
from sandbox.faults import ScriptedFault
from sandbox.faults import propagation_fault

NO_RETRIES = botocore.config.Config(retries={"total_max_attempts": 1})
AMI = "ami-1e749f67"


@pytest.fixture(autouse=True)
def no_propagation_window(sandbox):
    with sandbox.rules.configured({"propagation_seconds": 0}):
        yield


def launch(sandbox, count=1, **kwargs):
    """``count`` instances, once they are ``running`` (they are ``pending`` for a moment); their ids."""
    ec2 = sandbox.client("ec2")
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=AMI, MinCount=count, MaxCount=count,
                                                      **kwargs)["Instances"]]
    deadline = time.monotonic() + 10
    while True:
        states = set(i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
                     for i in r["Instances"])
        if states == {"running"}:
            return ids
        assert time.monotonic() < deadline, "instances still {0}".format(states)
        time.sleep(0.02)


def bare(sandbox, service):
    """A client that never retries on its own: every fault reaches the test."""
    return sandbox.client(service, config=NO_RETRIES)


def failure(call, *args, **kwargs):
    with pytest.raises(Exception) as raised:
        call(*args, **kwargs)
    return raised.value


def always(kind, **rule):
    return {"rules": [dict({"rate": 1.0, "kinds": [kind]}, **rule)]}


# ---- each kind, as each protocol says it ----------------------------------------------------


@pytest.mark.parametrize("kind, status", [
    ("Throttling", 400), ("RequestLimitExceeded", 503), ("ServiceUnavailable", 503), ("InternalError", 500)])
@pytest.mark.parametrize("service, call", [
    ("iam", lambda c: c.list_instance_profiles()),
    ("sts", lambda c: c.get_caller_identity()),
    ("ec2", lambda c: c.describe_instances()),
])
def test_error_kinds_reach_botocore_with_their_code_and_status(sandbox, kind, status, service, call):
    sandbox.faults.configure(always(kind))
    error = failure(call, bare(sandbox, service))
    assert isinstance(error, botocore.exceptions.ClientError)
    assert error.response["Error"]["Code"] == kind
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error.response["Error"]["Message"]
    assert is_retryable(error)
    if service in ("iam", "sts"):  # query protocol: <ErrorResponse><Error><Type>
        assert error.response["Error"]["Type"] == ("Sender" if status < 500 else "Receiver")
    else:  # ec2 protocol: <Response><Errors><Error>, no Type
        assert "Type" not in error.response["Error"]


def test_throttle_is_each_service_s_own_throttling(sandbox):
    sandbox.faults.configure(always("throttle"))
    assert failure(bare(sandbox, "ec2").describe_instances).response["Error"]["Code"] == "RequestLimitExceeded"
    assert failure(bare(sandbox, "iam").list_roles).response["Error"]["Code"] == "Throttling"


def test_a_reset_is_a_closed_connection_and_moto_never_saw_the_request(sandbox):
    sandbox.faults.configure(always("reset", services="iam"))
    error = failure(bare(sandbox, "iam").create_instance_profile, InstanceProfileName="never")
    assert isinstance(error, botocore.exceptions.ConnectionClosedError)
    assert is_retryable(error)
    sandbox.faults.clear()
    assert bare(sandbox, "iam").list_instance_profiles()["InstanceProfiles"] == []
    record = sandbox.calls("iam", "CreateInstanceProfile")[0]
    assert (record["status"], record["injected"]) == (0, "reset")


def test_a_lost_answer_is_a_closed_connection_after_moto_did_the_work(sandbox):
    sandbox.faults.configure(always("reset_after", services="iam", actions="CreateInstanceProfile"))
    error = failure(bare(sandbox, "iam").create_instance_profile, InstanceProfileName="done")
    assert isinstance(error, botocore.exceptions.ConnectionClosedError)
    names = [p["InstanceProfileName"] for p in bare(sandbox, "iam").list_instance_profiles()["InstanceProfiles"]]
    assert names == ["done"]
    record = sandbox.calls("iam", "CreateInstanceProfile")[0]
    assert (record["status"], record["injected"]) == (200, "reset_after")


def test_a_slow_answer_is_the_right_answer(sandbox):
    sandbox.faults.configure(always("slow", delay=0.01))
    assert bare(sandbox, "iam").list_instance_profiles()["InstanceProfiles"] == []
    assert sandbox.calls("iam", "ListInstanceProfiles")[0]["injected"] == "slow"
    assert sandbox.faults.status()["injected_by_kind"] == {"slow": 1}


def test_the_server_keeps_serving_after_resets(sandbox):
    sandbox.faults.configure(always("reset"))
    for _attempt in range(5):
        failure(bare(sandbox, "ec2").describe_instances)
    sandbox.faults.clear()
    assert bare(sandbox, "ec2").describe_instances()["Reservations"] == []


def test_our_retry_policy_gets_through_every_kind(sandbox):
    kinds = ["throttle", "ServiceUnavailable", "InternalError", "reset", "reset_after"]
    sandbox.faults.configure({"seed": 3, "rules": [{"rate": 0.6, "kinds": kinds, "max_consecutive": 4}]})
    iam = RetryingClient(bare(sandbox, "iam"), RetryPolicy(base_delay=0.001, max_delay=0.01))
    for _call in range(15):
        iam.list_instance_profiles()
    assert sandbox.faults.injected_total() > 5
    assert sandbox.faults.status()["calls"]["iam:ListInstanceProfiles"] == 15 + sandbox.faults.injected_total()


# ---- which calls, and reproducibility ------------------------------------------------------


def test_rules_select_services_and_actions(sandbox):
    sandbox.faults.configure({"rules": [{"services": "ec2", "actions": ["DescribeInstances"], "rate": 1.0,
                                         "kinds": ["InternalError"]}]})
    ec2, iam = bare(sandbox, "ec2"), bare(sandbox, "iam")
    failure(ec2.describe_instances)
    ec2.describe_iam_instance_profile_associations()
    iam.list_instance_profiles()
    assert sandbox.faults.status()["injected"] == {"ec2:DescribeInstances": {"InternalError": 1}}


def injected_sequence(sandbox, seed, calls=40):
    sandbox.reset()
    sandbox.faults.configure({"seed": seed, "rules": [{"rate": 0.3, "kinds": ["InternalError", "Throttling"]}]})
    ec2, iam = bare(sandbox, "ec2"), bare(sandbox, "iam")
    for number in range(calls):
        try:
            (ec2.describe_instances if number % 2 else iam.list_roles)()
        except botocore.exceptions.ClientError:
            pass
    return [(c["action"], c.get("injected")) for c in sandbox.calls()]


def test_the_seed_makes_a_run_reproducible(sandbox):
    first = injected_sequence(sandbox, 11)
    assert first == injected_sequence(sandbox, 11)
    assert first != injected_sequence(sandbox, 12)
    assert 4 <= sum(1 for _action, kind in first if kind) <= 20


def test_an_action_s_faults_do_not_depend_on_other_actions(sandbox):
    """Whether the n-th DescribeInstances fails depends on the seed and n only."""
    config = {"seed": 5, "rules": [{"rate": 0.5, "kinds": ["InternalError"]}]}
    outcomes = []
    for extra_reads in (0, 3):
        sandbox.reset()
        sandbox.faults.configure(config)
        ec2, iam = bare(sandbox, "ec2"), bare(sandbox, "iam")
        seen = []
        for _round in range(10):
            for _other in range(extra_reads):
                try:
                    iam.list_roles()
                except botocore.exceptions.ClientError:
                    pass
            try:
                ec2.describe_instances()
                seen.append("ok")
            except botocore.exceptions.ClientError:
                seen.append("fault")
        outcomes.append(seen)
    assert outcomes[0] == outcomes[1] and "fault" in outcomes[0] and "ok" in outcomes[0]


def test_max_consecutive_and_limit(sandbox):
    sandbox.faults.configure(always("InternalError", max_consecutive=2))
    ec2 = bare(sandbox, "ec2")
    outcomes = []
    for _call in range(6):
        try:
            ec2.describe_instances()
            outcomes.append("ok")
        except botocore.exceptions.ClientError:
            outcomes.append("fault")
    assert outcomes == ["fault", "fault", "ok", "fault", "fault", "ok"]
    sandbox.faults.configure(always("InternalError", limit=1), reset_counters=True)
    failure(ec2.describe_instances)
    ec2.describe_instances()
    assert sandbox.faults.injected_total() == 1


def test_the_sandbox_s_own_reads_are_never_faulted(sandbox):
    ec2 = sandbox.client("ec2")
    instance_id = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    emulator = sandbox.imds.start(instance_id)
    sandbox.faults.configure(always("InternalError"))
    emulator._instance()  # pylint: disable=protected-access  # an IMDS read of EC2, marked as the sandbox's own
    assert sandbox.faults.injected_total() == 0


# ---- scripted faults -----------------------------------------------------------------------


def make_profile(sandbox, name):
    iam = sandbox.client("iam")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)


def test_the_first_k_attaches_of_a_fresh_profile_fail_as_ec2_fails(sandbox):
    make_profile(sandbox, "fresh")
    ec2 = bare(sandbox, "ec2")
    ids = launch(sandbox, 3)
    sandbox.faults.configure({"scripted": [{"preset": "propagation", "first": 2, "younger_than": 3600}]})
    by_name = failure(ec2.associate_iam_instance_profile, InstanceId=ids[0], IamInstanceProfile={"Name": "fresh"})
    assert by_name.response["Error"] == {
        "Code": "InvalidParameterValue",
        "Message": "Value (fresh) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"}
    arn = "arn:aws:iam::123456789012:instance-profile/fresh"
    by_arn = failure(ec2.associate_iam_instance_profile, InstanceId=ids[0], IamInstanceProfile={"Arn": arn})
    assert by_arn.response["Error"]["Message"] == (
        "Value ({0}) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN".format(arn))
    assert not is_retryable(by_arn)  # "not yet" is the association code's call, not the generic policy's
    ec2.associate_iam_instance_profile(InstanceId=ids[0], IamInstanceProfile={"Name": "fresh"})
    assert sandbox.faults.status()["injected_by_kind"] == {"scripted:propagation": 2}
    assert [c.get("injected") for c in sandbox.calls("ec2", "AssociateIamInstanceProfile")] == [
        "scripted:propagation", "scripted:propagation", None]


def test_a_profile_older_than_t_is_known_to_ec2(sandbox):
    make_profile(sandbox, "settled")
    ec2 = bare(sandbox, "ec2")
    instance_id = launch(sandbox)[0]
    sandbox.faults.configure({"scripted": [{"preset": "propagation", "first": 5, "younger_than": 0}]})
    ec2.associate_iam_instance_profile(InstanceId=instance_id, IamInstanceProfile={"Name": "settled"})
    assert sandbox.faults.injected_total() == 0


def test_scripted_faults_count_per_profile_and_can_name_one(sandbox):
    for name in ("a", "b"):
        make_profile(sandbox, name)
    ec2 = bare(sandbox, "ec2")
    ids = launch(sandbox, 2)
    sandbox.faults.configure({"scripted": [ScriptedFault.propagation(first=1, profile="b")]})
    ec2.associate_iam_instance_profile(InstanceId=ids[0], IamInstanceProfile={"Name": "a"})
    failure(ec2.associate_iam_instance_profile, InstanceId=ids[1], IamInstanceProfile={"Name": "b"})
    ec2.associate_iam_instance_profile(InstanceId=ids[1], IamInstanceProfile={"Name": "b"})
    assert sandbox.faults.status()["scripted"][0]["injected"] == {"b": 1}


def test_a_scripted_fault_with_any_code(sandbox):
    sandbox.faults.configure({"scripted": [{"service": "iam", "actions": ["CreateInstanceProfile"], "first": 1,
                                            "status": 409, "code": "ConcurrentModification",
                                            "message": "{action} of {profile} conflicts"}]})
    error = failure(bare(sandbox, "iam").create_instance_profile, InstanceProfileName="x")
    assert error.response["Error"]["Code"] == "ConcurrentModification"
    assert error.response["Error"]["Message"] == "CreateInstanceProfile of x conflicts"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_propagation_fault_keeps_its_api_and_is_marked_in_the_log(sandbox):
    make_profile(sandbox, "armed")
    ec2 = bare(sandbox, "ec2")
    instance_id = launch(sandbox)[0]
    fault = propagation_fault(sandbox)
    fault.arm("armed", 1)
    assert fault.remaining("armed") == 1
    failure(ec2.associate_iam_instance_profile, InstanceId=instance_id, IamInstanceProfile={"Name": "armed"})
    ec2.associate_iam_instance_profile(InstanceId=instance_id, IamInstanceProfile={"Name": "armed"})
    assert fault.injected == 1 and fault.remaining("armed") == 0
    assert sandbox.calls("ec2", "AssociateIamInstanceProfile")[0]["injected"] == "propagation"


ARN = "arn:aws:iam::123456789012:instance-profile/{0}"
# preset -> (code, message) EC2 answers for a profile named "p" by name
PRESET_ANSWERS = {
    "propagation": ("InvalidParameterValue",
                    "Value (p) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"),
    "no_roles": ("InvalidParameterValue",
                 'IAM Instance Profile "arn:aws:iam::123456789012:instance-profile/p" has no associated IAM Roles'),
    "identity_profile_not_found": ("IncorrectState",
                                   "ResultDetail: { Code=InstanceIdentityProfileNotFound, Message=InstanceIdentity"
                                   "Profile not found for the key: 123456789012/p }"),
}


@pytest.mark.parametrize("preset", sorted(PRESET_ANSWERS))
def test_each_preset_answers_as_ec2_does_in_its_form(sandbox, preset):
    make_profile(sandbox, "p")
    ec2 = bare(sandbox, "ec2")
    instance_id = launch(sandbox)[0]
    sandbox.faults.configure({"scripted": [{"preset": preset, "first": 1}]})
    error = failure(ec2.associate_iam_instance_profile, InstanceId=instance_id, IamInstanceProfile={"Name": "p"})
    code, message = PRESET_ANSWERS[preset]
    assert error.response["Error"] == {"Code": code, "Message": message}
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    ec2.associate_iam_instance_profile(InstanceId=instance_id, IamInstanceProfile={"Name": "p"})
    assert sandbox.faults.status()["injected_by_kind"] == {"scripted:" + preset: 1}
    entry = sandbox.faults.status()["scripted"][0]
    assert (entry["preset"], entry["code"], entry["status"], entry["injected"]) == (preset, None, None, {"p": 1})


def test_a_preset_named_by_arn_names_the_arn(sandbox):
    make_profile(sandbox, "p")
    instance_id = launch(sandbox)[0]
    sandbox.faults.configure({"scripted": [{"preset": "no_roles", "first": 1},
                                           {"preset": "propagation", "first": 1}]})
    ec2 = bare(sandbox, "ec2")
    by_arn = {"Arn": ARN.format("p")}
    first = failure(ec2.associate_iam_instance_profile, InstanceId=instance_id, IamInstanceProfile=by_arn)
    assert first.response["Error"]["Message"] == 'IAM Instance Profile "{0}" has no associated IAM Roles'.format(
        ARN.format("p"))
    second = failure(ec2.associate_iam_instance_profile, InstanceId=instance_id, IamInstanceProfile=by_arn)
    assert second.response["Error"]["Message"] == (
        "Value ({0}) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN".format(
            ARN.format("p")))


def test_a_preset_on_run_instances(sandbox):
    make_profile(sandbox, "p")
    ScriptedFault.propagation(first=1, preset="no_roles", actions=["RunInstances"])  # the Python way, checked
    sandbox.faults.configure({"scripted": [ScriptedFault.propagation(first=1, preset="no_roles",
                                                                     actions=["RunInstances"])]})
    ec2 = bare(sandbox, "ec2")
    error = failure(ec2.run_instances, ImageId=AMI, MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "p"})
    assert error.response["Error"] == {"Code": "InvalidParameterValue", "Message": PRESET_ANSWERS["no_roles"][1]}
    assert ec2.describe_instances()["Reservations"] == []  # refused: nothing launched
    ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "p"})


@pytest.mark.parametrize("form, kind", [("invalid_profile", "propagation"), ("no_roles", "propagation:no_roles"),
                                        ("identity_profile_not_found", "propagation:identity_profile_not_found")])
def test_the_propagation_fault_fails_in_the_form_it_was_armed_with(sandbox, form, kind):
    make_profile(sandbox, "p")
    ec2 = bare(sandbox, "ec2")
    instance_id = launch(sandbox)[0]
    fault = propagation_fault(sandbox)
    fault.arm("p", 2, form=form)
    assert fault.form("p") == form and fault.armed() == {"p": 2}
    preset = "propagation" if form == "invalid_profile" else form
    for _attempt in range(2):
        error = failure(ec2.associate_iam_instance_profile, InstanceId=instance_id, IamInstanceProfile={"Name": "p"})
        assert (error.response["Error"]["Code"], error.response["Error"]["Message"]) == PRESET_ANSWERS[preset]
    ec2.associate_iam_instance_profile(InstanceId=instance_id, IamInstanceProfile={"Name": "p"})
    assert [c.get("injected") for c in sandbox.calls("ec2", "AssociateIamInstanceProfile")] == [kind, kind, None]


def test_the_propagation_fault_refuses_an_unknown_form(sandbox):
    with pytest.raises(ValueError, match="form 'later' unknown; known: invalid_profile, no_roles, "
                                         "identity_profile_not_found"):
        propagation_fault(sandbox).arm("p", 1, form="later")
    assert propagation_fault(sandbox).armed() == {}


# ---- configuration, control API, reset -------------------------------------------------------


def control(sandbox, method, body=None):
    return sandbox.control(method, "/_sandbox/faults", body)


def test_the_control_api_configures_reports_and_clears(sandbox):
    status, answer = control(sandbox, "POST", {"seed": 9, "rules": [{"services": ["ec2"], "rate": 1.0,
                                                                     "kinds": ["InternalError"]}],
                                               "propagation": {"web": 2}})
    assert status == 200 and answer["seed"] == 9 and answer["propagation"] == {"web": 2}
    failure(bare(sandbox, "ec2").describe_instances)
    status, answer = control(sandbox, "GET")
    assert answer["injected"] == {"ec2:DescribeInstances": {"InternalError": 1}}
    assert answer["injected_total"] == 1 and answer["calls"]["ec2:DescribeInstances"] == 1
    status, answer = control(sandbox, "DELETE")
    assert status == 200 and answer["rules"] == [] and answer["injected_total"] == 0 and answer["propagation"] == {}
    bare(sandbox, "ec2").describe_instances()


@pytest.mark.parametrize("body, says", [
    ({"rules": [{"rate": 2}]}, "rate: 2 is out of range"),
    ({"rules": [{"rate": 0.5, "kinds": ["Meteor"]}]}, "kinds: Meteor unknown"),
    ({"rules": [{"rate": 0.5, "colour": "red"}]}, "unknown key(s) colour"),
    ({"scripted": [{"first": 1}]}, "give a code (or a preset: propagation, no_roles, identity_profile_not_found)"),
    ({"scripted": [{"preset": "stale"}]}, "preset 'stale' unknown; the presets are propagation, no_roles, "
                                          "identity_profile_not_found"),
    ({"scripted": [{"preset": "no_roles", "code": "Other"}]}, "preset no_roles answers what EC2 answers; drop code"),
    ({"scripted": [{"preset": "no_roles", "service": "iam"}]}, "its service is ec2, not iam"),
    ({"propagation": {"web": "two"}}, "propagation: give {profile name: number of failures}"),
    ({"chaos": True}, "unknown key(s) chaos"),
])
def test_a_bad_configuration_is_refused_saying_why(sandbox, body, says):
    status, answer = control(sandbox, "POST", body)
    assert status == 400 and says in answer["error"]
    with pytest.raises(ConfigError):
        sandbox.faults.configure(body)


def test_a_sandbox_reset_forgets_the_faults(sandbox):
    sandbox.faults.configure(always("InternalError"))
    propagation_fault(sandbox).arm("x", 3)
    sandbox.reset()
    assert sandbox.faults.status()["rules"] == [] and sandbox.faults.status()["propagation"] == {}
    bare(sandbox, "ec2").describe_instances()


def test_configured_is_a_block(sandbox):
    with sandbox.faults.configured(always("InternalError")):
        failure(bare(sandbox, "ec2").describe_instances)
    bare(sandbox, "ec2").describe_instances()


# ---- the moto fixes ----------------------------------------------------------------------------


def test_a_launch_with_a_profile_gives_every_instance_the_profile(sandbox):
    make_profile(sandbox, "launch")
    ec2 = sandbox.client("ec2")
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=AMI, MinCount=3, MaxCount=3,
                                                      IamInstanceProfile={"Name": "launch"})["Instances"]]
    associations = ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
    assert sorted(a["InstanceId"] for a in associations) == sorted(ids)
    assert set(a["State"] for a in associations) == {"associated"}


def test_parallel_attaches_of_one_instance_give_one_association(sandbox):
    from concurrent.futures import ThreadPoolExecutor

    make_profile(sandbox, "race")
    instance_id = launch(sandbox)[0]

    def attach(_number):
        try:
            bare(sandbox, "ec2").associate_iam_instance_profile(InstanceId=instance_id,
                                                                IamInstanceProfile={"Name": "race"})
            return "ok"
        except botocore.exceptions.ClientError as error:
            return error.response["Error"]["Code"]

    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = sorted(pool.map(attach, range(6)))
    assert outcomes == ["IncorrectState"] * 5 + ["ok"]


def test_a_client_token_makes_one_launch_template_version(sandbox):
    ec2 = sandbox.client("ec2")
    template = ec2.create_launch_template(LaunchTemplateName="t", LaunchTemplateData={"ImageId": AMI})
    template_id = template["LaunchTemplate"]["LaunchTemplateId"]
    answers = [ec2.create_launch_template_version(
        LaunchTemplateId=template_id, ClientToken="same-token", SourceVersion="1",
        LaunchTemplateData={"MetadataOptions": {"HttpTokens": "required"}})["LaunchTemplateVersion"]["VersionNumber"]
        for _call in range(2)]
    assert answers == [2, 2]
    assert ec2.describe_launch_templates()["LaunchTemplates"][0]["LatestVersionNumber"] == 2


def test_removing_a_role_the_profile_does_not_hold_is_no_such_entity(sandbox):
    make_profile(sandbox, "holder")
    iam = bare(sandbox, "iam")
    iam.remove_role_from_instance_profile(InstanceProfileName="holder", RoleName="holder")
    error = failure(iam.remove_role_from_instance_profile, InstanceProfileName="holder", RoleName="holder")
    assert error.response["Error"]["Code"] == "NoSuchEntity"


def test_associations_can_show_associating_for_a_few_reads(sandbox):
    make_profile(sandbox, "slowly")
    ec2 = sandbox.client("ec2")
    instance_id = launch(sandbox)[0]
    sandbox.faults.configure({"associating_reads": 2})
    answer = ec2.associate_iam_instance_profile(InstanceId=instance_id, IamInstanceProfile={"Name": "slowly"})
    assert answer["IamInstanceProfileAssociation"]["State"] == "associating"
    states = [ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"][0]["State"]
              for _read in range(4)]
    assert states == ["associating", "associating", "associated", "associated"]
    sandbox.faults.clear()
