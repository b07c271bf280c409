"""Many accounts in the sandbox: an AWS Organization, member accounts, a role in each, and STS
AssumeRole credentials that act in the target account, refused where AWS refuses them.

**How moto does multi-account** (moto 5.2.5, read in its source; moto's docs, "Multi-Account
support", https://github.com/getmoto/moto/blob/master/docs/docs/multi_account.rst). Every request
is filed under one account: ``MOTO_ACCOUNT_ID`` if set, else the ``x-moto-account-id`` header
(server mode), else the account of the request's access key (``moto.iam.models.get_account_id_from``
looks the key up in every account's IAM backend; an unknown key is the default account
``123456789012``, the sandbox's own). ``STS AssumeRole`` takes the account from the role ARN,
mints a temporary ``ASIA...`` key *in that account's* IAM backend and records the session in that
account's STS backend, so EC2, IAM and STS calls signed with the session's key act in the role's
account, isolated from every other account, through the sandbox as through bare moto (the
sandbox's rules, fault proxy and limits find the account as moto does: ``extensions.account_of``,
``limits.request_account``, the latter, used here, reading the header too). The request log
records no account (its records: service, region, action, status, params, time, injected). ``organizations.CreateAccount`` makes
the member account and, in it, the role ``RoleName`` (default ``OrganizationAccountAccessRole``)
trusting ``arn:aws:iam::<management>:root``, as AWS does; ``CloseAccount`` puts the account in
``SUSPENDED`` at once.

**What moto lacks, taught here** (each on by default, each a switch of ``sandbox.organizations``;
a refused request is answered 403/400 in STS's error document and marked
``"injected": "rule:<name>"`` in the request log; requests the sandbox makes for itself,
``X-Keyless-Sandbox-Origin``, as the IMDS emulators' AssumeRole for EC2, are never refused):

=================================  ===============================================================
rule                               what AWS does (the function of that name has the source)
=================================  ===============================================================
``assume_role_trust``              AssumeRole only when the role's trust policy allows the caller:
                                   principal, action, conditions (``sts:ExternalId`` ...), an
                                   explicit Deny winning. moto never reads the trust policy with
                                   its IAM enforcement off (the sandbox's default), and with it on
                                   only for roles of the caller's own account, taking a missing
                                   ``ExternalId`` as a match.
``assume_role_closed_account``     no AssumeRole into a ``SUSPENDED`` or ``PENDING_CLOSURE``
                                   member account
``assume_role_unknown_role``       no AssumeRole of a role that does not exist, in an account of a
                                   sandbox organization (moto mints credentials for any ARN)
``assume_role_duration``           ``DurationSeconds`` above the role's ``MaxSessionDuration``:
                                   ``ValidationError``
=================================  ===============================================================

and, not switchable (moto fidelity): the role ``CreateAccount`` makes has the AWS managed policy
``AdministratorAccess`` attached, as on AWS (moto attaches nothing, and holds no AWS managed
policies unless ``MOTO_IAM_LOAD_MANAGED_POLICIES`` is set: the sandbox puts that one policy, from
moto's own copy of AWS's managed policies, into the member's IAM); a sandbox reset forgets which
accounts were members (moto keeps ``organizations_backends.master_accounts`` across resets, and a
stale entry makes the member's DescribeOrganization fail with a 500).

Not modelled: the caller's *identity* policies (AWS also requires them to allow ``sts:AssumeRole``
for a role of another account, or when the trust policy names the account rather than the
caller): every sandbox caller may call it, unless moto's IAM enforcement is on
(``imds.iam_enforcement``), which then checks them; session policies; role chaining's one-hour
limit; calls signed with a session of an account suspended *after* the session was minted (they
still act).

From Python::

    org = seed_organization(sandbox, [{"name": "dev"}, {"name": "web", "ou": "prod"},
                                      {"name": "old", "suspended": True}], external_id="x")
    org["ids"]["web"]                                   # the member's account id
    creds = credentials_for(sandbox, org["ids"]["web"], external_id="x")
    ec2 = client_for(sandbox, creds, "ec2")             # acts in account "web"
    with sandbox.organizations.disabled("assume_role_trust"):   # moto's plain AssumeRole
        ...

From another process (ansible-playbook runs, the demo, the bench), the same as JSON::

    GET    $URL/_sandbox/organizations   {"rules": {name: enabled}, "organization": describe() or null}
    POST   $URL/_sandbox/organizations   {"seed": {"accounts": [...], "role_name": ..., "external_id": ...}}
                                         and/or {"disable": [names], "enable": [names]}; answers as
                                         GET, plus "seeded": the seed_organization result; 400 with
                                         {"error"} for a bad request (nothing is seeded then)
    DELETE $URL/_sandbox/organizations   every rule on; answers as GET

A sandbox reset (``app.reset_hooks``) turns every rule back on (moto's reset forgets the
organization itself).
"""

import datetime
import json
import re
import threading
import time

from .faults import error_response
from .limits import request_account
from .rules import RuleSwitches
from .server import json_control

