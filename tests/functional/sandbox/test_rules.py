"""The EC2 rules the sandbox enforces where moto does not (tests/sandbox/rules.py): each with EC2's
exact code and message, each switched off to show moto's plain behaviour, the control API, and
a reset restoring the defaults."""

import contextlib
import json
import time

import botocore.config
import botocore.exceptions
import pytest
from moved_clock import MovedClock

from sandbox.rules import RULE_NAMES
from sandbox.rules import RulesError

NO_RETRIES = botocore.config.Config(retries={"total_max_attempts": 1})
AMI = "ami-1e749f67"
ACCOUNT = "123456789012"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
ENFORCED = ("You can't launch instances with IMDSv1 because httpTokensEnforced is enabled for this account. Either "
            "launch the instance with httpTokens=required or contact your account owner to disable httpTokensEnforced "
            "using the ModifyInstanceMetadataDefaults API or the account settings in the EC2 console.")


def invalid_name(name):
    return "Value ({0}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name".format(
        name)


def invalid_arn(arn):
    return "Value ({0}) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN".format(arn)


def no_roles(name):
    return 'IAM Instance Profile "arn:aws:iam::{0}:instance-profile/{1}" has no associated IAM Roles'.format(
        ACCOUNT, name)


def identity_not_found(name):
    return ("ResultDetail: { Code=InstanceIdentityProfileNotFound, Message=InstanceIdentityProfile not found for the "
            "key: %s/%s }" % (ACCOUNT, name))


def error_of(call, **kwargs):
    """(code, message, HTTP status) of a call that must fail."""
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(**kwargs)
    error = raised.value.response
    return error["Error"]["Code"], error["Error"]["Message"], error["ResponseMetadata"]["HTTPStatusCode"]


def backend_instance(instance_id):
    from moto.ec2.models import ec2_backends

    return ec2_backends[ACCOUNT]["us-east-1"].get_instance(instance_id)


def set_state(instance_id, state):
    """Put an instance in ``state`` on moto's backend (the tests do not wait for transitions)."""
    backend_instance(instance_id)._state.name = state  # pylint: disable=protected-access


@pytest.fixture(autouse=True)
def instant_transitions(sandbox):
    """No timed pending/stopping states (moto_fixes.py): the tests put instances in states themselves."""
    transitions = getattr(sandbox, "transitions", None)
    with transitions.instant() if transitions is not None else contextlib.nullcontext():
        yield


@pytest.fixture
def settled(sandbox):
    """No propagation window: profiles are usable as soon as they are made (other rules on)."""
    with sandbox.rules.configured({"propagation_seconds": 0}):
        yield sandbox


def make_profile(iam, name, path="/"):
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)
    arn = iam.create_instance_profile(InstanceProfileName=name, Path=path)["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return arn


def launch(ec2, state="running", **kwargs):
    instance_id = ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, **kwargs)["Instances"][0]["InstanceId"]
    set_state(instance_id, state)
    return instance_id


def association_of(ec2, instance_id):
    associations = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}])["IamInstanceProfileAssociations"]
    return associations[0] if associations else None


def injected(sandbox, action):
    return [c.get("injected") for c in sandbox.calls("ec2", action)]


# ---- the Python API -------------------------------------------------------------------------------


def test_every_rule_is_on_by_default(sandbox):
    assert all(sandbox.rules.enabled(name) for name in RULE_NAMES)
    assert sandbox.rules.status() == {"rules": dict((n, True) for n in RULE_NAMES),
                                      "settings": {"propagation_seconds": 1.0}}


def test_disabled_switches_off_for_the_block_only_and_names_are_checked(sandbox):
    with sandbox.rules.disabled("filter_value_limit", "replace_running_only"):
        assert not sandbox.rules.enabled("filter_value_limit")
        with sandbox.rules.disabled("filter_value_limit"):
            pass
        assert not sandbox.rules.enabled("filter_value_limit")  # the inner block restores what it found
    assert sandbox.rules.enabled("filter_value_limit") and sandbox.rules.enabled("replace_running_only")
    with pytest.raises(RulesError):
        sandbox.rules.disable("no_such_rule")
    with pytest.raises(RulesError):
        sandbox.rules.configure({"propagation_seconds": -1})
    with pytest.raises(RulesError):
        sandbox.rules.configure({"unknown_setting": 1})


