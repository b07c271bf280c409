"""The sandbox's AWS-like mode: EC2's and IAM's request throttling, and the latency of a real call.

Off by default (the other tests stay fast); ``make bench`` and the reliability tests turn it on.

EC2 (developer guide, "Request throttling for the Amazon EC2 API",
https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html; the older copy of the page
is https://docs.aws.amazon.com/AWSEC2/latest/APIReference/throttling.html): EC2 "throttles EC2 API
requests for each AWS account on a per-Region basis" with token buckets. A request takes one token
from its action's bucket; a bucket refills at its rate up to its capacity ("If the bucket is full
when refill tokens arrive, they are discarded"); with no token left the request fails with the
error code ``RequestLimitExceeded``. The sandbox refills continuously (a bucket of refill 5/s holds
one more token every 0.2 s), answers HTTP 503 ``RequestLimitExceeded`` "Request limit exceeded."
(the status and text of EC2's answer as its users report it: jclouds/legacy-jclouds issue 1214,
karamelchef/karamel issue 46 ``AWSError{code='RequestLimitExceeded', message='Request limit
exceeded.'}`` with code 503, haskell-mafia/mismi issue 196, otiai10/hotsub issue 10) and keeps the
buckets per (account, region). The table (``DEFAULT_BUCKETS["ec2"]``, a test may change it):

============================  ==========================================================  ========  ========
bucket                        actions                                                     capacity  refill/s
============================  ==========================================================  ========  ========
``associations``              AssociateIamInstanceProfile,                                100       5
                              DisassociateIamInstanceProfile
``metadata_options``          ModifyInstanceMetadataOptions                               100       5
``launch_template_versions``  CreateLaunchTemplateVersion, ModifyLaunchTemplate           100       5
``metadata_defaults``         ModifyInstanceMetadataDefaults                              2         2
``run_instances``             RunInstances (requests)                                     5         2
``run_instances_resource``    RunInstances (instances launched: its *resource* bucket)    1000      2
``mutating``                  every other mutating action                                 50        5
                              (ReplaceIamInstanceProfileAssociation, CreateTags, ...)
``non_mutating``              Describe*, Get*, List* (the non-mutating actions)           100       20
============================  ==========================================================  ========  ========

* The per-action figures are those of the page's request token table as issue 13 of this project
  quotes it; the stored copies of the page the project could read show only its opening (the
  ``DescribeHosts`` example: a non-mutating action, 100 tokens, 20 per second), not the table
  rows, so the rows are not confirmed here beyond that example.
* Resource rate limiting: some actions also take tokens from a resource bucket, one per resource.
  RunInstances: 1000 tokens, two per second ("the resource token bucket size for RunInstances is
  1000 tokens, and the refill rate is two tokens per second ... you can immediately launch 1000
  instances, using any number of API requests", an AWS answer quoting the page,
  https://repost.aws/questions/QUjr7o2qXxTTiCqGBfnmo6yA). A RunInstances whose ``MinCount`` is
  more than the tokens left is refused as a throttled request; otherwise it takes ``MaxCount``
  tokens, or what is left. Our reading: moto launches ``MaxCount`` anyway, so with ``MinCount <
  MaxCount`` and few tokens the sandbox may launch more than EC2 would. The page has resource
  buckets for TerminateInstances, StartInstances and StopInstances too; their figures could not be
  confirmed here, so the sandbox has none.
* Shared or per API? The current page says "each API is evaluated individually ... requests for
  other API are not affected"; the older one speaks of one bucket for all "non-mutating
  (Describe*) API actions". Whether the actions of one row share a bucket is not stated. Our
  reading, the stricter one: one bucket per row, shared by its actions (``per_action: false``);
  ``per_action: true`` gives every action its own bucket with its row's figures.
* A refused request takes no token, from any bucket (our reading: that is what a token bucket
  does). ``DryRun`` requests take tokens as any other (the stricter reading).
* The message: "Request limit exceeded." is what EC2 answered for years. A 2026 report shows a
  longer text, "Request limit exceeded. Account <id> has been throttled on ec2:RunInstances
  because it exceeded its request rate limit." (CloudSnorkel/cdk-github-runners issue 946):
  ``ec2_message_form: "account"`` answers that form (for every action; the resource bucket's
  wording is not published, our reading is the same text); ``"classic"`` (the default) the short
  one. A client must go by the code, never the text.

IAM answers a throttled request HTTP 400 with its query-protocol error document,
``<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>
</Error><RequestId>..</RequestId></ErrorResponse>`` (nccgroup/Scout2 issue 17 shows the document;
gruntwork-io/cloud-nuke issue 371, "Throttling: Rate exceeded status code: 400" deleting IAM roles;
prowler-cloud/prowler issue 211). IAM publishes no buckets: AWS Support says "IAM and AWS STS
independently implement a token bucket algorithm ... The number of tokens that a bucket holds and
the refill rate depends on the API. For each IAM API, a number of token buckets might apply"
(hashicorp/terraform-provider-aws issue 44853), without figures. The sandbox gives IAM two buckets
per account (IAM is global: no region), ``mutating`` (20 tokens, 5 per second) and
``non_mutating`` (Get*, List*: 50 tokens, 20 per second): not published; this is our reading.
STS: no published limit; never throttled here (latency only).

Latency: every call of a service waits ``latency[service]`` seconds (``latency["*"]`` for the
services not named) in its server thread before it is answered, admitted or throttled alike, and
holding no lock (concurrent calls overlap, as on AWS). Defaults: ec2 0.02 s, iam 0.04 s, every
other service 0.02 s: near what a client in the same region sees; not published, our reading.

Never limited nor delayed: the sandbox's control paths (``/_sandbox/``, never asked), moto's own
API (``/moto-api``, unsigned: no service), and requests marked ``X-Keyless-Sandbox-Origin`` (the
IMDS emulators' reads, the tests' snapshots). The account of a request is the one moto files it
under: ``MOTO_ACCOUNT_ID``, then an ``x-moto-account-id`` header, then the access key (an
assumed role's key is its role's account; ``extensions.account_of``), so one account's burst
never eats another's. Refused requests are answered through ``SandboxApp``'s usual path: the
request log has them with status 503 (EC2) / 400 (IAM) and ``"injected": "limits:<bucket>"``.

From Python (``sandbox.limits``, a ``Limits``)::

    with sandbox.limits.aws_like():                  # on, the default table and latency; then as before
        ...
    sandbox.limits.configure({"enabled": True,       # or configure(enabled=True, latency=...)
                              "latency": {"ec2": 0.02, "*": 0},
                              "buckets": {"ec2": {"associations": {"capacity": 100, "refill": 5}},
                                          "iam": {"mutating": {"refill": 2}}},
                              "per_action": False,
                              "ec2_message_form": "classic"})
    sandbox.limits.refill()                          # every bucket full again
    sandbox.limits.stats()                           # {"admitted": {"ec2/associations": n}, "throttled": {...}}
    sandbox.limits.bucket_for("ec2", "ReplaceIamInstanceProfileAssociation")   # "mutating"
    sandbox.limits.tokens("ec2", "associations", account="123456789012", region="us-east-1")

``configure`` is a partial update (what it does not name keeps its value; a bucket entry may give
``capacity`` or ``refill`` alone); every name and value is checked first and a bad one raises
``LimitsError`` (a ValueError) naming it, with nothing changed. Every configuration starts from
full buckets and zeroed statistics. ``aws_like(config=None, **overrides)`` takes the same keys,
laid over the defaults; the statistics of the block stay readable after it.

From another process (``make bench``, ansible-playbook runs), the same as JSON::

    GET    $URL/_sandbox/limits   {"enabled": bool, "latency": {service: s}, "buckets": {service:
                                  {bucket: {"capacity": n, "refill": n}}}, "per_action": bool,
                                  "ec2_message_form": str, "stats": {"admitted": {...},
                                  "throttled": {...}}}
    POST   $URL/_sandbox/limits   the configure dict; answers as GET; 400 {"error"} for a bad name
                                  or value, and then nothing changes
    DELETE $URL/_sandbox/limits   off, the default table and latency, buckets full; answers as GET

The AWS-like mode from there: ``DELETE`` then ``POST {"enabled": true}``. A sandbox reset
(``app.reset_hooks``) turns the mode off with the defaults too. ``Limits(clock=time.monotonic,
sleep=time.sleep)``: a test may give (or set, ``limits.clock`` / ``limits.sleep``) its own clock
and sleep.
"""

