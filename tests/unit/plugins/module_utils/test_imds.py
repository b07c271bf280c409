"""keyless.aws imds: token first, v1 only when allowed, waiting, verification, no secret out.

A scripted metadata service (``FakeImds``) answers ``send``; a fake clock makes waiting
instant and deterministic.
"""

import http.server
import json
import socket
import threading

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import imds
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETSECRET"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN=="
ACCESS_KEY = "ASIAEXAMPLEKEYABCD"
IMDS_TOKEN = "AQAEAexampleIMDSsessiontoken"
PROFILE_ARN = "arn:aws:iam::123456789012:instance-profile/web-app"


def info(code="Success", profile_arn=PROFILE_ARN, message=None):
    if code != "Success":
        return {"Code": code, "Message": message or "nope", "LastUpdated": "2026-01-12T11:18:29Z"}
    document = {"Code": "Success", "LastUpdated": "2026-01-12T11:18:29Z", "InstanceProfileArn": profile_arn,
                "InstanceProfileId": "AIPAEXAMPLE"}
    if message:
        document["Message"] = message
    return document


def credentials(access_key=ACCESS_KEY):
    return {"Code": "Success", "LastUpdated": "2026-01-12T11:18:29Z", "Type": "AWS-HMAC", "AccessKeyId": access_key,
            "SecretAccessKey": SECRET, "Token": SESSION_TOKEN, "Expiration": "2026-01-12T17:18:29Z"}


class State:
    """What the instance serves at one moment: profile (iam/info), role, credentials."""

    def __init__(self, info_doc=None, role="web-app", creds=None, info_status=200, creds_status=200):
        self.info = info_doc
        self.role = role
        self.creds = creds if creds is not None else credentials()
        self.info_status = info_status
        self.creds_status = creds_status


NO_PROFILE = State(info_doc=None, info_status=404, role=None)


class FakeImds:
    """A scripted IMDS: ``states`` are served one look at a time (the last one stays)."""

    def __init__(self, states=(), put=200, v1=True, disabled=False, down=False, server_errors=0):
        self.states = list(states) or [State(info())]
        self.put = put            # status of the token PUT, or None for no answer
        self.v1 = v1              # token-less GETs answered
        self.disabled = disabled  # HttpEndpoint=disabled: 403 to everything
        self.down = down          # nothing answers at all
        self.server_errors = server_errors
        self.requests = []
        self.tokens = set()
        self.looks = 0
        self.expire_token_once = False

    @property
    def state(self):
        return self.states[min(self.looks, len(self.states) - 1)]

    def send(self, method, url, headers, timeout):
        assert url.startswith("http://169.254.169.254/") or url.startswith("http://[fd00:ec2::254]/")
        assert 0 < timeout <= imds.REQUEST_TIMEOUT
        path = url.split("/", 3)[3]
        self.requests.append((method, path, dict(headers)))
        if self.down:
            raise imds.NoAnswer("connection refused")
        if self.server_errors:
            self.server_errors -= 1
            return 503, ""
        if self.disabled:
            return 403, ""
        if method == "PUT":
            if self.put is None:
                raise imds.NoAnswer("timed out")
            if self.put != 200:
                return self.put, ""
            ttl = int(headers[imds.TTL_HEADER])
            assert 1 <= ttl <= imds.MAX_TOKEN_TTL
            token = IMDS_TOKEN + str(len(self.tokens))
            self.tokens.add(token)
            return 200, token
        token = headers.get(imds.TOKEN_HEADER)
        if token is not None:
            if self.expire_token_once:
                self.expire_token_once = False
                self.tokens.discard(token)
            if token not in self.tokens:
                return 401, ""
        elif not self.v1:
            return 401, ""
        return self.get(path)

    def get(self, path):
        if path == imds.INFO_PATH:  # each look starts at iam/info: the next state shows
            self.current = self.state
            self.looks += 1
        state = getattr(self, "current", None) or self.states[0]
        if path == imds.INSTANCE_ID_PATH:
            return 200, "i-0123456789abcdef0"
        if path == imds.REGION_PATH:
            return 200, "eu-west-3"
        if path == imds.ZONE_PATH:
            return 200, "eu-west-3a"
        if path == imds.INFO_PATH:
            if state.info_status != 200:
                return state.info_status, "<html>404 - Not Found</html>"
            return 200, json.dumps(state.info)
        if path == imds.CREDENTIALS_PATH:
            return (200, state.role) if state.role else (404, "")
        if state.role and path == imds.CREDENTIALS_PATH + state.role:
            return state.creds_status, json.dumps(state.creds)
        return 404, ""


