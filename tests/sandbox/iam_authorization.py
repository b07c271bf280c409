"""IAM policy enforcement as strict as AWS's where moto's is not. It acts only while the sandbox's
enforcement switch is on (``imds.set_iam_enforcement``, ``POST /_sandbox/iam-enforcement``); moto
evaluates the caller's policies (its own code, its own IAM backend), this module makes sure it is
asked the right question about every call and answers as AWS answers:

1. **The IAM name of an action.** moto names the action after the request's signing name. Every
   CloudWatch call is signed for ``monitoring``, so moto asked for ``monitoring:GetMetricData``,
   which no AWS policy grants, and denied a role that holds ``cloudwatch:GetMetricData``. IAM's
   prefix for CloudWatch is ``cloudwatch`` (Service Authorization Reference, "Actions, resources,
   and condition keys for Amazon CloudWatch",
   https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html;
   the signing name is botocore's ``cloudwatch`` model, ``"signingName": "monitoring"``).
   ``IAM_PREFIX`` maps each signing name that differs.
2. **EC2's answer.** EC2 refuses a call the caller's policies do not allow with HTTP 403 and
   ``UnauthorizedOperation``, "You are not authorized to perform this operation." (the raw answers
   in https://github.com/hashicorp/terraform-provider-aws/issues/4664 and
   https://github.com/rebuy-de/aws-nuke/issues/517); moto answered ``AccessDenied``. AWS now often
   adds "User: ... is not authorized to perform: ..." and, for some actions, an encoded
   authorization message: uncertain which, so the stricter reading gives the client the first
   sentence only, and nothing of ours may depend on the rest.
3. **The protocol's error.** moto wrote every denial as a query-protocol XML ``ErrorResponse``;
   a JSON-protocol caller (CloudWatch as botocore speaks it now, SQS, EventBridge, Organizations)
   could not read it and saw an error coded ``403``. Here a JSON caller gets a JSON error
   (``{"__type": "AccessDenied", "message": ...}``), as AWS's JSON protocols answer.
4. **An account as principal.** A trust policy naming ``arn:aws:iam::<account>:root`` (or the bare
   account id) lets in every identity of that account whose own policies allow the call; one
   naming a role lets in that role's sessions ("AWS account principals" and "IAM role
   principals", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html).
   moto matched the principal's ARN word for word, so no identity could assume a role that trusts
   its account (the way Organizations' ``OrganizationAccountAccessRole`` and our docs' audit role
   trust), and a session's ARN (``arn:aws:sts::<account>:assumed-role/<role>/<session>``) never
   matched its role. The identity's own policies still have to allow ``sts:AssumeRole``.
5. **iam:PassRole.** Launching with a profile, associating one and replacing one need
   ``iam:PassRole`` on the profile's role as well as the EC2 action, and ``AddRoleToInstanceProfile``
   needs it on the role (``PASS_ROLE_ACTIONS`` cites the pages); moto never checked it, so a
   policy without it passed here and failed on AWS.
6. **The calls the sandbox answers itself** (``app.extensions``: ``GetInstanceMetadataDefaults``,
   ``ModifyInstanceMetadataDefaults``, IAM's permissions boundaries, ...) never reached moto, so
   no policy was ever checked for them; they are checked here with the same policies.

Every call but S3's is checked by this module's interceptor (after the rate limits, before the
sandbox's EC2 rules); S3's by moto, which also reads bucket policies and answers in S3's way.
moto checks the calls it serves again, with the same policies and now the same action names. The
request's signature is moto's to check (for the calls it serves); the interceptor checks the key
and the policies only.
"""

from .extensions import account_of
from .extensions import ec2_error

# signing name -> IAM action prefix, where they differ (the Service Authorization Reference)
IAM_PREFIX = {"monitoring": "cloudwatch"}
EC2_UNAUTHORIZED = "You are not authorized to perform this operation."

_patched = {}


def _enforcing():
    from .imds import iam_enforcement_enabled

    return iam_enforcement_enabled()


def _patch_action_names():
    """moto's IAMRequestBase names the action ``<signing name>:<Action>``; IAM's name instead."""
    if _patched:
        return
    from moto.iam.access_control import IAMRequestBase

    original = IAMRequestBase.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        prefix = IAM_PREFIX.get(self._service)
        if prefix is not None:
            self._action = prefix + self._action[len(self._service):]

    IAMRequestBase.__init__ = __init__
    _patched["IAMRequestBase.__init__"] = original
    _patch_principals()


def principal_matches(expected, principal):
    """Whether ``principal`` (the caller's ARN, as moto gives it) is one of a trust policy's
    ``Principal.AWS`` entries, as IAM reads them (see 4. above)."""
    expected = [expected] if isinstance(expected, str) else list(expected or [])
    parts = principal.split(":", 5)
    if len(parts) < 6:
        return False
    partition, service, account, resource = parts[1], parts[2], parts[4], parts[5]
    account_root = "arn:{0}:iam::{1}:root".format(partition, account)
    # A session's role: the entry names it by ARN, with or without a path (the session's ARN has none).
    role_prefix = "arn:{0}:iam::{1}:role/".format(partition, account)
    session_role = resource.split("/")[1] if service == "sts" and resource.startswith("assumed-role/") else None
    for entry in expected:
        if entry in ("*", principal, account, account_root):
            return True
        if session_role and entry.startswith(role_prefix) and entry.rsplit("/", 1)[-1] == session_role:
            return True
    return False


