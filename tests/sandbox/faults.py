"""The sandbox's fault-injection proxy, scripted faults, and where moto differs from AWS in a
way a fleet under faults feels (associations, launch template versions, profile roles).

Everything here sits in front of moto as an *interceptor* of ``SandboxApp`` (asked before any
extension or moto), so the modules reach it through the same ``endpoint_url`` as the rest of the
sandbox.

``FaultProxy`` (``sandbox.faults``), configured per service and API action:

* **rules**: an error rate and the kinds of fault to inject:

  ========================  ======  ===========================================================
  kind                      status  what the client sees
  ========================  ======  ===========================================================
  ``Throttling``            400     the service's error document, code ``Throttling``
  ``RequestLimitExceeded``  503     code ``RequestLimitExceeded`` (EC2's throttling)
  ``ServiceUnavailable``    503     code ``ServiceUnavailable``
  ``InternalError``         500     code ``InternalError``
  ``throttle``                      ``RequestLimitExceeded`` on EC2, ``Throttling`` elsewhere
  ``reset``                 --      the connection is closed with no answer; moto never saw
                                    the request (botocore: ``ConnectionClosedError``)
  ``reset_after``           --      moto *did* the request, then the connection is closed with
                                    no answer (the answer was lost: the retry finds it done)
  ``slow``                  (any)   the answer comes ``delay`` seconds late
  ========================  ======  ===========================================================

  The error document has the shape of the service's protocol: IAM and STS (query protocol)
  ``<ErrorResponse><Error><Type>Sender|Receiver</Type><Code/><Message/></Error><RequestId/>``,
  EC2 ``<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>``, S3
  ``<Error><Code/><Message/><RequestId/></Error>``, JSON services ``{"__type", "message"}``.
  Whether the n-th call of an action matching a rule fails, and how, depends only on the
  seed, the rule, the action and n: a run is reproducible whatever the other actions do.
  ``max_consecutive`` caps the failures in a row of one action (so a retry policy can always
  win), ``limit`` the failures a rule injects in all.
* **scripted** faults, counted, the propagation error generalised: "the first K
  ``AssociateIamInstanceProfile`` calls for a profile created less than T seconds ago fail
  with ``InvalidParameterValue ... Invalid IAM Instance Profile name``" (per profile; the
  profile's age is moto's own creation date).
* **associating_reads**: new associations (associate, replace) show ``associating`` in the
  answer of the call and in their first N reads, as AWS shows them for a moment; then
  ``associated``.

Every fault injected is counted (``status()``) and marked in the sandbox's request log
(``"injected": <kind>``; status 0 means no answer at all). Requests the sandbox makes for
itself (marked ``X-Keyless-Sandbox-Origin``: the IMDS emulators' reads, the tests' snapshots)
are never faulted.

From Python::

    proxy = sandbox.faults            # or fault_proxy(sandbox)
    proxy.configure({"seed": 7, "rules": [{"service": "ec2", "rate": 0.2}]})
    with proxy.configured({...}):     # cleared again at the end of the block
        ...

From another process (ansible-playbook, ``make bench``), the same JSON::

    GET    $URL/_sandbox/faults   the configuration and the counters
    POST   $URL/_sandbox/faults   configure (JSON body as for configure(); replaces rules,
                                  scripted faults and settings; counters kept unless
                                  "reset_counters": true)
    DELETE $URL/_sandbox/faults   no more faults, counters zeroed

A sandbox reset clears the configuration too.

``PropagationFault`` (``propagation_fault(sandbox)``): ``arm(profile, K)`` makes the next K
Associate/Replace calls naming that profile fail as EC2 fails for a fresh profile (also
reachable as ``"propagation": {profile: K}`` in a configuration).

``aws_fidelity()``: while on, (1) ``DescribeIamInstanceProfileAssociations`` honours
``MaxResults`` (moto reads ``MaxItems``, which is not an AWS parameter, so it always pages at
100), (2) ``ReplaceIamInstanceProfileAssociation`` gives the instance a new association id and
updates the instance's own ``IamInstanceProfile``, as AWS does (moto keeps the old id and the
old attribute), (3) ``RunInstances`` with ``IamInstanceProfile`` and a count above one gives
*every* instance the profile (moto associates the first instance only), (4)
``CreateLaunchTemplateVersion`` with a ``ClientToken`` already used answers what the first
call answered and creates nothing (moto ignores the token, so a retried call made a second
version), (5) ``RemoveRoleFromInstanceProfile`` for a role the profile does not hold answers
``NoSuchEntity`` (moto fails with a 500 and an HTML page), and (6) associating, replacing and
disassociating are atomic per backend: two parallel ``AssociateIamInstanceProfile`` calls for
one instance give one association and one ``IncorrectState``, as on AWS (moto checks, then
creates, and the later call silently replaces the earlier one). These wrap moto's own methods (moto runs in this process), process-wide,
hence the switch: ``install`` turns them on for good, a test can turn them on for its own
duration with ``with aws_fidelity(): ...``.

``install(sandbox)`` registers all of it (idempotent) and returns the ``PropagationFault``.
"""

