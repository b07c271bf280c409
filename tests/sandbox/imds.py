"""The sandbox's instance metadata service (IMDS): one emulator per simulated instance.

Each ``ImdsEmulator`` answers on its own loopback port (127.0.0.1 or ::1 only), in daemon
threads of the process that runs the sandbox, so it can never outlive that process. It behaves
as EC2's IMDS does for one instance of the sandbox's moto, and reads everything live through
the sandbox's API on every request (so the sandbox's extensions apply):

* IMDSv2 sessions: ``PUT /latest/api/token`` with ``X-aws-ec2-metadata-token-ttl-seconds``
  (1-21600, else 400), the token checked on every GET (401 when invalid or expired); a token
  PUT carrying ``X-Forwarded-For`` is refused with 403, as AWS refuses it;
* the instance's ``MetadataOptions`` (DescribeInstances): ``HttpTokens=required`` answers 401
  to a token-less GET, ``HttpEndpoint=disabled`` answers 403 to everything, and a token PUT
  from further away than ``HttpPutResponseHopLimit`` (see ``hops``) gets no answer at all;
* ``iam/info`` and ``iam/security-credentials/<role>`` from the instance's *current*
  association (DescribeIamInstanceProfileAssociations, then the profile and its role through
  IAM), with credentials minted by STS AssumeRole on that role (session name: the instance
  id); no association at all, a 404 for the whole ``iam/`` subtree;
* a role whose trust policy does not let EC2 in: ``iam/info`` still answers ``Success`` with
  the profile's ARN and id, the role is listed under ``iam/security-credentials/``, and only
  its credentials document refuses: ``{"Code": "AssumeRoleUnauthorizedAccess", "Message":
  "EC2 cannot assume the role <name>.  Please see documentation at <url>.", "LastUpdated"}``.
  The IAM user guide, "Troubleshoot IAM and Amazon EC2"
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_iam-ec2.html, section "The
  iam/security-credentials/[role-name] document indicates "Code":"AssumeRoleUnauthorizedAccess"")
  puts the refusal in the credentials document; real documents of that shape (that Message,
  two spaces before "Please") are quoted in public pages, e.g. the OctopusDeploy/docs AWS
  troubleshooting page (AWS-LOGIN-ERROR-0001) and aws/aws-cli#2060. What ``iam/info`` says
  then is not published: our reading, the stricter one, is ``Success`` (a client that reads
  only ``iam/info`` must not learn of the refusal there);
* a deleted profile (or one deleted and created again under the same name: another id):
  ``iam/info`` answers ``{"Code": "InstanceProfileNotFound", "Message": "Instance Profile with
  Id <id> cannot be found.  Please see documentation at <url>.", "LastUpdated"}`` (the same
  guide, section "The iam/info document indicates "Code":"InstanceProfileNotFound"": "Amazon
  EC2 can no longer provide credentials to your instance"; a real document of that shape,
  LastUpdated 2024-06-20, is quoted in public troubleshooting notes, a GitHub-hosted "AWS IAM"
  page whose repository the search index does not name). What ``iam/security-credentials/``
  shows then is not published: our reading, no role listed and no credentials (404), at once;
* credentials kept until EC2's next scheduled refresh. The instance serves what EC2 fetched at
  its last refresh of the association (role name, credentials, or the refusal) until that
  refresh's *rotation time*, whatever IAM says meanwhile: after the role inside the profile is
  swapped (RemoveRoleFromInstanceProfile + AddRoleToInstanceProfile, association unchanged),
  the old role stays listed, under its own name and path, with the old role's credentials
  (minted by STS for the old role's ARN: GetCallerIdentity says the old role), until the
  rotation; then the new role's. Likewise a role removed (the old role until the rotation,
  then "Instance Profile does not contain a role."), a role added to an empty profile, and a
  trust policy fixed: each shows at the next refresh. Sources, IAM user guide: "If the role in
  the instance profile was replaced recently, your application will need to wait for the next
  automatically scheduled credential rotation before credentials for your role become
  available" (troubleshoot_iam-ec2.html#troubleshoot_iam-ec2_wrongrole; the same page says
  "wait until the next scheduled refresh" after AddRoleToInstanceProfile and after
  UpdateAssumeRolePolicy); "We do not recommend removing a role from an instance profile,
  because there is a delay of up to one hour before this change takes effect" ("Use instance
  profiles", id_roles_use_switch-role-ec2_instance-profiles.html); the IAM API reference of
  AddRoleToInstanceProfile: "You must then wait for the change to appear across all of AWS
  because of eventual consistency. To force the change, you must disassociate the instance
  profile and then associate the instance profile". The schedule (``rotation_seconds=None``):
  a refresh an hour (``ROTATION_INTERVAL``, the "up to one hour" above; the IAM guide also
  tells applications to "get a refreshed set of credentials every hour"), and always
  ``REFRESH_BEFORE`` seconds before the credentials expire (the EC2 user guide, "Retrieve
  security credentials from instance metadata": "We make new credentials available at least
  five minutes before the expiration of the old credentials"). ``rotation_seconds`` makes the
  rotation come that many seconds after a refresh instead, and ``rotate()`` forces it now;
  a deleted profile is not held (see above). The first request that reads ``iam/`` is the
  instance's first refresh of an association;
* a propagation delay: after the association changes (AssociateIamInstanceProfile,
  ReplaceIamInstanceProfileAssociation, a new association), the instance keeps serving what it
  served before for ``propagation_delay`` seconds (counted from the first request that sees
  the change), as a real instance takes a few seconds to show a new profile; the new
  association is then refreshed at once (the documented way to force a role change).

* the instance's IMDS metrics, published to the sandbox's CloudWatch (moto's) as EC2 publishes
  them: namespace ``AWS/EC2``, dimension ``InstanceId``, unit ``Count``, meaningful statistic
  ``Sum``. The EC2 user guide, "CloudWatch metrics that are available for your instances"
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/viewing_metrics_with_cloudwatch.html,
  "Instance metrics"): ``MetadataNoToken`` is "The number of times the Instance Metadata Service
  (IMDS) was successfully accessed using a method that does not use a token" (IMDSv1 calls
  served), ``MetadataNoTokenRejected`` "The number of times an IMDSv1 call was attempted after
  IMDSv1 was disabled" (the token-less GETs refused with 401 under ``HttpTokens=required``);
  both list "Count" and the statistics "Sum, Percentiles". "Transition to using Instance
  Metadata Service Version 2"
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-transition-to-version-2.html,
  "Tools for helping with the transition to IMDSv2", CloudWatch) tells users to track the first
  "to zero" before requiring IMDSv2 and the second after (the second metric came with the IMDS
  account defaults: https://aws.amazon.com/about-aws/whats-new/2024/03/set-imdsv2-default-new-instance-launches/,
  "the number of times an IMDSv1 call was attempted and rejected after IMDSv1 is disabled").
  Periods, from the same metrics page: "By default, each data point covers the 5 minutes that follow the start time
  of activity for the instance. If you've enabled detailed monitoring, each data point covers the
  next minute": the emulator publishes one datapoint per 5-minute clock interval (``:00``,
  ``:05``..., ``BASIC_PERIOD``), stamped with the interval's start, or per minute
  (``DETAILED_PERIOD``) for an instance whose ``Monitoring.State`` is ``enabled``. Each datapoint
  is a statistic set updated in place as calls come (as the CloudWatch user guide, "Amazon EC2
  Metrics and Dimensions", https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/ec2-metricscollected.html,
  describes Nitro instances: the datapoint is published after the first
  sample and updated, same timestamp, by each later one); its samples are per-minute counts
  (the metrics page: "the minimum granularity for the metrics that EC2 provides is 1 minute"), so
  SampleCount, Minimum and Maximum are not the count: only Sum is (our reading; how EC2 builds the
  set is not published). What counts, our reading of "successfully accessed": a token-less GET or
  HEAD that IMDS answered (200 or 404) with ``HttpTokens=optional``; not the token PUT (that is
  IMDSv2), not a request with a token (valid or not), not a 403 (endpoint disabled), 405 or an
  IMDS failure (503). A period with no such call has *no datapoint at all*, not a 0: the page says
  of ``MetadataNoTokenRejected`` "If this metric appears, it indicates that an IMDSv1 call was
  attempted", and whether EC2 publishes zeros for ``MetadataNoToken`` is not published; the
  stricter reading for a client is that a missing datapoint means 0 (and a client must never
  require a datapoint to prove an instance made no IMDSv1 call). EC2 is CloudWatch's own
  publisher, not a PutMetricData caller (whose callers "should not specify a namespace that begins
  with AWS/", botocore's cloudwatch model, PutMetricData Namespace), so the emulator writes into
  moto's CloudWatch backend directly, in the instance's account and region: nothing
  reaches the request log, the limits or the fault proxy. Publishing is on, as on EC2;
  ``set_imds_metrics(sandbox, False)`` turns it off (a reset turns it on). ``publish_imds_usage``
  places past usage (what EC2 would have published then) without HTTP calls, and ``imds_usage``
  reads back what was published;

``ImdsFleet`` (``sandbox.imds``) starts one emulator per instance id and stops them all; it
also serves a control API for processes that do not share this one's memory (``make demo``,
playbooks)::

    GET    $URL/_sandbox/imds                 the running emulators
    POST   $URL/_sandbox/imds/<instance-id>   start one (JSON body: propagation_delay, v1_only, hops,
                                              rotation_seconds: a number of seconds, or null for EC2's schedule,
                                              account: the instance's, 12 digits in a string, or null to find it;
                                              400 with {"error"} for a bad option or an unknown instance)
    POST   $URL/_sandbox/imds/<instance-id>/rotate   EC2's next scheduled refresh, now ({"rotated": n})
    GET    $URL/_sandbox/imds/<instance-id>   one emulator, with its request log
    DELETE $URL/_sandbox/imds/<instance-id>   stop one
    DELETE $URL/_sandbox/imds                 stop them all
    GET|POST $URL/_sandbox/iam-enforcement    moto's IAM policy enforcement ({"enabled": true})
    GET|POST $URL/_sandbox/imds-metrics       the emulators' metric publishing ({"enabled": true})
    POST   $URL/_sandbox/imds-metrics/<instance-id>   past usage ({"no_token": n, "rejected": m,
                                              "when": ISO 8601 time with its offset, default now,
                                              "region", "account": default the instance's})
    GET    $URL/_sandbox/imds-metrics/<instance-id>   what was published (imds_usage)

An instance may live in the sandbox's own account or in a member account of its organization
(tests/sandbox/organizations.py): the emulator finds the account (the sandbox's first, then each
member by DescribeInstances with the instance id), or is told it (``account``), and reads a member
account as EC2 would from inside it, through a session of the account's
``OrganizationAccountAccessRole`` assumed with the sandbox's own key (the management account's)
and renewed before it ends: ``iam/info``, the credentials (STS on the role of that account) and the
identity document's ``accountId`` are that account's, and its metrics go to that account's
CloudWatch.

Requests the emulator makes to the sandbox are EC2's own business, not calls of the user's
tools: they carry ``X-Keyless-Sandbox-Origin: imds`` (the AssumeRole into a member account too),
the sandbox's request log leaves them out and its rules never refuse them, so EC2 needs nothing
of the user nor of the access role's trust policy conditions.
"""

