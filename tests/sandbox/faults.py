"""The sandbox's fault-injection proxy and scripted faults: what a fleet under faults feels.

The moto fixes (``aws_fidelity``, transitional states) live in ``moto_fixes.py``, the rules real
EC2 enforces in ``rules.py``; this module only injects faults. (``aws_fidelity``,
``associating_reads``, ``set_associating_reads`` and ``forget_client_tokens`` are re-exported
here for the tests that import them from this module.)

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
  profile's age is moto's own creation date). The presets answer exactly what EC2 answers in
  each form of "I do not know this instance profile (yet)" (``rules.propagation_error``):

  ==============================  ==============================================================
  preset                          EC2's answer
  ==============================  ==============================================================
  ``propagation``                 ``InvalidParameterValue`` "Value (x) for parameter
                                  iamInstanceProfile.name is invalid. Invalid IAM Instance
                                  Profile name" (``.arn`` / "ARN" when named by ARN)
  ``no_roles``                    ``InvalidParameterValue`` 'IAM Instance Profile "<arn>" has
                                  no associated IAM Roles'
  ``identity_profile_not_found``  ``IncorrectState`` "ResultDetail: { Code=
                                  InstanceIdentityProfileNotFound, ... }"
  ==============================  ==============================================================

  A preset's ``actions`` default to AssociateIamInstanceProfile and
  ReplaceIamInstanceProfileAssociation (give ``["RunInstances"]`` for a launch).
* **associating_reads**: new associations (associate, replace) show ``associating`` in the
  answer of the call and in their first N reads, as AWS shows them for a moment; then
  ``associated`` (``moto_fixes.set_associating_reads``; while set, it decides instead of the
  time-based transitions of ``moto_fixes``).

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

``PropagationFault`` (``propagation_fault(sandbox)``): ``arm(profile, K, form="invalid_profile")``
makes the next K Associate/Replace calls naming that profile fail as EC2 fails for a profile it
does not know yet, in that form (``rules.PROPAGATION_FORMS``; also reachable as
``"propagation": {profile: K}`` in a configuration, form ``invalid_profile``).

``install(sandbox)`` registers the proxy and the propagation fault (idempotent) and returns the
``PropagationFault``.
"""

import contextlib
import json
import random
import socket
import struct
import threading
import time
import uuid
from xml.sax.saxutils import escape

from .extensions import account_of
from .moto_fixes import associating_reads
from .moto_fixes import set_associating_reads
from .server import json_control
# Re-exported: tests import these from here.
from .moto_fixes import aws_fidelity  # noqa: F401 pylint: disable=unused-import
from .moto_fixes import forget_client_tokens  # noqa: F401 pylint: disable=unused-import

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
        from moto.iam.models import iam_backends

        account = account_of(info)
        for partition in ("aws", "aws-cn", "aws-us-gov"):
            try:
                profile = iam_backends[account][partition].get_instance_profile(name)
            except Exception:  # pylint: disable=broad-except
                continue
            return (utcnow() - profile.create_date).total_seconds()
    except Exception:  # pylint: disable=broad-except
        return None
    return None


def propagation_answer(form, info):
    """EC2's answer (status, headers, body) to ``info``'s request, in one of the propagation forms
    (``rules.PROPAGATION_FORMS``), as ``rules.propagation_error`` words it."""
    from .rules import propagation_error  # here, not at the top: rules.py imports this module

    return propagation_error(form, info.get("params") or {}, account_of(info))