import contextlib
import json
import random
import re
import socket
import struct
import threading
import time
import uuid
from xml.sax.saxutils import escape

PROPAGATION_ACTIONS = ("AssociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation")
ORIGIN_HEADER_ENVIRON = "HTTP_X_KEYLESS_SANDBOX_ORIGIN"
CONTROL_PATH = "/_sandbox/faults"

# kind -> (HTTP status, message): the error kinds, as the services answer them.
ERROR_KINDS = {
    "Throttling": (400, "Rate exceeded"),
    "RequestLimitExceeded": (503, "Request limit exceeded."),
    "ServiceUnavailable": (503, "The service is unavailable. Please try again shortly."),
    "InternalError": (500, "An internal error has occurred. Please try again."),
}
CONNECTION_KINDS = ("reset", "reset_after")
SLOW = "slow"
THROTTLE = "throttle"
KINDS = tuple(ERROR_KINDS) + CONNECTION_KINDS + (SLOW, THROTTLE)
# The retryable faults a rule injects when it names no kinds.
DEFAULT_KINDS = (THROTTLE, "ServiceUnavailable", "InternalError", "reset")
DEFAULT_SLOW_DELAY = 0.2

_XMLNS = {
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
}
_PROTOCOLS = {"iam": "query", "sts": "query", "ec2": "ec2", "s3": "rest-xml"}
_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")


# ---- error documents -----------------------------------------------------------------------


def ec2_error(status, code, message):
    """An EC2 (ec2 protocol) error response: (status, headers, body)."""
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{0}</Code>'
            "<Message>{1}</Message></Error></Errors><RequestID>{2}</RequestID></Response>").format(
                escape(code), escape(message), uuid.uuid4())
    return status, [("Content-Type", "text/xml;charset=UTF-8")], body


def protocol_of(service):
    """The wire protocol of a service (botocore's name for it), 'json' when unknown."""
    if service in _PROTOCOLS:
        return _PROTOCOLS[service]
    try:
        import botocore.session

        return botocore.session.get_session().get_service_model(service).protocol
    except Exception:  # pylint: disable=broad-except
        return "json"


def error_response(service, status, code, message):
    """The error document ``service`` answers with: (status, headers, body)."""
    protocol = protocol_of(service)
    if protocol == "ec2":
        return ec2_error(status, code, message)
    request_id = str(uuid.uuid4())
    if protocol == "query":
        body = ('<ErrorResponse xmlns="{0}"><Error><Type>{1}</Type><Code>{2}</Code><Message>{3}</Message>'
                "</Error><RequestId>{4}</RequestId></ErrorResponse>").format(
                    _XMLNS.get(service, "https://{0}.amazonaws.com/doc/".format(service)),
                    "Sender" if status < 500 else "Receiver", escape(code), escape(message), request_id)
        return status, [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)], body
    if protocol == "rest-xml":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{0}</Code><Message>{1}</Message>'
                "<RequestId>{2}</RequestId></Error>").format(escape(code), escape(message), request_id)
        return status, [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)], body
    body = json.dumps({"__type": code, "message": message})
    return status, [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", code),
                    ("x-amzn-RequestId", request_id)], body