MANAGEMENT_ACCOUNT = "123456789012"  # the sandbox's own account: the organization's management account
DEFAULT_ROLE = "OrganizationAccountAccessRole"
ADMINISTRATOR_ACCESS = "AdministratorAccess"
ACCOUNT_STATUSES = ("ACTIVE", "SUSPENDED", "PENDING_CLOSURE")
CLOSED_STATUSES = ("SUSPENDED", "PENDING_CLOSURE")
CONTROL_PATH = "/_sandbox/organizations"
ORIGIN_HEADER_ENVIRON = "HTTP_X_KEYLESS_SANDBOX_ORIGIN"
RULE_NAMES = ("assume_role_trust", "assume_role_closed_account", "assume_role_unknown_role", "assume_role_duration")
DURATION_MESSAGE = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
SEED_SESSION = "keyless-sandbox-seed"

_ROLE_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::(\d{12}):role/(?:[^/]+/)*([^/]+)$")
_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")
_ACCOUNT_SPEC_KEYS = {"name", "ou", "suspended", "status", "email", "external_id"}
_INHERIT = object()  # an account entry without "external_id": the one given for all


class OrganizationsError(ValueError):
    """A bad account list, rule name or control request (the control API answers 400)."""


# ---- the account a request acts as, and what moto holds ---------------------------------------


def role_arn(account_id, role_name=DEFAULT_ROLE, partition="aws"):
    """The ARN of the role ``role_name`` (path ``/``) in ``account_id``."""
    return "arn:{0}:iam::{1}:role/{2}".format(partition, account_id, role_name)


def access_denied_message(caller_arn, resource_arn):
    """STS's text when it refuses an AssumeRole (the same for every reason it refuses)."""
    return "User: {0} is not authorized to perform: sts:AssumeRole on resource: {1}".format(caller_arn, resource_arn)


def _partition(region):
    from moto.utilities.utils import get_partition

    return get_partition(region or "us-east-1")


def _org_account(account_id):
    """moto's FakeAccount of ``account_id`` in the organization that holds it (management or
    member), or None."""
    from moto.organizations.models import organizations_backends

    owner = organizations_backends.master_accounts.get(account_id)
    candidates = [owner] if owner else []
    candidates.append((account_id, "aws"))
    for management, partition in candidates:
        if management not in organizations_backends:
            continue
        backend = organizations_backends[management][partition]
        if backend.org is None:
            continue
        for account in backend.accounts:
            if account.id == account_id:
                return account
    return None


def _organization_of(account_id):
    """moto's FakeOrganization that ``account_id`` is the management account or a member of, or None."""
    account = _org_account(account_id)
    if account is None:
        return None
    from moto.organizations.models import organizations_backends

    return organizations_backends[account.master_account_id]["aws"].org


def account_status(sandbox, account_id):  # pylint: disable=unused-argument
    """The ``Status`` Organizations lists for ``account_id`` (``ACTIVE``, ``SUSPENDED``,
    ``PENDING_CLOSURE``), or None for an account of no organization."""
    account = _org_account(account_id)
    return account.status if account is not None else None


def set_account_status(sandbox, account_id, status):  # pylint: disable=unused-argument
    """Put a member account in ``status`` on moto's model (``Status`` and ``State`` alike).

    moto's only way there is ``CloseAccount``, which goes straight to ``SUSPENDED``; AWS passes
    through ``PENDING_CLOSURE`` first ("While the close account request is in progress, Account
    status will indicate PENDING_CLOSURE. When the close account request completes, the status
    will change to SUSPENDED.", https://docs.aws.amazon.com/organizations/latest/APIReference/
    API_CloseAccount.html). This sets either, or ``ACTIVE`` again (AWS Support reopening an
    account). ``ListAccounts`` / ``DescribeAccount`` then show it."""
    if status not in ACCOUNT_STATUSES:
        raise OrganizationsError("status: one of {0}, not {1!r}".format(", ".join(ACCOUNT_STATUSES), status))
    account = _org_account(account_id)
    if account is None or account.id == account.master_account_id:
        raise OrganizationsError("{0} is no member account of a sandbox organization".format(account_id))
    account.status = account.state = status


def _caller(info):
    """Who signed the request, as STS GetCallerIdentity answers it: {"arn", "account", "type",
    "principal_arn"} (``principal_arn``: a session's role ARN, else the ARN itself)."""
    from moto.sts.models import sts_backends

    match = _ACCESS_KEY.search(info["environ"].get("HTTP_AUTHORIZATION", ""))
    key = match.group(1) if match else ""
    account = request_account(info)
    backend = sts_backends[account][_partition(info["region"])]
    session = backend.get_assumed_role_from_access_key(key)
    if session is not None:
        return {"arn": session.arn, "account": account, "type": "AssumedRole", "principal_arn": session.role_arn}
    _user_id, arn, account = backend.get_caller_identity(key, info["region"] or "us-east-1")
    return {"arn": arn, "account": account, "type": "User", "principal_arn": arn}


