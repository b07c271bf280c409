"""assume.py: a module's assume_role option, checked against STS AssumeRole's constraints before
any call, and the call's answer turned into a client's credentials and the session's account."""

import datetime

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.keyless.aws.plugins.module_utils import assume
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError

ROLE = "arn:aws:iam::210987654321:role/keyless-audit"
SECRET_ID = "tenant-7f3a-secret"


def sts():
    return boto3.client("sts", region_name="us-east-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="x")


def test_nothing_to_assume_without_a_role_arn():
    assert assume.checked(None) is None
    assert assume.checked({"role_arn": None, "external_id": None, "session_name": None, "duration_seconds": None}) is None
    assert assume.checked({"role_arn": ""}) is None


def test_the_call_carries_only_what_was_given_and_a_default_session_name():
    assert assume.checked({"role_arn": ROLE}) == {"RoleArn": ROLE, "RoleSessionName": "keyless-aws"}
    assert assume.checked({"role_arn": ROLE, "session_name": "keyless-audit-20261205T101010Z", "external_id": SECRET_ID,
                           "duration_seconds": 900}) == {
        "RoleArn": ROLE, "RoleSessionName": "keyless-audit-20261205T101010Z", "ExternalId": SECRET_ID,
        "DurationSeconds": 900}
    china = "arn:aws-cn:iam::210987654321:role/path/keyless-audit"
    assert assume.checked({"role_arn": china})["RoleArn"] == china


@pytest.mark.parametrize("arn", [
    "keyless-audit",                                        # a name
    "arn:aws:iam::210987654321:user/keyless-audit",        # a user
    "arn:aws:iam::210987654321:instance-profile/web",      # a profile
    "arn:aws:sts::210987654321:assumed-role/keyless/x",    # a session
    "arn:aws:iam::aws:role/keyless-audit",                  # no account
    "arn:aws:iam::210987654321:role/",                      # no name
])
def test_a_role_arn_that_is_not_one_is_refused_naming_the_sub_option(arn):
    with pytest.raises(KeylessError) as error:
        assume.checked({"role_arn": arn})
    assert error.value.param == "assume_role.role_arn"
    assert "assume_role.role_arn" in error.value.message and "arn:aws:iam::123456789012:role/" in error.value.message


@pytest.mark.parametrize("name", ["x", "a" * 65, "keyless audit", "keyless/audit", "kéyless"])
def test_a_session_name_sts_would_refuse_is_refused(name):
    with pytest.raises(KeylessError) as error:
        assume.checked({"role_arn": ROLE, "session_name": name})
    assert error.value.param == "assume_role.session_name"


@pytest.mark.parametrize("name", ["ab", "a" * 64, "keyless+audit=1,2.x@y_z-w"])
def test_every_session_name_sts_takes_is_taken(name):
    assert assume.checked({"role_arn": ROLE, "session_name": name})["RoleSessionName"] == name


@pytest.mark.parametrize("value", ["Z", "a" * 1225, "has space", "tenant#7", "tenänt-7"])
def test_a_bad_external_id_is_refused_without_repeating_it(value):
    with pytest.raises(KeylessError) as error:
        assume.checked({"role_arn": ROLE, "external_id": value})
    assert error.value.param == "assume_role.external_id"
    assert value not in error.value.message


@pytest.mark.parametrize("seconds", [899, 43201, 0, -1, True])
def test_a_duration_out_of_sts_range_is_refused(seconds):
    with pytest.raises(KeylessError) as error:
        assume.checked({"role_arn": ROLE, "duration_seconds": seconds})
    assert error.value.param == "assume_role.duration_seconds"
    assert "900 to 43200" in error.value.message


@pytest.mark.parametrize("seconds", [900, 3600, 43200])
def test_every_duration_sts_takes_is_taken(seconds):
    assert assume.checked({"role_arn": ROLE, "duration_seconds": seconds})["DurationSeconds"] == seconds


def test_the_answer_gives_the_clients_credentials_and_the_sessions_account():
    client = sts()
    call = assume.checked({"role_arn": ROLE, "session_name": "keyless-audit", "external_id": SECRET_ID})
    with Stubber(client) as stub:
        stub.add_response("assume_role", {
            "Credentials": {"AccessKeyId": "ASIAEXAMPLE000000001", "SecretAccessKey": "s" * 40, "SessionToken": "t" * 40,
                            "Expiration": datetime.datetime(2026, 12, 5, 12, tzinfo=datetime.timezone.utc)},
            "AssumedRoleUser": {"AssumedRoleId": "AROAEXAMPLE000000001:keyless-audit",
                                "Arn": "arn:aws:sts::210987654321:assumed-role/keyless-audit/keyless-audit"},
        }, call)
        credentials, account = assume.assume(client, call)
        stub.assert_no_pending_responses()
    assert credentials == {"aws_access_key_id": "ASIAEXAMPLE000000001", "aws_secret_access_key": "s" * 40,
                           "aws_session_token": "t" * 40}
    assert account == "210987654321"


def test_a_refusal_says_what_to_check_and_never_the_external_id():
    client = sts()
    call = assume.checked({"role_arn": ROLE, "external_id": SECRET_ID})
    with Stubber(client) as stub:
        stub.add_client_error("assume_role", "AccessDenied", "User: arn:aws:iam::123456789012:user/ci is not authorized "
                              "to perform: sts:AssumeRole on resource: " + ROLE, 403)
        with pytest.raises(KeylessError) as error:
            assume.assume(client, call)
    message = error.value.message
    assert message.startswith("Could not assume {0}: AWS said AccessDenied: ".format(ROLE))
    assert "trust policy lets the controller's identity in with this external id" in message
    assert SECRET_ID not in message and error.value.code == "AccessDenied"


def test_a_refusal_without_an_external_id_does_not_mention_one():
    client = sts()
    call = assume.checked({"role_arn": ROLE})
    with Stubber(client) as stub:
        stub.add_client_error("assume_role", "AccessDenied", "not authorized", 403)
        with pytest.raises(KeylessError) as error:
            assume.assume(client, call, target="prod-eu-west-1")
    assert error.value.message.startswith("Could not assume {0} for prod-eu-west-1: AWS said".format(ROLE))
    assert "external id" not in error.value.message