# ---- 1. replace_running_only ----------------------------------------------------------------------


@pytest.fixture
def associated(settled, ec2, iam):
    """A running instance launched with profile "a"; profile "b" exists too."""
    make_profile(iam, "a")
    make_profile(iam, "b")
    instance_id = launch(ec2, IamInstanceProfile={"Name": "a"})
    return instance_id, association_of(ec2, instance_id)["AssociationId"]


@pytest.mark.parametrize("state", ["stopped", "pending", "stopping"])
def test_replace_on_an_instance_that_is_not_running(sandbox, ec2, associated, state):
    instance_id, association_id = associated
    set_state(instance_id, state)
    assert error_of(ec2.replace_iam_instance_profile_association, AssociationId=association_id,
                    IamInstanceProfile={"Name": "b"}) == (
        "IncorrectState", "The association {0} is not the active association".format(association_id), 400)
    assert association_of(ec2, instance_id)["IamInstanceProfile"]["Arn"].endswith("/a")
    assert injected(sandbox, "ReplaceIamInstanceProfileAssociation") == ["rule:replace_running_only"]


def test_replace_on_a_running_instance_and_on_a_stopped_one_with_the_rule_off(sandbox, ec2, associated):
    instance_id, association_id = associated
    ec2.replace_iam_instance_profile_association(AssociationId=association_id, IamInstanceProfile={"Name": "a"})
    association_id = association_of(ec2, instance_id)["AssociationId"]
    set_state(instance_id, "stopped")
    with sandbox.rules.disabled("replace_running_only"):
        ec2.replace_iam_instance_profile_association(AssociationId=association_id, IamInstanceProfile={"Name": "b"})
    assert association_of(ec2, instance_id)["IamInstanceProfile"]["Arn"].endswith("/b")


# ---- 2. associate_running_or_stopped --------------------------------------------------------------


@pytest.mark.parametrize("state", ["pending", "stopping", "shutting-down"])
def test_associate_on_an_instance_neither_running_nor_stopped(sandbox, settled, ec2, iam, state):
    make_profile(iam, "a")
    instance_id = launch(ec2, state=state)
    assert error_of(ec2.associate_iam_instance_profile, InstanceId=instance_id, IamInstanceProfile={"Name": "a"}) == (
        "IncorrectInstanceState", "The instance '{0}' is not in the 'running' or 'stopped' states.".format(instance_id),
        400)
    assert association_of(ec2, instance_id) is None
    assert injected(sandbox, "AssociateIamInstanceProfile") == ["rule:associate_running_or_stopped"]


def test_associate_on_stopped_and_with_the_rule_off_on_pending(sandbox, settled, ec2, iam):
    make_profile(iam, "a")
    stopped = launch(ec2, state="stopped")
    ec2.associate_iam_instance_profile(InstanceId=stopped, IamInstanceProfile={"Name": "a"})
    pending = launch(ec2, state="pending")
    with sandbox.rules.disabled("associate_running_or_stopped"):
        ec2.associate_iam_instance_profile(InstanceId=pending, IamInstanceProfile={"Name": "a"})
    assert association_of(ec2, stopped) is not None and association_of(ec2, pending) is not None


def test_a_refused_call_is_refused_even_when_the_fault_proxy_lets_moto_do_it(sandbox, settled, ec2, iam):
    """``reset_after``: the fault proxy has the request done, then drops the answer; a rule still refuses it."""
    make_profile(iam, "a")
    instance_id = launch(ec2, state="pending")
    with sandbox.faults.configured({"rules": [{"service": "ec2", "actions": ["AssociateIamInstanceProfile"],
                                               "rate": 1.0, "kinds": ["reset_after"]}]}):
        with pytest.raises(botocore.exceptions.ConnectionClosedError):
            ec2.associate_iam_instance_profile(InstanceId=instance_id, IamInstanceProfile={"Name": "a"})
    assert association_of(ec2, instance_id) is None


# ---- 3. filter_value_limit ------------------------------------------------------------------------