def _role(arn):
    """moto's Role with exactly this ARN, or None."""
    match = _ROLE_ARN.match(arn or "")
    if match is None:
        return None
    from moto.iam.models import iam_backends

    try:
        return iam_backends[match.group(2)][match.group(1)].get_role_by_arn(arn)
    except Exception:  # pylint: disable=broad-except
        return None


# ---- the trust policy, as IAM evaluates it ------------------------------------------------------


def _wildcard(pattern, value, ignore_case=False):
    """IAM's ``*`` (any run) and ``?`` (one character) over the whole value."""
    expression = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.match("^" + expression + "$", value, (re.I | re.S) if ignore_case else re.S) is not None


def _listed(value):
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _principal_matches(expected, caller):
    """Whether one ``AWS`` principal of a policy names the caller: ``*``, the caller's account (its
    ID or ``arn:...:iam::<id>:root``: any principal of that account), the caller's ARN, or, for a
    role session, the role's ARN."""
    expected = str(expected)
    if expected == "*":
        return True
    if re.match(r"^\d{12}$", expected):
        return expected == caller["account"]
    root = re.match(r"^arn:aws[a-z-]*:iam::(\d{12}):root$", expected)
    if root:
        return root.group(1) == caller["account"]
    return expected in (caller["arn"], caller["principal_arn"])


def _statement_principal(statement, caller):
    """Whether the statement's ``Principal`` (or ``NotPrincipal``) covers the caller. Only ``AWS``
    principals (and ``"*"``) can be an IAM caller; ``Service``, ``Federated`` and ``CanonicalUser``
    never are."""
    if "Principal" in statement:
        element, negated = statement["Principal"], False
    elif "NotPrincipal" in statement:
        element, negated = statement["NotPrincipal"], True
    else:
        return False  # a trust policy statement without a principal names nobody
    if element == "*":
        named = True
    elif isinstance(element, dict):
        named = any(_principal_matches(p, caller) for p in _listed(element.get("AWS")))
    else:
        named = False
    return named != negated


def _statement_action(statement, action="sts:AssumeRole"):
    if "Action" in statement:
        return any(_wildcard(str(a), action, ignore_case=True) for a in _listed(statement["Action"]))
    if "NotAction" in statement:
        return not any(_wildcard(str(a), action, ignore_case=True) for a in _listed(statement["NotAction"]))
    return False


_STRING_TESTS = {
    "StringEquals": lambda want, got: want == got,
    "StringEqualsIgnoreCase": lambda want, got: want.lower() == got.lower(),
    "StringLike": _wildcard,
    "ArnEquals": lambda want, got: want == got,
    "ArnLike": _wildcard,
}
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
            "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}


def _condition(operator, key, wanted, context):
    """One (operator, key, values) of a ``Condition`` block: True, False, or None when the sandbox
    cannot evaluate the operator. IAM: "If the key that you specify in a policy condition is not
    present in the request context, the values do not match and the condition is false. If the
    policy condition requires that the key is not matched, such as StringNotLike or ArnNotLike,
    and the right key is not present, the condition is true. This logic applies to all condition
    operators except ...IfExists and Null check."
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html)
    """
    qualifier = None
    if ":" in operator:
        qualifier, operator = operator.split(":", 1)
        if qualifier not in ("ForAnyValue", "ForAllValues"):
            return None
    if_exists = operator.endswith("IfExists")
    if if_exists:
        operator = operator[:-len("IfExists")]
    wanted = [str(w) for w in _listed(wanted)]
    got = context.get(key.lower())
    if operator == "Null":
        return (got is None) == (wanted[0].lower() == "true") if wanted else None
    if got is None:
        if if_exists or qualifier == "ForAllValues":
            return True
        return "Not" in operator  # StringNotEquals, ArnNotLike, NumericNotEquals, NotIpAddress ...
    if operator == "Bool":
        return any(w.lower() == got.lower() for w in wanted)
    if operator in _NEGATED:
        return not any(_STRING_TESTS[_NEGATED[operator]](w, got) for w in wanted)
    if operator in _STRING_TESTS:
        return any(_STRING_TESTS[operator](w, got) for w in wanted)
    return None


def _conditions(statement, context):
    """Every condition of the statement holds: True, False, or None (one the sandbox cannot read)."""
    block = statement.get("Condition") or {}
    if not isinstance(block, dict):
        return None
    unknown = False
    for operator, keys in block.items():
        if not isinstance(keys, dict):
            return None
        for key, wanted in keys.items():
            verdict = _condition(operator, key, wanted, context)
            if verdict is False:
                return False
            unknown = unknown or verdict is None
    return None if unknown else True


