# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""On the instance: ask its metadata service (IMDS) for the role credentials, as the AWS SDKs
do, and tell whether they arrive, for which profile and role, and how the service is hardened.

No boto3 here: requests go through a ``send(method, url, headers, timeout)`` callable that
returns ``(status, body)`` or raises ``NoAnswer`` (``open_url_sender()`` is Ansible's URL
helper, with no proxy). Secrets (the credentials, the IMDS session token) never leave this
module: ``protect(value)`` is called with each one as soon as it is read, so the module can
mask it in any output, and results carry only non-secret facts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import random
import time

from urllib.error import HTTPError
from urllib.parse import urlparse

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import looks_like_arn
from ansible_collections.keyless.aws.plugins.module_utils.validation import name_from_name_or_arn

IPV4_ENDPOINT = "http://169.254.169.254"
IPV6_ENDPOINT = "http://[fd00:ec2::254]"
TOKEN_PATH = "latest/api/token"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
MAX_TOKEN_TTL = 21600
REQUEST_TIMEOUT = 2.0
FIRST_DELAY = 0.25
MAX_DELAY = 2.0

INSTANCE_ID_PATH = "latest/meta-data/instance-id"
REGION_PATH = "latest/meta-data/placement/region"
ZONE_PATH = "latest/meta-data/placement/availability-zone"
INFO_PATH = "latest/meta-data/iam/info"
CREDENTIALS_PATH = "latest/meta-data/iam/security-credentials/"
CREDENTIAL_FIELDS = ("AccessKeyId", "SecretAccessKey", "Token", "Expiration")

# iam/info or credential codes that waiting does not cure: EC2 retries them only at its next
# scheduled refresh, long after any sensible timeout.
TERMINAL_CODES = ("AssumeRoleUnauthorizedAccess", "InstanceProfileNotFound")
TRUST_FIX = ('let EC2 assume the role: its trust policy needs {"Effect": "Allow", "Principal": '
             '{"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"} (ec2.amazonaws.com.cn in China)')


class NoAnswer(Exception):
    """The metadata service did not answer: refused, reset, or timed out."""


def open_url_sender():
    """``send`` through Ansible's URL helper: never through a proxy, never following redirects."""
    from ansible.module_utils.urls import open_url

    def send(method, url, headers, timeout):
        try:
            response = open_url(url, method=method, headers=headers, timeout=timeout, use_proxy=False,
                                follow_redirects="none", validate_certs=True)
            return response.getcode(), _read(response)
        except HTTPError as exc:
            return exc.code, _read(exc)
        except Exception as exc:  # pylint: disable=broad-except  # URLError, timeouts, resets
            raise NoAnswer(str(getattr(exc, "reason", None) or exc) or exc.__class__.__name__)

    return send


def _read(response):
    try:
        data = response.read()
    except Exception:  # pylint: disable=broad-except
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")


def resolve_endpoint(endpoint=None, endpoint_mode=None):
    """The base URL of the metadata service: ``endpoint`` when given, else the address of the
    mode (``ipv4``, the default, or ``ipv6``), as the SDKs choose it."""
    if endpoint:
        parsed = urlparse(endpoint)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise KeylessError(
                "endpoint: {0!r} is not a URL of a metadata service; give one such as http://169.254.169.254 "
                "or http://[fd00:ec2::254].".format(endpoint), param="endpoint")
        return endpoint.rstrip("/")
    mode = (endpoint_mode or "ipv4").strip().lower()
    if mode not in ("ipv4", "ipv6"):
        raise KeylessError("endpoint_mode: {0!r} is not a metadata endpoint mode; use ipv4 or ipv6.".format(
            endpoint_mode), param="endpoint_mode")
    return IPV6_ENDPOINT if mode == "ipv6" else IPV4_ENDPOINT


def check_expectations(params):
    """Validate the expected role / profile (name or ARN) before any request."""
    role = params.get("expected_role")
    profile = params.get("expected_instance_profile")
    expected = {"role": None, "role_arn": None, "profile": None, "profile_arn": None}
    if role:
        expected["role"] = name_from_name_or_arn(role, "expected_role", "role")
        expected["role_arn"] = role if looks_like_arn(role) else None
    if profile:
        expected["profile"] = name_from_name_or_arn(profile, "expected_instance_profile", "instance-profile")
        expected["profile_arn"] = profile if looks_like_arn(profile) else None
    timeout = params.get("timeout")
    if timeout is None or timeout < 0:
        raise KeylessError("timeout: {0!r} is not a number of seconds; use 0 (look once) or more.".format(timeout),
                           param="timeout")
    return expected


