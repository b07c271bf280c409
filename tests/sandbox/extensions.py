"""Where moto differs from AWS in a way our modules can feel, the sandbox answers as AWS does.

Each extension registers on the ``SandboxApp`` of a started ``Sandbox``:
``app.extensions[(service, action)] = handler`` answers a request instead of moto (or, by
returning None after changing ``info["body"]``, changes the request moto then answers), and
``app.reset_hooks`` forget an extension's own state on reset.

EC2 behaviours taught here (moto 5.2.5 lacks or gets them wrong), each from the EC2 API
reference (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/):

* ``GetInstanceMetadataDefaults`` / ``ModifyInstanceMetadataDefaults``: the account-level
  IMDS defaults of a region (moto has neither action).
* ``CreateLaunchTemplateVersion`` with ``SourceVersion``: the new version inherits the source
  version's launch parameters, the ones given overwriting (moto ignores ``SourceVersion``).
* ``ModifyInstanceMetadataOptions``: options not given keep their value, except ``HttpTokens``,
  which the reference gives a default (rule ``omitted_http_tokens_default``); the answer says
  ``pending`` for a running instance, bad values and terminated instances are refused (moto
  resets every option not given to its launch default).
* ``RunInstances``: an option the request does not set comes from the launch template's
  ``MetadataOptions``, then from the account defaults (moto ignores both); with no
  ``IamInstanceProfile`` in the request, the launch template's profile (rule
  ``launch_template_profile``; moto ignores it).

Two of these behaviours are *rules* of ``rules.py`` (``sandbox.rules``), which a test can switch
off to get moto's plain behaviour back; without a ``rules`` module installed they are on.

The request log keeps the request as the client sent it, whatever an extension does.
"""

import os
import re
import threading
import urllib.parse
from xml.sax.saxutils import escape

EC2_XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"
_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")

# The instance metadata options and the values AWS accepts for each (HttpPutResponseHopLimit: 1-64).
ENUM_OPTIONS = {
    "HttpTokens": ("optional", "required"),
    "HttpEndpoint": ("disabled", "enabled"),
    "InstanceMetadataTags": ("disabled", "enabled"),
    "HttpProtocolIpv6": ("disabled", "enabled"),
}
HOP_LIMIT = "HttpPutResponseHopLimit"
# What an account-level default can set (no HttpProtocolIpv6 there), see
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyInstanceMetadataDefaults.html
ACCOUNT_LEVEL_OPTIONS = ("HttpTokens", "HttpPutResponseHopLimit", "HttpEndpoint", "InstanceMetadataTags",
                         "HttpTokensEnforced")
NO_PREFERENCE = "no-preference"


# ---- request and response plumbing (EC2 query protocol) -------------------------------------

_MODEL = {}


def ec2_operation(action):
    """botocore's model of an EC2 operation."""
    if "ec2" not in _MODEL:
        import botocore.session

        _MODEL["ec2"] = botocore.session.get_session().get_service_model("ec2")
    return _MODEL["ec2"].operation_model(action)


def ec2_params(info):
    """The request's parameters in boto3's shape (nested dicts and lists, typed scalars)."""
    from moto.core.parse import EC2QueryParser

    return EC2QueryParser(ec2_operation(info["action"])).parse({"values": dict(info["params"])})


def _xml(value, tag):
    if isinstance(value, dict):
        inner = "".join(_xml(v, k[0].lower() + k[1:]) for k, v in value.items() if v is not None)
    elif isinstance(value, list):
        inner = "".join(_xml(v, "item") for v in value)
    elif isinstance(value, bool):
        inner = "true" if value else "false"
    else:
        inner = escape(str(value))
    return "<{0}>{1}</{0}>".format(tag, inner)