def trust_verdict(document, caller, context):
    """``"allow"``, ``"deny"`` (an explicit Deny applies) or ``"implicit"`` (no Allow applies):
    the trust policy ``document`` (JSON text or dict) for ``sts:AssumeRole`` by ``caller`` (as
    ``_caller`` gives it) with the request ``context`` (lower-case condition keys -> value).

    IAM's evaluation logic: an explicit Deny in any statement overrides any Allow; without an
    Allow the request is implicitly denied
    (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
    Our reading, the stricter one: a condition operator the sandbox cannot evaluate (numeric,
    date, IP, binary, unknown set qualifiers) on a key the request has makes an Allow not apply
    and a Deny apply (IAM would have evaluated it; a trust policy of our tests never needs one);
    on a key the request lacks, it is decided as IAM decides every operator (false, true for a
    negated one). ``Resource`` is not read
    (trust policies have none).
    """
    if isinstance(document, str):
        try:
            document = json.loads(_unquoted(document))
        except ValueError:
            return "implicit"
    statements = _listed((document or {}).get("Statement"))
    allowed = False
    for statement in statements:
        if not isinstance(statement, dict):
            continue
        if not (_statement_action(statement) and _statement_principal(statement, caller)):
            continue
        holds = _conditions(statement, context)
        if statement.get("Effect") == "Deny" and holds is not False:
            return "deny"
        if statement.get("Effect") == "Allow" and holds is True:
            allowed = True
    return "allow" if allowed else "implicit"


def _unquoted(text):
    """A policy document as IAM keeps it may be URL-encoded (moto keeps what it was given)."""
    import urllib.parse

    return urllib.parse.unquote(text) if text.lstrip().startswith("%7B") else text


def request_context(caller, params):
    """The condition keys of an AssumeRole request (lower-case): ``sts:ExternalId`` and
    ``sts:RoleSessionName`` when given, ``aws:PrincipalAccount``, ``aws:PrincipalArn`` (a session's
    role ARN), ``aws:PrincipalType``, ``aws:PrincipalOrgID`` when the caller's account is in an
    organization, ``aws:PrincipalIsAWSService`` (false: a service's own calls are the sandbox's)."""
    context = {
        "aws:principalaccount": caller["account"],
        "aws:principalarn": caller["principal_arn"],
        "aws:principaltype": caller["type"],
        "aws:principalisawsservice": "false",
    }
    organization = _organization_of(caller["account"])
    if organization is not None:
        context["aws:principalorgid"] = organization.id
    for key, param in (("sts:externalid", "ExternalId"), ("sts:rolesessionname", "RoleSessionName")):
        if params.get(param) is not None:
            context[key] = params[param]
    return context


# ---- the rules ----------------------------------------------------------------------------------


def _denied(caller, params):
    return error_response("sts", 403, "AccessDenied", access_denied_message(caller["arn"], params.get("RoleArn")))


def assume_role_closed_account(info, caller, params, role):  # pylint: disable=unused-argument
    """No AssumeRole into a member account that is ``SUSPENDED`` or ``PENDING_CLOSURE``.

    A closed account's resources "won't be available unless you contact AWS Support to reopen the
    account" (https://docs.aws.amazon.com/organizations/latest/APIReference/API_CloseAccount.html).
    STS answers ``AccessDenied`` (403), "User: <caller> is not authorized to perform:
    sts:AssumeRole on resource: <role ARN>", the trust policy notwithstanding: a suspended account's
    ``sra-execution`` role (aws-samples/aws-security-reference-architecture-examples issue 218,
    https://github.com/aws-samples/aws-security-reference-architecture-examples/issues/218),
    suspended accounts of an organization (CrowdStrike/cloud-resource-estimator issue 25,
    awslabs/landing-zone-accelerator-on-aws PR 726 for SUSPENDED and pending closure). "It is not
    possible to assume a role in an account in state suspended or pending closure"
    (aws-samples/experimental-programmatic-access-ccft PR 21). The text for ``PENDING_CLOSURE`` is
    not shown in those reports; our reading: the same refusal.
    """
    match = _ROLE_ARN.match(params.get("RoleArn") or "")
    if match is None:
        return None
    account = _org_account(match.group(2))
    if account is None or account.status not in CLOSED_STATUSES:
        return None
    return _denied(caller, params)


def assume_role_unknown_role(info, caller, params, role):  # pylint: disable=unused-argument
    """No AssumeRole of a role that does not exist: STS answers the same ``AccessDenied`` as for a
    role that does not trust the caller (it never says the role is missing: localstack PR 8730,
    "AWS just throws AccessDenied all the time", https://github.com/localstack/localstack/pull/8730;
    uswitch/kiam issue 33; zalando-stups/aws-credentials-service issue 10).

    moto mints credentials for any role ARN on purpose: it is moto's one way into another
    account, to create the first role there (moto's maintainers, getmoto/moto PR 6793,
    https://github.com/getmoto/moto/pull/6793; moto's multi-account docs). The sandbox keeps that
    door for accounts of no organization (tests/functional/sandbox/test_limits.py walks through it)
    and refuses it in the accounts of a sandbox organization, the world of issue 15: a member
    account's roles are made by CreateAccount or through a session of its role. Our reading: the
    role ARN must be the role's exact ARN (path included).
    """
    match = _ROLE_ARN.match(params.get("RoleArn") or "")
    if role is not None or match is None or _org_account(match.group(2)) is None:
        return None
    return _denied(caller, params)