def _patch_principals():
    """moto's IAMPolicyStatement._check_principal, with IAM's reading of an account or a role as
    principal (see 4. above)."""
    from moto.iam.access_control import IAMPolicyStatement

    original = IAMPolicyStatement._check_principal  # pylint: disable=protected-access

    def _check_principal(self, principal):
        if original(self, principal):
            return True
        expected = (self._statement.get("Principal") or {})
        return isinstance(expected, dict) and principal_matches(expected.get("AWS"), principal)

    IAMPolicyStatement._check_principal = _check_principal  # pylint: disable=protected-access
    _patched["IAMPolicyStatement._check_principal"] = original


def _headers(environ):
    """The request's HTTP headers as moto's IAMRequest reads them (``Authorization``,
    ``X-Amz-Security-Token``, ...)."""
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers["-".join(part.capitalize() for part in key[5:].split("_"))] = value
    return headers


# The calls that give a role to EC2, and need iam:PassRole on that role besides their own action
# ("Grant permissions to attach an IAM role to an instance",
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/permission-to-pass-iam-roles.html; for
# AddRoleToInstanceProfile, its API reference: "The caller of this operation must be granted the
# PassRole permission on the IAM role by a permissions policy.",
# https://docs.aws.amazon.com/IAM/latest/APIReference/API_AddRoleToInstanceProfile.html).
PASS_ROLE_ACTIONS = frozenset((("ec2", "RunInstances"), ("ec2", "AssociateIamInstanceProfile"),
                               ("ec2", "ReplaceIamInstanceProfileAssociation"), ("iam", "AddRoleToInstanceProfile")))


def passed_roles(info):
    """The ARNs of the roles a PASS_ROLE_ACTIONS call hands over (none when it names no profile, or
    one that does not exist: the call's own checks answer that)."""
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    if (info["service"], info["action"]) not in PASS_ROLE_ACTIONS:
        return []
    backend = iam_backends[account_of(info)][get_partition(info["region"] or "us-east-1")]
    params = info["params"]
    try:
        if info["service"] == "iam":
            return [backend.get_role(params.get("RoleName", "")).arn]
        if params.get("IamInstanceProfile.Arn"):
            profile = backend.get_instance_profile_by_arn(params["IamInstanceProfile.Arn"])
        elif params.get("IamInstanceProfile.Name"):
            profile = backend.get_instance_profile(params["IamInstanceProfile.Name"])
        else:
            return []
    except Exception:  # pylint: disable=broad-except  # moto's NotFound: not this check's to say
        return []
    return [role.arn for role in profile.roles]


def denial(info):
    """None when the caller's policies allow the call (and iam:PassRole on each role it hands to
    EC2); else the answer AWS gives."""
    from moto.core.exceptions import HTTPException
    from moto.iam.access_control import IAMRequest

    environ = info["environ"]
    headers = _headers(environ)
    if "Authorization" not in headers:
        return None  # unsigned: moto's to refuse
    try:
        request = IAMRequest(account_id=account_of(info), method=environ.get("REQUEST_METHOD", "POST"),
                             path=environ.get("PATH_INFO", "/"), data=info["params"], body=info["body"],
                             headers=headers, action=info["action"])
        request.check_action_permitted("*")
        for role_arn in passed_roles(info):
            request._action = "iam:PassRole"  # pylint: disable=protected-access
            request.check_action_permitted(role_arn)
    except HTTPException as error:
        if info["service"] == "ec2" and getattr(error, "error_type", None) == "AccessDenied":
            return ec2_error("UnauthorizedOperation", EC2_UNAUTHORIZED, 403)
        if "json" in environ.get("CONTENT_TYPE", "") and hasattr(error, "to_json"):
            error = error.to_json()  # a JSON protocol's caller (SQS, EventBridge) reads a JSON error
        return error.code, list(error.get_headers()), error.get_body()
    return None


class Authorization:
    """The interceptor: every call but S3's, checked while enforcement is on."""

    def __init__(self, app):
        self.app = app

    def intercept(self, info):
        if info["service"] is None or info["environ"].get("HTTP_X_KEYLESS_SANDBOX_ORIGIN"):
            return None  # the sandbox's control paths, EC2's own reads (the IMDS emulators)
        if not _enforcing():
            return None
        if info["service"] == "s3":
            return None  # moto's S3 checks its bucket policies too, and answers in S3's own way
        return denial(info)


def install(sandbox):
    """Register the interceptor on a started sandbox (idempotent); patch moto's action names and
    principals (once per process)."""
    _patch_action_names()
    app = sandbox.app
    if getattr(app, "keyless_authorization", None) is None:
        app.keyless_authorization = Authorization(app)
        app.interceptors.append(app.keyless_authorization.intercept)
    return app.keyless_authorization