def _last_segment(arn):
    return (arn or "").rsplit("/", 1)[-1]


def _account(arn):
    parts = (arn or "").split(":")
    return parts[4] if len(parts) > 5 else None


def _mask(access_key_id):
    return access_key_id[-4:] if access_key_id and len(access_key_id) > 8 else None


class _Deadline:
    def __init__(self, timeout, clock, sleep, rand):
        self.clock = clock
        self.sleep = sleep
        self.rand = rand
        self.started = clock()
        self.end = self.started + timeout
        self.delay = FIRST_DELAY

    def remaining(self):
        return self.end - self.clock()

    def elapsed(self):
        return self.clock() - self.started

    def request_timeout(self):
        return max(0.5, min(REQUEST_TIMEOUT, self.remaining()))

    def wait(self):
        """Sleep before the next look (jittered, doubling, bounded); False once time is up."""
        remaining = self.remaining()
        if remaining <= 0:
            return False
        pause = min(remaining, self.delay / 2 + self.rand(0, self.delay / 2))
        self.delay = min(MAX_DELAY, self.delay * 2)
        self.sleep(pause)
        return True


class ImdsClient:
    """One metadata service, IMDSv2 (a session token on every request) or IMDSv1."""

    def __init__(self, endpoint, send, protect, token_ttl):
        self.endpoint = endpoint
        self.send = send
        self.protect = protect
        self.token_ttl = token_ttl
        self.token = None
        self.version = None  # "v2" with a token, "v1" without
        self.fallback_reason = None

    def url(self, path):
        return self.endpoint + "/" + path

    def request_token(self, timeout):
        """PUT for a session token: (status, token or None); NoAnswer when nothing came back."""
        status, body = self.send("PUT", self.url(TOKEN_PATH), {TTL_HEADER: str(self.token_ttl)}, timeout)
        if status == 200 and body.strip():
            self.token = body.strip()
            self.protect(self.token)
            return status, self.token
        return status, None

    def get(self, path, timeout, token=True):
        headers = {}
        if token and self.token:
            headers[TOKEN_HEADER] = self.token
        return self.send("GET", self.url(path), headers, timeout)


def _json(body):
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class Observation:
    """What one look at the iam/ subtree found."""

    def __init__(self, kind, detail=None, info=None, role=None, credentials=None):
        self.kind = kind  # ready, no_profile, no_role, not_served, refused, mismatch, unavailable
        self.detail = detail
        self.info = info or {}
        self.role = role
        self.credentials = credentials