def assume_role_trust(info, caller, params, role):  # pylint: disable=unused-argument
    """AssumeRole only when the role's trust policy allows the caller (``trust_verdict``).

    STS API reference, AssumeRole: "the role's trust policy ... specifies who can assume the
    role"; ``ExternalId``: "If the administrator of the account to which the role belongs provided
    you with an external ID, then provide that value in the ExternalId parameter"
    (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html). A wrong or missing
    external ID where the trust policy's condition asks one is ``AccessDenied`` (403), "User:
    <caller ARN> is not authorized to perform: sts:AssumeRole on resource: <role ARN>"
    (phillbaker/terraform-provider-elasticsearch issue 346, with the trust policy's
    ``sts:ExternalId`` condition; aws/aws-msk-iam-auth issue 108); an untrusted caller the same
    (aws/aws-cli issue 7216, aws/karpenter-provider-aws issue 4680: ``arn:aws:sts::...:assumed-role/
    <role>/<session>`` callers; amzn/selling-partner-api-models issue 2523: HTTP 403, ``Sender``).
    An external ID given to a role whose trust policy asks none is accepted (aws/aws-sdk-js issue
    3869). The caller's ARN is what GetCallerIdentity answers for its key (for the sandbox's own
    dummy key, moto's ``arn:aws:sts::123456789012:user/moto``).
    """
    if role is None:
        return None
    verdict = trust_verdict(role.assume_role_policy_document, caller, request_context(caller, params))
    return None if verdict == "allow" else _denied(caller, params)


def assume_role_duration(info, caller, params, role):  # pylint: disable=unused-argument
    """``DurationSeconds`` at most the role's ``MaxSessionDuration``.

    STS API reference, AssumeRole ``DurationSeconds``: "If you specify a value higher than this
    setting or the administrator setting (whichever is lower), the operation fails." STS answers
    ``ValidationError`` (400), "The requested DurationSeconds exceeds the MaxSessionDuration set for
    this role." (kreuzwerker/awsu issue 27 with ``status code: 400``; prowler-cloud/prowler PR 923).
    Our reading: checked after the trust policy (an untrusted caller learns nothing of the role).
    """
    if role is None or not params.get("DurationSeconds"):
        return None
    try:
        asked, allowed = int(params["DurationSeconds"]), int(role.max_session_duration or 3600)
    except (TypeError, ValueError):
        return None
    if asked <= allowed:
        return None
    return error_response("sts", 400, "ValidationError", DURATION_MESSAGE)


_CHECKS = (("assume_role_closed_account", assume_role_closed_account),
           ("assume_role_unknown_role", assume_role_unknown_role),
           ("assume_role_trust", assume_role_trust),
           ("assume_role_duration", assume_role_duration))


# ---- the switches, the AssumeRole handler, moto fixes, the control API ------------------------


class Organizations(RuleSwitches):
    """``sandbox.organizations``: the AssumeRole rules' switches, and the control API."""

    NAMES = RULE_NAMES
    ERROR = OrganizationsError

    def __init__(self, sandbox):
        self.sandbox = sandbox
        self._lock = threading.Lock()
        self._disabled = set()

    def restore_defaults(self):
        with self._lock:
            self._disabled = set()
        return self.status()

    def status(self):
        with self._lock:
            rules = dict((name, name not in self._disabled) for name in RULE_NAMES)
        return {"rules": rules, "organization": describe_organization(self.sandbox)}

    # ---- the checks -----------------------------------------------------------------------------
    def check_assume_role(self, info):
        """The refusal of an AssumeRole request, or None (moto answers)."""
        if info["environ"].get(ORIGIN_HEADER_ENVIRON):
            return None
        params = info["params"]
        caller = _caller(info)
        role = _role(params.get("RoleArn"))
        for name, check in _CHECKS:
            if not self.enabled(name):
                continue
            refusal = check(info, caller, params, role)
            if refusal is not None:
                info["injected"] = "rule:" + name
                return refusal
        return None

    def reset(self):
        """After moto's reset: every rule on, and no account a member any longer."""
        from moto.organizations.models import organizations_backends

        organizations_backends.master_accounts.clear()
        self.restore_defaults()

    # ---- control API ------------------------------------------------------------------------------
    def control(self, method, path, body):
        return json_control(path, CONTROL_PATH, method, body, self.status, self._post, self.restore_defaults)

    def _post(self, request):
        if not isinstance(request, dict):
            raise OrganizationsError("give a JSON object with seed, disable and/or enable")
        unknown = sorted(set(request) - {"seed", "disable", "enable"})
        if unknown:
            raise OrganizationsError("unknown key(s) {0}; known: seed, disable, enable".format(", ".join(unknown)))
        disable, enable = self._names(request.get("disable", [])), self._names(request.get("enable", []))
        seed = request.get("seed")
        if seed is not None:
            if not isinstance(seed, dict) or set(seed) - {"accounts", "role_name", "external_id"}:
                raise OrganizationsError("seed: give {accounts, role_name, external_id}")
            _checked_accounts(seed.get("accounts"))
        self.disable(*disable)
        self.enable(*enable)
        answer = {}
        if seed is not None:
            import botocore.exceptions

            try:
                answer["seeded"] = seed_organization(self.sandbox, seed["accounts"],
                                                     seed.get("role_name") or DEFAULT_ROLE, seed.get("external_id"))
            except (botocore.exceptions.ClientError, RuntimeError) as exc:
                raise OrganizationsError("seed: {0}".format(exc)) from exc
        answer.update(self.status())
        return answer