class Clock:
    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def params(**overrides):
    base = dict(expected_role=None, expected_instance_profile=None, allow_imdsv1=False, require_imdsv2=False,
                timeout=120.0, verify_with_sts=False, endpoint=None, endpoint_mode=None)
    base.update(overrides)
    return base


def run(fake, clock=None, protected=None, sts_check=None, **overrides):
    clock = clock or Clock()
    protected = protected if protected is not None else []
    return imds.check_instance_credentials(
        params(**overrides), fake.send, protect=protected.append, sts_check=sts_check,
        sleep=clock.sleep, clock=clock, rand=lambda low, high: high)


def failure(fake, clock=None, **overrides):
    with pytest.raises(KeylessError) as caught:
        run(fake, clock=clock, **overrides)
    return caught.value


# ---- endpoint and input -----------------------------------------------------------------


@pytest.mark.parametrize("endpoint, mode, expected", [
    (None, None, "http://169.254.169.254"),
    (None, "ipv4", "http://169.254.169.254"),
    (None, "ipv6", "http://[fd00:ec2::254]"),
    (None, "IPv6", "http://[fd00:ec2::254]"),
    ("http://127.0.0.1:8080/", "ipv6", "http://127.0.0.1:8080"),
    ("http://[::1]:1338", None, "http://[::1]:1338"),
])
def test_endpoint_resolution(endpoint, mode, expected):
    assert imds.resolve_endpoint(endpoint, mode) == expected


@pytest.mark.parametrize("endpoint, mode, param", [
    ("169.254.169.254", None, "endpoint"),
    ("ftp://169.254.169.254", None, "endpoint"),
    (None, "ipv5", "endpoint_mode"),
])
def test_bad_endpoint_fails_naming_the_parameter(endpoint, mode, param):
    with pytest.raises(KeylessError) as caught:
        imds.resolve_endpoint(endpoint, mode)
    assert caught.value.param == param


@pytest.mark.parametrize("overrides, param", [
    (dict(expected_role="web app"), "expected_role"),
    (dict(expected_role="arn:aws:iam::123456789012:instance-profile/web-app"), "expected_role"),
    (dict(expected_instance_profile="arn:aws:iam::123456789012:role/web-app"), "expected_instance_profile"),
    (dict(timeout=-1.0), "timeout"),
    (dict(endpoint="not a url"), "endpoint"),
])
def test_bad_input_fails_before_any_request(overrides, param):
    fake = FakeImds()
    error = failure(fake, **overrides)
    assert error.param == param
    assert fake.requests == []


def test_verify_with_sts_without_botocore_fails_before_any_request():
    fake = FakeImds()
    error = failure(fake, verify_with_sts=True)
    assert error.param == "verify_with_sts"
    assert fake.requests == []


# ---- IMDSv2 first ------------------------------------------------------------------------


def test_v2_session_token_first_then_on_every_request():
    fake = FakeImds()
    result = run(fake, expected_role="web-app", expected_instance_profile="web-app")
    method, path, headers = fake.requests[0]
    assert (method, path) == ("PUT", imds.TOKEN_PATH)
    assert 1 <= int(headers[imds.TTL_HEADER]) <= imds.MAX_TOKEN_TTL
    # The only token-less request is the IMDSv1 probe.
    tokenless = [(m, p) for m, p, h in fake.requests[1:] if imds.TOKEN_HEADER not in h]
    assert tokenless == [("GET", imds.INSTANCE_ID_PATH)]
    assert result["imds_version"] == "v2"
    assert result["imdsv1_enabled"] is True
    assert result["changed"] is False
    assert result["instance_id"] == "i-0123456789abcdef0"
    assert result["region"] == "eu-west-3"
    assert result["availability_zone"] == "eu-west-3a"
    assert result["instance_profile_arn"] == PROFILE_ARN
    assert result["instance_profile_id"] == "AIPAEXAMPLE"
    assert result["role_name"] == "web-app"
    assert result["expiration"] == "2026-01-12T17:18:29Z"
    assert result["last_updated"] == "2026-01-12T11:18:29Z"
    assert result["waited_seconds"] == 0
    assert result["attempts"] == 1
    assert "warnings" not in result