def discover(client, deadline, allow_imdsv1):
    """Token first; then whether a token-less request is answered. Returns imdsv1_enabled.

    Retries while the service does not answer or answers 5xx; fails at once when the answer
    settles it (endpoint disabled, IMDSv2 unavailable and IMDSv1 not allowed, a bad request).
    """
    while True:
        try:
            put_status, token = client.request_token(deadline.request_timeout())
            put_said = "the token request was answered HTTP {0}".format(put_status)
        except NoAnswer as exc:
            put_status, token = None, None
            put_said = "the token request got no answer ({0})".format(exc)
        if put_status == 400:
            raise KeylessError(
                "the metadata service at {0} refused the session token request (HTTP 400): it takes a TTL of 1 to "
                "{1} seconds in {2}.".format(client.endpoint, MAX_TOKEN_TTL, TTL_HEADER))
        try:
            probe_status = client.get(INSTANCE_ID_PATH, deadline.request_timeout(), token=False)[0]
            probe_said = "a request without a token was answered HTTP {0}".format(probe_status)
        except NoAnswer as exc:
            probe_status = None
            probe_said = "a request without a token got no answer ({0})".format(exc)

        if token:
            client.version = "v2"
            return probe_status == 200
        if put_status == 403 and probe_status == 403:
            raise KeylessError(
                "the metadata service at {0} answers every request with HTTP 403: the instance's metadata endpoint "
                "is turned off (HttpEndpoint=disabled). Turn it on (ModifyInstanceMetadataOptions "
                "HttpEndpoint=enabled, HttpTokens=required) for applications to get role credentials.".format(
                    client.endpoint))
        if probe_status == 200 and (put_status is None or put_status < 500):
            # A host where only IMDSv1 works.
            if put_status is None:
                why = ("the token request (PUT /{0}) got no answer: when this runs in a container, the instance's "
                       "HttpPutResponseHopLimit is too low for the answer to get back (set it to 2)".format(TOKEN_PATH))
            else:
                why = ("the token request (PUT /{0}) was answered HTTP {1}: something between this host and the "
                       "metadata service (a proxy, an old metadata emulator) does not support IMDSv2".format(
                           TOKEN_PATH, put_status))
            if not allow_imdsv1:
                raise KeylessError(
                    "only IMDSv1 works at {0}: {1}. IMDSv1 is what SSRF attacks steal credentials through; fix the "
                    "path to IMDSv2, or set allow_imdsv1=true to accept IMDSv1 here.".format(client.endpoint, why),
                    param="allow_imdsv1")
            client.version = "v1"
            client.fallback_reason = why
            return True
        if put_status is None and probe_status == 401:
            raise KeylessError(
                "the metadata service at {0} answers, but requires a session token, and the token request (PUT /{1}) "
                "got no answer: when this runs in a container, the instance's HttpPutResponseHopLimit is too low for "
                "the answer to get back; set it to 2 (ModifyInstanceMetadataOptions, and in the launch template)."
                .format(client.endpoint, TOKEN_PATH))
        if put_status in (403, 404, 405) and probe_status == 401:
            raise KeylessError(
                "the metadata service at {0} refused the session token request (HTTP {1}) yet requires a token: AWS "
                "refuses token requests that carry X-Forwarded-For, so something (a proxy?) is in the way; requests "
                "to the metadata service must go to it directly.".format(client.endpoint, put_status))
        # Nothing answered, or a 5xx: the service may not be up yet.
        if not deadline.wait():
            raise KeylessError(
                "no instance metadata service answered at {0} within {1:.0f}s ({2}; {3}): is this an EC2 instance, "
                "and is the endpoint right?".format(client.endpoint, max(0.0, deadline.elapsed()), put_said,
                                                    probe_said))


def _get_text(client, path, deadline):
    status, body = client.get(path, deadline.request_timeout())
    if status == 401 and client.version == "v2":  # the token expired: get a new one once
        client.request_token(deadline.request_timeout())
        status, body = client.get(path, deadline.request_timeout())
    return status, body


def observe(client, deadline, expected):
    """One look at iam/info and the role's credentials."""
    try:
        status, body = _get_text(client, INFO_PATH, deadline)
    except NoAnswer as exc:
        return Observation("unavailable", "iam/info got no answer ({0})".format(exc))
    if status == 404:
        return Observation("no_profile")
    if status != 200:
        return Observation("unavailable", "iam/info answered HTTP {0}".format(status))
    info = _json(body)
    if info is None:
        return Observation("unavailable", "iam/info is not a JSON document")
    try:
        status, listing = _get_text(client, CREDENTIALS_PATH, deadline)
    except NoAnswer as exc:
        return Observation("unavailable", "iam/security-credentials/ got no answer ({0})".format(exc), info=info)
    role = listing.strip().splitlines()[0].strip() if status == 200 and listing.strip() else None
    code = info.get("Code")
    if code != "Success":
        return Observation("refused", code, info=info, role=role)
    profile_arn = info.get("InstanceProfileArn")
    if expected["profile_arn"] and profile_arn != expected["profile_arn"] or \
            expected["profile"] and _last_segment(profile_arn) != expected["profile"]:
        return Observation("mismatch", "instance profile", info=info, role=role)
    if role is None:
        return Observation("no_role", info.get("Message"), info=info)
    if expected["role"] and (role != expected["role"] or
                             expected["role_arn"] and _account(expected["role_arn"]) != _account(profile_arn)):
        return Observation("mismatch", "role", info=info, role=role)
    try:
        status, body = _get_text(client, CREDENTIALS_PATH + role, deadline)
    except NoAnswer as exc:
        return Observation("unavailable", "the credentials got no answer ({0})".format(exc), info=info, role=role)
    if status == 404:
        return Observation("not_served", info=info, role=role)
    if status != 200:
        return Observation("unavailable", "the credentials answered HTTP {0}".format(status), info=info, role=role)
    document = _json(body)
    if document is None:
        return Observation("unavailable", "the credentials are not a JSON document", info=info, role=role)
    for field in ("SecretAccessKey", "Token", "AccessKeyId"):
        if document.get(field):
            client.protect(document[field])
    if document.get("Code", "Success") != "Success" or not all(document.get(f) for f in CREDENTIAL_FIELDS):
        code = document.get("Code") or "Incomplete"
        message = document.get("Message") or "the credentials document lacks {0}".format(
            ", ".join(f for f in CREDENTIAL_FIELDS if not document.get(f)))
        return Observation("refused", code, info=dict(info, Code=code, Message=message), role=role)
    return Observation("ready", info=info, role=role, credentials=document)