import datetime
import http.server
import json
import math
import os
import re
import secrets
import socket
import socketserver
import sys
import threading
import time

try:
    from ansible_collections.keyless.aws.plugins.module_utils.trust import analyse_trust
except ImportError:  # run as `python -m sandbox` with only tests/ on sys.path
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                    ".build", "collections"))
    from ansible_collections.keyless.aws.plugins.module_utils.trust import analyse_trust

from .organizations import DEFAULT_ROLE
from .organizations import _role
from .organizations import client_for
from .organizations import describe_organization
from .organizations import request_context
from .organizations import role_arn
from .organizations import trust_verdict

ORIGIN_HEADER = "X-Keyless-Sandbox-Origin"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
MAX_TOKEN_TTL = 21600
# What EC2 delivers: credentials valid for about six hours, refreshed well before they expire.
CREDENTIALS_LIFETIME = 21600
REFRESH_BEFORE = 900
# EC2's scheduled refresh of what an instance serves under iam/: "a delay of up to one hour" for a
# role change inside a profile (IAM user guide, "Use instance profiles"); see the module docstring.
ROTATION_INTERVAL = 3600
# EC2's way into a member account, in the sandbox: a session of the account's
# OrganizationAccountAccessRole, asked for an hour (the MaxSessionDuration every role allows at
# least) and renewed REFRESH_BEFORE seconds before it ends.
ACCESS_SESSION_SECONDS = 3600
ACCESS_SESSION_PREFIX = "keyless-imds-"
NO_ROLE_MESSAGE = "Instance Profile does not contain a role."
TROUBLESHOOTING = ("https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_iam-ec2.html"
                   "#troubleshoot_iam-ec2_errors-info-doc")

# The instance's IMDS metrics in CloudWatch (see the module docstring).
METRIC_NAMESPACE = "AWS/EC2"
NO_TOKEN_METRIC = "MetadataNoToken"
REJECTED_METRIC = "MetadataNoTokenRejected"
BASIC_PERIOD = 300  # basic monitoring: a datapoint per 5-minute clock interval
DETAILED_PERIOD = 60  # detailed monitoring (Monitoring.State enabled): a datapoint per minute
# CloudWatch keeps 1-hour datapoints "for 455 days (15 months)" (botocore's cloudwatch model,
# GetMetricData): past usage older than that is nothing CloudWatch could still answer.
METRIC_RETENTION = datetime.timedelta(days=455)

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 503: "Service Unavailable"}
_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _timestamp(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _page(status):
    """The small XHTML page IMDS answers errors with."""
    title = "{0} - {1}".format(status, _REASONS.get(status, "Error"))
    body = ('<?xml version="1.0" encoding="iso-8859-1"?>\n'
            '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
            '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
            '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
            ' <head>\n  <title>{0}</title>\n </head>\n <body>\n  <h1>{0}</h1>\n </body>\n</html>\n').format(title)
    return status, [("Content-Type", "text/html")], body


def _text(body, status=200):
    return status, [("Content-Type", "text/plain")], body


def _document(data):
    """A JSON document laid out as IMDS lays them out."""
    return _text(json.dumps(data, indent=2, separators=(",", " : ")))


def _header(headers, name):
    """A request header, whatever the mapping (dict or email.message.Message)."""
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    value = getter(name) if getter else None
    if value is None and isinstance(headers, dict):
        lowered = name.lower()
        for key, item in headers.items():
            if key.lower() == lowered:
                return item
    return value


def _rotation_seconds(value):
    """``rotation_seconds`` checked: None (EC2's own schedule) or a number of seconds, 0 or more."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0 \
            or math.isinf(value):
        raise ValueError("rotation_seconds: {0!r} is not a number of seconds (0 or more) or null (EC2's own "
                         "schedule)".format(value))
    return float(value)


def _instance_region(instance, default):
    """The region of an instance (a DescribeInstances dict), from its Availability Zone."""
    zone = (instance.get("Placement") or {}).get("AvailabilityZone") or default + "a"
    return zone[:-1] if zone[-1:].isalpha() else zone


def _checked_account(value):
    """``account`` checked: None (found at start) or an AWS account id, 12 digits in a string."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{12}", value):
        raise ValueError("account: {0!r} is not an AWS account id (12 digits in a string, such as "
                         "\"123456789012\"), nor null to find the instance's account".format(value))
    return value


