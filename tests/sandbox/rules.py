"""The rules real EC2 enforces and moto does not, each with EC2's exact code and message and
where it is documented or reported. Every rule is on by default, on every sandbox.

======================================  ============================================================
rule                                    what EC2 does (the function of that name has the source)
======================================  ============================================================
``replace_running_only``                ``ReplaceIamInstanceProfileAssociation`` for an instance that
                                        is not ``running``: ``IncorrectState``
``associate_running_or_stopped``        ``AssociateIamInstanceProfile`` on an instance neither
                                        ``running`` nor ``stopped``: ``IncorrectInstanceState``
``filter_value_limit``                  a ``Describe*`` call with more than 200 filter values in
                                        all: ``FilterLimitExceeded``
``unknown_profile_is_propagation``      Associate/Replace/RunInstances naming a profile IAM does not
                                        hold: EC2's propagation error (moto: IAM's ``NoSuchEntity``)
``profile_propagation``                 the same calls, for ``propagation_seconds`` after the
                                        profile was created or given its role: the propagation
                                        errors, in every form EC2 uses
``launch_template_profile``             ``RunInstances`` from a launch template launches with the
                                        template's ``IamInstanceProfile`` (in ``extensions.py``)
``account_imdsv2_enforcement``          ``HttpTokensEnforced=enabled`` account default: launches
                                        without ``HttpTokens=required``, and setting ``optional``,
                                        are ``UnsupportedOperation``
``omitted_http_tokens_default``         ``ModifyInstanceMetadataOptions`` without ``HttpTokens``
                                        sets the documented default (in ``extensions.py``)
======================================  ============================================================

Refused requests are marked in the sandbox's request log (``"injected": "rule:<name>"``).
Requests the sandbox makes for itself (marked ``X-Keyless-Sandbox-Origin``: the IMDS emulators'
reads) are never refused.

From Python (``sandbox.rules``, a ``Rules``)::

    sandbox.rules.enabled("filter_value_limit")            # True
    with sandbox.rules.disabled("filter_value_limit"):     # moto's plain behaviour in the block
        ...
    sandbox.rules.configure({"propagation_seconds": 0})    # settings (0: no propagation window)
    with sandbox.rules.configured({"propagation_seconds": 0.2}):
        ...

From another process (ansible-playbook runs), the same as JSON::

    GET    $URL/_sandbox/rules   {"rules": {name: enabled}, "settings": {...}}
    POST   $URL/_sandbox/rules   {"disable": [names], "enable": [names], "settings": {...}}
                                 (each key optional; the rules and settings not named keep their
                                 state; answers as GET; 400 with {"error"} for an unknown name,
                                 setting or value, and then nothing changes)
    DELETE $URL/_sandbox/rules   every rule on, default settings; answers as GET

A sandbox reset (``app.reset_hooks``) restores the defaults too, and forgets when profiles were
created or given a role.

Where the rules sit in ``SandboxApp``: ``filter_value_limit`` is an interceptor (after the fault
proxy); the rules of Associate, Replace, RunInstances and ModifyInstanceMetadataOptions wrap the
extension handlers of those actions (chained: the handler that was there answers when no rule
refuses), so that a request the fault proxy lets moto do (``reset_after``) is refused as well;
profile creation and role-add times are taken from IAM's successful answers
(``app.response_filters``, chained).
"""

import contextlib
import re
import threading
import time

from .extensions import account_of
from .extensions import ec2_backend
from .extensions import ec2_params
from .extensions import requested_template_version
from .extensions import template_profile
from .faults import ec2_error
from .faults import propagation_message
from .server import json_control

# The forms in which EC2 says "I do not know this instance profile (yet)".
INVALID_PROFILE = "invalid_profile"
NO_ROLES = "no_roles"
IDENTITY_PROFILE_NOT_FOUND = "identity_profile_not_found"
PROPAGATION_FORMS = (INVALID_PROFILE, NO_ROLES, IDENTITY_PROFILE_NOT_FOUND)

RULE_NAMES = (
    "replace_running_only",
    "associate_running_or_stopped",
    "filter_value_limit",
    "unknown_profile_is_propagation",
    "profile_propagation",
    "launch_template_profile",
    "account_imdsv2_enforcement",
    "omitted_http_tokens_default",
)
DEFAULT_SETTINGS = {"propagation_seconds": 1.0}
CONTROL_PATH = "/_sandbox/rules"
ORIGIN_HEADER_ENVIRON = "HTTP_X_KEYLESS_SANDBOX_ORIGIN"