def _stale(observation, expected):
    """A refusal that may belong to the profile/role being replaced: not final yet."""
    if expected["role"] and observation.role and observation.role != expected["role"]:
        return True
    arn = observation.info.get("InstanceProfileArn")
    return bool(expected["profile"] and arn and _last_segment(arn) != expected["profile"])


def _refusal_message(instance_id, observation):
    code = observation.detail
    message = observation.info.get("Message") or ""
    if code == "AssumeRoleUnauthorizedAccess":
        # EC2 puts this refusal in the credentials document; iam/info still says Success.
        return ("instance {0} gets no credentials: EC2 cannot assume the role {1} (Code {2} in "
                "iam/security-credentials/{1}). The role's trust policy must {3}. IMDS said: {4}".format(
                    instance_id, observation.role or "of its instance profile", code, TRUST_FIX, message))
    if code == "InstanceProfileNotFound":
        return ("instance {0} gets no credentials: its instance profile no longer exists (iam/info Code {1}); it was "
                "deleted, or deleted and created again under the same name (a new profile id). Associate the profile "
                "with the instance again. IMDS said: {2}".format(instance_id, code, message))
    return "instance {0} gets no credentials: its metadata service reports Code {1}: {2}".format(
        instance_id, code, message)


def _timeout_message(instance_id, observation, waited, expected):
    kind = observation.kind
    if kind == "no_profile":
        return ("instance {0} has no instance profile: iam/info answered 404 for {1:.0f}s. Associate a profile "
                "(one that holds the role) with the instance.".format(instance_id, waited))
    if kind == "no_role":
        return ("the instance profile {0} of instance {1} holds no role (waited {2:.0f}s): add the role to the "
                "profile.".format(observation.info.get("InstanceProfileArn"), instance_id, waited))
    if kind == "not_served":
        return ("instance {0} lists the role {1} but has not served its credentials within {2:.0f}s.".format(
            instance_id, observation.role, waited))
    if kind == "mismatch":
        found_profile = observation.info.get("InstanceProfileArn")
        if observation.detail == "instance profile":
            wanted = expected["profile_arn"] or expected["profile"]
            return ("instance {0} carries the instance profile {1} (role {2}), not {3} as expected (waited {4:.0f}s)."
                    .format(instance_id, found_profile, observation.role or "none", wanted, waited))
        wanted = expected["role_arn"] or expected["role"]
        return ("instance {0} gets credentials for the role {1} (instance profile {2}), not for {3} as expected "
                "(waited {4:.0f}s).".format(instance_id, observation.role, found_profile, wanted, waited))
    if kind == "refused":
        return _refusal_message(instance_id, observation)
    return ("the metadata service of instance {0} did not serve role credentials within {1:.0f}s: {2}.".format(
        instance_id, waited, observation.detail or "no answer"))


def _instance_facts(client, deadline):
    facts = {}
    for key, path in (("instance_id", INSTANCE_ID_PATH), ("region", REGION_PATH), ("availability_zone", ZONE_PATH)):
        try:
            status, body = _get_text(client, path, deadline)
        except NoAnswer:
            status, body = None, ""
        facts[key] = body.strip() if status == 200 and body.strip() else None
    if not facts["region"] and facts["availability_zone"]:
        zone = facts["availability_zone"]
        facts["region"] = zone[:-1] if zone[-1:].isalpha() else zone
    return facts


