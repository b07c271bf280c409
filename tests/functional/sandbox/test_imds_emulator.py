"""The sandbox's IMDS emulator answers as EC2's instance metadata service does (tests/sandbox/imds.py)."""

import datetime
import http.client
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.request

import boto3
import botocore.exceptions
import pytest

from sandbox.imds import ACCESS_SESSION_PREFIX
from sandbox.imds import ACCESS_SESSION_SECONDS
from sandbox.imds import REFRESH_BEFORE
from sandbox.imds import ROTATION_INTERVAL
from sandbox.imds import TROUBLESHOOTING
from sandbox.imds import ImdsEmulator
from sandbox.imds import iam_enforcement
from sandbox.imds import iam_enforcement_enabled
from sandbox.imds import imds_usage
from sandbox.imds import publish_imds_usage
from sandbox.organizations import DEFAULT_ROLE
from sandbox.organizations import MANAGEMENT_ACCOUNT
from sandbox.organizations import client_for
from sandbox.organizations import credentials_for
from sandbox.organizations import role_arn
from sandbox.organizations import seed_organization

TRUST_EC2 = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
TRUST_LAMBDA = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
S3_READ = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:ListAllMyBuckets", "s3:ListBucket", "s3:GetObject"], "Resource": "*"}]}
TTL = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN = "X-aws-ec2-metadata-token"
LISTING = "/latest/meta-data/iam/security-credentials/"
INFO = "/latest/meta-data/iam/info"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Now:
    """A replaceable ``now`` for the emulator: wall-clock time that moves only when told."""

    def __init__(self):
        self.moment = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)

    def __call__(self):
        return self.moment

    def advance(self, seconds):
        self.moment += datetime.timedelta(seconds=seconds)


def make_profile(sandbox, name, role=None, trust=None, policy=None):
    """A profile holding a role (named like the profile unless ``role`` says otherwise)."""
    iam = sandbox.client("iam")
    role = role or name
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST_EC2 if trust is None else trust))
    if policy:
        iam.put_role_policy(RoleName=role, PolicyName="app", PolicyDocument=json.dumps(policy))
    profile = iam.create_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role)
    return profile


def launch(sandbox, profile=None, **metadata_options):
    kwargs = {"ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 1}
    if profile:
        kwargs["IamInstanceProfile"] = {"Name": profile}
    if metadata_options:
        kwargs["MetadataOptions"] = metadata_options
    instance_id = sandbox.client("ec2").run_instances(**kwargs)["Instances"][0]["InstanceId"]
    if metadata_options:  # moto's RunInstances may not keep them all: set them as AWS would have
        sandbox.client("ec2").modify_instance_metadata_options(InstanceId=instance_id, **metadata_options)
    return instance_id


def request(emulator, method, path, headers=None):
    """(status, headers, body), or None when the connection closed with no answer."""
    connection = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode("utf-8")
    except (http.client.RemoteDisconnected, ConnectionResetError):
        return None
    finally:
        connection.close()


def token_of(emulator, ttl="21600"):
    status, headers, body = request(emulator, "PUT", "/latest/api/token", {TTL: ttl})
    assert status == 200
    assert headers[TTL] == ttl
    return body


def get(emulator, path, token=None):
    status, _headers, body = request(emulator, "GET", path, {TOKEN: token} if token else {})
    return status, body


def document(emulator, path, token=None):
    status, body = get(emulator, path, token)
    assert status == 200, (status, body)
    return json.loads(body)


def served(emulator, path):
    """(status, body) straight from ``respond`` (no HTTP): for emulators driven by a fake ``now``."""
    status, _headers, body = emulator.respond("GET", path, {})
    return status, body


def served_document(emulator, path):
    status, body = served(emulator, path)
    assert status == 200, (status, body)
    return json.loads(body)


def caller_of(sandbox, credentials):
    """STS GetCallerIdentity against the sandbox, with credentials an instance was served."""
    sts = boto3.client("sts", endpoint_url=sandbox.url, region_name=sandbox.REGION,
                       aws_access_key_id=credentials["AccessKeyId"],
                       aws_secret_access_key=credentials["SecretAccessKey"],
                       aws_session_token=credentials["Token"])
    return sts.get_caller_identity()["Arn"]


def create_role(sandbox, name, trust=None):
    sandbox.client("iam").create_role(RoleName=name,
                                      AssumeRolePolicyDocument=json.dumps(TRUST_EC2 if trust is None else trust))


def swap_role(sandbox, profile, old, new):
    """The role inside a profile replaced, the association left alone."""
    iam = sandbox.client("iam")
    iam.remove_role_from_instance_profile(InstanceProfileName=profile, RoleName=old)
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=new)


@pytest.fixture(autouse=True)
def plain_ec2_timing(sandbox):
    """These tests are about the metadata service, not about EC2's own delays: here the sandbox's
    ``profile_propagation`` window is closed (tests/sandbox/rules.py: RunInstances, Associate and
    Replace refused for a while after a profile is created or given a role), and instances and
    associations settle at once (tests/sandbox/moto_fixes.py: ``pending``, ``associating``)."""
    rules = getattr(sandbox, "rules", None)
    if rules is not None:
        rules.configure({"propagation_seconds": 0})
    transitions = getattr(sandbox, "transitions", None)
    if transitions is None:
        yield
        return
    with transitions.instant():
        yield


@pytest.fixture
def imds(sandbox):
    """``imds(instance_id, **options)`` starts the instance's emulator; all stop at the end."""
    yield sandbox.imds.start
    sandbox.imds.stop_all()


# ---- IMDSv2 session tokens --------------------------------------------------------------------