import contextlib
import copy
import os
import threading
import time

from .extensions import account_of
from .faults import ec2_error
from .faults import error_response
from .server import json_control

CONTROL_PATH = "/_sandbox/limits"
ORIGIN_HEADER_ENVIRON = "HTTP_X_KEYLESS_SANDBOX_ORIGIN"
EC2_THROTTLING_PAGE = "https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html"

# service -> bucket -> figures (tokens, tokens per second). EC2: the page's; IAM: our reading.
DEFAULT_BUCKETS = {
    "ec2": {
        "associations": {"capacity": 100, "refill": 5},
        "metadata_options": {"capacity": 100, "refill": 5},
        "launch_template_versions": {"capacity": 100, "refill": 5},
        "metadata_defaults": {"capacity": 2, "refill": 2},
        "run_instances": {"capacity": 5, "refill": 2},
        "run_instances_resource": {"capacity": 1000, "refill": 2},
        "mutating": {"capacity": 50, "refill": 5},
        "non_mutating": {"capacity": 100, "refill": 20},
    },
    "iam": {
        "mutating": {"capacity": 20, "refill": 5},
        "non_mutating": {"capacity": 50, "refill": 20},
    },
}
# EC2 actions with a bucket of their own row; every other action is mutating or non-mutating.
EC2_ACTION_BUCKETS = {
    "AssociateIamInstanceProfile": "associations",
    "DisassociateIamInstanceProfile": "associations",
    "ModifyInstanceMetadataOptions": "metadata_options",
    "CreateLaunchTemplateVersion": "launch_template_versions",
    "ModifyLaunchTemplate": "launch_template_versions",
    "ModifyInstanceMetadataDefaults": "metadata_defaults",
    "RunInstances": "run_instances",
}
# action -> its resource bucket (tokens: resources asked for, MinCount to be admitted).
EC2_RESOURCE_BUCKETS = {"RunInstances": "run_instances_resource"}
NON_MUTATING_PREFIXES = {"ec2": ("Describe", "Get", "List"), "iam": ("Get", "List")}
# Services throttled per account only (global services).
GLOBAL_SERVICES = ("iam",)
DEFAULT_LATENCY = {"ec2": 0.02, "iam": 0.04, "*": 0.02}
MAX_LATENCY = 60.0
MAX_CAPACITY = 10 ** 9