def _error_code(exc):
    response = getattr(exc, "response", None) or {}
    return response.get("Error", {}).get("Code")


def _marked(client):
    """``client`` with every request marked as EC2's own (``ORIGIN_HEADER``): the sandbox's request
    log, rules, faults and limits leave it alone."""
    def mark(request, **_kwargs):
        request.headers[ORIGIN_HEADER] = "imds"

    client.meta.events.register("before-sign", mark)
    return client


def _described_instance(ec2, instance_id, live=True):
    """The instance as DescribeInstances gives it through ``ec2``, or None when that account has no
    such instance (``live``: none terminated or shutting down either)."""
    try:
        reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    except Exception as exc:  # pylint: disable=broad-except
        if _error_code(exc) == "InvalidInstanceID.NotFound":
            return None
        raise
    for reservation in reservations:
        for instance in reservation.get("Instances", []):
            if not live or instance.get("State", {}).get("Name") not in ("terminated", "shutting-down"):
                return instance
    return None


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, emulator, family):
        self.address_family = family
        self.emulator = emulator
        http.server.HTTPServer.__init__(self, address, handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server_version = "EC2ws"
    sys_version = ""

    def log_message(self, *args):  # the emulator keeps its own log
        pass

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        answer = self.server.emulator.respond(self.command, self.path, self.headers)
        if answer is None:  # no answer at all: the connection just closes
            self.close_connection = True
            return
        status, headers, body = answer
        payload = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status, _REASONS.get(status))
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = _serve