MAX_FILTER_VALUES = 200
_FILTER_VALUE = re.compile(r"^Filter\.\d+\.Value\.\d+$")

# Which forms profile_propagation answers, in turn per profile, after each IAM event.
CREATED_CYCLE = (INVALID_PROFILE, IDENTITY_PROFILE_NOT_FOUND)
ROLE_ADDED_CYCLE = (NO_ROLES, IDENTITY_PROFILE_NOT_FOUND, INVALID_PROFILE)
CREATED, ROLE_ADDED = "created", "role_added"

ENFORCED_MESSAGE = ("You can't launch instances with IMDSv1 because httpTokensEnforced is enabled for this account. "
                    "Either launch the instance with httpTokens=required or contact your account owner to disable "
                    "httpTokensEnforced using the ModifyInstanceMetadataDefaults API or the account settings in the "
                    "EC2 console.")


def propagation_error(form, params, account="123456789012"):
    """EC2's answer, (status, headers, body), when it does not know the profile the request
    names (``params``: the request's query parameters) in one of ``PROPAGATION_FORMS``.

    * ``invalid_profile``: ``InvalidParameterValue``, "Value (x) for parameter
      iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name" (or ``.arn`` /
      "ARN"): right after the profile was created, and for a profile that does not exist at all
      (EC2 cannot tell the two apart).
    * ``no_roles``: ``InvalidParameterValue``, 'IAM Instance Profile "<arn>" has no associated
      IAM Roles': right after a role was added to the profile (RunInstances; Terraform retries it,
      hashicorp/terraform-provider-aws, internal/service/ec2 instance create retry).
    * ``identity_profile_not_found``: ``IncorrectState``, "ResultDetail: { Code=
      InstanceIdentityProfileNotFound, Message=InstanceIdentityProfile not found for the key:
      <account>/<profile> }" on AssociateIamInstanceProfile
      (hashicorp/terraform-provider-aws issue 12533).
    """
    name = params.get("IamInstanceProfile.Name")
    arn = params.get("IamInstanceProfile.Arn")
    if form == INVALID_PROFILE:
        return ec2_error(400, "InvalidParameterValue", propagation_message(params))
    profile_name = name or (arn or "").rsplit("/", 1)[-1]
    if form == NO_ROLES:
        shown = arn or "arn:aws:iam::{0}:instance-profile/{1}".format(account, profile_name)
        return ec2_error(400, "InvalidParameterValue",
                         'IAM Instance Profile "{0}" has no associated IAM Roles'.format(shown))
    if form == IDENTITY_PROFILE_NOT_FOUND:
        return ec2_error(400, "IncorrectState",
                         "ResultDetail: {{ Code=InstanceIdentityProfileNotFound, Message=InstanceIdentityProfile "
                         "not found for the key: {0}/{1} }}".format(account, profile_name))
    raise ValueError("unknown propagation form {0!r}; known: {1}".format(form, ", ".join(PROPAGATION_FORMS)))


# ---- helpers ---------------------------------------------------------------------------------


def _from_sandbox(info):
    return bool(info["environ"].get(ORIGIN_HEADER_ENVIRON))


def _region(info):
    return info["region"] or "us-east-1"


def _instance_state(info, instance_id):
    """(instance, state name) from moto's backend (``get_instance`` settles transitional states),
    or (None, None) for an unknown instance (moto then answers ``InvalidInstanceID.NotFound``)."""
    if not instance_id:
        return None, None
    try:
        instance = ec2_backend(info).get_instance(instance_id)
    except Exception:  # pylint: disable=broad-except
        return None, None
    return instance, instance._state.name  # pylint: disable=protected-access


def _query_profile(spec):
    """A profile spec ({"Name"/"Arn"}) as the query parameters ``propagation_error`` reads."""
    return dict(("IamInstanceProfile." + key, spec[key]) for key in ("Name", "Arn") if spec.get(key))


def _profile_name(spec):
    return spec.get("Name") or (spec.get("Arn") or "").rsplit("/", 1)[-1]


def _profile_exists(account, region, spec):
    """Whether IAM (moto's, of ``account``) holds the profile: by name, and by ARN exactly (a
    name that exists under another path or account is not the profile the ARN names)."""
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    backend = iam_backends[account][get_partition(region)]
    try:
        if spec.get("Name"):
            backend.get_instance_profile(spec["Name"])
        if spec.get("Arn"):
            backend.get_instance_profile_by_arn(spec["Arn"])
    except Exception:  # pylint: disable=broad-except
        return False
    return True