@pytest.mark.parametrize("ttl", [None, "0", "21601", "-5", "six hours", ""])
def test_a_token_needs_a_ttl_of_1_to_21600_seconds(sandbox, imds, ttl):
    emulator = imds(launch(sandbox))
    status, _headers, _body = request(emulator, "PUT", "/latest/api/token", {TTL: ttl} if ttl is not None else {})
    assert status == 400


@pytest.mark.parametrize("ttl", ["1", "21600"])
def test_a_token_is_issued_with_its_ttl(sandbox, imds, ttl):
    emulator = imds(launch(sandbox))
    assert token_of(emulator, ttl)


def test_a_token_put_carrying_x_forwarded_for_is_refused(sandbox, imds):
    emulator = imds(launch(sandbox))
    status, _headers, _body = request(emulator, "PUT", "/latest/api/token", {TTL: "60", "X-Forwarded-For": "10.0.0.9"})
    assert status == 403


def test_a_token_put_elsewhere_is_refused(sandbox, imds):
    emulator = imds(launch(sandbox))
    assert request(emulator, "PUT", "/latest/meta-data/instance-id", {TTL: "60"})[0] == 403


def test_http_tokens_optional_answers_with_or_without_a_valid_token(sandbox, imds):
    instance_id = launch(sandbox)
    emulator = imds(instance_id)
    assert get(emulator, "/latest/meta-data/instance-id") == (200, instance_id)
    assert get(emulator, "/latest/meta-data/instance-id", token_of(emulator)) == (200, instance_id)
    assert get(emulator, "/latest/meta-data/instance-id", "not-a-token")[0] == 401


def test_http_tokens_required_refuses_token_less_requests(sandbox, imds):
    instance_id = launch(sandbox, HttpTokens="required")
    emulator = imds(instance_id)
    assert get(emulator, "/latest/meta-data/instance-id")[0] == 401
    assert get(emulator, "/latest/meta-data/instance-id", "forged")[0] == 401
    assert get(emulator, "/latest/meta-data/instance-id", token_of(emulator)) == (200, instance_id)


def test_metadata_options_are_read_live(sandbox, imds):
    instance_id = launch(sandbox)
    emulator = imds(instance_id)
    assert get(emulator, "/latest/meta-data/instance-id")[0] == 200
    sandbox.client("ec2").modify_instance_metadata_options(InstanceId=instance_id, HttpTokens="required")
    assert get(emulator, "/latest/meta-data/instance-id")[0] == 401


def test_a_token_expires_after_its_ttl(sandbox):
    clock = Clock()
    instance_id = launch(sandbox)
    emulator = ImdsEmulator(sandbox, instance_id, clock=clock)
    status, headers, token = emulator.respond("PUT", "/latest/api/token", {TTL: "5"})
    assert (status, dict(headers)[TTL]) == (200, "5")
    assert emulator.respond("GET", "/latest/meta-data/instance-id", {TOKEN: token})[0] == 200
    clock.now += 5
    assert emulator.respond("GET", "/latest/meta-data/instance-id", {TOKEN: token})[0] == 401


def test_a_token_of_one_instance_is_refused_by_another(sandbox, imds):
    first, second = imds(launch(sandbox)), imds(launch(sandbox))
    assert get(second, "/latest/meta-data/instance-id", token_of(first))[0] == 401


def test_a_get_with_a_token_through_a_proxy_is_refused(sandbox, imds):
    emulator = imds(launch(sandbox))
    headers = {TOKEN: token_of(emulator), "X-Forwarded-For": "10.0.0.9"}
    assert request(emulator, "GET", "/latest/meta-data/instance-id", headers)[0] == 403


def test_http_endpoint_disabled_serves_nothing(sandbox, imds):
    instance_id = launch(sandbox)
    emulator = imds(instance_id)
    sandbox.client("ec2").modify_instance_metadata_options(InstanceId=instance_id, HttpEndpoint="disabled")
    assert request(emulator, "PUT", "/latest/api/token", {TTL: "60"})[0] == 403
    assert get(emulator, "/latest/meta-data/instance-id")[0] == 403


def test_a_token_put_beyond_the_hop_limit_gets_no_answer(sandbox, imds):
    instance_id = launch(sandbox)
    emulator = imds(instance_id, hops=2)  # a container on the instance
    assert request(emulator, "PUT", "/latest/api/token", {TTL: "60"}) is None
    assert get(emulator, "/latest/meta-data/instance-id") == (200, instance_id)  # IMDSv1 still answers
    sandbox.client("ec2").modify_instance_metadata_options(InstanceId=instance_id, HttpPutResponseHopLimit=2)
    assert token_of(emulator)


def test_a_v1_only_host_refuses_the_token_put(sandbox, imds):
    instance_id = launch(sandbox)
    emulator = imds(instance_id, v1_only=True)
    assert request(emulator, "PUT", "/latest/api/token", {TTL: "60"})[0] == 403
    assert get(emulator, "/latest/meta-data/instance-id") == (200, instance_id)


def test_the_usual_paths(sandbox, imds):
    instance_id = launch(sandbox)
    emulator = imds(instance_id)
    token = token_of(emulator)
    zone = get(emulator, "/latest/meta-data/placement/availability-zone", token)[1]
    assert zone.startswith(sandbox.REGION)
    assert get(emulator, "/latest/meta-data/placement/region", token) == (200, sandbox.REGION)
    assert get(emulator, "/latest/meta-data/placement/availability-zone/", token) == (200, zone)
    listing = get(emulator, "/latest/meta-data/", token)[1].split("\n")
    assert "instance-id" in listing and "placement/" in listing and "iam/" not in listing
    identity = document(emulator, "/latest/dynamic/instance-identity/document", token)
    assert identity["instanceId"] == instance_id
    assert identity["region"] == sandbox.REGION
    assert identity["accountId"] == "123456789012"
    assert get(emulator, "/latest/meta-data/no-such-thing", token)[0] == 404