def propagation_message(params):
    """What EC2 says of a profile it does not know yet, naming the parameter the call used."""
    name = params.get("IamInstanceProfile.Name")
    arn = params.get("IamInstanceProfile.Arn")
    if arn and not name:
        return ("Value ({0}) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile "
                "ARN".format(arn))
    return ("Value ({0}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile "
            "name".format(name))


def profile_named_by(params):
    """The instance profile a request names (by name or ARN), or None."""
    name = params.get("IamInstanceProfile.Name") or params.get("InstanceProfileName")
    if name:
        return name
    arn = params.get("IamInstanceProfile.Arn")
    return arn.rsplit("/", 1)[-1] if arn else None


def _profile_age(info, name):
    """Seconds since moto created the profile ``name`` (of the request's account), or None."""
    try:
        from moto.core.utils import utcnow
        from moto.iam.models import get_account_id_from
        from moto.iam.models import iam_backends

        match = _ACCESS_KEY.search(info["environ"].get("HTTP_AUTHORIZATION", ""))
        account = get_account_id_from(match.group(1) if match else "")
        for partition in ("aws", "aws-cn", "aws-us-gov"):
            try:
                profile = iam_backends[account][partition].get_instance_profile(name)
            except Exception:  # pylint: disable=broad-except
                continue
            return (utcnow() - profile.create_date).total_seconds()
    except Exception:  # pylint: disable=broad-except
        return None
    return None


def _drop_connection(info):
    """Close the request's connection without an answer (the client sees a reset/close)."""
    sock = info["environ"].get("werkzeug.socket")
    if sock is not None:
        try:
            # RST rather than FIN when the socket is finally closed, and no more reading or writing now.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    # werkzeug treats a ConnectionError from the application as "the client went away": no
    # answer, no traceback.
    raise ConnectionResetError("sandbox fault proxy: connection reset (injected)")


# ---- the propagation fault (armed by hand) --------------------------------------------------


class PropagationFault:
    """The next K association calls naming a profile fail as EC2 fails for a fresh profile."""

    def __init__(self):
        self._lock = threading.Lock()
        self._armed = {}
        self.injected = 0

    def arm(self, profile_name, failures):
        with self._lock:
            self._armed[profile_name] = int(failures)

    def disarm(self):
        with self._lock:
            self._armed = {}
            self.injected = 0

    def remaining(self, profile_name):
        with self._lock:
            return self._armed.get(profile_name, 0)

    def armed(self):
        with self._lock:
            return dict((name, left) for name, left in self._armed.items() if left > 0)

    def __call__(self, info):
        if info.get("service") != "ec2" or info.get("action") not in PROPAGATION_ACTIONS:
            return None
        params = info.get("params") or {}
        profile = profile_named_by(params)
        with self._lock:
            left = self._armed.get(profile, 0)
            if left <= 0:
                return None
            self._armed[profile] = left - 1
            self.injected += 1
        info["injected"] = "propagation"
        return ec2_error(400, "InvalidParameterValue", propagation_message(params))


# ---- the fault-injection proxy -------------------------------------------------------------


class ConfigError(ValueError):
    """A fault configuration the proxy cannot use (the control API answers 400)."""


def _names(value, what):
    """'*' / None (any) or a list of names."""
    if value is None or value == "*":
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ConfigError("{0}: give a name, a list of names or '*', not {1!r}".format(what, value))


def _number(entry, key, default, low=None, high=None, integer=False):
    value = entry.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise ConfigError("{0}: give a number, not {1!r}".format(key, value))
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError("{0}: {1} is out of range ({2} to {3})".format(key, value, low, high))
    return value


def _check_keys(entry, allowed, what):
    if not isinstance(entry, dict):
        raise ConfigError("{0}: each entry is an object, not {1!r}".format(what, entry))
    unknown = sorted(set(entry) - set(allowed))
    if unknown:
        raise ConfigError("{0}: unknown key(s) {1}; known: {2}".format(what, ", ".join(unknown), ", ".join(allowed)))