def _profile_arn(account, region, name):
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    try:
        return iam_backends[account][get_partition(region)].get_instance_profile(name).arn
    except Exception:  # pylint: disable=broad-except
        return None


# ---- the rules -------------------------------------------------------------------------------


def replace_running_only(info, params):
    """``ReplaceIamInstanceProfileAssociation`` only for a ``running`` instance.

    API reference: "Replaces an IAM instance profile for the specified running instance."
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ReplaceIamInstanceProfileAssociation.html
    On a stopped instance EC2 answers ``IncorrectState``, "The association iip-assoc-... is not
    the active association" (aws/aws-cli issue 5251, https://github.com/aws/aws-cli/issues/5251;
    the maintainers call it intended). Terraform detaches and attaches instead on a stopped
    instance (hashicorp/terraform-provider-aws PR 11104, issue 8262).
    Our reading: the issue shows ``stopped``; every other state that is not ``running``
    (``pending``, ``stopping``, ``shutting-down``) is refused the same way. An unknown
    association is left to moto (``InvalidAssociationID.NotFound``).
    """
    association_id = params.get("AssociationId")
    backend = ec2_backend(info)
    association = next((a for a in list(backend.iam_instance_profile_associations.values())
                        if a.association_id == association_id), None)
    if association is None:
        return None
    instance, state = _instance_state(info, association.instance_id)
    if instance is None or state == "running":
        return None
    return ec2_error(400, "IncorrectState", "The association {0} is not the active association".format(association_id))


def associate_running_or_stopped(info, params):
    """``AssociateIamInstanceProfile`` only for a ``running`` or ``stopped`` instance.

    API reference: "Associates an IAM instance profile with a running or stopped instance."
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AssociateIamInstanceProfile.html
    Otherwise ``IncorrectInstanceState``, "The instance 'i-...' is not in the 'running' or
    'stopped' states." (text confirmed: Enterprise-CMCS/eAPD issue 2304,
    https://github.com/Enterprise-CMCS/eAPD/issues/2304, a Lambda's AssociateIamInstanceProfile
    call). Refused: ``pending``, ``stopping``, ``shutting-down``, ``terminated``. An unknown
    instance is left to moto.
    """
    instance, state = _instance_state(info, params.get("InstanceId"))
    if instance is None or state in ("running", "stopped"):
        return None
    return ec2_error(400, "IncorrectInstanceState", "The instance '{0}' is not in the 'running' or 'stopped' "
                     "states.".format(instance.id))


def filter_value_limit(info):
    """An EC2 ``Describe*`` call carries at most 200 filter values.

    EC2 answers ``FilterLimitExceeded``, "The maximum number of filter values specified on a
    single call is 200" (400): gjbae1212/gossm issues 31 and 47 (DescribeInstances,
    https://github.com/gjbae1212/gossm/issues/47), convox/rack issue 2205, nchammas/flintrock
    issue 193, apache/druid PR 1954. The limit is not in the API reference.
    Our reading: the reports all have one filter with more than 200 values; the message says
    "on a single call", so the sandbox counts every ``Filter.N.Value.M`` of the call, over all
    filters (the stricter reading).
    """
    count = sum(1 for key in info["params"] if _FILTER_VALUE.match(key))
    if count <= MAX_FILTER_VALUES:
        return None
    return ec2_error(400, "FilterLimitExceeded", "The maximum number of filter values specified on a single call is "
                     "{0}".format(MAX_FILTER_VALUES))


def unknown_profile_is_propagation(info, spec):
    """A profile IAM does not hold is, to EC2, a profile it does not know *yet*.

    EC2 answers a profile that does not exist exactly as one created a moment ago:
    ``InvalidParameterValue``, "Value (x) for parameter iamInstanceProfile.name is invalid.
    Invalid IAM Instance Profile name" (RunInstances naming a profile never created:
    ZoccoCss/kalisoc issue 1, https://github.com/ZoccoCss/kalisoc/issues/1; a role's name given as
    the profile: machulav/ec2-github-runner issue 132; a profile just created:
    aws/aws-sdk-js-v3 issue 5253). moto answers IAM's ``NoSuchEntity``, which EC2 never does.
    Applies to AssociateIamInstanceProfile, ReplaceIamInstanceProfileAssociation and RunInstances
    (also to the launch template's profile while rule ``launch_template_profile`` is on; with it
    off, the sandbox launches without that profile, as moto does, and checks none). An ARN is known only
    if IAM holds a profile with exactly that ARN: the right name under another path or account
    is unknown. Our reading: Associate/Replace and a template's profile answer the same text
    as RunInstances' own parameter (``.arn`` / "ARN" for an ARN).
    """
    if _profile_exists(account_of(info), _region(info), spec):
        return None
    return propagation_error(INVALID_PROFILE, _query_profile(spec), account_of(info))