class ImdsEmulator:
    """The metadata service of one simulated instance.

    ``propagation_delay``: seconds a new association takes to show. ``v1_only``: the token PUT
    is refused with 403, as on a host whose metadata proxy knows only IMDSv1. ``hops``: how far
    the caller is from the instance (2 for a container on it); a token PUT from beyond the
    instance's ``HttpPutResponseHopLimit`` gets no answer, as its response would not get back.
    ``rotation_seconds``: seconds from one scheduled refresh of the role credentials to the next
    (None: EC2's schedule, hourly and ``REFRESH_BEFORE`` before they expire); until then the
    instance serves what it fetched, even after the role inside its profile changed. ``rotate()``
    brings the next refresh forward to now. ``account``: the account the instance lives in, the
    sandbox's own or a member account of its organization (None: the emulator finds it, see
    ``_find_account``); a member account is read through a session of its
    OrganizationAccountAccessRole (``_access_session``). ``clock`` (monotonic seconds: tokens,
    propagation) and ``now`` (aware UTC datetime: credentials, their rotation, the member
    account's session) can be replaced in tests.
    """

    def __init__(self, sandbox, instance_id, propagation_delay=0.0, v1_only=False, hops=1,
                 host="127.0.0.1", port=0, clock=time.monotonic, now=_utcnow, rotation_seconds=None, account=None):
        if host not in _LOOPBACK:
            raise ValueError("the IMDS emulator only listens on loopback, not on {0}".format(host))
        self.sandbox = sandbox
        self.instance_id = instance_id
        self.propagation_delay = float(propagation_delay)
        self.v1_only = bool(v1_only)
        self.hops = int(hops)
        self.rotation_seconds = _rotation_seconds(rotation_seconds)
        self.account = _checked_account(account)  # None until found
        self.host = "127.0.0.1" if host == "localhost" else host
        self.port = port
        self.clock = clock
        self.now = now
        self.requests = []  # (method, path, status, token) for tests: never the token itself
        self.usage = {NO_TOKEN_METRIC: 0, REJECTED_METRIC: 0}  # IMDSv1 calls this emulator counted
        self.errors = []  # sandbox reads that failed (answered 503)
        self._lock = threading.RLock()
        self._tokens = {}
        self._credentials = {}  # every set EC2 fetched: (association id, access key id) -> minted
        self._fetched = {}  # association -> what EC2 fetched at its last refresh, served until rotation
        self._refresh_lock = threading.Lock()
        self._clients = {}  # the instance's account's, when it is a member account
        self._management_clients = {}
        self._access = None  # the member account's session: {"account", "credentials", "renew_at"}
        self._server = None
        self._thread = None
        # propagation: the association the emulator last saw, since when, and what it served before
        self._latest = None
        self._latest_at = float("-inf")
        self._served_before = None

    # ---- life cycle -------------------------------------------------------------------
    @property
    def url(self):
        host = "[{0}]".format(self.host) if ":" in self.host else self.host
        return "http://{0}:{1}".format(host, self.port)

    def start(self):
        account = self._instance_account()
        instance = self._instance()
        if instance is None:
            raise ValueError("the sandbox has no instance {0} in account {1}; launch it first".format(
                self.instance_id, account))
        # What the instance had at boot shows at once; later changes take propagation_delay.
        self._latest = self._association()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._server = _Server((self.host, self.port), _Handler, self, family)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sandbox-imds-" + self.instance_id, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None

    @property
    def running(self):
        return self._server is not None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def env(self):
        """What an SDK on the instance needs to find this metadata service (no keys at all)."""
        # This emulator answers from a thread of a busy test process: botocore's default 1 s
        # timeout, one attempt, fits a real instance's local service, not a loaded CI machine.
        return {"AWS_EC2_METADATA_SERVICE_ENDPOINT": self.url + "/", "AWS_EC2_METADATA_DISABLED": "false",
                "AWS_METADATA_SERVICE_TIMEOUT": "5", "AWS_METADATA_SERVICE_NUM_ATTEMPTS": "3"}

    def instance_env(self, base=None):
        """The environment of an application on the instance: the sandbox's endpoint and region,
        this metadata service, and no credentials anywhere (not even a config file)."""
        env = {key: value for key, value in (base if base is not None else os.environ).items()
               if not key.startswith("AWS_")}
        env.update(self.sandbox.env())
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.pop(key, None)
        env.update(self.env())
        return env

    def describe(self):
        return {
            "instance_id": self.instance_id,
            "account": self.account,
            "endpoint": self.url,
            "propagation_delay": self.propagation_delay,
            "v1_only": self.v1_only,
            "hops": self.hops,
            "rotation_seconds": self.rotation_seconds,
            "env": self.env(),
            "usage": dict(self.usage),
        }

    # ---- reads through the sandbox's API, in the instance's account --------------------
    def _client(self, service):
        """A client of the instance's account: the sandbox's own, or a session of the member
        account's OrganizationAccountAccessRole, assumed again ``REFRESH_BEFORE`` seconds before
        it ends."""
        with self._lock:
            account = self._instance_account()
            if account == _sandbox_account(self.sandbox):
                return self._management_client(service)
            access = self._access
            if access is None or access["account"] != account or self.now() >= access["renew_at"]:
                self._access = self._access_session(account)
                self._clients = {}
            if service not in self._clients:
                self._clients[service] = _marked(client_for(self.sandbox, self._access["credentials"], service))
            return self._clients[service]

    def _management_client(self, service):
        """A client of the sandbox's own account, the organization's management account."""
        with self._lock:
            if service not in self._management_clients:
                self._management_clients[service] = _marked(self.sandbox.client(service))
            return self._management_clients[service]

    def _instance_account(self):
        """The account the instance lives in: ``account``, else found once (``_find_account``)."""
        with self._lock:
            if self.account is None:
                self.account = self._find_account()
            return self.account

    def _find_account(self):
        """The first account that holds the instance (in any state), by DescribeInstances with
        its id: the sandbox's own, then each member account of its organization, in the order
        Organizations lists them (``_instance_accounts``). ValueError when none holds it."""
        management = _sandbox_account(self.sandbox)
        accounts = _instance_accounts(self.sandbox)
        failures = []
        for account in accounts:
            try:
                if account == management:
                    ec2 = self._management_client("ec2")
                else:
                    access = self._access_session(account)
                    ec2 = _marked(client_for(self.sandbox, access["credentials"], "ec2"))
                if _described_instance(ec2, self.instance_id, live=False) is not None:
                    if account != management:
                        with self._lock:
                            self._access, self._clients = access, {}
                    return account
            except Exception as exc:  # pylint: disable=broad-except  # out of reach: another may hold it
                failures.append(str(exc))
        searched = "the sandbox's account {0}".format(management)
        if len(accounts) > 1:
            searched += " nor in the {0} member account(s) of its organization ({1})".format(
                len(accounts) - 1, ", ".join(accounts[1:]))
        raise ValueError("the sandbox has no instance {0} in {1}; launch it first{2}".format(
            self.instance_id, searched, "".join("; " + failure for failure in failures)))

    def _access_session(self, account):
        """A session of ``account``'s OrganizationAccountAccessRole: STS AssumeRole signed with the
        sandbox's own key (the management account's, which the role trusts) and marked as EC2's
        own, as every read of the emulator. It asks nothing of the user, and the sandbox's
        AssumeRole rules (organizations.py) leave marked requests alone, so no trust policy
        condition (an ``sts:ExternalId``) stands in EC2's way. Returns {"account", "credentials"
        (``client_for``'s names), "renew_at" (on ``now``'s clock)}."""
        if account not in _instance_accounts(self.sandbox)[1:]:
            raise ValueError("account {0} is neither the sandbox's own ({1}) nor a member account of its "
                             "organization: the emulator reaches a member account through its {2}; seed the "
                             "organization first (organizations.seed_organization)".format(
                                 account, _sandbox_account(self.sandbox), DEFAULT_ROLE))
        arn = role_arn(account, DEFAULT_ROLE)
        session_name = ACCESS_SESSION_PREFIX + self.instance_id
        try:
            answer = self._management_client("sts").assume_role(
                RoleArn=arn, RoleSessionName=session_name, DurationSeconds=ACCESS_SESSION_SECONDS)
        except Exception as exc:  # pylint: disable=broad-except
            raise ValueError(self._access_refused(account, arn, session_name, exc)) from exc
        credentials = answer["Credentials"]
        keys = {"access_key": credentials["AccessKeyId"], "secret_key": credentials["SecretAccessKey"],
                "session_token": credentials["SessionToken"]}
        return {"account": account, "credentials": keys,
                "renew_at": self.now() + datetime.timedelta(seconds=ACCESS_SESSION_SECONDS - REFRESH_BEFORE)}

    def _access_refused(self, account, arn, session_name, exc):
        """The sentence for a failed AssumeRole into a member account: what failed, and what the
        sandbox's rules would say of the role for the management account (``_role`` and
        ``trust_verdict``, the very reading of the ``assume_role_trust`` rule)."""
        from moto.sts.models import sts_backends

        management = _sandbox_account(self.sandbox)
        role = _role(arn)
        if role is None:
            why = ("the role does not exist (the sandbox's assume_role_unknown_role rule refuses that); "
                   "CreateAccount makes it: make it again through a session of the account")
        else:
            _user_id, caller_arn, _account = sts_backends[management]["aws"].get_caller_identity(
                self.sandbox.ACCESS_KEY, self.sandbox.REGION)
            caller = {"arn": caller_arn, "account": management, "type": "User", "principal_arn": caller_arn}
            verdict = trust_verdict(role.assume_role_policy_document, caller,
                                    request_context(caller, {"RoleArn": arn, "RoleSessionName": session_name}))
            fix = "; let arn:aws:iam::{0}:root in again".format(management)
            why = {
                "allow": "its trust policy lets the management account in, so the refusal is not the trust's",
                "deny": "its trust policy denies the management account (an explicit Deny), so the sandbox's "
                        "assume_role_trust rule refuses it too" + fix,
                "implicit": "no statement of its trust policy lets the management account in with a request such "
                            "as EC2's (no ExternalId), so the sandbox's assume_role_trust rule refuses it too" + fix,
            }[verdict]
        return ("the IMDS emulator of {0} cannot read account {1}: AssumeRole of {2} as the management account "
                "{3} failed ({4}); {5}".format(self.instance_id, account, arn, management, exc, why))

    def _instance(self):
        return _described_instance(self._client("ec2"), self.instance_id)

    def _association(self):
        associations = self._client("ec2").describe_iam_instance_profile_associations(
            Filters=[{"Name": "instance-id", "Values": [self.instance_id]}])["IamInstanceProfileAssociations"]
        for association in associations:
            if association.get("State") in ("associating", "associated"):
                profile = association.get("IamInstanceProfile") or {}
                return (association.get("AssociationId"), profile.get("Arn"), profile.get("Id"))
        return None

    def _effective_association(self):
        """The association the instance serves now, propagation delay included."""
        current = self._association()
        with self._lock:
            now = self.clock()
            if current != self._latest:
                self._served_before = self._served(now)
                self._latest = current
                self._latest_at = now
            return self._served(now)

    def _served(self, now):
        if now - self._latest_at >= self.propagation_delay:
            return self._latest
        return self._served_before

    # ---- what EC2 fetched for the instance: held until its rotation -----------------------
    def rotate(self):
        """EC2's next scheduled refresh, now: the next request under ``iam/`` gets what IAM says
        now (the role the profile holds now, new credentials). Returns how many were due."""
        with self._lock:
            count = len(self._fetched)
            self._fetched.clear()
        return count

    def rotation_due(self, fetched):
        """When what EC2 fetched (a ``_fetched`` entry) is refreshed: ``rotation_seconds`` (else
        ``ROTATION_INTERVAL``) after it was fetched, and never later than ``REFRESH_BEFORE``
        seconds before its credentials expire."""
        interval = ROTATION_INTERVAL if self.rotation_seconds is None else self.rotation_seconds
        due = fetched["last_updated"] + datetime.timedelta(seconds=interval)
        credentials = fetched.get("credentials")
        if credentials is not None:
            due = min(due, credentials["expiration"] - datetime.timedelta(seconds=REFRESH_BEFORE))
        return due

    def _iam_state(self, association):
        """What the instance serves for an association: what EC2 fetched at its last refresh
        (profile, role, credentials or the refusal), until that refresh's rotation time; a
        profile that no longer exists (or is another one by now) at once."""
        association_id, profile_arn, profile_id = association
        profile = None
        try:
            profile = self._client("iam").get_instance_profile(
                InstanceProfileName=profile_arn.rsplit("/", 1)[-1])["InstanceProfile"]
        except Exception as exc:  # pylint: disable=broad-except
            if _error_code(exc) != "NoSuchEntity":
                raise
        if profile is None or profile.get("InstanceProfileId") != profile_id:
            with self._lock:
                self._fetched.pop(association, None)  # EC2 "can no longer provide credentials"
            return {"profile_arn": profile_arn, "profile_id": profile_id, "role": None, "credentials": None,
                    "code": "InstanceProfileNotFound", "last_updated": self.now(),
                    "message": "Instance Profile with Id {0} cannot be found.  Please see documentation at {1}."
                               .format(profile_id, TROUBLESHOOTING)}
        with self._refresh_lock:  # one refresh at a time: concurrent requests see the same one
            with self._lock:
                fetched = self._fetched.get(association)
            if fetched is not None and self.now() < self.rotation_due(fetched):
                return fetched
            fetched = self._fetch(association_id, profile_arn, profile)
            with self._lock:
                self._fetched[association] = fetched
            return fetched

    def _fetch(self, association_id, profile_arn, profile):
        """One refresh, as EC2 does it: the role the profile holds now, and its credentials (STS
        AssumeRole) when its trust policy lets EC2 in, else the refusal."""
        fetched = {"profile_arn": profile_arn, "profile_id": profile["InstanceProfileId"], "role": None,
                   "role_arn": None, "credentials": None, "code": "Success", "message": None,
                   "last_updated": self.now()}
        roles = profile.get("Roles") or []
        if not roles:
            fetched["message"] = NO_ROLE_MESSAGE
            return fetched
        role = roles[0]
        fetched.update(role=role["RoleName"], role_arn=role["Arn"])
        document = role.get("AssumeRolePolicyDocument")
        if not document:
            document = self._client("iam").get_role(RoleName=role["RoleName"])["Role"].get("AssumeRolePolicyDocument")
        partition = role["Arn"].split(":")[1]
        if not analyse_trust(document, partition)["trusts_ec2"]:
            fetched.update(code="AssumeRoleUnauthorizedAccess",
                           message="EC2 cannot assume the role {0}.  Please see documentation at {1}."
                           .format(role["RoleName"], TROUBLESHOOTING))
            return fetched
        minted = self._mint(role["Arn"])
        minted["role_arn"] = role["Arn"]
        with self._lock:
            self._credentials[(association_id, minted["access_key_id"])] = minted
        fetched.update(credentials=minted, last_updated=minted["last_updated"])
        return fetched

    def _mint(self, role_arn):
        """STS AssumeRole on the role, session name the instance id, as EC2 does it.

        With moto's IAM policy enforcement on, moto checks the role's trust policy against the
        *caller*, and the sandbox's admin is not EC2: then the emulator calls moto's STS backend
        in this process, the very function the AssumeRole action runs, as EC2 would as a service.
        """
        if iam_enforcement_enabled():
            from moto.sts.models import sts_backends

            account, partition = role_arn.split(":")[4], role_arn.split(":")[1]
            role = sts_backends[account][partition].assume_role(
                region_name=self.sandbox.REGION, role_session_name=self.instance_id, role_arn=role_arn,
                policy=None, duration=CREDENTIALS_LIFETIME, external_id=None)
            credentials = {"AccessKeyId": role.access_key_id, "SecretAccessKey": role.secret_access_key,
                           "SessionToken": role.session_token, "Expiration": role.expiration}
        else:
            credentials = self._client("sts").assume_role(
                RoleArn=role_arn, RoleSessionName=self.instance_id, DurationSeconds=CREDENTIALS_LIFETIME)["Credentials"]
        expiration = credentials["Expiration"]
        if isinstance(expiration, str):
            expiration = datetime.datetime.strptime(expiration[:19], "%Y-%m-%dT%H:%M:%S")
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=datetime.timezone.utc)
        return {
            "access_key_id": credentials["AccessKeyId"],
            "secret_access_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiration": expiration,
            "last_updated": self.now(),
        }

    # ---- the HTTP side ------------------------------------------------------------------
    def respond(self, method, raw_path, headers):
        """Answer one request: (status, headers, body), or None for no answer at all."""
        path = raw_path.split("?", 1)[0]
        token = _header(headers, TOKEN_HEADER)
        try:
            answer = self._respond(method, path, headers, token)
        except Exception as exc:  # pylint: disable=broad-except  # a sandbox read failed: IMDS says "retry"
            self.errors.append("{0} {1}: {2!r}".format(method, path, exc))
            answer = _page(503)
        with self._lock:
            self.requests.append({
                "method": method,
                "path": path,
                "status": None if answer is None else answer[0],
                "token": "none" if token is None else ("valid" if self._token_valid(token) else "invalid"),
            })
        return answer

    def _respond(self, method, path, headers, token):
        instance = self._instance()
        if instance is None:
            return _page(503)
        options = instance.get("MetadataOptions") or {}
        if options.get("HttpEndpoint", "enabled") == "disabled":
            return _page(403)
        if method == "PUT":
            return self._put(path, headers, options)
        if method not in ("GET", "HEAD"):
            return _page(405)
        if token is not None:
            if not self._token_valid(token):
                return _page(401)
            if _header(headers, "X-Forwarded-For") is not None:
                return _page(403)
        elif options.get("HttpTokens", "optional") == "required":
            self._count(instance, REJECTED_METRIC)  # an IMDSv1 call attempted after IMDSv1 was disabled
            return _page(401)
        answer = self._get(path.rstrip("/") if path != "/" else path, path.endswith("/"), instance)
        if token is None and answer[0] in (200, 404):  # IMDS "successfully accessed" without a token
            self._count(instance, NO_TOKEN_METRIC)
        return answer

    def _count(self, instance, metric):
        """One IMDSv1 call, served or refused: counted, and published to CloudWatch as EC2 does
        (unless publishing is off). Publishing never changes IMDS's answer: a failure is logged in
        ``errors``."""
        with self._lock:
            self.usage[metric] += 1
        if not imds_metrics_enabled(self.sandbox):
            return
        try:
            period = DETAILED_PERIOD if (instance.get("Monitoring") or {}).get("State") == "enabled" else BASIC_PERIOD
            _add_usage(self._instance_account(), _instance_region(instance, self.sandbox.REGION),
                       instance["InstanceId"], metric, 1, self.now(), period)
        except Exception as exc:  # pylint: disable=broad-except
            self.errors.append("publishing {0}: {1!r}".format(metric, exc))

    def _put(self, path, headers, options):
        if path.rstrip("/") != "/latest/api/token":
            return _page(403)
        if _header(headers, "X-Forwarded-For") is not None:
            return _page(403)
        if self.v1_only:
            return _page(403)
        if self.hops > int(options.get("HttpPutResponseHopLimit") or 1):
            return None
        requested = _header(headers, TTL_HEADER)
        try:
            ttl = int(requested)
        except (TypeError, ValueError):
            return _page(400)
        if not 1 <= ttl <= MAX_TOKEN_TTL:
            return _page(400)
        token = "AQAEA" + secrets.token_urlsafe(40)
        with self._lock:
            now = self.clock()
            self._tokens = {key: expiry for key, expiry in self._tokens.items() if expiry > now}
            self._tokens[token] = now + ttl
        status, response_headers, body = _text(token)
        return status, response_headers + [(TTL_HEADER, str(ttl))], body

    def _token_valid(self, token):
        with self._lock:
            expiry = self._tokens.get(token)
            return expiry is not None and expiry > self.clock()

    def _get(self, path, listing, instance):
        zone = (instance.get("Placement") or {}).get("AvailabilityZone") or self.sandbox.REGION + "a"
        region = _instance_region(instance, self.sandbox.REGION)
        values = {
            "/latest/meta-data/instance-id": instance["InstanceId"],
            "/latest/meta-data/ami-id": instance.get("ImageId", ""),
            "/latest/meta-data/instance-type": instance.get("InstanceType", ""),
            "/latest/meta-data/local-ipv4": instance.get("PrivateIpAddress", ""),
            "/latest/meta-data/placement/availability-zone": zone,
            "/latest/meta-data/placement/region": region,
        }
        if path in values:
            return _text(values[path])
        if path == "/":
            return _text("latest")
        if path == "/latest":
            return _text("dynamic\nmeta-data")
        if path == "/latest/meta-data/placement":
            return _text("availability-zone\nregion")
        if path == "/latest/dynamic":
            return _text("instance-identity/")
        if path == "/latest/dynamic/instance-identity":
            return _text("document")
        if path == "/latest/dynamic/instance-identity/document":
            return _document({
                "accountId": self._instance_account(),
                "availabilityZone": zone,
                "imageId": instance.get("ImageId"),
                "instanceId": instance["InstanceId"],
                "instanceType": instance.get("InstanceType"),
                "privateIp": instance.get("PrivateIpAddress"),
                "region": region,
                "version": "2017-09-30",
            })
        association = None
        if path == "/latest/meta-data" or path.startswith("/latest/meta-data/iam"):
            association = self._effective_association()
        if path == "/latest/meta-data":
            items = ["ami-id", "instance-id", "instance-type", "local-ipv4", "placement/"]
            if association is not None:
                items.insert(2, "iam/")
            return _text("\n".join(items))
        if path.startswith("/latest/meta-data/iam"):
            if association is None:
                return _page(404)
            return self._iam(path, association)
        return _page(404)

    def _iam(self, path, association):
        if path == "/latest/meta-data/iam":
            return _text("info\nsecurity-credentials/")
        state = self._iam_state(association)
        if path == "/latest/meta-data/iam/info":
            return _document(self._info(state))
        if path == "/latest/meta-data/iam/security-credentials":
            return _text(state["role"]) if state["role"] else _page(404)
        prefix = "/latest/meta-data/iam/security-credentials/"
        if path.startswith(prefix) and state["role"] and path[len(prefix):] == state["role"]:
            credentials = state["credentials"]
            if credentials is None:  # the refusal is here, not in iam/info
                return _document({"Code": state["code"], "Message": state["message"],
                                  "LastUpdated": _timestamp(state["last_updated"])})
            return _document({
                "Code": "Success",
                "LastUpdated": _timestamp(credentials["last_updated"]),
                "Type": "AWS-HMAC",
                "AccessKeyId": credentials["access_key_id"],
                "SecretAccessKey": credentials["secret_access_key"],
                "Token": credentials["token"],
                "Expiration": _timestamp(credentials["expiration"]),
            })
        return _page(404)

    @staticmethod
    def _info(state):
        """iam/info: the profile, Success even when EC2 cannot assume its role; only a profile
        that is gone is an error here."""
        if state["code"] == "InstanceProfileNotFound":
            return {"Code": state["code"], "Message": state["message"],
                    "LastUpdated": _timestamp(state["last_updated"])}
        info = {
            "Code": "Success",
            "LastUpdated": _timestamp(state["last_updated"]),
            "InstanceProfileArn": state["profile_arn"],
            "InstanceProfileId": state["profile_id"],
        }
        if state["role"] is None:
            info["Message"] = state["message"]
        return info