MESSAGE_FORMS = ("classic", "account")
EC2_MESSAGE = "Request limit exceeded."
EC2_ACCOUNT_MESSAGE = ("Request limit exceeded. Account {account} has been throttled on ec2:{action} because it "
                       "exceeded its request rate limit.")
IAM_STATUS, IAM_CODE, IAM_MESSAGE = 400, "Throttling", "Rate exceeded"
EC2_STATUS, EC2_CODE = 503, "RequestLimitExceeded"

KEYS = ("enabled", "latency", "buckets", "per_action", "ec2_message_form")
FIGURES = ("capacity", "refill")


class LimitsError(ValueError):
    """A configuration the limits cannot use (the control API answers 400)."""


def bucket_for(service, action):
    """The throttling bucket of ``service``'s ``action`` (a name of ``DEFAULT_BUCKETS[service]``),
    or None for a service the sandbox does not throttle. For RunInstances, its request bucket
    (``resource_bucket_for`` names the other)."""
    if service not in DEFAULT_BUCKETS:
        return None
    action = str(action or "")
    if service == "ec2" and action in EC2_ACTION_BUCKETS:
        return EC2_ACTION_BUCKETS[action]
    if action.startswith(NON_MUTATING_PREFIXES.get(service, ())):
        return "non_mutating"
    return "mutating"