def profile_propagation(rules, info, spec, action):
    """For ``propagation_seconds`` after IAM created a profile, or added a role to it, EC2 does
    not know it yet.

    IAM is eventually consistent (IAM user guide, "Changes that I make are not always immediately
    visible",
    https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_general.html#troubleshoot_general_eventual-consistency
    ), and EC2 shows it in three forms (``propagation_error``): right after CreateInstanceProfile,
    "Invalid IAM Instance Profile name" (aws/aws-sdk-js-v3 issue 5253); right after
    AddRoleToInstanceProfile, RunInstances says 'IAM Instance Profile "<arn>" has no associated
    IAM Roles' (hashicorp/terraform issue 4306, kubernetes-retired/kubernetes-anywhere issue 199);
    AssociateIamInstanceProfile also says "InstanceIdentityProfile not found"
    (hashicorp/terraform-provider-aws issue 12533).

    Which form when is not published; our reading, the stricter one (a client must handle
    every form): the latest of the two IAM events decides. After CreateInstanceProfile,
    RunInstances answers ``invalid_profile``; Associate and Replace alternate
    ``invalid_profile`` and ``identity_profile_not_found``, by call count per profile. After
    AddRoleToInstanceProfile, RunInstances answers ``no_roles``; Associate and Replace rotate
    ``no_roles``, ``identity_profile_not_found``, ``invalid_profile``. The count starts again at
    every IAM event. The times are those of IAM's successful answers that passed through the
    sandbox (profiles made on moto's backend directly have no window).
    """
    account = account_of(info)
    form = rules.propagation_form(account, _profile_name(spec), action)
    if form is None:
        return None
    shown = _query_profile(spec)
    if form == NO_ROLES and not spec.get("Arn"):  # the message names the profile's ARN (with its path)
        arn = _profile_arn(account, _region(info), spec["Name"])
        if arn:
            shown["IamInstanceProfile.Arn"] = arn
    return propagation_error(form, shown, account)


def account_imdsv2_enforcement_at_launch(defaults, info, params, version):
    """``account_imdsv2_enforcement`` for ``RunInstances``.

    API reference, ``HttpTokensEnforced``: "When enforcement is enabled, the instance can't
    launch unless IMDSv2 (HttpTokens) is set to required."
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyInstanceMetadataDefaults.html
    User guide: "The account-level IMDSv2 enforcement setting is evaluated after the order of
    precedence has determined the instance's IMDS settings" and "If IMDSv2 enforcement is enabled
    and httpTokens has not been set to required in either the instance configuration at launch,
    the account settings, or the AMI configuration, your launch will fail."
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-options.html
    The answer, ``UnsupportedOperation`` with ``ENFORCED_MESSAGE`` (EC2 user guide, "Troubleshoot
    Amazon EC2 instance launch issues", section "Launching an IMDSv1-enabled instance fails",
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/troubleshooting-launch.html; seen on a
    launch: rustyrazorblade/easy-db-lab PR 772, https://github.com/rustyrazorblade/easy-db-lab/pull/772).
    The effective ``HttpTokens``: the request's ``MetadataOptions``, then the launch template's,
    then the account default, then ``optional`` (AMI ``ImdsSupport`` not modelled). Our reading:
    the check comes before the profile rules, and a ``DryRun`` is refused too.
    """
    level = defaults.current(account_of(info), _region(info)) if defaults is not None else {}
    if level.get("HttpTokensEnforced") != "enabled":
        return None
    tokens = (params.get("MetadataOptions") or {}).get("HttpTokens")
    if not tokens and version is not None:
        tokens = (version.data.get("MetadataOptions") or {}).get("HttpTokens")
    tokens = tokens or level.get("HttpTokens") or "optional"
    if tokens == "required":
        return None
    return ec2_error(400, "UnsupportedOperation", ENFORCED_MESSAGE)