class ImdsFleet:
    """The emulators of one sandbox, one per instance id; ``stop_all()`` stops every one."""

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self.metrics_enabled = True  # the emulators publish MetadataNoToken(Rejected), as EC2 does
        self._emulators = {}
        self._lock = threading.RLock()
        app = getattr(sandbox, "app", None)
        if app is not None:
            handlers = getattr(app, "control_handlers", None)
            if handlers is not None:
                handlers["/_sandbox/imds"] = self._control
                handlers["/_sandbox/iam-enforcement"] = self._control_enforcement
                handlers["/_sandbox/imds-metrics"] = self._control_metrics
            app.reset_hooks.append(self._on_reset)

    def start(self, instance_id, **options):
        """The instance's emulator, started on a free loopback port (the running one, with
        ``options`` applied, when there is one already; its ``account`` cannot change)."""
        with self._lock:
            emulator = self._emulators.get(instance_id)
            if emulator is not None and emulator.running:
                account = _checked_account(options.get("account"))
                if account is not None and account != emulator.account:
                    raise ValueError("the emulator of {0} serves it from account {1}, not {2}: stop it "
                                     "first".format(instance_id, emulator.account, account))
                for name in ("propagation_delay", "v1_only", "hops"):
                    if name in options:
                        setattr(emulator, name, type(getattr(emulator, name))(options[name]))
                if "rotation_seconds" in options:
                    emulator.rotation_seconds = _rotation_seconds(options["rotation_seconds"])
                return emulator
            emulator = ImdsEmulator(self.sandbox, instance_id, **options).start()
            self._emulators[instance_id] = emulator
            return emulator

    def get(self, instance_id):
        return self._emulators.get(instance_id)

    def __iter__(self):
        return iter(list(self._emulators.values()))

    def __len__(self):
        return len(self._emulators)

    def stop(self, instance_id):
        with self._lock:
            emulator = self._emulators.pop(instance_id, None)
        if emulator is not None:
            emulator.stop()
        return emulator is not None

    def stop_all(self):
        with self._lock:
            emulators, self._emulators = list(self._emulators.values()), {}
        for emulator in emulators:
            emulator.stop()
        return len(emulators)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop_all()
        return False

    def _on_reset(self):
        """A reset sandbox has no instances: no emulators, moto's IAM enforcement off, metrics
        published again (moto's reset emptied its CloudWatch)."""
        self.stop_all()
        set_iam_enforcement(self.sandbox, False)
        self.metrics_enabled = True
        with _USAGE_LOCK:
            _USAGE.clear()

    # ---- control API (for other processes) ----------------------------------------------
    def _control(self, method, path, body):
        instance_id, _slash, action = path[len("/_sandbox/imds"):].strip("/").partition("/")
        if action:
            if action != "rotate":
                return 404, {"error": "no such control: /_sandbox/imds/<instance-id>/{0}".format(action)}
            if method != "POST":
                return 405, {"error": "use POST on /_sandbox/imds/<instance-id>/rotate"}
            emulator = self.get(instance_id)
            if emulator is None:
                return 404, {"error": "no emulator for {0}".format(instance_id)}
            return 200, {"rotated": emulator.rotate()}
        if not instance_id:
            if method == "GET":
                return 200, {"emulators": [emulator.describe() for emulator in self]}
            if method == "DELETE":
                return 200, {"stopped": self.stop_all()}
            return 405, {"error": "use GET or DELETE on /_sandbox/imds"}
        if method == "POST":
            try:
                options = json.loads(body.decode("utf-8") or "{}") if body else {}
                if not isinstance(options, dict):
                    raise ValueError("the body must be a JSON object")
                unknown = sorted(set(options) - {"propagation_delay", "v1_only", "hops", "rotation_seconds",
                                                 "account"})
                if unknown:
                    raise ValueError("unknown option(s): {0}".format(", ".join(unknown)))
                return 200, self.start(instance_id, **options).describe()
            except ValueError as exc:
                return 400, {"error": str(exc)}
        if method == "GET":
            emulator = self.get(instance_id)
            if emulator is None:
                return 404, {"error": "no emulator for {0}".format(instance_id)}
            described = emulator.describe()
            described["requests"] = list(emulator.requests)
            return 200, described
        if method == "DELETE":
            return 200, {"stopped": int(self.stop(instance_id))}
        return 405, {"error": "use POST, GET or DELETE on /_sandbox/imds/<instance-id>"}

    def _control_enforcement(self, method, path, body):
        if method == "POST":
            try:
                wanted = json.loads(body.decode("utf-8") or "{}") if body else {}
                enabled = bool(wanted.get("enabled", True))
            except (ValueError, AttributeError) as exc:
                return 400, {"error": "the body must be a JSON object such as {{\"enabled\": true}}: {0}".format(exc)}
            set_iam_enforcement(self.sandbox, enabled)
        elif method != "GET":
            return 405, {"error": "use GET or POST on /_sandbox/iam-enforcement"}
        return 200, {"enabled": iam_enforcement_enabled()}

    def _control_metrics(self, method, path, body):
        instance_id = path[len("/_sandbox/imds-metrics"):].strip("/")
        try:
            wanted = json.loads(body.decode("utf-8") or "{}") if body else {}
            if not isinstance(wanted, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as exc:
            return 400, {"error": str(exc)}
        if not instance_id:
            if method == "POST":
                unknown = sorted(set(wanted) - {"enabled"})
                if unknown or not isinstance(wanted.get("enabled", True), bool):
                    return 400, {"error": "the body must be a JSON object such as {\"enabled\": false}"}
                set_imds_metrics(self.sandbox, wanted.get("enabled", True))
            elif method != "GET":
                return 405, {"error": "use GET or POST on /_sandbox/imds-metrics"}
            return 200, {"enabled": imds_metrics_enabled(self.sandbox)}
        try:
            if method == "POST":
                unknown = sorted(set(wanted) - {"no_token", "rejected", "when", "region", "account"})
                if unknown:
                    raise ValueError("unknown option(s): {0}".format(", ".join(unknown)))
                when = wanted.get("when")
                if when is not None:
                    if not isinstance(when, str):
                        raise ValueError("when: an ISO 8601 time with its offset, such as 2024-05-01T10:00:00Z")
                    when = datetime.datetime.fromisoformat(when[:-1] + "+00:00" if when.endswith("Z") else when)
                published = publish_imds_usage(self.sandbox, instance_id, no_token=wanted.get("no_token", 0),
                                               rejected=wanted.get("rejected", 0), when=when,
                                               region=wanted.get("region"), account=wanted.get("account"))
                return 200, {"published": published}
            if method == "GET":
                return 200, _jsonable_usage(imds_usage(self.sandbox, instance_id))
        except ValueError as exc:
            return 400, {"error": str(exc)}
        return 405, {"error": "use GET or POST on /_sandbox/imds-metrics/<instance-id>"}


def install(sandbox):
    """Give a started sandbox its emulators: ``sandbox.imds`` (an ImdsFleet) and the control API."""
    sandbox.imds = ImdsFleet(sandbox)
    return sandbox


# ---- the instances' IMDS metrics in moto's CloudWatch --------------------------------------
#
# One statistic set (moto's MetricAggregatedDatum) per instance, metric and period, updated in
# place as calls come; its samples are the per-minute counts of that period. moto's reset empties
# its CloudWatch (each backend's metric_data is a new list): a bucket whose list is not the
# backend's any more is stale, and the fleet's reset hook forgets them all anyway.

_USAGE_LOCK = threading.Lock()
_USAGE = {}  # (account, region, instance, metric, period, start) -> (metric_data list, datum, {minute: count})


def imds_metrics_enabled(sandbox):
    """Whether the sandbox's IMDS emulators publish their metrics (on unless turned off)."""
    return bool(getattr(getattr(sandbox, "imds", None), "metrics_enabled", True))


def set_imds_metrics(sandbox, enabled):
    """Turn the emulators' publishing of MetadataNoToken(Rejected) on or off for this sandbox
    (a reset turns it on again). It is about live calls: ``publish_imds_usage`` publishes anyway."""
    fleet = getattr(sandbox, "imds", None)
    if fleet is None:
        raise ValueError("this sandbox has no IMDS emulators (imds.install)")
    fleet.metrics_enabled = bool(enabled)


def _sandbox_account(sandbox):
    """The account moto files the sandbox's own resources under (its access key's)."""
    if os.environ.get("MOTO_ACCOUNT_ID"):
        return os.environ["MOTO_ACCOUNT_ID"]
    from moto.iam.models import get_account_id_from

    return get_account_id_from(sandbox.ACCESS_KEY)


def _instance_accounts(sandbox):
    """The accounts an instance of the sandbox may live in: the sandbox's own (its organization's
    management account) first, then each member account of its organization, as moto's
    Organizations lists them (``organizations.describe_organization``, no API call)."""
    management = _sandbox_account(sandbox)
    organization = describe_organization(sandbox) or {"accounts": []}
    return [management] + [entry["id"] for entry in organization["accounts"] if entry["id"] != management]


def _moto_instance(sandbox, instance_id, region, account=None):
    """(account, moto's instance) of ``instance_id`` in ``region``, in any state: in ``account``,
    else in the first of ``_instance_accounts`` that holds it. ValueError when none does."""
    from moto.ec2.models import ec2_backends

    accounts = [_checked_account(account)] if account is not None else _instance_accounts(sandbox)
    for candidate in accounts:
        try:
            return candidate, ec2_backends[candidate][region].get_instance(instance_id)
        except Exception:  # pylint: disable=broad-except  # moto's InvalidInstanceID.NotFound
            continue
    raise ValueError("the sandbox has no instance {0} in {1} (account {2})".format(
        instance_id, region, " nor ".join(accounts)))


def _count_of(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("{0}: {1!r} is not a number of calls (an integer, 0 or more)".format(name, value))
    return value


def _bucket_start(moment, period):
    """The start of the period (a clock interval of ``period`` seconds) that holds ``moment``, as
    moto keeps timestamps: naive UTC."""
    utc = moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    epoch = datetime.datetime(1970, 1, 1)
    seconds = int((utc - epoch).total_seconds())
    return epoch + datetime.timedelta(seconds=seconds - seconds % period), utc.replace(second=0, microsecond=0)


def _add_usage(account, region, instance_id, metric, count, moment, period):
    """``count`` calls at ``moment`` into the instance's datapoint of that period (created at the
    first call of the period, as EC2 does: no call, no datapoint)."""
    from moto.cloudwatch.models import MetricAggregatedDatum, cloudwatch_backends

    if not count:
        return
    backend = cloudwatch_backends[account][region]
    start, minute = _bucket_start(moment, period)
    key = (account, region, instance_id, metric, period, start)
    with _USAGE_LOCK:
        entry = _USAGE.get(key)
        if entry is None or entry[0] is not backend.metric_data:
            datum = MetricAggregatedDatum(
                namespace=METRIC_NAMESPACE, name=metric, min_stat=float(count), max_stat=float(count),
                sample_count=1.0, sum_stat=float(count), dimensions=[{"Name": "InstanceId", "Value": instance_id}],
                timestamp=start, unit="Count")
            datum.keyless_period = period
            entry = _USAGE[key] = (backend.metric_data, datum, {minute: count})
            backend.metric_data.append(datum)
            return
        datum, minutes = entry[1], entry[2]
        minutes[minute] = minutes.get(minute, 0) + count
        datum.sum = float(sum(minutes.values()))
        datum.sample_count = float(len(minutes))
        datum.min = float(min(minutes.values()))
        datum.max = float(max(minutes.values()))


def publish_imds_usage(sandbox, instance_id, no_token=0, rejected=0, when=None, region=None, account=None):
    """What EC2 would have published for ``instance_id`` at ``when`` (an aware datetime; default
    now): ``no_token`` IMDSv1 calls served (MetadataNoToken) and ``rejected`` IMDSv1 calls refused
    (MetadataNoTokenRejected), added to the instance's datapoint of that period (5 minutes, or 1
    for an instance with detailed monitoring), without making the calls. The instance must exist
    in moto's EC2 (in ``region``, default the sandbox's), in any state: EC2 publishes only for its
    instances, and CloudWatch keeps what was published after they are gone. It goes to the
    instance's account: ``account``, else the sandbox's or the member account of its organization
    that holds the instance. ``when`` may not be in the future, nor older than CloudWatch keeps
    data (``METRIC_RETENTION``). Published whether or not the emulators' publishing is on (that
    switch is about live calls). Returns {metric: count} as published (a 0 publishes nothing)."""
    no_token = _count_of(no_token, "no_token")
    rejected = _count_of(rejected, "rejected")
    now = _utcnow()
    when = now if when is None else when
    if not isinstance(when, datetime.datetime) or when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("when: {0!r} is not an aware datetime (give its offset, e.g. UTC)".format(when))
    if when > now:
        raise ValueError("when: {0} is in the future; EC2 publishes usage that happened".format(when.isoformat()))
    if when < now - METRIC_RETENTION:
        raise ValueError("when: {0} is older than CloudWatch keeps data ({1} days)".format(
            when.isoformat(), METRIC_RETENTION.days))
    region = region or sandbox.REGION
    account, instance = _moto_instance(sandbox, instance_id, region, account)
    period = DETAILED_PERIOD if instance.monitoring_state == "enabled" else BASIC_PERIOD
    published = {}
    for metric, count in ((NO_TOKEN_METRIC, no_token), (REJECTED_METRIC, rejected)):
        _add_usage(account, region, instance_id, metric, count, when, period)
        published[metric] = count
    return published


def imds_usage(sandbox, instance_id, start=None, end=None, region=None, account=None):
    """What the sandbox's CloudWatch holds for the instance's IMDS metrics, in the instance's
    account (``account``, else the one that holds it, else the sandbox's), read from moto's
    backend (no API call): {"MetadataNoToken": sum, "MetadataNoTokenRejected": sum, "datapoints":
    [{"metric", "timestamp" (aware UTC, the period's start), "period", "sum", "sample_count"}]},
    between ``start`` (inclusive) and ``end`` (exclusive), aware datetimes, default everything.
    Only what EC2 publishes counts (namespace AWS/EC2, the single dimension InstanceId)."""
    from moto.cloudwatch.models import MetricAggregatedDatum, MetricDatum, cloudwatch_backends

    def naive(moment):
        return None if moment is None else moment.astimezone(datetime.timezone.utc).replace(tzinfo=None)

    low, high = naive(start), naive(end)
    region = region or sandbox.REGION
    if account is None:
        try:
            account = _moto_instance(sandbox, instance_id, region)[0]
        except ValueError:  # an instance no account holds: the sandbox's account, as ever
            account = _sandbox_account(sandbox)
    backend = cloudwatch_backends[_checked_account(account)][region]
    totals = {NO_TOKEN_METRIC: 0.0, REJECTED_METRIC: 0.0}
    datapoints = []
    for datum in list(backend.metric_data):
        if datum.namespace != METRIC_NAMESPACE or datum.name not in totals:
            continue
        if [(d.name, d.value) for d in datum.dimensions] != [("InstanceId", instance_id)]:
            continue
        if (low is not None and datum.timestamp < low) or (high is not None and datum.timestamp >= high):
            continue
        if isinstance(datum, MetricAggregatedDatum):
            total, samples = datum.sum, datum.sample_count
        elif isinstance(datum, MetricDatum):
            total, samples = datum.value, 1
        else:
            continue
        totals[datum.name] += total
        datapoints.append({"metric": datum.name, "timestamp": datum.timestamp.replace(tzinfo=datetime.timezone.utc),
                           "period": getattr(datum, "keyless_period", None), "sum": total, "sample_count": samples})
    datapoints.sort(key=lambda point: (point["timestamp"], point["metric"]))
    result = {metric: int(total) if float(total).is_integer() else total for metric, total in totals.items()}
    result["datapoints"] = datapoints
    return result


def _jsonable_usage(usage):
    points = [dict(point, timestamp=_timestamp(point["timestamp"])) for point in usage["datapoints"]]
    return dict(usage, datapoints=points)


# ---- moto's IAM policy enforcement -------------------------------------------------------
#
# moto checks every request against IAM policies once it has served
# settings.INITIAL_NO_AUTH_ACTION_COUNT requests without checking (infinity by default). That
# setting and the counter are module globals of moto: one switch per *process*. The sandbox
# runs moto in its own process (one per xdist worker, one for `make demo`), so in practice the
# switch is per sandbox. Once on, every request needs the keys of a real IAM user or of an
# assumed role: the sandbox's own dummy keys are then given to an IAM user, the sandbox admin,
# whose inline policy allows everything, so the sandbox's clients and modules keep working.

SANDBOX_ADMIN = "keyless-sandbox-admin"


def iam_enforcement_enabled():
    from moto import settings

    return settings.INITIAL_NO_AUTH_ACTION_COUNT != float("inf")


def set_iam_enforcement(sandbox, enabled):
    """Switch moto's IAM policy enforcement on or off for this process (so for its sandbox)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    if enabled:
        _ensure_sandbox_admin(sandbox)
        settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    else:
        settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
    ActionAuthenticatorMixin.request_count = 0


class iam_enforcement:  # pylint: disable=invalid-name  # used like a function: with iam_enforcement(sb):
    """``with iam_enforcement(sandbox):`` moto enforces IAM policies inside the block."""

    def __init__(self, sandbox):
        self.sandbox = sandbox

    def __enter__(self):
        set_iam_enforcement(self.sandbox, True)
        return self.sandbox

    def __exit__(self, *exc):
        set_iam_enforcement(self.sandbox, False)
        return False


def _ensure_sandbox_admin(sandbox):
    """The sandbox's access key belongs to an IAM user allowed everything (in moto's memory)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    backend = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    if SANDBOX_ADMIN not in backend.users:
        backend.create_user(sandbox.REGION, SANDBOX_ADMIN)
        backend.put_user_policy(SANDBOX_ADMIN, "allow-everything", json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        }))
    user = backend.users[SANDBOX_ADMIN]
    if not any(key.access_key_id == sandbox.ACCESS_KEY for key in user.access_keys):
        key = backend.create_access_key(SANDBOX_ADMIN)
        backend.access_keys.pop(key.physical_resource_id, None)
        key.access_key_id = sandbox.ACCESS_KEY
        key.secret_access_key = sandbox.SECRET_KEY
        backend.access_keys[key.physical_resource_id] = key