# ---- iam/ from the instance's current association -------------------------------------------------


def test_no_profile_means_no_iam_subtree(sandbox, imds):
    emulator = imds(launch(sandbox))
    token = token_of(emulator)
    for path in ("/latest/meta-data/iam/", "/latest/meta-data/iam/info", "/latest/meta-data/iam/security-credentials/"):
        assert get(emulator, path, token)[0] == 404


def test_iam_info_and_credentials_of_the_associated_profile(sandbox, imds):
    profile = make_profile(sandbox, "web-app")
    instance_id = launch(sandbox, "web-app")
    emulator = imds(instance_id)
    token = token_of(emulator)
    assert "iam/" in get(emulator, "/latest/meta-data/", token)[1].split("\n")
    assert get(emulator, "/latest/meta-data/iam/", token) == (200, "info\nsecurity-credentials/")
    info = document(emulator, "/latest/meta-data/iam/info", token)
    assert info["Code"] == "Success"
    assert info["InstanceProfileArn"] == profile["Arn"]
    assert info["InstanceProfileId"] == profile["InstanceProfileId"]
    assert datetime.datetime.strptime(info["LastUpdated"], "%Y-%m-%dT%H:%M:%SZ")
    assert get(emulator, "/latest/meta-data/iam/security-credentials/", token) == (200, "web-app")
    credentials = document(emulator, "/latest/meta-data/iam/security-credentials/web-app", token)
    assert credentials["Code"] == "Success"
    assert credentials["Type"] == "AWS-HMAC"
    assert credentials["LastUpdated"] == info["LastUpdated"]
    assert credentials["AccessKeyId"].startswith("ASIA")
    expiration = datetime.datetime.strptime(credentials["Expiration"], "%Y-%m-%dT%H:%M:%SZ")
    assert expiration > datetime.datetime.strptime(credentials["LastUpdated"], "%Y-%m-%dT%H:%M:%SZ")
    assert get(emulator, "/latest/meta-data/iam/security-credentials/other-role", token)[0] == 404
    # minted by STS AssumeRole on the role, session name the instance id
    sts = boto3.client("sts", endpoint_url=sandbox.url, region_name=sandbox.REGION,
                       aws_access_key_id=credentials["AccessKeyId"],
                       aws_secret_access_key=credentials["SecretAccessKey"],
                       aws_session_token=credentials["Token"])
    assert sts.get_caller_identity()["Arn"] == "arn:aws:sts::123456789012:assumed-role/web-app/" + instance_id
    # the same credentials until they come close to expiring
    again = document(emulator, "/latest/meta-data/iam/security-credentials/web-app", token)
    assert again["AccessKeyId"] == credentials["AccessKeyId"]


def test_a_role_ec2_cannot_assume_is_refused_in_its_credentials_document_not_in_iam_info(
        sandbox, imds, monkeypatch):
    profile = make_profile(sandbox, "lambda-only", trust=TRUST_LAMBDA)
    emulator = imds(launch(sandbox, "lambda-only"))
    monkeypatch.setattr(emulator, "_mint", lambda role_arn: pytest.fail("EC2 must not get credentials"))
    token = token_of(emulator)
    info = document(emulator, INFO, token)
    assert info == {"Code": "Success", "LastUpdated": info["LastUpdated"], "InstanceProfileArn": profile["Arn"],
                    "InstanceProfileId": profile["InstanceProfileId"]}
    assert list(info) == ["Code", "LastUpdated", "InstanceProfileArn", "InstanceProfileId"]
    assert get(emulator, LISTING, token) == (200, "lambda-only")
    refused = document(emulator, LISTING + "lambda-only", token)
    assert list(refused) == ["Code", "Message", "LastUpdated"]
    assert refused["Code"] == "AssumeRoleUnauthorizedAccess"
    assert refused["Message"] == ("EC2 cannot assume the role lambda-only.  Please see documentation at "
                                  "https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_iam-ec2.html"
                                  "#troubleshoot_iam-ec2_errors-info-doc.")
    assert refused["LastUpdated"] == info["LastUpdated"]  # the refresh that was refused
    assert not emulator._credentials  # pylint: disable=protected-access


def test_a_trust_policy_fixed_shows_at_the_next_refresh(sandbox):
    make_profile(sandbox, "web-app", trust=TRUST_LAMBDA)
    emulator = ImdsEmulator(sandbox, launch(sandbox, "web-app"), now=Now())
    assert served_document(emulator, LISTING + "web-app")["Code"] == "AssumeRoleUnauthorizedAccess"
    sandbox.client("iam").update_assume_role_policy(RoleName="web-app", PolicyDocument=json.dumps(TRUST_EC2))
    # "Your application will need to wait until the next automatically scheduled refresh"
    assert served_document(emulator, LISTING + "web-app")["Code"] == "AssumeRoleUnauthorizedAccess"
    assert emulator.rotate() == 1
    assert served_document(emulator, LISTING + "web-app")["Code"] == "Success"