def account_imdsv2_enforcement_on_modify(defaults, info, params, omitted_is_optional):
    """``account_imdsv2_enforcement`` for ``ModifyInstanceMetadataOptions``.

    User guide: "The httpTokensEnforced IMDS property also prevents attempts to enable IMDSv1 on
    an existing instance. When enabled for an account in a Region, an attempt to set httpTokens
    to optional will result in an UnsupportedOperation exception." Its troubleshooting entry
    ("Modifying an IMDSv1-enabled instance fails") gives the same message as for a launch
    (``ENFORCED_MESSAGE``).
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-existing-instances.html
    The exact text for a modification is uncertain: one public field note (not attributable to a
    repository) quotes "You can't set httpTokens to 'optional' because httpTokensEnforced is
    enabled for this account."; the sandbox answers the documented text.
    Our reading (the stricter one): any request that sets ``optional`` is refused, whatever the
    instance has now (the enforcement page says it "blocks enabling IMDSv1 on existing instances
    that currently have IMDSv1 disabled"); with rule ``omitted_http_tokens_default`` on, a request
    without ``HttpTokens`` sets ``optional`` and is refused as well. Unknown, terminated and
    shutting-down instances are left to the extension's own answer.
    """
    level = defaults.current(account_of(info), _region(info)) if defaults is not None else {}
    if level.get("HttpTokensEnforced") != "enabled":
        return None
    instance, state = _instance_state(info, params.get("InstanceId"))
    if instance is None or state in ("terminated", "shutting-down"):
        return None
    tokens = params.get("HttpTokens")
    if tokens is None and omitted_is_optional:
        tokens = "optional"
    if tokens != "optional":
        return None
    return ec2_error(400, "UnsupportedOperation", ENFORCED_MESSAGE)


# ---- the switches, the settings and the observed IAM events ---------------------------------


class RulesError(ValueError):
    """An unknown rule, setting or value (the control API answers 400)."""


class RuleSwitches:
    """Named rules, each on unless switched off: ``enabled``, ``enable``, ``disable`` and the
    ``disabled`` context manager, shared by the sandbox's rule sets (``Rules`` here,
    ``organizations.Organizations``). A subclass names its rules (``NAMES``) and its error
    (``ERROR``), and sets ``self._lock`` and ``self._disabled`` (a set)."""

    NAMES = ()
    ERROR = ValueError

    @classmethod
    def _names(cls, names):
        names = list(names)
        unknown = [n for n in names if not isinstance(n, str) or n not in cls.NAMES]
        if unknown:
            raise cls.ERROR("unknown rule(s) {0}; known: {1}".format(
                ", ".join(repr(n) for n in unknown), ", ".join(cls.NAMES)))
        return names

    def enabled(self, name):
        """Whether the rule ``name`` is on."""
        self._names([name])
        with self._lock:
            return name not in self._disabled

    def enable(self, *names):
        names = self._names(names)
        with self._lock:
            self._disabled.difference_update(names)

    def disable(self, *names):
        names = self._names(names)
        with self._lock:
            self._disabled.update(names)

    @contextlib.contextmanager
    def disabled(self, *names):
        """The rules ``names`` off for the duration of the block (then as they were)."""
        names = self._names(names)
        with self._lock:
            were_on = [n for n in names if n not in self._disabled]
            self._disabled.update(names)
        try:
            yield self
        finally:
            with self._lock:
                self._disabled.difference_update(were_on)


