"""The sandbox's IMDS emulator answers as EC2's instance metadata service does (tests/sandbox/imds.py)."""

import datetime
import http.client
import json
import os
import subprocess
import sys
import textwrap
import urllib.request

import boto3
import pytest

from sandbox.imds import ImdsEmulator
from sandbox.imds import iam_enforcement
from sandbox.imds import iam_enforcement_enabled

TRUST_EC2 = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
TRUST_LAMBDA = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
S3_READ = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["s3:ListAllMyBuckets", "s3:ListBucket", "s3:GetObject"], "Resource": "*"}]}
TTL = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN = "X-aws-ec2-metadata-token"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


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


def test_a_role_that_does_not_trust_ec2_gets_no_credentials(sandbox, imds, monkeypatch):
    make_profile(sandbox, "lambda-only", trust=TRUST_LAMBDA)
    emulator = imds(launch(sandbox, "lambda-only"))
    monkeypatch.setattr(emulator, "_mint", lambda role_arn: pytest.fail("EC2 must not get credentials"))
    token = token_of(emulator)
    info = document(emulator, "/latest/meta-data/iam/info", token)
    assert info["Code"] == "AssumeRoleUnauthorizedAccess"
    assert info["Message"].startswith("EC2 cannot assume the role lambda-only.")
    assert "InstanceProfileArn" not in info
    assert get(emulator, "/latest/meta-data/iam/security-credentials/", token) == (200, "lambda-only")
    refused = document(emulator, "/latest/meta-data/iam/security-credentials/lambda-only", token)
    assert refused["Code"] == "AssumeRoleUnauthorizedAccess"
    assert set(refused) == {"Code", "Message", "LastUpdated"}


def test_a_deleted_profile_is_instance_profile_not_found(sandbox, imds):
    make_profile(sandbox, "web-app")
    emulator = imds(launch(sandbox, "web-app"))
    iam = sandbox.client("iam")
    iam.remove_role_from_instance_profile(InstanceProfileName="web-app", RoleName="web-app")
    iam.delete_instance_profile(InstanceProfileName="web-app")
    info = document(emulator, "/latest/meta-data/iam/info", token_of(emulator))
    assert info["Code"] == "InstanceProfileNotFound"
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