def _chain_extension(app, service, action, check):
    previous = app.extensions.get((service, action))

    def handler(info):
        refused = check(info)
        if refused is not None:
            return refused
        return previous(info) if previous is not None else None

    handler.keyless_previous = previous
    app.extensions[(service, action)] = handler


_ADMINISTRATOR_DATA = {}


def _administrator_access_data():
    """moto's copy of AWS's ``AdministratorAccess`` managed policy (parsed once)."""
    if not _ADMINISTRATOR_DATA:
        from moto.iam.aws_managed_policies import aws_managed_policies_data

        _ADMINISTRATOR_DATA.update(json.loads(aws_managed_policies_data)[ADMINISTRATOR_ACCESS])
    return _ADMINISTRATOR_DATA


def attach_administrator_access(account_id, role_name):
    """Attach the AWS managed policy ``AdministratorAccess`` to the role in ``account_id``, as
    Organizations does for the role CreateAccount makes: "AWS automatically creates a role in the
    account that grants administrator permissions to IAM users in the management account who can
    assume the role" (the manual duplicate of that role attaches ``AdministratorAccess``:
    https://docs.aws.amazon.com/organizations/latest/userguide/orgs_manage_accounts_create-cross-account-role.html).
    moto (without ``MOTO_IAM_LOAD_MANAGED_POLICIES``) holds no AWS managed policy: this one is
    put into the account's IAM from moto's own data."""
    from moto.iam.models import AWSManagedPolicy
    from moto.iam.models import iam_backends

    backend = iam_backends[account_id]["aws"]
    arn = "arn:aws:iam::aws:policy/" + ADMINISTRATOR_ACCESS
    if arn not in backend.managed_policies:
        policy = AWSManagedPolicy.from_data(ADMINISTRATOR_ACCESS, account_id, backend.region_name,
                                            _administrator_access_data())
        backend.aws_managed_policies.append(policy)
        backend.managed_policies[policy.arn] = policy
    role = backend.get_role(role_name)
    if arn not in role.managed_policies:
        backend.attach_role_policy(arn, role_name)


def _create_account_filter(app):
    """After a successful CreateAccount: the role it made gets ``AdministratorAccess``."""
    previous = app.response_filters.get(("organizations", "CreateAccount"))

    def response_filter(info, body):
        try:
            request = json.loads(info["body"] or b"{}")
            account_id = json.loads(body)["CreateAccountStatus"]["AccountId"]
            attach_administrator_access(account_id, request.get("RoleName") or DEFAULT_ROLE)
        except Exception:  # pylint: disable=broad-except  # not JSON, no account, no role made: nothing to attach
            pass
        return previous(info, body) if previous is not None else body

    app.response_filters[("organizations", "CreateAccount")] = response_filter


def install(sandbox):
    """Register on a started sandbox (idempotent): ``sandbox.organizations``."""
    app = sandbox.app
    organizations = getattr(app, "keyless_organizations", None)
    if organizations is None:
        organizations = Organizations(sandbox)
        _chain_extension(app, "sts", "AssumeRole", organizations.check_assume_role)
        _create_account_filter(app)
        app.reset_hooks.append(organizations.reset)
        app.control_handlers[CONTROL_PATH] = organizations.control
        app.keyless_organizations = organizations
    sandbox.organizations = organizations
    return organizations


# ---- seeding ------------------------------------------------------------------------------------


def _checked_accounts(accounts):
    """The account list of ``seed_organization``, checked; each entry with every key filled."""
    if not isinstance(accounts, list) or not accounts:
        raise OrganizationsError("accounts: give a non-empty list of {name, ou, suspended, status, email, "
                                 "external_id}")
    checked, names = [], set()
    for entry in accounts:
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict):
            raise OrganizationsError("accounts: each entry is an object or a name, not {0!r}".format(entry))
        unknown = sorted(set(entry) - _ACCOUNT_SPEC_KEYS)
        if unknown:
            raise OrganizationsError("accounts: unknown key(s) {0}; known: {1}".format(
                ", ".join(unknown), ", ".join(sorted(_ACCOUNT_SPEC_KEYS))))
        name = entry.get("name")
        if not isinstance(name, str) or not name or name in names:
            raise OrganizationsError("accounts: every entry needs a name of its own, not {0!r}".format(name))
        names.add(name)
        ou = entry.get("ou")
        if ou is not None and (not isinstance(ou, str) or not all(ou.split("/"))):
            raise OrganizationsError("accounts: ou is an OU name or a path of them (a/b), not {0!r}".format(ou))
        status = entry.get("status") or ("SUSPENDED" if entry.get("suspended") else "ACTIVE")
        if status not in ACCOUNT_STATUSES or (entry.get("suspended") and status == "ACTIVE"):
            raise OrganizationsError("accounts: status of {0}: one of {1}, not {2!r}".format(
                name, ", ".join(ACCOUNT_STATUSES), entry.get("status")))
        checked.append({"name": name, "ou": ou, "status": status,
                        "email": entry.get("email") or "{0}@example.com".format(re.sub(r"[^A-Za-z0-9.+-]", "-", name)),
                        "external_id": entry["external_id"] if "external_id" in entry else _INHERIT})
    return checked