FILTER_LIMIT = ("FilterLimitExceeded", "The maximum number of filter values specified on a single call is 200", 400)


def ids(count):
    return ["i-{0:017x}".format(n) for n in range(count)]


def test_more_than_200_filter_values_in_one_filter(sandbox, ec2):
    assert ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": ids(200)}])["Reservations"] == []
    assert error_of(ec2.describe_instances, Filters=[{"Name": "instance-id", "Values": ids(201)}]) == FILTER_LIMIT
    assert injected(sandbox, "DescribeInstances") == [None, "rule:filter_value_limit"]


def test_filter_values_count_over_every_filter_of_any_describe_call(ec2):
    assert error_of(ec2.describe_iam_instance_profile_associations, Filters=[
        {"Name": "instance-id", "Values": ids(150)}, {"Name": "state", "Values": ["associated"] * 51}]) == FILTER_LIMIT


def test_filter_values_with_the_rule_off(sandbox, ec2):
    with sandbox.rules.disabled("filter_value_limit"):
        assert ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": ids(201)}])["Reservations"] == []


def test_the_sandboxs_own_requests_are_never_refused(sandbox):
    ec2 = sandbox.client("ec2", config=NO_RETRIES)

    def mark(request, **_kwargs):
        request.headers["X-Keyless-Sandbox-Origin"] = "imds"

    ec2.meta.events.register("before-sign.ec2.DescribeInstances", mark)
    assert ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": ids(201)}])["Reservations"] == []


# ---- 4. unknown_profile_is_propagation ------------------------------------------------------------


def test_a_profile_iam_does_not_hold_is_the_propagation_error(sandbox, settled, ec2, iam):
    instance_id = launch(ec2)
    assert error_of(ec2.associate_iam_instance_profile, InstanceId=instance_id,
                    IamInstanceProfile={"Name": "nope"}) == ("InvalidParameterValue", invalid_name("nope"), 400)
    arn = "arn:aws:iam::{0}:instance-profile/nope".format(ACCOUNT)
    assert error_of(ec2.run_instances, ImageId=AMI, MinCount=1, MaxCount=1, IamInstanceProfile={"Arn": arn}) == (
        "InvalidParameterValue", invalid_arn(arn), 400)
    make_profile(iam, "a")
    association_id = ec2.associate_iam_instance_profile(
        InstanceId=instance_id, IamInstanceProfile={"Name": "a"})["IamInstanceProfileAssociation"]["AssociationId"]
    assert error_of(ec2.replace_iam_instance_profile_association, AssociationId=association_id,
                    IamInstanceProfile={"Name": "nope"}) == ("InvalidParameterValue", invalid_name("nope"), 400)
    assert injected(sandbox, "AssociateIamInstanceProfile")[0] == "rule:unknown_profile_is_propagation"


@pytest.mark.parametrize("arn", ["arn:aws:iam::{0}:instance-profile/a".format("210987654321"),
                                 "arn:aws:iam::{0}:instance-profile/other/a".format(ACCOUNT)])
def test_an_arn_with_a_known_name_but_another_account_or_path_is_unknown(settled, ec2, iam, arn):
    make_profile(iam, "a", path="/team/")
    assert error_of(ec2.run_instances, ImageId=AMI, MinCount=1, MaxCount=1, IamInstanceProfile={"Arn": arn}) == (
        "InvalidParameterValue", invalid_arn(arn), 400)
    real = "arn:aws:iam::{0}:instance-profile/team/a".format(ACCOUNT)
    launch(ec2, IamInstanceProfile={"Arn": real})


def test_an_unknown_profile_with_the_rule_off_is_moto_as_usual(sandbox, ec2):
    instance_id = launch(ec2)
    with sandbox.rules.disabled("unknown_profile_is_propagation"):
        code, message, _status = error_of(ec2.associate_iam_instance_profile, InstanceId=instance_id,
                                          IamInstanceProfile={"Name": "nope"})
    assert (code, message) == ("NoSuchEntity", "Instance profile nope not found")


# ---- 5. profile_propagation -----------------------------------------------------------------------