class FaultRule:
    """Faults at a rate, for some services and actions (None: any)."""

    KEYS = ("service", "services", "action", "actions", "rate", "kinds", "delay", "max_consecutive", "limit")

    def __init__(self, services=None, actions=None, rate=0.0, kinds=DEFAULT_KINDS, delay=DEFAULT_SLOW_DELAY,
                 max_consecutive=None, limit=None):
        self.services = _names(services, "services")
        self.actions = _names(actions, "actions")
        self.rate = float(rate)
        self.kinds = list(kinds)
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            raise ConfigError("kinds: {0} unknown; choose from {1}".format(
                ", ".join(unknown) or "none given", ", ".join(KINDS)))
        self.delay = float(delay)
        self.max_consecutive = max_consecutive
        self.limit = limit

    @classmethod
    def from_dict(cls, entry):
        _check_keys(entry, cls.KEYS, "rules")
        return cls(
            services=entry.get("services", entry.get("service")),
            actions=entry.get("actions", entry.get("action")),
            rate=_number(entry, "rate", 0.0, 0.0, 1.0),
            kinds=_names(entry.get("kinds"), "kinds") or DEFAULT_KINDS,
            delay=_number(entry, "delay", DEFAULT_SLOW_DELAY, 0.0, 60.0),
            max_consecutive=_number(entry, "max_consecutive", None, 1, None, integer=True),
            limit=_number(entry, "limit", None, 0, None, integer=True),
        )

    def as_dict(self):
        return {"services": self.services or "*", "actions": self.actions or "*", "rate": self.rate,
                "kinds": self.kinds, "delay": self.delay, "max_consecutive": self.max_consecutive,
                "limit": self.limit}

    def matches(self, service, action):
        return ((self.services is None or service in self.services)
                and (self.actions is None or action in self.actions))


class ScriptedFault:
    """The first ``first`` calls of ``actions`` (per profile they name) fail with an error.

    ``younger_than``: only while the profile named was created less than this many seconds ago
    (None: whatever its age; a profile that does not exist is left to moto). ``profile``: only
    calls naming this profile. ``message``: a format string ({profile}, {action}); the
    ``propagation`` preset answers exactly what EC2 answers for a fresh profile.
    """

    KEYS = ("preset", "service", "actions", "first", "younger_than", "profile", "status", "code", "message")

    def __init__(self, service="ec2", actions=PROPAGATION_ACTIONS, first=1, younger_than=None, profile=None,
                 status=400, code="InvalidParameterValue", message=None, preset=None):
        self.preset = preset
        self.service = service
        self.actions = list(actions)
        self.first = int(first)
        self.younger_than = younger_than
        self.profile = profile
        self.status = int(status)
        self.code = code
        self.message = message
        self._counts = {}

    @classmethod
    def propagation(cls, first=1, younger_than=None, profile=None):
        """EC2 does not know the profile yet (IAM-to-EC2 propagation)."""
        return cls(first=first, younger_than=younger_than, profile=profile, preset="propagation")

    @classmethod
    def from_dict(cls, entry):
        _check_keys(entry, cls.KEYS, "scripted")
        preset = entry.get("preset")
        if preset not in (None, "propagation"):
            raise ConfigError("scripted: preset {0!r} unknown; the one preset is 'propagation'".format(preset))
        if preset is None and not entry.get("code"):
            raise ConfigError("scripted: give a code (or preset: propagation)")
        actions = _names(entry.get("actions"), "actions")
        return cls(
            service=entry.get("service", "ec2"),
            actions=actions or (PROPAGATION_ACTIONS if preset else []),
            first=_number(entry, "first", 1, 0, None, integer=True),
            younger_than=_number(entry, "younger_than", None, 0, None),
            profile=entry.get("profile"),
            status=_number(entry, "status", 400, 400, 599, integer=True),
            code=entry.get("code", "InvalidParameterValue"),
            message=entry.get("message"),
            preset=preset,
        )

    def as_dict(self):
        return {"preset": self.preset, "service": self.service, "actions": self.actions, "first": self.first,
                "younger_than": self.younger_than, "profile": self.profile, "status": self.status,
                "code": self.code, "message": self.message, "injected": dict(self._counts)}

    def answer(self, info):
        """The error to answer with, or None; counts what it injects (called under the proxy's lock)."""
        if info["service"] != self.service or (self.actions and info["action"] not in self.actions):
            return None
        params = info["params"]
        profile = profile_named_by(params)
        if self.profile is not None and profile != self.profile:
            return None
        key = profile or "*"
        if self._counts.get(key, 0) >= self.first:
            return None
        if self.younger_than is not None:
            age = _profile_age(info, profile) if profile else None
            if age is None or age >= self.younger_than:
                return None
        self._counts[key] = self._counts.get(key, 0) + 1
        if self.preset == "propagation":
            message = propagation_message(params)
        else:
            template = self.message or "{action} failed (scripted fault)"
            message = template.format(profile=profile, action=info["action"])
        return error_response(self.service, self.status, self.code, message)