def test_no_secret_in_the_result_and_every_secret_protected():
    fake = FakeImds()
    protected = []
    result = run(fake, protected=protected)
    text = json.dumps(result)
    for secret in (SECRET, SESSION_TOKEN, ACCESS_KEY, IMDS_TOKEN):
        assert secret not in text
    assert result["access_key_id_suffix"] == ACCESS_KEY[-4:]
    assert SECRET in protected and SESSION_TOKEN in protected and ACCESS_KEY in protected
    assert any(value.startswith(IMDS_TOKEN) for value in protected)


def test_imdsv1_disabled_is_reported():
    result = run(FakeImds(v1=False), require_imdsv2=True)
    assert result["imdsv1_enabled"] is False
    assert result["imds_version"] == "v2"


def test_require_imdsv2_fails_when_v1_still_answers():
    fake = FakeImds(v1=True)
    error = failure(fake, require_imdsv2=True)
    assert error.param == "require_imdsv2"
    assert "HttpTokens=required" in error.message
    assert error.details["imdsv1_enabled"] is True
    assert error.details["instance_id"] == "i-0123456789abcdef0"
    assert not any(p == imds.INFO_PATH for _m, p, _h in fake.requests)


def test_an_expired_token_is_replaced_once():
    fake = FakeImds()
    fake.expire_token_once = True
    result = run(fake)
    assert result["role_name"] == "web-app"
    assert [m for m, _p, _h in fake.requests].count("PUT") == 2


# ---- hosts where IMDSv2 does not work ----------------------------------------------------


@pytest.mark.parametrize("put_status", [403, 404, 405])
def test_v1_only_host_fails_unless_allowed(put_status):
    fake = FakeImds(put=put_status)
    error = failure(fake)
    assert error.param == "allow_imdsv1"
    assert "only IMDSv1 works" in error.message
    assert "HTTP {0}".format(put_status) in error.message
    assert not any(p == imds.INFO_PATH for _m, p, _h in fake.requests)


def test_v1_only_host_is_used_when_allowed_with_a_warning():
    fake = FakeImds(put=403)
    result = run(fake, allow_imdsv1=True)
    assert result["imds_version"] == "v1"
    assert result["imdsv1_enabled"] is True
    assert result["role_name"] == "web-app"
    assert "IMDSv1 was used" in result["warnings"][0]
    assert all(imds.TOKEN_HEADER not in h for _m, _p, h in fake.requests)


def test_a_token_request_without_answer_points_at_the_hop_limit():
    error = failure(FakeImds(put=None))
    assert "HttpPutResponseHopLimit" in error.message
    assert error.param == "allow_imdsv1"


def test_a_container_beyond_the_hop_limit_on_an_imdsv2_only_instance_fails_at_once():
    clock = Clock()
    error = failure(FakeImds(put=None, v1=False), clock=clock)
    assert "HttpPutResponseHopLimit" in error.message
    assert clock.sleeps == []


def test_a_disabled_endpoint_fails_at_once():
    clock = Clock()
    error = failure(FakeImds(disabled=True), clock=clock)
    assert "HttpEndpoint=disabled" in error.message
    assert clock.sleeps == []


def test_a_refused_token_with_v1_off_blames_what_is_in_between():
    error = failure(FakeImds(put=403, v1=False))
    assert "X-Forwarded-For" in error.message


def test_a_bad_token_request_fails_at_once():
    error = failure(FakeImds(put=400))
    assert "HTTP 400" in error.message