def test_right_after_create_run_instances_and_associations_do_not_know_the_profile(sandbox, ec2, iam):
    instance_id = launch(ec2)
    iam.create_instance_profile(InstanceProfileName="fresh")
    assert error_of(ec2.run_instances, ImageId=AMI, MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "fresh"}) == (
        "InvalidParameterValue", invalid_name("fresh"), 400)
    answers = [error_of(ec2.associate_iam_instance_profile, InstanceId=instance_id,
                        IamInstanceProfile={"Name": "fresh"}) for _attempt in range(3)]
    assert answers == [("InvalidParameterValue", invalid_name("fresh"), 400),
                       ("IncorrectState", identity_not_found("fresh"), 400),
                       ("InvalidParameterValue", invalid_name("fresh"), 400)]
    assert set(injected(sandbox, "AssociateIamInstanceProfile")) == {"rule:profile_propagation"}


@pytest.fixture
def moved(sandbox):
    clock = MovedClock()
    sandbox.rules.clock = clock
    yield clock
    sandbox.rules.clock = time.monotonic


def test_right_after_add_role_every_form_is_seen_then_the_window_closes(sandbox, ec2, iam, moved):
    sandbox.rules.configure({"propagation_seconds": 0.3})
    instance_id = launch(ec2)
    make_profile(iam, "web")
    assert error_of(ec2.run_instances, ImageId=AMI, MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "web"}) == (
        "InvalidParameterValue", no_roles("web"), 400)
    answers = [error_of(ec2.associate_iam_instance_profile, InstanceId=instance_id,
                        IamInstanceProfile={"Name": "web"}) for _attempt in range(3)]
    assert answers == [("InvalidParameterValue", no_roles("web"), 400),
                       ("IncorrectState", identity_not_found("web"), 400),
                       ("InvalidParameterValue", invalid_name("web"), 400)]
    moved.advance(0.35)
    ec2.associate_iam_instance_profile(InstanceId=instance_id, IamInstanceProfile={"Name": "web"})
    assert association_of(ec2, instance_id)["IamInstanceProfile"]["Arn"].endswith("/web")


def test_no_roles_names_the_profiles_arn_with_its_path(ec2, iam):
    arn = make_profile(iam, "deep", path="/team/")
    assert error_of(ec2.run_instances, ImageId=AMI, MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "deep"}) == (
        "InvalidParameterValue", 'IAM Instance Profile "{0}" has no associated IAM Roles'.format(arn), 400)


def test_only_successful_iam_calls_open_a_window(sandbox, ec2, iam, moved):
    sandbox.rules.configure({"propagation_seconds": 0.3})
    make_profile(iam, "web")
    moved.advance(0.35)
    with pytest.raises(botocore.exceptions.ClientError):  # EntityAlreadyExists: nothing changed in IAM
        iam.create_instance_profile(InstanceProfileName="web")
    with pytest.raises(botocore.exceptions.ClientError):  # LimitExceeded: the profile holds a role already
        iam.add_role_to_instance_profile(InstanceProfileName="web", RoleName="web")
    launch(ec2, IamInstanceProfile={"Name": "web"})


def test_propagation_off_by_the_switch_or_a_zero_window(sandbox, ec2, iam):
    with sandbox.rules.disabled("profile_propagation"):
        make_profile(iam, "a")
        launch(ec2, IamInstanceProfile={"Name": "a"})
    sandbox.rules.configure({"propagation_seconds": 0})
    make_profile(iam, "b")
    launch(ec2, IamInstanceProfile={"Name": "b"})


def test_settle_makes_one_profile_known_to_ec2_and_leaves_the_others_fresh(sandbox, ec2, iam):
    # A window no loaded machine outlasts between the creation and the launch.
    with sandbox.rules.configured({"propagation_seconds": 60}):
        make_profile(iam, "known")
        make_profile(iam, "fresh")
        sandbox.rules.settle("known")
        launch(ec2, IamInstanceProfile={"Name": "known"})
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "fresh"})
    assert raised.value.response["Error"]["Code"] == "InvalidParameterValue"


# ---- 6. launch_template_profile -------------------------------------------------------------------