def resource_bucket_for(service, action):
    """The resource bucket ``action`` also takes tokens from (one per resource), or None."""
    return EC2_RESOURCE_BUCKETS.get(action) if service == "ec2" else None


def request_account(info):
    """The account moto files the request under (``MOTO_ACCOUNT_ID``, the ``x-moto-account-id``
    header, then the access key)."""
    if os.environ.get("MOTO_ACCOUNT_ID"):
        return os.environ["MOTO_ACCOUNT_ID"]
    header = (info.get("environ") or {}).get("HTTP_X_MOTO_ACCOUNT_ID")
    if header:
        return header
    return account_of({"environ": info.get("environ") or {}})


def _count(params, key, default):
    try:
        return max(int(params.get(key, default)), 0)
    except (TypeError, ValueError):
        return default


def _merged(config, keywords):
    """The configure dict of ``configure(config, **keywords)`` (a non-dict ``config`` is left for
    ``checked`` to refuse)."""
    if config is None:
        return dict(keywords)
    return dict(config, **keywords) if isinstance(config, dict) else config


_SERVICES = []


def _known_service(name):
    if not _SERVICES:
        import botocore.session

        _SERVICES.extend(botocore.session.get_session().get_available_services())
    return name == "*" or name in _SERVICES


def _number(value, what, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise LimitsError("{0}: give a number from {1} to {2}, not {3!r}".format(what, low, high, value))
    return value


def checked(config):
    """The configuration ``config`` (the configure dict), checked: a copy, or LimitsError."""
    if not isinstance(config, dict):
        raise LimitsError("give an object with any of {0}, not {1!r}".format(", ".join(KEYS), config))
    unknown = sorted(set(config) - set(KEYS))
    if unknown:
        raise LimitsError("unknown key(s) {0}; known: {1}".format(", ".join(unknown), ", ".join(KEYS)))
    result = {}
    for key in ("enabled", "per_action"):
        if key in config:
            if not isinstance(config[key], bool):
                raise LimitsError("{0}: give true or false, not {1!r}".format(key, config[key]))
            result[key] = config[key]
    if "ec2_message_form" in config:
        if config["ec2_message_form"] not in MESSAGE_FORMS:
            raise LimitsError("ec2_message_form: {0!r} unknown; known: {1}".format(
                config["ec2_message_form"], ", ".join(MESSAGE_FORMS)))
        result["ec2_message_form"] = config["ec2_message_form"]
    latency = config.get("latency", {})
    if not isinstance(latency, dict):
        raise LimitsError("latency: give {{service: seconds}}, not {0!r}".format(latency))
    bad = sorted(str(name) for name in latency if not isinstance(name, str) or not _known_service(name))
    if bad:
        raise LimitsError("latency: unknown service(s) {0}; give botocore's service names, or * for "
                          "every other service".format(", ".join(bad)))
    if "latency" in config:
        result["latency"] = dict((name, _number(seconds, "latency of " + name, 0, MAX_LATENCY))
                                 for name, seconds in latency.items())
    buckets = config.get("buckets", {})
    if not isinstance(buckets, dict):
        raise LimitsError("buckets: give {{service: {{bucket: {{capacity, refill}}}}}}, not {0!r}".format(buckets))
    bad = sorted(str(name) for name in buckets if name not in DEFAULT_BUCKETS)
    if bad:
        raise LimitsError("buckets: unknown service(s) {0}; throttled: {1}".format(
            ", ".join(bad), ", ".join(DEFAULT_BUCKETS)))
    if "buckets" in config:
        result["buckets"] = {}
    for service, table in buckets.items():
        if not isinstance(table, dict):
            raise LimitsError("buckets.{0}: give {{bucket: {{capacity, refill}}}}, not {1!r}".format(service, table))
        bad = sorted(str(name) for name in table if name not in DEFAULT_BUCKETS[service])
        if bad:
            raise LimitsError("buckets.{0}: unknown bucket(s) {1}; known: {2}".format(
                service, ", ".join(bad), ", ".join(DEFAULT_BUCKETS[service])))
        result["buckets"][service] = {}
        for name, figures in table.items():
            what = "buckets.{0}.{1}".format(service, name)
            if not isinstance(figures, dict):
                raise LimitsError("{0}: give {{capacity, refill}}, not {1!r}".format(what, figures))
            bad = sorted(str(key) for key in figures if key not in FIGURES)
            if bad:
                raise LimitsError("{0}: unknown key(s) {1}; known: {2}".format(
                    what, ", ".join(bad), ", ".join(FIGURES)))
            result["buckets"][service][name] = dict(
                (key, _number(value, what + "." + key, 0, MAX_CAPACITY)) for key, value in figures.items())
    return result


class Limits:
    """The sandbox's AWS-like mode: token buckets per (account, region) and latency per call
    (see the module's docstring). ``intercept`` is the interceptor of ``SandboxApp``."""

    bucket_for = staticmethod(bucket_for)
    resource_bucket_for = staticmethod(resource_bucket_for)

    def __init__(self, clock=time.monotonic, sleep=time.sleep):
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._defaults_locked()
        self._levels = {}
        self._zero_stats_locked()

    # ---- configuration ------------------------------------------------------------------------
    def _defaults_locked(self):
        self._enabled = False
        self._latency = dict(DEFAULT_LATENCY)
        self._buckets = copy.deepcopy(DEFAULT_BUCKETS)
        self._per_action = False
        self._message_form = MESSAGE_FORMS[0]

    def _zero_stats_locked(self):
        self._admitted = {}
        self._throttled = {}

    def _apply_locked(self, config):
        for key, attribute in (("enabled", "_enabled"), ("per_action", "_per_action"),
                               ("ec2_message_form", "_message_form")):
            if key in config:
                setattr(self, attribute, config[key])
        self._latency.update(config.get("latency", {}))
        for service, table in config.get("buckets", {}).items():
            for name, figures in table.items():
                self._buckets[service][name].update(figures)
        self._levels = {}
        self._zero_stats_locked()

    def _snapshot_locked(self):
        return {"enabled": self._enabled, "latency": dict(self._latency), "buckets": copy.deepcopy(self._buckets),
                "per_action": self._per_action, "ec2_message_form": self._message_form}

    def configure(self, config=None, **kwargs):
        """Change the configuration (the dict of the module's docstring; keywords alike): what is
        not named keeps its value; buckets full again, statistics zeroed. Answers ``status()``."""
        config = checked(_merged(config, kwargs))
        with self._lock:
            self._apply_locked(config)
        return self.status()

    @contextlib.contextmanager
    def aws_like(self, config=None, **overrides):
        """The AWS-like mode for the block: on, the default table and latency, ``overrides`` (the
        configure keys) laid over them; then the configuration as it was before, buckets full."""
        overrides = checked(_merged(config, overrides))
        with self._lock:
            before = self._snapshot_locked()
            self._defaults_locked()
            self._enabled = True
            self._apply_locked(overrides)
        try:
            yield self
        finally:
            with self._lock:
                self._enabled = before["enabled"]
                self._latency = before["latency"]
                self._buckets = before["buckets"]
                self._per_action = before["per_action"]
                self._message_form = before["ec2_message_form"]
                self._levels = {}

    def refill(self):
        """Every bucket full again (statistics kept)."""
        with self._lock:
            self._levels = {}

    def reset(self):
        """Off, the default table and latency, buckets full, statistics zeroed (a sandbox reset)."""
        with self._lock:
            self._defaults_locked()
            self._levels = {}
            self._zero_stats_locked()
        return self.status()

    @property
    def enabled(self):
        with self._lock:
            return self._enabled

    def stats(self):
        """Requests admitted and throttled per "service/bucket" since the last reset or configure."""
        with self._lock:
            return self._stats_locked()

    def _stats_locked(self):
        return {"admitted": dict(sorted(self._admitted.items())),
                "throttled": dict(sorted(self._throttled.items()))}

    def status(self):
        """The configuration and the statistics (what GET answers)."""
        with self._lock:
            state = self._snapshot_locked()
            state["stats"] = self._stats_locked()
        return state

    # ---- the buckets --------------------------------------------------------------------------
    def _key(self, service, bucket, account, region, action):
        region = "*" if service in GLOBAL_SERVICES else (region or "us-east-1")
        return (service, bucket, account, region, action if self._per_action else None)

    def _level_locked(self, key, now):
        figures = self._buckets[key[0]][key[1]]
        level, since = self._levels.get(key, (float(figures["capacity"]), now))
        return min(float(figures["capacity"]), level + max(now - since, 0.0) * figures["refill"])

    def tokens(self, service, bucket, account="123456789012", region="us-east-1", action=None):
        """The tokens ``bucket`` of ``service`` holds now for ``account`` in ``region`` (``action``:
        the bucket of that action, with ``per_action`` on)."""
        if bucket not in DEFAULT_BUCKETS.get(service, {}):
            raise LimitsError("unknown bucket {0}/{1}".format(service, bucket))
        with self._lock:
            return self._level_locked(self._key(service, bucket, account, region, action), self.clock())

    def _admit_locked(self, service, action, account, region, params):
        """None when admitted (the tokens taken), else the bucket that refused (nothing taken)."""
        now = self.clock()
        bucket = bucket_for(service, action)
        draws = [(bucket, 1.0, 1.0)]
        resource = resource_bucket_for(service, action)
        if resource is not None:
            least = _count(params, "MinCount", 1)
            draws.append((resource, float(least), float(max(least, _count(params, "MaxCount", least)))))
        levels = []
        for name, need, _want in draws:
            key = self._key(service, name, account, region, action)
            level = self._level_locked(key, now)
            if level < need:
                label = "{0}/{1}".format(service, name)
                self._throttled[label] = self._throttled.get(label, 0) + 1
                return name
            levels.append((key, level))
        for (key, level), (name, _need, want) in zip(levels, draws):
            self._levels[key] = (level - min(want, level), now)
            label = "{0}/{1}".format(service, name)
            self._admitted[label] = self._admitted.get(label, 0) + 1
        return None

    # ---- the interceptor ----------------------------------------------------------------------
    def intercept(self, info):
        """Throttle (the service's throttling answer) or admit (None), after the call's latency."""
        service = info.get("service")
        environ = info.get("environ") or {}
        if service is None or environ.get(ORIGIN_HEADER_ENVIRON):
            return None
        with self._lock:
            if not self._enabled:
                return None
            latency = self._latency.get(service, self._latency.get("*", 0.0))
            throttled = service in self._buckets
        refused = account = None
        if throttled:
            account = request_account(info)  # outside the lock: it reads moto's backends
            with self._lock:
                if self._enabled:
                    refused = self._admit_locked(service, info.get("action"), account, info.get("region"),
                                                 info.get("params") or {})
                form = self._message_form
        if latency:
            self.sleep(latency)  # no lock held: concurrent calls overlap
        if refused is None:
            return None
        info["injected"] = "limits:" + refused
        if service == "ec2":
            message = EC2_MESSAGE if form == "classic" else EC2_ACCOUNT_MESSAGE.format(
                account=account, action=info.get("action"))
            return ec2_error(EC2_STATUS, EC2_CODE, message)
        return error_response(service, IAM_STATUS, IAM_CODE, IAM_MESSAGE)

    # ---- control API --------------------------------------------------------------------------
    def control(self, method, path, body):
        return json_control(path, CONTROL_PATH, method, body, self.status, self.configure, self.reset)


def install(sandbox):
    """Register the limits on a started sandbox (idempotent): ``sandbox.limits``, asked before every
    other interceptor (EC2 throttles before it looks at a request), off until configured."""
    app = sandbox.app
    limits = getattr(app, "keyless_limits", None)
    if limits is None:
        limits = Limits()
        app.interceptors.insert(0, limits.intercept)
        app.reset_hooks.append(limits.reset)
        app.control_handlers[CONTROL_PATH] = limits.control
        app.keyless_limits = limits
    sandbox.limits = limits
    return limits