class FaultProxy:
    """The fault-injection interceptor of one sandbox (see the module's docstring)."""

    def __init__(self, app, propagation=None):
        self.app = app
        self.propagation = propagation
        self._lock = threading.Lock()
        self._clear_locked()
        self._zero_counters()

    # ---- configuration ------------------------------------------------------------------
    def _clear_locked(self):
        self.seed = 0
        self.rules = []
        self.scripted = []
        self._seen = {}
        self._streaks = {}
        self._rule_injected = {}

    def _zero_counters(self):
        self.calls = {}
        self.injected = {}

    def configure(self, config=None, **kwargs):
        """Replace the rules, scripted faults and settings (a dict as the control API takes)."""
        config = dict(config or {}, **kwargs)
        _check_keys(config, ("seed", "rules", "scripted", "propagation", "associating_reads", "reset_counters"),
                    "configuration")
        seed = config.get("seed", 0)
        if not isinstance(seed, (int, str)) or isinstance(seed, bool):
            raise ConfigError("seed: give an integer or a string, not {0!r}".format(seed))
        rules = [r if isinstance(r, FaultRule) else FaultRule.from_dict(r) for r in config.get("rules") or []]
        scripted = [s if isinstance(s, ScriptedFault) else ScriptedFault.from_dict(s)
                    for s in config.get("scripted") or []]
        propagation = config.get("propagation") or {}
        if not isinstance(propagation, dict) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in propagation.values()):
            raise ConfigError("propagation: give {profile name: number of failures}")
        reads = _number(config, "associating_reads", 0, 0, 1000, integer=True)
        with self._lock:
            self._clear_locked()
            self.seed = seed
            self.rules = rules
            self.scripted = scripted
            if config.get("reset_counters"):
                self._zero_counters()
        for name, failures in propagation.items():
            self.propagation.arm(name, failures)
        set_associating_reads(reads)
        return self.status()

    def clear(self):
        """No more faults; counters zeroed; the propagation fault disarmed."""
        with self._lock:
            self._clear_locked()
            self._zero_counters()
        if self.propagation is not None:
            self.propagation.disarm()
        set_associating_reads(0)

    @contextlib.contextmanager
    def configured(self, config=None, **kwargs):
        """``with proxy.configured({...}):`` faults inside the block only."""
        self.configure(config, **kwargs)
        try:
            yield self
        finally:
            self.clear()

    def status(self):
        with self._lock:
            injected = {}
            for (service, action, kind), count in self.injected.items():
                injected.setdefault("{0}:{1}".format(service, action), {})[kind] = count
            by_kind = {}
            for (_service, _action, kind), count in self.injected.items():
                by_kind[kind] = by_kind.get(kind, 0) + count
            return {
                "seed": self.seed,
                "rules": [r.as_dict() for r in self.rules],
                "scripted": [s.as_dict() for s in self.scripted],
                "propagation": self.propagation.armed() if self.propagation is not None else {},
                "associating_reads": associating_reads(),
                "calls": dict(("{0}:{1}".format(*k), v) for k, v in sorted(self.calls.items())),
                "injected": injected,
                "injected_by_kind": by_kind,
                "injected_total": sum(self.injected.values()),
            }

    def injected_total(self, kinds=None):
        with self._lock:
            return sum(v for (_s, _a, kind), v in self.injected.items() if kinds is None or kind in kinds)

    # ---- deciding ---------------------------------------------------------------------------
    def _decide(self, service, action):
        """(kind, rule) for this call, or (None, None). Called under the lock."""
        for index, rule in enumerate(self.rules):
            if not rule.matches(service, action):
                continue
            key = (index, service, action)
            number = self._seen.get(key, 0)
            self._seen[key] = number + 1
            rng = random.Random("{0}|{1}|{2}|{3}|{4}".format(self.seed, index, service, action, number))
            draw = rng.random()
            kind = rng.choice(rule.kinds)
            if draw >= rule.rate:
                self._streaks[key] = 0
                continue
            if rule.limit is not None and self._rule_injected.get(index, 0) >= rule.limit:
                continue
            if rule.max_consecutive is not None and self._streaks.get(key, 0) >= rule.max_consecutive:
                self._streaks[key] = 0
                continue
            self._streaks[key] = self._streaks.get(key, 0) + 1
            self._rule_injected[index] = self._rule_injected.get(index, 0) + 1
            if kind == THROTTLE:
                kind = "RequestLimitExceeded" if service == "ec2" else "Throttling"
            return kind, rule
        return None, None

    def _count(self, service, action, kind):
        key = (service, action, kind)
        self.injected[key] = self.injected.get(key, 0) + 1

    def __call__(self, info):
        service, action = info.get("service"), info.get("action")
        if service is None or info["environ"].get(ORIGIN_HEADER_ENVIRON):
            return None
        with self._lock:
            self.calls[(service, action)] = self.calls.get((service, action), 0) + 1
            if not self.rules and not self.scripted:
                return None
            kind, rule = self._decide(service, action)
            answer = None
            if kind is None:
                for scripted in self.scripted:
                    answer = scripted.answer(info)
                    if answer is not None:
                        kind = "scripted:" + (scripted.preset or scripted.code)
                        break
            if kind is not None:
                self._count(service, action, kind)
        if kind is None:
            return None
        info["injected"] = kind
        if answer is not None:
            return answer
        if kind in ERROR_KINDS:
            status, message = ERROR_KINDS[kind]
            return error_response(service, status, kind, message)
        if kind == SLOW:
            time.sleep(rule.delay)
            return None
        if kind == "reset":
            self.app._record(info, 0)  # pylint: disable=protected-access
            _drop_connection(info)
        # reset_after: moto (or an extension) does the work, the answer never leaves.
        self._answer_and_forget(info)
        _drop_connection(info)
        return None

    def _answer_and_forget(self, info):
        app = self.app
        handler = app.extensions.get((info["service"], info["action"]))
        response = handler(info) if handler is not None else None
        if response is not None:
            app._record(info, response[0])  # pylint: disable=protected-access
            return

        def start_response(_status, _headers, _exc_info=None):
            return lambda _data: None

        result = app._to_moto(info, info["environ"], start_response)  # pylint: disable=protected-access
        for _chunk in result:
            pass
        if hasattr(result, "close"):
            result.close()

    # ---- control API ------------------------------------------------------------------------
    def control(self, method, path, body):
        if path.rstrip("/") != CONTROL_PATH:
            return 404, {"error": "unknown path {0}; use {1}".format(path, CONTROL_PATH)}
        if method == "GET":
            return 200, self.status()
        if method == "DELETE":
            self.clear()
            return 200, self.status()
        if method == "POST":
            try:
                config = json.loads(body.decode("utf-8")) if body else {}
                return 200, self.configure(config)
            except (ValueError, TypeError) as exc:  # ConfigError is a ValueError, so is bad JSON
                return 400, {"error": str(exc)}
        return 405, {"error": "use GET, POST or DELETE on {0}".format(CONTROL_PATH)}