def test_a_deleted_profile_is_instance_profile_not_found(sandbox, imds):
    make_profile(sandbox, "web-app")
    emulator = imds(launch(sandbox, "web-app"))
    iam = sandbox.client("iam")
    token = token_of(emulator)
    assert document(emulator, LISTING + "web-app", token)["Code"] == "Success"  # served once
    profile_id = iam.get_instance_profile(InstanceProfileName="web-app")["InstanceProfile"]["InstanceProfileId"]
    iam.remove_role_from_instance_profile(InstanceProfileName="web-app", RoleName="web-app")
    iam.delete_instance_profile(InstanceProfileName="web-app")
    info = document(emulator, INFO, token)
    assert list(info) == ["Code", "Message", "LastUpdated"]
    assert info["Code"] == "InstanceProfileNotFound"
    assert info["Message"] == "Instance Profile with Id {0} cannot be found.  Please see documentation at {1}.".format(
        profile_id, TROUBLESHOOTING)
    assert TROUBLESHOOTING.endswith("troubleshoot_iam-ec2.html#troubleshoot_iam-ec2_errors-info-doc")
    # EC2 "can no longer provide credentials": none listed, none served, at once (our reading)
    assert get(emulator, LISTING, token)[0] == 404
    assert get(emulator, LISTING + "web-app", token)[0] == 404
    # ... and one created again under the same name is another profile (another id)
    iam.create_instance_profile(InstanceProfileName="web-app")
    iam.add_role_to_instance_profile(InstanceProfileName="web-app", RoleName="web-app")
    assert document(emulator, "/latest/meta-data/iam/info", token_of(emulator))["Code"] == "InstanceProfileNotFound"


def test_a_profile_without_role_lists_no_role(sandbox, imds):
    make_profile(sandbox, "web-app")
    emulator = imds(launch(sandbox, "web-app"))
    sandbox.client("iam").remove_role_from_instance_profile(InstanceProfileName="web-app", RoleName="web-app")
    token = token_of(emulator)
    info = document(emulator, "/latest/meta-data/iam/info", token)
    assert info["Code"] == "Success"
    assert info["Message"] == "Instance Profile does not contain a role."
    assert get(emulator, "/latest/meta-data/iam/security-credentials/", token)[0] == 404


def test_a_role_swapped_inside_the_profile_is_served_as_the_old_role_until_rotation(sandbox):
    now = Now()
    profile = make_profile(sandbox, "web-app", role="old-role")
    create_role(sandbox, "new-role")
    instance_id = launch(sandbox, "web-app")
    emulator = ImdsEmulator(sandbox, instance_id, now=now, rotation_seconds=60)
    assert served(emulator, LISTING) == (200, "old-role")
    first = served_document(emulator, LISTING + "old-role")
    assert caller_of(sandbox, first) == "arn:aws:sts::123456789012:assumed-role/old-role/" + instance_id

    swap_role(sandbox, "web-app", "old-role", "new-role")
    now.advance(59)
    # the old role, under its own name and path, with the same credentials: those STS minted for it
    assert served(emulator, LISTING) == (200, "old-role")
    assert served(emulator, LISTING + "new-role")[0] == 404
    kept = served_document(emulator, LISTING + "old-role")
    assert kept == first
    assert caller_of(sandbox, kept) == "arn:aws:sts::123456789012:assumed-role/old-role/" + instance_id
    info = served_document(emulator, INFO)
    assert (info["Code"], info["InstanceProfileArn"], info["LastUpdated"]) == (
        "Success", profile["Arn"], first["LastUpdated"])

    now.advance(1)  # the rotation: the role the profile holds now, new credentials
    assert served(emulator, LISTING) == (200, "new-role")
    assert served(emulator, LISTING + "old-role")[0] == 404
    fresh = served_document(emulator, LISTING + "new-role")
    assert fresh["AccessKeyId"] != first["AccessKeyId"]
    assert fresh["LastUpdated"] == now.moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert caller_of(sandbox, fresh) == "arn:aws:sts::123456789012:assumed-role/new-role/" + instance_id
    assert served_document(emulator, INFO)["LastUpdated"] == fresh["LastUpdated"]


def test_ec2s_own_schedule_refreshes_hourly_and_before_expiry(sandbox):
    now = Now()
    make_profile(sandbox, "web-app", role="old-role")
    create_role(sandbox, "new-role")
    emulator = ImdsEmulator(sandbox, launch(sandbox, "web-app"), now=now)
    assert emulator.rotation_seconds is None
    first = served_document(emulator, LISTING + "old-role")
    swap_role(sandbox, "web-app", "old-role", "new-role")
    now.advance(ROTATION_INTERVAL - 1)
    assert served(emulator, LISTING) == (200, "old-role")
    assert served_document(emulator, LISTING + "old-role")["AccessKeyId"] == first["AccessKeyId"]
    now.advance(1)
    assert served(emulator, LISTING) == (200, "new-role")
    # however long rotation_seconds is, credentials are refreshed REFRESH_BEFORE before they expire
    emulator.rotation_seconds = 10 * 86400
    fetched = next(iter(emulator._fetched.values()))  # pylint: disable=protected-access
    expiration = fetched["credentials"]["expiration"]
    assert emulator.rotation_due(fetched) == expiration - datetime.timedelta(seconds=REFRESH_BEFORE)


def test_rotate_forces_the_refresh(sandbox, imds):
    make_profile(sandbox, "web-app", role="old-role")
    create_role(sandbox, "new-role")
    instance_id = launch(sandbox, "web-app", HttpTokens="required")
    emulator = imds(instance_id)
    token = token_of(emulator)
    old = document(emulator, LISTING + "old-role", token)
    swap_role(sandbox, "web-app", "old-role", "new-role")
    assert get(emulator, LISTING, token) == (200, "old-role")
    assert emulator.rotate() == 1
    assert get(emulator, LISTING, token) == (200, "new-role")
    new = document(emulator, LISTING + "new-role", token)
    assert new["AccessKeyId"] != old["AccessKeyId"]
    assert caller_of(sandbox, new) == "arn:aws:sts::123456789012:assumed-role/new-role/" + instance_id
    assert caller_of(sandbox, old) == "arn:aws:sts::123456789012:assumed-role/old-role/" + instance_id