def ec2_result(action, result):
    """An EC2 query-protocol answer: ``<ActionResponse>`` with the result's members in lowerCamelCase."""
    inner = "".join(_xml(v, k[0].lower() + k[1:]) for k, v in result.items() if v is not None)
    body = '<?xml version="1.0" encoding="UTF-8"?>\n<{0}Response xmlns="{1}"><requestId>{2}</requestId>{3}</{0}Response>'
    return 200, [("Content-Type", "text/xml;charset=UTF-8")], body.format(action, EC2_XMLNS, _request_id(), inner)


def ec2_error(code, message, status=400):
    """An EC2 error answer (``<Response><Errors><Error>``), as botocore parses it."""
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{0}</Code><Message>{1}</Message>'
            "</Error></Errors><RequestID>{2}</RequestID></Response>").format(escape(code), escape(message),
                                                                             _request_id())
    return status, [("Content-Type", "text/xml;charset=UTF-8")], body


def dry_run_error():
    """What every EC2 action answers to ``DryRun=true`` when the caller is allowed."""
    return ec2_error("DryRunOperation", "Request would have succeeded, but DryRun flag is set.", 412)


def _request_id():
    import uuid

    return str(uuid.uuid4())


def account_of(info):
    """The account moto files the request under (as moto decides: env, then the access key)."""
    if os.environ.get("MOTO_ACCOUNT_ID"):
        return os.environ["MOTO_ACCOUNT_ID"]
    match = _ACCESS_KEY.search(info["environ"].get("HTTP_AUTHORIZATION", ""))
    from moto.iam.models import get_account_id_from

    return get_account_id_from(match.group(1) if match else "")


def ec2_backend(info):
    from moto.ec2.models import ec2_backends

    return ec2_backends[account_of(info)][info["region"] or "us-east-1"]


def add_request_params(info, params):
    """Add query parameters to the request moto is about to answer (the log keeps the original)."""
    if not params:
        return
    body = info["body"] or b""
    extra = urllib.parse.urlencode([(k, _query_value(v)) for k, v in params.items()]).encode("utf-8")
    info["body"] = body + (b"&" if body else b"") + extra


def _query_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def serialize_ec2_params(action, params):
    """boto3-shaped parameters as the query parameters botocore would send (no Action/Version)."""
    import botocore.serialize

    serializer = botocore.serialize.create_serializer("ec2", include_validation=False)
    body = serializer.serialize_to_request(params, ec2_operation(action))["body"]
    return dict((k, v) for k, v in body.items() if k not in ("Action", "Version"))


def _find_template(backend, name=None, template_id=None):
    """moto's launch template, or None (then moto itself answers with AWS's not-found error)."""
    try:
        if template_id:
            return backend.get_launch_template(template_id)
        if name:
            return backend.get_launch_template_by_name(name)
    except Exception:  # pylint: disable=broad-except
        return None
    return None


def rule_switch(app):
    """``on(name)``: whether the sandbox rule ``name`` (``rules.py``, ``app.keyless_rules``) is on.
    Every rule is on unless switched off, and on when no rules are installed."""

    def on(name):
        rules = getattr(app, "keyless_rules", None)
        return rules is None or rules.enabled(name)

    return on


def requested_template_version(info, params):
    """The launch template version (moto's) a ``RunInstances`` request names in ``LaunchTemplate``
    (``params`` in boto3's shape); None without one, or when it does not exist (moto then answers)."""
    spec = params.get("LaunchTemplate")
    if not spec:
        return None
    template = _find_template(ec2_backend(info), spec.get("LaunchTemplateName"), spec.get("LaunchTemplateId"))
    return _template_version(template, spec.get("Version")) if template is not None else None


def template_profile(version):
    """The ``IamInstanceProfile`` (``Name`` and/or ``Arn``) of a launch template version, or {}."""
    if version is None:
        return {}
    profile = version.data.get("IamInstanceProfile") or {}
    return dict((k, v) for k, v in profile.items() if k in ("Name", "Arn") and v)