def check_instance_credentials(params, send, protect=lambda value: None, sts_check=None,
                               sleep=time.sleep, clock=time.monotonic, rand=random.uniform):
    """Wait until the instance's metadata service serves its role's credentials; check them.

    ``params``: the module's options. ``sts_check(credentials, region)`` returns the caller
    ARN GetCallerIdentity gives for the credentials (``verify_with_sts``). Returns the result
    dict; raises KeylessError with a sentence naming what was found and the fix.
    """
    endpoint = resolve_endpoint(params.get("endpoint"), params.get("endpoint_mode"))
    expected = check_expectations(params)
    if params.get("verify_with_sts") and sts_check is None:
        raise KeylessError("verify_with_sts needs botocore on the host that runs the module.", param="verify_with_sts")
    timeout = float(params["timeout"])
    deadline = _Deadline(timeout, clock, sleep, rand)
    token_ttl = int(max(60, min(MAX_TOKEN_TTL, timeout + 60)))
    client = ImdsClient(endpoint, send, protect, token_ttl)

    try:
        imdsv1_enabled = discover(client, deadline, params.get("allow_imdsv1"))
        facts = _instance_facts(client, deadline)
    except KeylessError as exc:
        exc.details.update(endpoint=endpoint, waited_seconds=round(deadline.elapsed(), 2))
        raise
    instance_id = facts["instance_id"] or "(unknown id)"
    result = dict(changed=False, endpoint=endpoint, imds_version=client.version, imdsv1_enabled=imdsv1_enabled,
                  instance_id=facts["instance_id"], region=facts["region"],
                  availability_zone=facts["availability_zone"])
    warnings = []
    if client.version == "v1":
        warnings.append("IMDSv2 is not available at {0}, so IMDSv1 was used (allow_imdsv1=true): {1}.".format(
            endpoint, client.fallback_reason))
    if params.get("require_imdsv2") and imdsv1_enabled:
        raise KeylessError(
            "instance {0} still answers IMDSv1 (requests without a session token), and require_imdsv2 is true: "
            "set HttpTokens=required on the instance (ModifyInstanceMetadataOptions), its launch template and the "
            "account default.".format(instance_id), param="require_imdsv2", **result)

    # waited_seconds: from the first look at iam/ to the look that found the credentials (0 when
    # they were there at once).
    first_look = clock()
    attempts = 0
    while True:
        attempts += 1
        look = clock()
        observation = observe(client, deadline, expected)
        if observation.kind == "ready":
            break
        waited = round(max(0.0, clock() - first_look), 2)
        if observation.kind == "refused" and observation.detail in TERMINAL_CODES and not _stale(observation, expected):
            raise KeylessError(_refusal_message(instance_id, observation), code=observation.detail,
                               waited_seconds=waited, attempts=attempts, **result)
        if not deadline.wait():
            waited = round(max(0.0, clock() - first_look), 2)
            raise KeylessError(_timeout_message(instance_id, observation, waited, expected),
                               code=observation.detail if observation.kind == "refused" else None,
                               waited_seconds=waited, attempts=attempts, **result)

    info = observation.info
    credentials = observation.credentials
    result.update(
        instance_profile_arn=info.get("InstanceProfileArn"),
        instance_profile_id=info.get("InstanceProfileId"),
        role_name=observation.role,
        expiration=credentials.get("Expiration"),
        last_updated=credentials.get("LastUpdated") or info.get("LastUpdated"),
        credentials_type=credentials.get("Type"),
        access_key_id_suffix=_mask(credentials.get("AccessKeyId")),
        waited_seconds=round(max(0.0, look - first_look), 2),
        attempts=attempts,
    )
    if params.get("verify_with_sts"):
        try:
            caller = sts_check(credentials, facts["region"])
        except KeylessError as exc:
            exc.details.update(result)
            raise
        result["assumed_role_arn"] = caller
        resource = (caller or "").split(":", 5)[-1]
        if not resource.startswith("assumed-role/{0}/".format(observation.role)):
            raise KeylessError(
                "the credentials instance {0} serves for the role {1} are, according to STS GetCallerIdentity, those "
                "of {2}.".format(instance_id, observation.role, caller), **result)
    if warnings:
        result["warnings"] = warnings
    return result


def botocore_sts_check(credentials, region):
    """GetCallerIdentity with the fetched credentials, through botocore (the caller's ARN)."""
    try:
        import botocore.session
        from botocore.exceptions import BotoCoreError
        from botocore.exceptions import ClientError
    except ImportError:
        raise KeylessError("verify_with_sts needs botocore on the host that runs the module.", param="verify_with_sts")
    session = botocore.session.get_session()
    client = session.create_client(
        "sts",
        region_name=region or "us-east-1",
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["Token"],
    )
    try:
        return client.get_caller_identity()["Arn"]
    except (BotoCoreError, ClientError) as exc:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
        raise KeylessError("STS GetCallerIdentity with the instance's credentials failed: {0}".format(
            code or exc.__class__.__name__), code=code)