class Rules(RuleSwitches):
    """The sandbox's rules: which are on, their settings, and when IAM created profiles and
    added roles (``propagation_form``)."""

    NAMES = RULE_NAMES
    ERROR = RulesError

    def __init__(self, defaults=None):
        self._lock = threading.Lock()
        self.defaults = defaults  # extensions.InstanceMetadataDefaults, for the enforcement
        self._disabled = set()
        self._settings = dict(DEFAULT_SETTINGS)
        self._events = {}  # (account, profile) -> {CREATED: t, ROLE_ADDED: t} (by ``clock``)
        self._calls = {}  # (account, profile) -> refused association calls since the last event
        # Monotonic seconds that time the propagation window; a test may move its own clock.
        self.clock = time.monotonic

    # ---- switches and settings ---------------------------------------------------------------
    @staticmethod
    def _checked_settings(settings):
        if not isinstance(settings, dict):
            raise RulesError("settings: give an object, not {0!r}".format(settings))
        unknown = sorted(set(settings) - set(DEFAULT_SETTINGS))
        if unknown:
            raise RulesError("unknown setting(s) {0}; known: {1}".format(", ".join(unknown),
                                                                         ", ".join(DEFAULT_SETTINGS)))
        seconds = settings.get("propagation_seconds", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise RulesError("propagation_seconds: give a number of seconds, 0 or more, not {0!r}".format(seconds))
        return dict(settings)

    @property
    def settings(self):
        with self._lock:
            return dict(self._settings)

    def configure(self, settings):
        """Change settings (``{"propagation_seconds": s}``); the ones not given keep their value."""
        settings = self._checked_settings(settings)
        with self._lock:
            self._settings.update(settings)
        return self.status()

    @contextlib.contextmanager
    def configured(self, settings):
        """``configure(settings)`` for the duration of the block (then the settings as they were)."""
        before = self.settings
        self.configure(settings)
        try:
            yield self
        finally:
            with self._lock:
                self._settings = before

    def update(self, disable=(), enable=(), settings=None):
        """What a POST does: every name and setting is checked before anything changes."""
        disable, enable = self._names(disable), self._names(enable)
        settings = self._checked_settings(settings) if settings is not None else {}
        with self._lock:
            self._disabled.update(disable)
            self._disabled.difference_update(enable)
            self._settings.update(settings)
        return self.status()

    def restore_defaults(self):
        """Every rule on, default settings (what is known of IAM's profiles is kept)."""
        with self._lock:
            self._disabled = set()
            self._settings = dict(DEFAULT_SETTINGS)
        return self.status()

    def reset(self):
        """The defaults, and nothing known of any profile (a sandbox reset forgets them all)."""
        self.restore_defaults()
        with self._lock:
            self._events = {}
            self._calls = {}

    def status(self):
        with self._lock:
            return {"rules": dict((name, name not in self._disabled) for name in RULE_NAMES),
                    "settings": dict(self._settings)}

    # ---- IAM events and the propagation window -----------------------------------------------
    def observe(self, event, account, profile_name, when=None):
        """IAM did ``event`` (``CREATED`` or ``ROLE_ADDED``) to a profile at ``when`` (monotonic)."""
        if event not in (CREATED, ROLE_ADDED):
            raise ValueError("unknown IAM event {0!r}".format(event))
        key = (account, profile_name)
        with self._lock:
            self._events.setdefault(key, {})[event] = self.clock() if when is None else when
            self._calls.pop(key, None)

    def settle(self, profile_name=None, account=None):
        """Forget the IAM events of a profile (every profile when None): EC2 knows it now, as it
        does minutes after the change. For tests that count calls in a settled world; the
        propagation window has tests of its own."""
        with self._lock:
            for key in list(self._events):
                if (profile_name is None or key[1] == profile_name) and (account is None or key[0] == account):
                    self._events.pop(key, None)
                    self._calls.pop(key, None)

    def propagation_form(self, account, profile_name, action):
        """The form EC2 answers ``action`` with for this profile now, or None (see
        ``profile_propagation``). Counts the call."""
        key = (account, profile_name)
        with self._lock:
            window = self._settings["propagation_seconds"]
            now = self.clock()
            recent = [(when, event) for event, when in self._events.get(key, {}).items() if now - when < window]
            if not recent:
                return None
            latest = max(recent)[1]
            if action == "RunInstances":
                return INVALID_PROFILE if latest == CREATED else NO_ROLES
            cycle = CREATED_CYCLE if latest == CREATED else ROLE_ADDED_CYCLE
            number = self._calls.get(key, 0)
            self._calls[key] = number + 1
            return cycle[number % len(cycle)]

    # ---- the checks, as the sandbox asks them ------------------------------------------------
    def _on(self, name):
        with self._lock:
            return name not in self._disabled

    def intercept(self, info):
        """The interceptor: ``filter_value_limit`` for every EC2 Describe* call."""
        if info["service"] != "ec2" or not str(info["action"]).startswith("Describe") or _from_sandbox(info):
            return None
        if not self._on("filter_value_limit"):
            return None
        return _refused(info, "filter_value_limit", filter_value_limit(info))

    def _profile_rules(self, info, spec, action):
        if not spec:
            return None
        if self._on("unknown_profile_is_propagation"):
            refusal = unknown_profile_is_propagation(info, spec)
            if refusal is not None:
                return "unknown_profile_is_propagation", refusal
        if self._on("profile_propagation"):
            refusal = profile_propagation(self, info, spec, action)
            if refusal is not None:
                return "profile_propagation", refusal
        return None

    def check_associate(self, info):
        params = ec2_params(info)
        if self._on("associate_running_or_stopped"):
            refusal = associate_running_or_stopped(info, params)
            if refusal is not None:
                return "associate_running_or_stopped", refusal
        return self._profile_rules(info, params.get("IamInstanceProfile") or {}, info["action"])

    def check_replace(self, info):
        params = ec2_params(info)
        if self._on("replace_running_only"):
            refusal = replace_running_only(info, params)
            if refusal is not None:
                return "replace_running_only", refusal
        return self._profile_rules(info, params.get("IamInstanceProfile") or {}, info["action"])

    def check_run_instances(self, info):
        params = ec2_params(info)
        version = requested_template_version(info, params)
        if self._on("account_imdsv2_enforcement"):
            refusal = account_imdsv2_enforcement_at_launch(self.defaults, info, params, version)
            if refusal is not None:
                return "account_imdsv2_enforcement", refusal
        spec = params.get("IamInstanceProfile") or {}
        if not spec and self._on("launch_template_profile"):
            spec = template_profile(version)
        return self._profile_rules(info, spec, "RunInstances")

    def check_modify_metadata_options(self, info):
        if not self._on("account_imdsv2_enforcement"):
            return None
        refusal = account_imdsv2_enforcement_on_modify(self.defaults, info, ec2_params(info),
                                                       self._on("omitted_http_tokens_default"))
        return ("account_imdsv2_enforcement", refusal) if refusal is not None else None

    # ---- control API ---------------------------------------------------------------------------
    def control(self, method, path, body):
        return json_control(path, CONTROL_PATH, method, body, self.status, self._post, self.restore_defaults)

    def _post(self, request):
        if not isinstance(request, dict):
            raise RulesError("give a JSON object with disable, enable and/or settings")
        unknown = sorted(set(request) - {"disable", "enable", "settings"})
        if unknown:
            raise RulesError("unknown key(s) {0}; known: disable, enable, settings".format(", ".join(unknown)))
        for key in ("disable", "enable"):
            if not isinstance(request.get(key, []), list):
                raise RulesError("{0}: give a list of rule names".format(key))
        return self.update(request.get("disable", []), request.get("enable", []), request.get("settings"))


def _refused(info, name, response):
    if response is not None:
        info["injected"] = "rule:" + name
    return response


def _chained(app, action, check):
    """Put ``check`` in front of the extension handler of ("ec2", action), keeping that handler."""
    previous = app.extensions.get(("ec2", action))

    def handler(info):
        if not _from_sandbox(info):
            refused = check(info)
            if refused is not None:
                return _refused(info, *refused)
        return previous(info) if previous is not None else None

    handler.keyless_previous = previous
    app.extensions[("ec2", action)] = handler


def _observing(app, action, rules, event):
    """Record ``event`` when IAM answers ``action`` successfully (keeping any response filter)."""
    previous = app.response_filters.get(("iam", action))

    def response_filter(info, body):
        name = info["params"].get("InstanceProfileName")
        if name:
            rules.observe(event, account_of(info), name)
        return previous(info, body) if previous is not None else body

    app.response_filters[("iam", action)] = response_filter


def install(sandbox):
    """Register the rules on a started sandbox (after ``extensions``; idempotent): ``sandbox.rules``."""
    app = sandbox.app
    rules = getattr(app, "keyless_rules", None)
    if rules is None:
        rules = Rules(getattr(sandbox, "instance_metadata_defaults", None))
        app.interceptors.append(rules.intercept)
        _chained(app, "AssociateIamInstanceProfile", rules.check_associate)
        _chained(app, "ReplaceIamInstanceProfileAssociation", rules.check_replace)
        _chained(app, "RunInstances", rules.check_run_instances)
        _chained(app, "ModifyInstanceMetadataOptions", rules.check_modify_metadata_options)
        _observing(app, "CreateInstanceProfile", rules, CREATED)
        _observing(app, "AddRoleToInstanceProfile", rules, ROLE_ADDED)
        app.reset_hooks.append(rules.reset)
        app.control_handlers[CONTROL_PATH] = rules.control
        app.keyless_rules = rules
    sandbox.rules = rules
    return rules