def test_rotation_seconds_in_real_time(sandbox, imds):
    make_profile(sandbox, "web-app", role="old-role")
    create_role(sandbox, "new-role")
    emulator = imds(launch(sandbox, "web-app"), rotation_seconds=0.5)
    assert get(emulator, LISTING) == (200, "old-role")
    swap_role(sandbox, "web-app", "old-role", "new-role")
    assert get(emulator, LISTING) == (200, "old-role")
    time.sleep(0.6)
    assert get(emulator, LISTING) == (200, "new-role")


def test_a_role_removed_stays_until_rotation_then_none(sandbox):
    now = Now()
    make_profile(sandbox, "web-app")
    emulator = ImdsEmulator(sandbox, launch(sandbox, "web-app"), now=now, rotation_seconds=30)
    first = served_document(emulator, LISTING + "web-app")
    sandbox.client("iam").remove_role_from_instance_profile(InstanceProfileName="web-app", RoleName="web-app")
    now.advance(29)
    assert served_document(emulator, LISTING + "web-app") == first
    assert "Message" not in served_document(emulator, INFO)
    now.advance(1)
    assert served(emulator, LISTING)[0] == 404
    assert served_document(emulator, INFO)["Message"] == "Instance Profile does not contain a role."
    # ... and a role added to the empty profile shows at the next refresh, not before
    sandbox.client("iam").add_role_to_instance_profile(InstanceProfileName="web-app", RoleName="web-app")
    now.advance(29)
    assert served(emulator, LISTING)[0] == 404
    now.advance(1)
    assert served(emulator, LISTING) == (200, "web-app")


@pytest.mark.parametrize("value", [-1, "soon", True, float("inf"), float("nan")])
def test_rotation_seconds_must_be_seconds(sandbox, value):
    with pytest.raises(ValueError, match="rotation_seconds"):
        ImdsEmulator(sandbox, "i-0123456789abcdef0", rotation_seconds=value)


def test_a_new_association_shows_after_the_propagation_delay(sandbox):
    clock = Clock()
    make_profile(sandbox, "web-app")
    instance_id = launch(sandbox)
    emulator = ImdsEmulator(sandbox, instance_id, propagation_delay=5, clock=clock).start()
    try:
        assert emulator.respond("GET", "/latest/meta-data/iam/info", {})[0] == 404
        sandbox.client("ec2").associate_iam_instance_profile(InstanceId=instance_id,
                                                             IamInstanceProfile={"Name": "web-app"})
        assert emulator.respond("GET", "/latest/meta-data/iam/info", {})[0] == 404  # seen now: 5 s from here
        clock.now += 4.9
        assert emulator.respond("GET", "/latest/meta-data/iam/info", {})[0] == 404
        clock.now += 0.1
        status, _headers, body = emulator.respond("GET", "/latest/meta-data/iam/info", {})
        assert (status, json.loads(body)["Code"]) == (200, "Success")
    finally:
        emulator.stop()


def test_a_replaced_association_serves_the_old_role_until_it_propagates(sandbox):
    clock = Clock()
    make_profile(sandbox, "old")
    new = make_profile(sandbox, "new")
    instance_id = launch(sandbox, "old")
    emulator = ImdsEmulator(sandbox, instance_id, propagation_delay=3, clock=clock).start()
    try:
        listing = "/latest/meta-data/iam/security-credentials/"
        assert emulator.respond("GET", listing, {})[2] == "old"  # the profile it booted with: at once
        ec2 = sandbox.client("ec2")
        association = ec2.describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [instance_id]}])["IamInstanceProfileAssociations"][0]
        ec2.replace_iam_instance_profile_association(AssociationId=association["AssociationId"],
                                                     IamInstanceProfile={"Name": "new"})
        assert emulator.respond("GET", listing, {})[2] == "old"  # no gap: the old role until the new one shows
        clock.now += 3
        assert emulator.respond("GET", listing, {})[2] == "new"
        info = json.loads(emulator.respond("GET", "/latest/meta-data/iam/info", {})[2])
        assert info["InstanceProfileArn"] == new["Arn"]
    finally:
        emulator.stop()


def test_a_disassociated_profile_disappears(sandbox, imds):
    make_profile(sandbox, "web-app")
    instance_id = launch(sandbox, "web-app")
    emulator = imds(instance_id)
    assert get(emulator, "/latest/meta-data/iam/info")[0] == 200
    ec2 = sandbox.client("ec2")
    association = ec2.describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}])["IamInstanceProfileAssociations"][0]
    ec2.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])
    assert get(emulator, "/latest/meta-data/iam/info")[0] == 404


def test_the_emulator_reads_are_not_in_the_request_log(sandbox, imds):
    make_profile(sandbox, "web-app")
    emulator = imds(launch(sandbox, "web-app"))
    before = len(sandbox.calls())
    document(emulator, "/latest/meta-data/iam/security-credentials/web-app", token_of(emulator))
    assert sandbox.calls()[before:] == []


# ---- the SDKs' own credential provider, unchanged ----------------------------------------------

APPLICATION = textwrap.dedent("""
    import json, boto3, botocore.exceptions
    session = boto3.Session()
    out = {"method": session.get_credentials().method}
    out["arn"] = session.client("sts").get_caller_identity()["Arn"]
    out["buckets"] = [b["Name"] for b in session.client("s3").list_buckets()["Buckets"]]
    try:
        session.client("s3").create_bucket(Bucket="not-allowed")
        out["create_bucket"] = "allowed"
    except botocore.exceptions.ClientError as exc:
        out["create_bucket"] = exc.response["Error"]["Code"]
    print(json.dumps(out))
""")