# ---- moto fidelity --------------------------------------------------------------------------

_FIDELITY = {"permanent": False, "depth": 0, "patched": False, "associating_reads": 0}
_PATCH_LOCK = threading.Lock()
# One association change at a time per process (moto checks, then creates: not atomic).
_ASSOCIATION_LOCK = threading.RLock()
# CreateLaunchTemplateVersion's ClientToken: (account, region, token) -> the first answer.
_CLIENT_TOKENS = {}
_TOKEN_LOCK = threading.Lock()


def forget_client_tokens():
    with _TOKEN_LOCK:
        _CLIENT_TOKENS.clear()


def _fidelity_on():
    return _FIDELITY["permanent"] or _FIDELITY["depth"] > 0


def associating_reads():
    return _FIDELITY["associating_reads"]


def set_associating_reads(reads):
    """New associations show ``associating`` in their first ``reads`` reads (0: never)."""
    _patch_moto()
    _FIDELITY["associating_reads"] = int(reads or 0)


def _start_associating(association):
    reads = _FIDELITY["associating_reads"]
    if association is not None and reads > 0:
        association.state = "associating"
        association.keyless_reads_left = reads


def _patch_moto():
    with _PATCH_LOCK:
        if _FIDELITY["patched"]:
            return
        from moto.ec2.models.iam_instance_profile import IamInstanceProfileAssociationBackend
        from moto.ec2.responses.iam_instance_profiles import IamInstanceProfiles
        from moto.ec2.utils import random_iam_instance_profile_association_id

        describe = IamInstanceProfiles.describe_iam_instance_profile_associations

        def describe_with_max_results(self):
            if _fidelity_on() and self._get_param("MaxItems") is None:
                page_size = self._get_param("MaxResults")
                if page_size is not None:
                    if getattr(self, "automated_parameter_parsing", False):
                        self.params["MaxItems"] = page_size
                    else:
                        self.querystring["MaxItems"] = [str(page_size)]
            return describe(self)

        backend_describe = IamInstanceProfileAssociationBackend.describe_iam_instance_profile_associations

        def describe_settling(self, *args, **kwargs):
            associations, token = backend_describe(self, *args, **kwargs)
            with _ASSOCIATION_LOCK:
                for association in associations:
                    left = getattr(association, "keyless_reads_left", 0)
                    if association.state != "associating" or left is None:
                        continue
                    if left > 0 and _FIDELITY["associating_reads"] > 0:
                        association.keyless_reads_left = left - 1
                    else:
                        association.state = "associated"
                        association.keyless_reads_left = None
            return associations, token

        associate = IamInstanceProfileAssociationBackend.associate_iam_instance_profile

        def associate_atomically(self, *args, **kwargs):
            if not _fidelity_on():
                return associate(self, *args, **kwargs)
            with _ASSOCIATION_LOCK:
                association = associate(self, *args, **kwargs)
                _start_associating(association)
                return association

        replace = IamInstanceProfileAssociationBackend.replace_iam_instance_profile_association

        def replace_with_new_id(self, association_id, iam_instance_profile_name=None,
                                iam_instance_profile_arn=None):
            if not _fidelity_on():
                return replace(self, association_id, iam_instance_profile_name, iam_instance_profile_arn)
            with _ASSOCIATION_LOCK:
                association = replace(self, association_id, iam_instance_profile_name, iam_instance_profile_arn)
                if association is not None:
                    association.association_id = random_iam_instance_profile_association_id()
                    self.modify_instance_attribute(
                        association.instance_id, "iam_instance_profile",
                        {"Arn": association.iam_instance_profile.arn, "Id": association.association_id})
                    _start_associating(association)
                return association

        disassociate = IamInstanceProfileAssociationBackend.disassociate_iam_instance_profile

        def disassociate_atomically(self, association_id):
            if not _fidelity_on():
                return disassociate(self, association_id)
            with _ASSOCIATION_LOCK:
                return disassociate(self, association_id)

        from moto.ec2.responses.instances import InstanceResponse

        run_instances = InstanceResponse.run_instances

        def run_instances_with_every_profile(self):
            result = run_instances(self)
            if not _fidelity_on():
                return result
            name = self._get_param("IamInstanceProfile.Name")
            arn = self._get_param("IamInstanceProfile.Arn")
            reservation = getattr(result, "result", None)
            if (name or arn) and reservation is not None:
                with _ASSOCIATION_LOCK:
                    for number, instance in enumerate(reservation.instances):
                        if number:
                            associate(self.ec2_backend, instance_id=instance.id, iam_instance_profile_name=name,
                                      iam_instance_profile_arn=None if name else arn)
                        association = self.ec2_backend.iam_instance_profile_associations.get(instance.id)
                        if association is not None:  # at launch, an instance carries its profile at once
                            association.state = "associated"
                            association.keyless_reads_left = None
            return result

        from moto.core.responses import ActionResult
        from moto.ec2.responses.launch_templates import LaunchTemplates

        create_version = LaunchTemplates.create_launch_template_version

        def create_version_once_per_token(self):
            token = self._get_param("ClientToken")
            if not _fidelity_on() or not token:
                return create_version(self)
            key = (self.current_account, self.region, token)
            with _TOKEN_LOCK:
                known = _CLIENT_TOKENS.get(key)
                if known is not None:
                    return ActionResult(known)
                result = create_version(self)
                _CLIENT_TOKENS[key] = result.result
                return result

        from moto.iam.exceptions import NotFoundException
        from moto.iam.models import IAMBackend

        remove_role = IAMBackend.remove_role_from_instance_profile

        def remove_role_not_held(self, profile_name, role_name):
            if _fidelity_on():
                profile = self.get_instance_profile(profile_name)
                if role_name not in [role.name for role in profile.roles]:
                    raise NotFoundException("Role {0} cannot be found in instance profile {1}.".format(
                        role_name, profile_name))
            return remove_role(self, profile_name, role_name)

        IAMBackend.remove_role_from_instance_profile = remove_role_not_held
        LaunchTemplates.create_launch_template_version = create_version_once_per_token
        InstanceResponse.run_instances = run_instances_with_every_profile
        IamInstanceProfiles.describe_iam_instance_profile_associations = describe_with_max_results
        IamInstanceProfileAssociationBackend.describe_iam_instance_profile_associations = describe_settling
        IamInstanceProfileAssociationBackend.associate_iam_instance_profile = associate_atomically
        IamInstanceProfileAssociationBackend.replace_iam_instance_profile_association = replace_with_new_id
        IamInstanceProfileAssociationBackend.disassociate_iam_instance_profile = disassociate_atomically
        _FIDELITY["patched"] = True