def test_no_metadata_service_waits_until_timeout():
    clock = Clock()
    error = failure(FakeImds(down=True), clock=clock, timeout=10.0)
    assert "no instance metadata service answered at http://169.254.169.254" in error.message
    assert clock.now - 1000.0 == pytest.approx(10.0)
    assert all(pause <= imds.MAX_DELAY for pause in clock.sleeps)
    assert len(clock.sleeps) > 3


def test_server_errors_are_waited_out():
    result = run(FakeImds(server_errors=3))
    assert result["role_name"] == "web-app"


# ---- waiting for the credentials ---------------------------------------------------------


def test_credentials_appearing_late_are_waited_for():
    clock = Clock()
    fake = FakeImds(states=[NO_PROFILE, NO_PROFILE, State(info(), role=None), State(info())])
    result = run(fake, clock=clock, expected_role="web-app")
    assert result["role_name"] == "web-app"
    assert result["attempts"] == 4
    assert result["waited_seconds"] > 0
    assert result["waited_seconds"] == pytest.approx(sum(clock.sleeps))
    # backoff: doubling up to the cap
    assert clock.sleeps == sorted(clock.sleeps)
    assert all(pause <= imds.MAX_DELAY for pause in clock.sleeps)


def test_no_profile_until_timeout():
    clock = Clock()
    error = failure(FakeImds(states=[NO_PROFILE]), clock=clock, timeout=5.0)
    assert "has no instance profile" in error.message
    assert "i-0123456789abcdef0" in error.message
    assert error.details["attempts"] > 1
    assert clock.now - 1000.0 <= 5.0 + 1e-9


def test_a_profile_without_role_until_timeout():
    fake = FakeImds(states=[State(info(message="Instance Profile does not contain a role."), role=None)])
    error = failure(fake, timeout=3.0)
    assert "holds no role" in error.message
    assert PROFILE_ARN in error.message


def test_a_role_ec2_cannot_assume_fails_at_once():
    clock = Clock()
    # As EC2 answers it: iam/info says Success, the credentials document refuses.
    refused = State(info(), creds={"Code": "AssumeRoleUnauthorizedAccess",
                                   "Message": "EC2 cannot assume the role web-app."})
    error = failure(FakeImds(states=[refused]), clock=clock)
    assert error.code == "AssumeRoleUnauthorizedAccess"
    assert "EC2 cannot assume the role web-app" in error.message
    assert "iam/security-credentials/web-app" in error.message
    assert "ec2.amazonaws.com" in error.message
    assert clock.sleeps == []
    assert error.details["attempts"] == 1


def test_a_deleted_profile_fails_at_once():
    gone = State(info("InstanceProfileNotFound", message="Instance Profile with Id AIPAX cannot be found."), role=None)
    error = failure(FakeImds(states=[gone]))
    assert error.code == "InstanceProfileNotFound"
    assert "no longer exists" in error.message


def test_a_refusal_of_the_role_being_replaced_is_waited_out():
    old = State(info(), role="old-role",
                creds={"Code": "AssumeRoleUnauthorizedAccess", "Message": "EC2 cannot assume the role old-role."})
    result = run(FakeImds(states=[old, old, State(info())]), expected_role="web-app")
    assert result["role_name"] == "web-app"
    assert result["attempts"] == 3


def test_an_unexpected_role_is_waited_on_then_named():
    other = State(info(profile_arn="arn:aws:iam::123456789012:instance-profile/batch"), role="batch")
    error = failure(FakeImds(states=[other]), timeout=4.0, expected_role="web-app")
    assert "gets credentials for the role batch" in error.message
    assert "instance-profile/batch" in error.message
    assert "not for web-app" in error.message


def test_a_swapped_role_shows_after_a_while():
    other = State(info(profile_arn="arn:aws:iam::123456789012:instance-profile/batch"), role="batch")
    result = run(FakeImds(states=[other, other, other, State(info())]), expected_role="web-app",
                 expected_instance_profile="web-app")
    assert result["role_name"] == "web-app"
    assert result["attempts"] == 4