def run_application(emulator):
    """A plain boto3 program on the instance: no keys anywhere, only the metadata endpoint."""
    env = emulator.instance_env()
    assert not any(key in env for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))
    completed = subprocess.run([sys.executable, "-c", APPLICATION], env=env, capture_output=True, text=True,
                               timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)


@pytest.mark.parametrize("http_tokens", ["optional", "required"])
def test_botocore_credential_provider_works_unchanged(sandbox, imds, http_tokens):
    make_profile(sandbox, "web-app", policy=S3_READ)
    sandbox.client("s3").create_bucket(Bucket="data")
    instance_id = launch(sandbox, "web-app", HttpTokens=http_tokens)
    emulator = imds(instance_id)
    seen = run_application(emulator)
    assert seen["method"] == "iam-role"
    assert seen["arn"] == "arn:aws:sts::123456789012:assumed-role/web-app/" + instance_id
    assert seen["buckets"] == ["data"]
    assert seen["create_bucket"] == "allowed"  # moto's IAM enforcement is off unless switched on
    # botocore asked for a session token first, and used it
    assert emulator.requests[0]["method"] == "PUT" and emulator.requests[0]["status"] == 200
    assert all(r["token"] == "valid" for r in emulator.requests if r["method"] == "GET")


def test_with_iam_enforcement_the_role_gets_exactly_its_policies(sandbox, imds):
    make_profile(sandbox, "web-app", policy=S3_READ)
    sandbox.client("s3").create_bucket(Bucket="data")
    emulator = imds(launch(sandbox, "web-app", HttpTokens="required"))
    with iam_enforcement(sandbox):
        assert iam_enforcement_enabled()
        seen = run_application(emulator)
        assert sandbox.client("iam").list_roles()["Roles"]  # the sandbox's own keys still work
    assert not iam_enforcement_enabled()
    assert seen["buckets"] == ["data"]
    assert seen["create_bucket"] == "AccessDenied"


# ---- fleet, control API, loopback only ------------------------------------------------------------