@contextlib.contextmanager
def aws_fidelity():
    """The moto fixes above, on for the duration of the block (and for good once ``install`` ran)."""
    _patch_moto()
    with _PATCH_LOCK:
        _FIDELITY["depth"] += 1
    try:
        yield
    finally:
        with _PATCH_LOCK:
            _FIDELITY["depth"] -= 1


# ---- registration ---------------------------------------------------------------------------


def propagation_fault(sandbox):
    """The sandbox's PropagationFault, registered on first use (without the fidelity fixes)."""
    app = sandbox.app
    fault = getattr(app, "keyless_propagation_fault", None)
    if fault is None:
        fault = PropagationFault()
        app.interceptors.append(fault)
        app.reset_hooks.append(fault.disarm)
        app.keyless_propagation_fault = fault
    return fault


def fault_proxy(sandbox):
    """The sandbox's FaultProxy, registered on first use: asked before every other interceptor,
    its control API at /_sandbox/faults, cleared on every sandbox reset."""
    app = sandbox.app
    proxy = getattr(app, "keyless_fault_proxy", None)
    if proxy is None:
        proxy = FaultProxy(app, propagation_fault(sandbox))
        app.interceptors.insert(0, proxy)
        app.reset_hooks.append(proxy.clear)
        app.control_handlers[CONTROL_PATH] = proxy.control
        app.keyless_fault_proxy = proxy
    sandbox.faults = proxy
    return proxy


def install(sandbox):
    """Register the proxy and the propagation fault (inert until configured or armed) and turn
    the moto fixes on for good."""
    _patch_moto()
    _FIDELITY["permanent"] = True
    fault = propagation_fault(sandbox)
    fault_proxy(sandbox)
    if forget_client_tokens not in sandbox.app.reset_hooks:
        sandbox.app.reset_hooks.append(forget_client_tokens)
    return fault