def _ou_id(org, root_id, path, ous):
    """The id of the OU at ``path`` (``a/b``), made where missing; ``ous`` caches path -> id."""
    parent, walked = root_id, []
    for name in path.split("/"):
        walked.append(name)
        key = "/".join(walked)
        if key not in ous:
            existing = [ou for page in org.get_paginator("list_organizational_units_for_parent").paginate(
                ParentId=parent) for ou in page["OrganizationalUnits"] if ou["Name"] == name]
            ous[key] = existing[0]["Id"] if existing else org.create_organizational_unit(
                ParentId=parent, Name=name)["OrganizationalUnit"]["Id"]
        parent = ous[key]
    return parent


def _created_account_id(org, status):
    """CreateAccount is asynchronous on AWS (``IN_PROGRESS``); moto answers ``SUCCEEDED`` at once."""
    deadline = time.monotonic() + 30
    while status["State"] == "IN_PROGRESS" and time.monotonic() < deadline:
        time.sleep(0.05)
        status = org.describe_create_account_status(CreateAccountRequestId=status["Id"])["CreateAccountStatus"]
    if status["State"] != "SUCCEEDED":
        raise RuntimeError("CreateAccount {0}: {1} ({2})".format(status.get("AccountName"), status["State"],
                                                                 status.get("FailureReason")))
    return status["AccountId"]


def trust_policy(management_account=MANAGEMENT_ACCOUNT, external_id=None):
    """The trust policy of an organization's access role: the management account (any principal of
    it) may assume it, with ``sts:ExternalId`` equal to ``external_id`` when given."""
    statement = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::{0}:root".format(management_account)},
                 "Action": "sts:AssumeRole"}
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def seed_organization(sandbox, accounts, role_name=DEFAULT_ROLE, external_id=None):
    """An organization managed by the sandbox's own account (123456789012), made through the
    sandbox's Organizations, STS and IAM APIs as an administrator of the management account would.

    ``accounts``: a list of names or of ``{"name": str, "ou": None | "prod" | "a/b" (nested OUs),
    "suspended": bool, "status": "ACTIVE" | "SUSPENDED" | "PENDING_CLOSURE", "email": str,
    "external_id": str | None}`` (all but ``name`` optional; ``email`` defaults to
    ``<name>@example.com``; ``external_id`` overrides the one given for all, None or ``""`` for
    none). For each: CreateAccount with
    ``RoleName=role_name`` (the role trusting ``arn:aws:iam::123456789012:root``, with
    ``AdministratorAccess``, as Organizations makes it), MoveAccount into its OU (made if missing),
    then, with an external ID, a session of that role (before the condition exists) updates the
    role's trust policy to require it (``trust_policy``), then ``suspended``: CloseAccount
    (``SUSPENDED`` at once in moto); ``PENDING_CLOSURE``: ``set_account_status`` (moto has no way
    there). Calling it again adds accounts to the same organization and OUs.

    Returns ``{"organization_id": "o-...", "management_account": "123456789012", "root_id":
    "r-...", "role_name": role_name, "ous": {path: "ou-..."}, "accounts": [{"name", "id", "email",
    "ou", "parent_id", "status", "role_arn", "external_id"}] (in the order given), "ids": {name:
    id}}``. The calls are in the request log like any other (note ``len(sandbox.app.log)`` first
    to count a test's own calls).
    """
    import botocore.exceptions

    specs = _checked_accounts(accounts)
    org = sandbox.client("organizations")
    try:
        organization = org.create_organization(FeatureSet="ALL")["Organization"]
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] != "AlreadyInOrganizationException":
            raise
        organization = org.describe_organization()["Organization"]
    if organization["MasterAccountId"] != MANAGEMENT_ACCOUNT:
        raise RuntimeError("the sandbox's account is a member of {0}, not its management account".format(
            organization["Id"]))
    root_id = org.list_roots()["Roots"][0]["Id"]
    ous, seeded = {}, []
    for spec in specs:
        account_id = _created_account_id(org, org.create_account(
            AccountName=spec["name"], Email=spec["email"], RoleName=role_name)["CreateAccountStatus"])
        parent_id = root_id
        if spec["ou"]:
            parent_id = _ou_id(org, root_id, spec["ou"], ous)
            org.move_account(AccountId=account_id, SourceParentId=root_id, DestinationParentId=parent_id)
        wanted_id = external_id if spec["external_id"] is _INHERIT else spec["external_id"]
        if wanted_id:
            session = credentials_for(sandbox, account_id, role_name, SEED_SESSION)
            client_for(sandbox, session, "iam").update_assume_role_policy(
                RoleName=role_name, PolicyDocument=json.dumps(trust_policy(MANAGEMENT_ACCOUNT, wanted_id)))
        if spec["status"] == "SUSPENDED":
            org.close_account(AccountId=account_id)
        elif spec["status"] == "PENDING_CLOSURE":
            set_account_status(sandbox, account_id, "PENDING_CLOSURE")
        seeded.append({"name": spec["name"], "id": account_id, "email": spec["email"], "ou": spec["ou"],
                       "parent_id": parent_id, "status": spec["status"], "role_arn": role_arn(account_id, role_name),
                       "external_id": wanted_id or None})
    return {"organization_id": organization["Id"], "management_account": MANAGEMENT_ACCOUNT, "root_id": root_id,
            "role_name": role_name, "ous": ous, "accounts": seeded,
            "ids": dict((entry["name"], entry["id"]) for entry in seeded)}