def control(sandbox, method, path, body=None):
    data = json.dumps(body).encode("utf-8") if body is not None else None
    req = urllib.request.Request(sandbox.url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_control_api_starts_lists_and_stops_emulators(sandbox):
    first, second = launch(sandbox), launch(sandbox)
    status, started = control(sandbox, "POST", "/_sandbox/imds/" + first, {"propagation_delay": 2})
    assert status == 200
    assert started["instance_id"] == first
    assert started["endpoint"].startswith("http://127.0.0.1:")
    assert started["propagation_delay"] == 2
    assert started["env"]["AWS_EC2_METADATA_SERVICE_ENDPOINT"] == started["endpoint"] + "/"
    assert control(sandbox, "POST", "/_sandbox/imds/" + first)[1]["endpoint"] == started["endpoint"]  # idempotent
    control(sandbox, "POST", "/_sandbox/imds/" + second, {"v1_only": True})
    listed = control(sandbox, "GET", "/_sandbox/imds")[1]["emulators"]
    assert sorted(e["instance_id"] for e in listed) == sorted([first, second])
    urllib.request.build_opener(urllib.request.ProxyHandler({})).open(started["endpoint"] + "/latest/meta-data/")
    one = control(sandbox, "GET", "/_sandbox/imds/" + first)[1]
    assert one["requests"][-1]["path"] == "/latest/meta-data/"
    assert control(sandbox, "DELETE", "/_sandbox/imds/" + first) == (200, {"stopped": 1})
    assert control(sandbox, "GET", "/_sandbox/imds/" + first)[0] == 404
    assert control(sandbox, "DELETE", "/_sandbox/imds") == (200, {"stopped": 1})
    assert len(sandbox.imds) == 0


def test_control_api_sets_rotation_and_rotates(sandbox):
    make_profile(sandbox, "web-app", role="old-role")
    create_role(sandbox, "new-role")
    instance_id = launch(sandbox, "web-app")
    status, started = control(sandbox, "POST", "/_sandbox/imds/" + instance_id, {"rotation_seconds": 600})
    assert (status, started["rotation_seconds"]) == (200, 600)
    emulator = sandbox.imds.get(instance_id)
    assert get(emulator, LISTING) == (200, "old-role")
    swap_role(sandbox, "web-app", "old-role", "new-role")
    assert get(emulator, LISTING) == (200, "old-role")
    assert control(sandbox, "POST", "/_sandbox/imds/" + instance_id + "/rotate") == (200, {"rotated": 1})
    assert get(emulator, LISTING) == (200, "new-role")
    assert control(sandbox, "POST", "/_sandbox/imds/" + instance_id, {"rotation_seconds": None})[1][
        "rotation_seconds"] is None
    status, body = control(sandbox, "POST", "/_sandbox/imds/" + instance_id, {"rotation_seconds": -3})
    assert status == 400 and "rotation_seconds" in body["error"]
    assert control(sandbox, "GET", "/_sandbox/imds/" + instance_id + "/rotate")[0] == 405
    assert control(sandbox, "POST", "/_sandbox/imds/i-0123456789abcdef0/rotate")[0] == 404
    assert control(sandbox, "POST", "/_sandbox/imds/" + instance_id + "/spin")[0] == 404


def test_control_api_refuses_unknown_instances_and_options(sandbox):
    status, body = control(sandbox, "POST", "/_sandbox/imds/i-0123456789abcdef0")
    assert status == 400 and "no instance i-0123456789abcdef0" in body["error"]
    status, body = control(sandbox, "POST", "/_sandbox/imds/" + launch(sandbox), {"ttl": 3})
    assert status == 400 and "ttl" in body["error"]


def test_control_api_switches_iam_enforcement(sandbox):
    try:
        assert control(sandbox, "POST", "/_sandbox/iam-enforcement", {"enabled": True}) == (200, {"enabled": True})
        assert sandbox.client("ec2").describe_instances()["Reservations"] == []  # the admin keys work
    finally:
        assert control(sandbox, "POST", "/_sandbox/iam-enforcement", {"enabled": False}) == (200, {"enabled": False})


def test_reset_stops_the_emulators_and_enforcement(sandbox):
    emulator = sandbox.imds.start(launch(sandbox))
    control(sandbox, "POST", "/_sandbox/iam-enforcement", {"enabled": True})
    sandbox.reset()
    assert not emulator.running
    assert len(sandbox.imds) == 0
    assert not iam_enforcement_enabled()


def test_loopback_only(sandbox):
    with pytest.raises(ValueError):
        ImdsEmulator(sandbox, "i-0123456789abcdef0", host="0.0.0.0")


def test_an_emulator_on_ipv6_loopback(sandbox):
    instance_id = launch(sandbox)
    emulator = ImdsEmulator(sandbox, instance_id, host="::1")
    try:
        emulator.start()
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    try:
        assert emulator.url.startswith("http://[::1]:")
        assert get(emulator, "/latest/meta-data/instance-id") == (200, instance_id)
    finally:
        emulator.stop()


def test_instance_env_has_no_keys_and_enables_imds(sandbox, imds):
    env = imds(launch(sandbox)).instance_env(base=dict(os.environ, AWS_PROFILE="someone", HOME="/tmp"))
    assert env["AWS_EC2_METADATA_DISABLED"] == "false"
    assert "AWS_PROFILE" not in env and "AWS_ACCESS_KEY_ID" not in env
    assert env["AWS_ENDPOINT_URL"] == sandbox.url
    assert env["HOME"] == "/tmp"


# ---- instances of member accounts -----------------------------------------------------------------


def member_instance(sandbox, account_id, profile="web-app", external_id=None):
    """(instance id, profile) launched in a member account by a client of that account (a session of
    its OrganizationAccountAccessRole, as the user's tools get one), with a profile of that account."""
    session = credentials_for(sandbox, account_id, session_name="deployer", external_id=external_id)
    iam = client_for(sandbox, session, "iam")
    iam.create_role(RoleName=profile, AssumeRolePolicyDocument=json.dumps(TRUST_EC2))
    made = iam.create_instance_profile(InstanceProfileName=profile)["InstanceProfile"]
    iam.add_role_to_instance_profile(InstanceProfileName=profile, RoleName=profile)
    instance_id = client_for(sandbox, session, "ec2").run_instances(
        ImageId="ami-12345678", MinCount=1, MaxCount=1, IamInstanceProfile={"Name": profile})["Instances"][0][
        "InstanceId"]
    return instance_id, made


def access_sessions(account_id, instance_id):
    """The sessions of the member's access role moto holds for the emulator of ``instance_id``."""
    from moto.sts.models import sts_backends

    return [session for session in sts_backends[account_id]["aws"].assumed_roles
            if session.role_arn == role_arn(account_id) and session.session_name == ACCESS_SESSION_PREFIX + instance_id]


def test_an_instance_of_a_member_account_is_served_as_that_accounts(sandbox, imds):
    org = seed_organization(sandbox, ["dev", "web"])
    web = org["ids"]["web"]
    instance_id, profile = member_instance(sandbox, web)
    since = len(sandbox.app.log)
    emulator = imds(instance_id)  # no account: the emulator finds it
    assert emulator.account == web and emulator.describe()["account"] == web
    token = token_of(emulator)
    info = document(emulator, INFO, token)
    assert info["InstanceProfileArn"] == profile["Arn"] == "arn:aws:iam::{0}:instance-profile/web-app".format(web)
    assert info["InstanceProfileId"] == profile["InstanceProfileId"]
    credentials = document(emulator, LISTING + "web-app", token)
    identity = document(emulator, "/latest/dynamic/instance-identity/document", token)
    assert (identity["accountId"], identity["instanceId"]) == (web, instance_id)
    # EC2's own reads, its AssumeRole into the member account included, stay out of the request log
    assert sandbox.calls()[since:] == []
    assert len(access_sessions(web, instance_id)) == 1
    assert caller_of(sandbox, credentials) == "arn:aws:sts::{0}:assumed-role/web-app/{1}".format(web, instance_id)
    # its IMDSv1 calls are published in the member account's CloudWatch, not the management account's
    assert get(emulator, "/latest/meta-data/instance-id") == (200, instance_id)
    publish_imds_usage(sandbox, instance_id, no_token=2)
    assert imds_usage(sandbox, instance_id)["MetadataNoToken"] == 3
    assert imds_usage(sandbox, instance_id, account=web)["MetadataNoToken"] == 3
    assert imds_usage(sandbox, instance_id, account=MANAGEMENT_ACCOUNT)["MetadataNoToken"] == 0
    # an instance of the management account, in the same organization, is served as before
    make_profile(sandbox, "web-app")
    own = imds(launch(sandbox, "web-app"))
    assert own.account == MANAGEMENT_ACCOUNT
    assert document(own, "/latest/dynamic/instance-identity/document")["accountId"] == MANAGEMENT_ACCOUNT
    assert caller_of(sandbox, document(own, LISTING + "web-app")) == \
        "arn:aws:sts::{0}:assumed-role/web-app/{1}".format(MANAGEMENT_ACCOUNT, own.instance_id)


def test_the_emulators_access_asks_nothing_of_the_access_roles_trust_conditions(sandbox, imds):
    org = seed_organization(sandbox, ["web"], external_id="keyless-external-7f3a")
    web = org["ids"]["web"]
    instance_id, _profile = member_instance(sandbox, web, external_id="keyless-external-7f3a")
    since = len(sandbox.app.log)
    emulator = imds(instance_id, account=web)
    credentials = document(emulator, LISTING + "web-app")
    assert caller_of(sandbox, credentials) == "arn:aws:sts::{0}:assumed-role/web-app/{1}".format(web, instance_id)
    # EC2's AssumeRole, without the external ID, is marked as its own: neither refused nor logged
    assert sandbox.calls("sts", "AssumeRole", since=since) == []
    assert access_sessions(web, instance_id)
    # a user's, the same without the external ID, is refused by the trust policy (and logged)
    with pytest.raises(botocore.exceptions.ClientError):
        credentials_for(sandbox, web)
    assert [call.get("injected") for call in sandbox.calls("sts", "AssumeRole", since=since)] == [
        "rule:assume_role_trust"]


def test_the_member_accounts_session_is_assumed_again_before_it_ends(sandbox):
    web = seed_organization(sandbox, ["web"])["ids"]["web"]
    instance_id, _profile = member_instance(sandbox, web)
    now = Now()
    emulator = ImdsEmulator(sandbox, instance_id, now=now).start()
    try:
        assert served(emulator, LISTING) == (200, "web-app")
        assert len(access_sessions(web, instance_id)) == 1
        now.advance(ACCESS_SESSION_SECONDS - REFRESH_BEFORE - 1)
        assert served(emulator, "/latest/meta-data/instance-id") == (200, instance_id)
        assert len(access_sessions(web, instance_id)) == 1
        now.advance(1)
        assert served(emulator, "/latest/meta-data/instance-id") == (200, instance_id)
        assert len(access_sessions(web, instance_id)) == 2
        assert served_document(emulator, INFO)["Code"] == "Success"
        assert emulator.errors == []
    finally:
        emulator.stop()


def test_a_refused_access_says_what_the_trust_policy_says(sandbox, monkeypatch):
    web = seed_organization(sandbox, ["web"])["ids"]["web"]
    instance_id, _profile = member_instance(sandbox, web)
    client_for(sandbox, credentials_for(sandbox, web), "iam").update_assume_role_policy(
        RoleName=DEFAULT_ROLE, PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Principal": {"AWS": MANAGEMENT_ACCOUNT}, "Action": "sts:AssumeRole"}]}))
    emulator = ImdsEmulator(sandbox, instance_id, account=web)

    def refused(**_kwargs):  # what STS would answer were the request not EC2's own
        raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}},
                                              "AssumeRole")

    sts = emulator._management_client("sts")  # pylint: disable=protected-access
    monkeypatch.setattr(sts, "assume_role", refused)
    with pytest.raises(ValueError) as raised:
        emulator.start()
    message = str(raised.value)
    assert role_arn(web) in message and "AccessDenied" in message
    assert "explicit Deny" in message and "assume_role_trust" in message
    assert "arn:aws:iam::{0}:root".format(MANAGEMENT_ACCOUNT) in message