def template(ec2, **data):
    ec2.create_launch_template(LaunchTemplateName="web", LaunchTemplateData=dict({"ImageId": AMI}, **data))
    return {"LaunchTemplateName": "web"}


def test_a_launch_template_profile_is_the_instances_profile(settled, ec2, iam):
    arn = make_profile(iam, "web", path="/fleet/")
    make_profile(iam, "other")
    spec = template(ec2, IamInstanceProfile={"Arn": arn})
    instance = ec2.run_instances(LaunchTemplate=spec, MinCount=1, MaxCount=1)["Instances"][0]
    assert instance["IamInstanceProfile"]["Arn"] == arn
    assert association_of(ec2, instance["InstanceId"])["IamInstanceProfile"]["Arn"] == arn
    given = ec2.run_instances(LaunchTemplate=spec, MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "other"})
    assert given["Instances"][0]["IamInstanceProfile"]["Arn"].endswith("/other")  # the request's own wins


def test_the_template_profile_meets_the_profile_rules(sandbox, ec2, iam):
    spec = template(ec2, IamInstanceProfile={"Name": "nope"})
    assert error_of(ec2.run_instances, LaunchTemplate=spec, MinCount=1, MaxCount=1) == (
        "InvalidParameterValue", invalid_name("nope"), 400)
    make_profile(iam, "nope")  # now it exists, but was given its role a moment ago
    assert error_of(ec2.run_instances, LaunchTemplate=spec, MinCount=1, MaxCount=1) == (
        "InvalidParameterValue", no_roles("nope"), 400)
    assert injected(sandbox, "RunInstances") == ["rule:unknown_profile_is_propagation", "rule:profile_propagation"]


def test_a_launch_template_profile_with_the_rule_off_is_moto_as_usual(sandbox, ec2):
    spec = template(ec2, IamInstanceProfile={"Name": "nope"})
    with sandbox.rules.disabled("launch_template_profile"):
        instance = ec2.run_instances(LaunchTemplate=spec, MinCount=1, MaxCount=1)["Instances"][0]
    assert "IamInstanceProfile" not in instance and association_of(ec2, instance["InstanceId"]) is None


# ---- 7. account_imdsv2_enforcement ----------------------------------------------------------------


@pytest.fixture
def enforced(ec2):
    ec2.modify_instance_metadata_defaults(HttpTokensEnforced="enabled")
    return ec2


def tokens_of(ec2, instance_id):
    reservation = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]
    return reservation["Instances"][0]["MetadataOptions"]["HttpTokens"]


def test_enforcement_refuses_launches_that_would_allow_imdsv1(sandbox, enforced):
    ec2 = enforced
    refused = ("UnsupportedOperation", ENFORCED, 400)
    assert error_of(ec2.run_instances, ImageId=AMI, MinCount=1, MaxCount=1) == refused
    assert error_of(ec2.run_instances, ImageId=AMI, MinCount=1, MaxCount=1, DryRun=True,
                    MetadataOptions={"HttpTokens": "optional"}) == refused
    spec = template(ec2, MetadataOptions={"HttpTokens": "optional"})
    ec2.modify_instance_metadata_defaults(HttpTokens="required")
    assert error_of(ec2.run_instances, LaunchTemplate=spec, MinCount=1, MaxCount=1) == refused  # template first
    assert set(injected(sandbox, "RunInstances")) == {"rule:account_imdsv2_enforcement"}
    from_default = launch(ec2)
    from_request = launch(ec2, LaunchTemplate=spec, MetadataOptions={"HttpTokens": "required"})
    assert tokens_of(ec2, from_default) == tokens_of(ec2, from_request) == "required"
    other_region = sandbox.client("ec2", region_name="eu-west-1", config=NO_RETRIES)
    other_region.run_instances(ImageId=AMI, MinCount=1, MaxCount=1)  # the defaults are per region