def _template_version(template, version):
    """A version of a moto launch template by number, $Latest or $Default; None when there is none."""
    text = str(version if version is not None else "$Default")
    if text.lower() == "$latest":
        return template.versions[-1]
    if text.lower() == "$default":
        return template.default_version()
    if not text.isdigit() or not 1 <= int(text) <= len(template.versions):
        return None
    return template.versions[int(text) - 1]


# ---- (a) account-level instance metadata defaults ------------------------------------------


class InstanceMetadataDefaults:
    """``GetInstanceMetadataDefaults`` / ``ModifyInstanceMetadataDefaults``, per account and region.

    AWS keeps, per region, account-level defaults for new instances. ``Modify`` sets the options
    it is given, leaves the others, and clears one with ``no-preference`` (``-1`` for the hop
    limit); it answers ``return=true``. ``Get`` answers ``accountLevel`` with only the options
    that have a value (all absent when none was ever set) and ``managedBy=account``.
    Values outside the reference's enumerations, or a hop limit outside 1-64 (and not -1), are
    ``InvalidParameterValue``. ``DryRun`` answers ``DryRunOperation``.
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyInstanceMetadataDefaults.html
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceMetadataDefaultsResponse.html
    ``HttpTokensEnforced`` is stored and returned here; the rule ``account_imdsv2_enforcement``
    (``rules.py``) enforces it: ``RunInstances`` that would launch with ``HttpTokens`` other than
    ``required``, and ``ModifyInstanceMetadataOptions`` setting ``optional``, are refused with
    ``UnsupportedOperation``. Enabling it needs no ``HttpTokens=required`` default: the user guide's
    all-Regions example sets ``--http-tokens-enforced enabled`` alone.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._defaults = {}

    def install(self, app):
        app.extensions[("ec2", "GetInstanceMetadataDefaults")] = self.get
        app.extensions[("ec2", "ModifyInstanceMetadataDefaults")] = self.modify
        app.reset_hooks.append(self.reset)

    def reset(self):
        with self._lock:
            self._defaults = {}

    def current(self, account, region):
        """The defaults of an account in a region: {Option: value} of the options that are set."""
        with self._lock:
            return dict(self._defaults.get((account, region), {}))

    def _key(self, info):
        return account_of(info), info["region"] or "us-east-1"

    def get(self, info):
        params = ec2_params(info)
        if params.get("DryRun"):
            return dry_run_error()
        level = self.current(*self._key(info))
        level["ManagedBy"] = "account"
        return ec2_result("GetInstanceMetadataDefaults", {"AccountLevel": level})

    def modify(self, info):
        params = ec2_params(info)
        changes = {}
        for option in ACCOUNT_LEVEL_OPTIONS:
            if option not in params:
                continue
            value = params[option]
            if option == HOP_LIMIT:
                if value != -1 and not 1 <= value <= 64:
                    return ec2_error("InvalidParameterValue", "The HttpPutResponseHopLimit must be between 1 and 64, "
                                     "or -1 for no preference; {0} is not valid.".format(value))
                changes[option] = None if value == -1 else value
                continue
            allowed = ENUM_OPTIONS.get(option, ("disabled", "enabled")) + (NO_PREFERENCE,)
            if value not in allowed:
                return ec2_error("InvalidParameterValue", "Value ({0}) for parameter {1} is invalid. Valid values: "
                                 "{2}.".format(value, option, ", ".join(allowed)))
            changes[option] = None if value == NO_PREFERENCE else value
        if params.get("DryRun"):
            return dry_run_error()
        key = self._key(info)
        with self._lock:
            level = self._defaults.setdefault(key, {})
            for option, value in changes.items():
                if value is None:
                    level.pop(option, None)
                else:
                    level[option] = value
        return ec2_result("ModifyInstanceMetadataDefaults", {"Return": True})


# ---- (b) CreateLaunchTemplateVersion with SourceVersion -------------------------------------


def create_launch_template_version(info):
    """``CreateLaunchTemplateVersion`` with ``SourceVersion`` inherits the source's launch data.

    AWS: "If you specify this parameter, the new version inherits the launch parameters from
    the source version. If you specify additional launch parameters for the new version, they
    overwrite any corresponding launch parameters inherited from the source version."
    A parameter is a top-level member of ``LaunchTemplateData``: one given in the request
    replaces the source's whole member (``MetadataOptions`` given = the source's
    ``MetadataOptions`` dropped, not merged field by field). A source version that does not
    exist is ``InvalidLaunchTemplateId.VersionNotFound``.
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplateVersion.html
    The request moto answers gets the inherited members added; moto does the rest.
    """
    params = ec2_params(info)
    source = params.get("SourceVersion")
    if source is None:
        return None
    template = _find_template(ec2_backend(info), params.get("LaunchTemplateName"), params.get("LaunchTemplateId"))
    if template is None:
        return None
    version = _template_version(template, source)
    if version is None:
        return ec2_error("InvalidLaunchTemplateId.VersionNotFound",
                         "Could not find launch template version {0} for launch template {1}.".format(
                             source, template.id))
    given = params.get("LaunchTemplateData") or {}
    inherited = dict((k, v) for k, v in version.data.items() if k not in given and v is not None)
    add_request_params(info, serialize_ec2_params("CreateLaunchTemplateVersion", {"LaunchTemplateData": inherited}))
    return None


# ---- (c) ModifyInstanceMetadataOptions ------------------------------------------------------

_MOTO_OPTION_ATTRIBUTES = {
    "HttpTokens": "http_tokens",
    "HttpPutResponseHopLimit": "http_put_response_hop_limit",
    "HttpEndpoint": "http_endpoint",
    "HttpProtocolIpv6": "http_protocol_ipv6",
    "InstanceMetadataTags": "instance_metadata_tags",
}


def modify_instance_metadata_options(info, rule_on=lambda name: True):
    """``ModifyInstanceMetadataOptions`` changes only the options it is given, but ``HttpTokens``.

    AWS, of ``HttpEndpoint`` and ``HttpPutResponseHopLimit``: "If this parameter is not
    specified, the existing state is maintained." / "If no parameter is specified, the existing
    state is maintained." On a running instance "the API responds with a state of pending";
    "applied" shows in subsequent DescribeInstances (here: at once). A hop limit outside 1-64 or
    a value outside the enumerations is ``InvalidParameterValue``; a terminated (or terminating)
    instance is ``IncorrectInstanceState``. An unknown instance is left to moto
    (``InvalidInstanceID.NotFound``).
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyInstanceMetadataOptions.html

    Rule ``omitted_http_tokens_default`` (``rule_on``): the reference says no such thing of
    ``HttpTokens``; it gives the parameter a *default* instead (botocore 1.44.8,
    ``botocore/data/ec2/2016-11-15/service-2.json``, ``ModifyInstanceMetadataOptionsRequest``):

        Default:
        * If the value of ImdsSupport for the Amazon Machine Image (AMI) for your instance is
          v2.0 and the account level default is set to no-preference, the default is required.
        * If the value of ImdsSupport for the Amazon Machine Image (AMI) for your instance is
          v2.0, but the account level default is set to V1 or V2, the default is optional.

    (older models: "If the value of ImdsSupport for the Amazon Machine Image (AMI) for your
    instance is v2.0, the default is required"). The sandbox models no AMI ``ImdsSupport`` (moto's
    images carry none), so an omitted ``HttpTokens`` sets ``optional``: the stricter reading (our
    reading: the reference does not say what happens for other AMIs; a client that wants IMDSv2
    kept must send ``HttpTokens=required`` with every modification). With the rule off, an
    omitted ``HttpTokens`` keeps its state like the other options.
    """
    params = ec2_params(info)
    try:
        instance = ec2_backend(info).get_instance(params.get("InstanceId"))
    except Exception:  # pylint: disable=broad-except
        return None
    for option, allowed in ENUM_OPTIONS.items():
        if option in params and params[option] not in allowed:
            return ec2_error("InvalidParameterValue", "Value ({0}) for parameter {1} is invalid. Valid values: "
                             "{2}.".format(params[option], option, ", ".join(allowed)))
    if HOP_LIMIT in params and not 1 <= params[HOP_LIMIT] <= 64:
        return ec2_error("InvalidParameterValue", "The HttpPutResponseHopLimit must be between 1 and 64; {0} is not "
                         "valid.".format(params[HOP_LIMIT]))
    state = instance._state.name  # pylint: disable=protected-access
    if state in ("terminated", "shutting-down"):
        return ec2_error("IncorrectInstanceState", "The instance '{0}' is not in a state from which its metadata "
                         "options can be modified ({1}).".format(instance.id, state))
    if params.get("DryRun"):
        return dry_run_error()
    options = instance.metadata_options
    for option, attribute in _MOTO_OPTION_ATTRIBUTES.items():
        if option in params:
            setattr(options, attribute, params[option])
    if "HttpTokens" not in params and rule_on("omitted_http_tokens_default"):
        options.http_tokens = "optional"
    options.state = "applied"
    answer = dict((option, getattr(options, attribute)) for option, attribute in _MOTO_OPTION_ATTRIBUTES.items())
    answer["State"] = "pending" if state == "running" else "applied"
    return ec2_result("ModifyInstanceMetadataOptions", {"InstanceId": instance.id, "InstanceMetadataOptions": answer})


# ---- (c) RunInstances: metadata options from the template and the account defaults ----------


def run_instances(defaults, rule_on=lambda name: True):
    """``RunInstances`` takes each metadata option from the first level that sets it, and the
    launch template's instance profile when the request names none.

    AWS's order of precedence: the launch request's ``MetadataOptions``, then the launch
    template's, then (AMI ``ImdsSupport``, not modelled) the account-level defaults of the
    region, then the service defaults (moto's). moto ignores the template's options and has no
    account defaults.
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-options.html

    Rule ``launch_template_profile`` (``rule_on``): "The launch template. Any additional
    parameters that you specify for the new instance overwrite the corresponding parameters
    included in the launch template." (RunInstances, ``LaunchTemplate``), so a template version
    whose data has ``IamInstanceProfile`` (``Name`` or ``Arn``) launches its instances with that
    profile unless the request gives one; moto 5.2.5 takes the image, type, key, groups and user
    data from a template, not the profile. The profile is added to the request moto answers.
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RequestLaunchTemplateData.html
    """

    def handler(info):
        params = ec2_params(info)
        given = params.get("MetadataOptions") or {}
        inherited = {}
        version = requested_template_version(info, params)
        if version is not None:
            inherited.update((k, v) for k, v in (version.data.get("MetadataOptions") or {}).items()
                             if k in _MOTO_OPTION_ATTRIBUTES)
        for option, value in defaults.current(account_of(info), info["region"] or "us-east-1").items():
            if option in _MOTO_OPTION_ATTRIBUTES:
                inherited.setdefault(option, value)
        extra = {}
        options = dict((k, v) for k, v in inherited.items() if k not in given)
        if options:
            extra["MetadataOptions"] = options
        profile = template_profile(version)
        if profile and not params.get("IamInstanceProfile") and rule_on("launch_template_profile"):
            extra["IamInstanceProfile"] = profile
        if extra:
            add_request_params(info, serialize_ec2_params("RunInstances", extra))
        return None

    return handler


def install(sandbox):
    """Register every extension on a started sandbox."""
    app = sandbox.app
    defaults = InstanceMetadataDefaults()
    defaults.install(app)
    app.extensions[("ec2", "CreateLaunchTemplateVersion")] = create_launch_template_version
    rule_on = rule_switch(app)
    app.extensions[("ec2", "ModifyInstanceMetadataOptions")] = (
        lambda info: modify_instance_metadata_options(info, rule_on))
    app.extensions[("ec2", "RunInstances")] = run_instances(defaults, rule_on)
    sandbox.instance_metadata_defaults = defaults
    return sandbox