def _check_form(form):
    from .rules import PROPAGATION_FORMS

    if form not in PROPAGATION_FORMS:
        raise ConfigError("form {0!r} unknown; known: {1}".format(form, ", ".join(PROPAGATION_FORMS)))
    return form


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
    """The next K association calls naming a profile fail as EC2 fails for a profile it does not
    know yet (``form``: one of ``rules.PROPAGATION_FORMS``; ``invalid_profile`` by default)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._armed = {}
        self._forms = {}
        self.injected = 0

    def arm(self, profile_name, failures, form="invalid_profile"):
        _check_form(form)
        with self._lock:
            self._armed[profile_name] = int(failures)
            self._forms[profile_name] = form

    def disarm(self):
        with self._lock:
            self._armed = {}
            self._forms = {}
            self.injected = 0

    def remaining(self, profile_name):
        with self._lock:
            return self._armed.get(profile_name, 0)

    def form(self, profile_name):
        """The form the profile's failures take (``invalid_profile`` when it was never armed)."""
        with self._lock:
            return self._forms.get(profile_name, "invalid_profile")

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
            form = self._forms.get(profile, "invalid_profile")
        info["injected"] = "propagation" if form == "invalid_profile" else "propagation:" + form
        return propagation_answer(form, info)


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


# preset -> the propagation form (rules.PROPAGATION_FORMS) it answers in
PRESETS = {
    "propagation": "invalid_profile",
    "no_roles": "no_roles",
    "identity_profile_not_found": "identity_profile_not_found",
}


class ScriptedFault:
    """The first ``first`` calls of ``actions`` (per profile they name) fail with an error.

    ``younger_than``: only while the profile named was created less than this many seconds ago
    (None: whatever its age; a profile that does not exist is left to moto). ``profile``: only
    calls naming this profile. ``message``: a format string ({profile}, {action}). A ``preset``
    (``PRESETS``) answers exactly what EC2 answers in that form of "I do not know this profile
    (yet)", from ``rules.propagation_error``: it takes no status, code or message.
    """

    KEYS = ("preset", "service", "actions", "first", "younger_than", "profile", "status", "code", "message")

    def __init__(self, service="ec2", actions=PROPAGATION_ACTIONS, first=1, younger_than=None, profile=None,
                 status=400, code="InvalidParameterValue", message=None, preset=None):
        if preset is not None and preset not in PRESETS:
            raise ConfigError("scripted: preset {0!r} unknown; the presets are {1}".format(
                preset, ", ".join(PRESETS)))
        if preset is not None and service != "ec2":
            raise ConfigError("scripted: preset {0} answers as EC2 does; its service is ec2, not {1}".format(
                preset, service))
        self.preset = preset
        self.service = service
        self.actions = list(actions)
        self.first = int(first)
        self.younger_than = younger_than
        self.profile = profile
        self.status = None if preset else int(status)
        self.code = None if preset else code
        self.message = None if preset else message
        self._counts = {}

    @classmethod
    def propagation(cls, first=1, younger_than=None, profile=None, preset="propagation", actions=PROPAGATION_ACTIONS):
        """EC2 does not know the profile yet (IAM-to-EC2 propagation), in the form ``preset`` names."""
        return cls(actions=actions, first=first, younger_than=younger_than, profile=profile, preset=preset)

    @classmethod
    def from_dict(cls, entry):
        _check_keys(entry, cls.KEYS, "scripted")
        preset = entry.get("preset")
        if preset is not None and preset not in PRESETS:
            raise ConfigError("scripted: preset {0!r} unknown; the presets are {1}".format(
                preset, ", ".join(PRESETS)))
        if preset is None and not entry.get("code"):
            raise ConfigError("scripted: give a code (or a preset: {0})".format(", ".join(PRESETS)))
        given = [key for key in ("status", "code", "message") if key in entry]
        if preset is not None and given:
            raise ConfigError("scripted: preset {0} answers what EC2 answers; drop {1}".format(
                preset, ", ".join(given)))
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
        if self.preset is not None:
            return propagation_answer(PRESETS[self.preset], info)
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
            app._record(info, response[0], response[2])  # pylint: disable=protected-access
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
        def delete():
            self.clear()
            return self.status()

        return json_control(path, CONTROL_PATH, method, body, self.status, self.configure, delete)


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
    """Register the proxy and the propagation fault (inert until configured or armed). The moto
    fixes are ``moto_fixes.install``'s."""
    fault = propagation_fault(sandbox)
    fault_proxy(sandbox)
    return fault