def test_control_api_takes_the_instances_account(sandbox):
    org = seed_organization(sandbox, ["dev", "web"])
    dev, web = org["ids"]["dev"], org["ids"]["web"]
    instance_id, _profile = member_instance(sandbox, web)
    try:
        for bad in ("12345", "12345678901x", 123456789012, "", ["123456789012"]):
            status, body = control(sandbox, "POST", "/_sandbox/imds/" + instance_id, {"account": bad})
            assert status == 400 and "12 digits" in body["error"] and repr(bad) in body["error"], (bad, body)
        status, body = control(sandbox, "POST", "/_sandbox/imds/" + instance_id, {"account": dev})
        assert status == 400 and "no instance {0} in account {1}".format(instance_id, dev) in body["error"]
        status, body = control(sandbox, "POST", "/_sandbox/imds/" + instance_id, {"account": "444455556666"})
        assert status == 400 and "neither" in body["error"] and DEFAULT_ROLE in body["error"]
        assert len(sandbox.imds) == 0
        status, started = control(sandbox, "POST", "/_sandbox/imds/" + instance_id, {"account": web})
        assert (status, started["account"]) == (200, web)
        assert control(sandbox, "GET", "/_sandbox/imds")[1]["emulators"][0]["account"] == web
        status, body = control(sandbox, "POST", "/_sandbox/imds/" + instance_id, {"account": dev})
        assert status == 400 and "stop it first" in body["error"]
        assert control(sandbox, "POST", "/_sandbox/imds/" + instance_id, {"account": None})[1]["account"] == web
        # found without the account as well; past usage goes to its account
        control(sandbox, "DELETE", "/_sandbox/imds/" + instance_id)
        assert control(sandbox, "POST", "/_sandbox/imds/" + instance_id)[1]["account"] == web
        assert control(sandbox, "POST", "/_sandbox/imds-metrics/" + instance_id, {"no_token": 2}) == (
            200, {"published": {"MetadataNoToken": 2, "MetadataNoTokenRejected": 0}})
        assert imds_usage(sandbox, instance_id, account=web)["MetadataNoToken"] == 2
        status, body = control(sandbox, "POST", "/_sandbox/imds-metrics/" + instance_id, {"no_token": 1,
                                                                                          "account": dev})
        assert status == 400 and "no instance" in body["error"]
    finally:
        sandbox.imds.stop_all()