def describe_organization(sandbox):  # pylint: disable=unused-argument
    """The organization the sandbox's account manages, read from moto's model (no API call, nothing
    in the request log): ``{"organization_id", "management_account", "root_id", "ous": {path:
    id}, "accounts": [{"id", "name", "email", "status", "parent_id", "ou"}] (the management
    account first)}``, or None when there is none."""
    from moto.organizations.models import FakeRoot
    from moto.organizations.models import organizations_backends

    if MANAGEMENT_ACCOUNT not in organizations_backends:
        return None
    backend = organizations_backends[MANAGEMENT_ACCOUNT]["aws"]
    if backend.org is None:
        return None
    by_id = dict((ou.id, ou) for ou in backend.ou)

    def path_of(parent_id):
        names = []
        while parent_id in by_id and not isinstance(by_id[parent_id], FakeRoot):
            names.append(by_id[parent_id].name)
            parent_id = by_id[parent_id].parent_id
        return "/".join(reversed(names)) or None

    return {
        "organization_id": backend.org.id,
        "management_account": backend.org.master_account_id,
        "root_id": backend.org.root_id,
        "ous": dict((path_of(ou.id), ou.id) for ou in backend.ou if not isinstance(ou, FakeRoot)),
        "accounts": [{"id": a.id, "name": a.name, "email": a.email, "status": a.status, "parent_id": a.parent_id,
                      "ou": path_of(a.parent_id)} for a in backend.accounts],
    }


# ---- credentials --------------------------------------------------------------------------------


def credentials_for(sandbox, account_id, role_name=DEFAULT_ROLE, session_name="keyless-sandbox", external_id=None,
                    duration_seconds=None, source=None):
    """STS AssumeRole of ``role_name`` in ``account_id`` through the sandbox, signed with the
    sandbox's own (management account) key, or with ``source`` (credentials this function gave:
    role chaining). Raises botocore's ClientError as STS refuses (AccessDenied, ValidationError).

    Returns ``{"access_key": "ASIA...", "secret_key", "session_token", "expiration": datetime (UTC),
    "account_id", "arn": "arn:aws:sts::<id>:assumed-role/<role>/<session>", "role_arn"}``: the
    names amazon.aws modules take (``access_key``, ``secret_key``, ``session_token``);
    ``client_for`` and ``env_for`` use them."""
    import botocore.config

    kwargs = {"RoleArn": role_arn(account_id, role_name), "RoleSessionName": session_name}
    if external_id is not None:
        kwargs["ExternalId"] = external_id
    if duration_seconds is not None:
        kwargs["DurationSeconds"] = int(duration_seconds)
    config = botocore.config.Config(retries={"total_max_attempts": 1})
    sts = client_for(sandbox, source, "sts", config=config) if source else sandbox.client("sts", config=config)
    answer = sts.assume_role(**kwargs)
    credentials = answer["Credentials"]
    expiration = credentials["Expiration"]
    if isinstance(expiration, datetime.datetime) and expiration.tzinfo is not None:
        expiration = expiration.astimezone(datetime.timezone.utc)
    return {"access_key": credentials["AccessKeyId"], "secret_key": credentials["SecretAccessKey"],
            "session_token": credentials["SessionToken"], "expiration": expiration, "account_id": account_id,
            "arn": answer["AssumedRoleUser"]["Arn"], "role_arn": kwargs["RoleArn"]}


def client_for(sandbox, credentials, service, **kwargs):
    """A boto3 client of the sandbox signed with ``credentials`` (``credentials_for``'s answer)."""
    import boto3

    return boto3.client(service, endpoint_url=sandbox.url, region_name=kwargs.pop("region_name", sandbox.REGION),
                        aws_access_key_id=credentials["access_key"], aws_secret_access_key=credentials["secret_key"],
                        aws_session_token=credentials["session_token"], **kwargs)


def env_for(sandbox, credentials):
    """``sandbox.env()`` with ``credentials`` instead of the sandbox's key (``AWS_SESSION_TOKEN``
    too): the environment of a process (ansible-playbook, the AWS CLI) acting in that account."""
    env = sandbox.env()
    env.update({"AWS_ACCESS_KEY_ID": credentials["access_key"], "AWS_SECRET_ACCESS_KEY": credentials["secret_key"],
                "AWS_SESSION_TOKEN": credentials["session_token"]})
    return env