@pytest.mark.parametrize("expected", ["web-app", PROFILE_ARN])
def test_expected_profile_by_name_or_arn(expected):
    assert run(FakeImds(), expected_instance_profile=expected)["instance_profile_arn"] == PROFILE_ARN


@pytest.mark.parametrize("expected", ["batch", "arn:aws:iam::123456789012:instance-profile/batch",
                                      "arn:aws:iam::123456789012:instance-profile/team/web-app"])
def test_unexpected_profile_by_name_or_arn(expected):
    error = failure(FakeImds(), timeout=2.0, expected_instance_profile=expected)
    assert "carries the instance profile {0}".format(PROFILE_ARN) in error.message
    assert expected in error.message


def test_expected_role_arn_must_be_of_the_profile_account():
    assert run(FakeImds(), expected_role="arn:aws:iam::123456789012:role/app/web-app")["role_name"] == "web-app"
    error = failure(FakeImds(), timeout=1.0, expected_role="arn:aws:iam::999999999999:role/web-app")
    assert "arn:aws:iam::999999999999:role/web-app" in error.message


def test_an_incomplete_credentials_document_is_not_success():
    broken = credentials()
    del broken["Token"]
    error = failure(FakeImds(states=[State(info(), creds=broken)]), timeout=2.0)
    assert "Token" in error.message
    assert SECRET not in error.message


def test_credentials_listed_but_not_served_until_timeout():
    error = failure(FakeImds(states=[State(info(), creds_status=404)]), timeout=2.0)
    assert "has not served its credentials" in error.message


def test_timeout_zero_looks_once():
    clock = Clock()
    error = failure(FakeImds(states=[NO_PROFILE]), clock=clock, timeout=0.0)
    assert error.details["attempts"] == 1
    assert clock.sleeps == []


# ---- verify_with_sts ---------------------------------------------------------------------


def test_verify_with_sts_returns_the_assumed_role_arn():
    seen = {}

    def sts_check(creds, region):
        seen.update(creds=creds, region=region)
        return "arn:aws:sts::123456789012:assumed-role/web-app/i-0123456789abcdef0"

    result = run(FakeImds(), sts_check=sts_check, verify_with_sts=True)
    assert result["assumed_role_arn"] == "arn:aws:sts::123456789012:assumed-role/web-app/i-0123456789abcdef0"
    assert seen["region"] == "eu-west-3"
    assert seen["creds"]["SecretAccessKey"] == SECRET


def test_verify_with_sts_fails_when_sts_disagrees():
    error = failure(FakeImds(), sts_check=lambda creds, region: "arn:aws:iam::123456789012:user/someone",
                    verify_with_sts=True)
    assert "user/someone" in error.message
    assert SECRET not in error.message


# ---- Ansible's URL helper as the transport -----------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_PUT(self):
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"token")

    def do_GET(self):
        self.send_response(401)
        self.send_header("Content-Length", "6")
        self.end_headers()
        self.wfile.write(b"denied")


def test_open_url_sender_statuses_and_no_answer(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # must never be used
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        send = imds.open_url_sender()
        url = "http://127.0.0.1:{0}/".format(server.server_address[1])
        assert send("PUT", url + imds.TOKEN_PATH, {imds.TTL_HEADER: "60"}, 2) == (200, "token")
        assert send("GET", url + imds.INFO_PATH, {}, 2) == (401, "denied")
    finally:
        server.shutdown()
        server.server_close()
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(imds.NoAnswer):
        send("GET", "http://127.0.0.1:{0}/".format(closed) + imds.INFO_PATH, {}, 1)


class _V6Server(http.server.HTTPServer):
    address_family = socket.AF_INET6


def test_open_url_sender_reaches_an_ipv6_endpoint():
    try:
        server = _V6Server(("::1", 0), _Handler)
    except OSError:
        pytest.skip("no IPv6 loopback on this machine")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = imds.resolve_endpoint("http://[::1]:{0}".format(server.server_address[1]))
        send = imds.open_url_sender()
        assert send("PUT", endpoint + "/" + imds.TOKEN_PATH, {imds.TTL_HEADER: "60"}, 2) == (200, "token")
    finally:
        server.shutdown()
        server.server_close()