def test_enforcement_refuses_setting_optional_on_an_instance(sandbox, enforced):
    ec2 = enforced
    instance_id = launch(ec2, MetadataOptions={"HttpTokens": "required"})
    refused = ("UnsupportedOperation", ENFORCED, 400)
    assert error_of(ec2.modify_instance_metadata_options, InstanceId=instance_id, HttpTokens="optional") == refused
    # no HttpTokens: the documented default, optional (omitted_http_tokens_default), so refused too
    assert error_of(ec2.modify_instance_metadata_options, InstanceId=instance_id, HttpPutResponseHopLimit=2) == refused
    ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpTokens="required", HttpPutResponseHopLimit=2)
    assert tokens_of(ec2, instance_id) == "required"
    with sandbox.rules.disabled("omitted_http_tokens_default"):
        ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpPutResponseHopLimit=3)
    assert tokens_of(ec2, instance_id) == "required"
    assert set(injected(sandbox, "ModifyInstanceMetadataOptions")) == {"rule:account_imdsv2_enforcement", None}


def test_enforcement_with_the_rule_off_is_stored_only(sandbox, enforced):
    ec2 = enforced
    with sandbox.rules.disabled("account_imdsv2_enforcement"):
        instance_id = launch(ec2)
        assert tokens_of(ec2, instance_id) == "optional"
        ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpTokens="optional")
    assert ec2.get_instance_metadata_defaults()["AccountLevel"]["HttpTokensEnforced"] == "enabled"


# ---- 8. omitted_http_tokens_default ---------------------------------------------------------------


def test_modify_without_http_tokens_sets_the_default_optional(sandbox, ec2):
    instance_id = launch(ec2, MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 1})
    answer = ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpPutResponseHopLimit=2)
    assert answer["InstanceMetadataOptions"]["HttpTokens"] == "optional"
    reservation = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]
    options = reservation["Instances"][0]["MetadataOptions"]
    assert (options["HttpTokens"], options["HttpPutResponseHopLimit"]) == ("optional", 2)


def test_modify_without_http_tokens_with_the_rule_off_keeps_it(sandbox, ec2):
    instance_id = launch(ec2, MetadataOptions={"HttpTokens": "required"})
    with sandbox.rules.disabled("omitted_http_tokens_default"):
        ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpPutResponseHopLimit=2)
    assert tokens_of(ec2, instance_id) == "required"


# ---- control API and reset --------------------------------------------------------------------------


def control(sandbox, method, body=None):
    return sandbox.control(method, "/_sandbox/rules", body)


def test_control_api_round_trip(sandbox, ec2):
    status, state = control(sandbox, "GET")
    assert status == 200 and state == sandbox.rules.status() and all(state["rules"].values())
    status, state = control(sandbox, "POST", {"disable": ["filter_value_limit", "profile_propagation"],
                                              "settings": {"propagation_seconds": 0.5}})
    assert status == 200
    assert state["rules"]["filter_value_limit"] is False and state["rules"]["profile_propagation"] is False
    assert state["settings"] == {"propagation_seconds": 0.5} == sandbox.rules.settings
    assert ec2.describe_instances(Filters=[{"Name": "instance-id", "Values": ids(201)}])["Reservations"] == []
    status, state = control(sandbox, "POST", {"enable": ["filter_value_limit"]})
    assert state["rules"]["filter_value_limit"] is True and state["rules"]["profile_propagation"] is False
    assert error_of(ec2.describe_instances, Filters=[{"Name": "instance-id", "Values": ids(201)}]) == FILTER_LIMIT
    for bad in ({"disable": ["no_such_rule"]}, {"settings": {"propagation_seconds": "soon"}}, {"switch": []},
                {"disable": "filter_value_limit", "settings": {"propagation_seconds": 2}}):
        status, answer = control(sandbox, "POST", bad)
        assert status == 400 and "error" in answer, bad
    assert sandbox.rules.settings == {"propagation_seconds": 0.5}  # a refused POST changes nothing
    status, state = control(sandbox, "DELETE")
    assert status == 200 and all(state["rules"].values()) and state["settings"] == {"propagation_seconds": 1.0}


def test_reset_restores_the_defaults(sandbox):
    sandbox.rules.disable(*RULE_NAMES)
    sandbox.rules.configure({"propagation_seconds": 5})
    sandbox.reset()
    assert sandbox.rules.status() == {"rules": dict((n, True) for n in RULE_NAMES),
                                      "settings": {"propagation_seconds": 1.0}}
