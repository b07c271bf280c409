"""The events EventBridge would deliver for the sandbox's mutating EC2 and IAM calls ("AWS API Call
via CloudTrail"), routed by the account's rules to their SQS queues, as AWS routes them.

moto never turns an API call into an event (and has no CloudTrail LookupEvents). Here every EC2 and
IAM call the sandbox answers (admitted or refused, by moto, an extension, a rule, the limits or
the fault proxy) that is not read-only becomes the event CloudTrail hands to EventBridge, put on
the default event bus of the caller's account: the EC2 call's region, us-east-1 for IAM. The
sandbox's own reads (``X-Keyless-Sandbox-Origin``), moto's API and a connection dropped before
moto saw the request make none.

**Sources.** [R] CloudTrail record contents
(https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html),
[U] the userIdentity element (.../cloudtrail-event-reference-user-identity.html), [E] EventBridge,
"AWS service events delivered via AWS CloudTrail"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-service-event-cloudtrail.html) and
"Receiving read-only management events" (.../eb-service-event-cloudtrail-management.html), [G]
AWS re:Post "Why does my EventBridge rule for IAM events only trigger in us-east-1"
(https://repost.aws/knowledge-center/eventbridge-rule-triggers-iam-single-region), [S] EventBridge's
schema of aws.ec2 "AWS API Call via CloudTrail" as the AWS CDK generates it
(aws/aws-cdk-go, awscdkmixinspreview/previewawsec2/previewawsec2events/AWSAPICallViaCloudTrail_*.go),
and published records: [X1] test fixtures of a CloudTrail-driven remediation project (EventBridge
deliveries of 2019-12: RunInstances with ``iamInstanceProfile: {}`` and
``responseElements.instancesSet.items[].metadataOptions``, ModifyInstanceMetadataOptions refused with
``Client.InvalidParameterValue`` and ``requestParameters.ModifyInstanceMetadataOptionsRequest``,
CreateSecurityGroup's ``_return: true``), [X2] an aws-samples rule matching
``requestParameters.ModifyLaunchTemplateRequest.LaunchTemplateId`` and
``responseElements.ModifyLaunchTemplateResponse.launchTemplate.launchTemplateId`` (aws-samples/
dcv-web-portal), [X3] public rules reading
``requestParameters.AssociateIamInstanceProfileRequest.InstanceId`` and
``...ReplaceIamInstanceProfileAssociationRequest.IamInstanceProfile.Name``, [X4] a published
CreateLaunchTemplate record (``"SecurityGroupId": [{"tag": 1, "content": "sg-..."}, {"tag": 2,
...}]``, ``"UserData": "<sensitiveDataRemoved>"``), [X5] Stratus Red Team detonation records
(StopInstances ``instancesSet.items``, ``errorCode: Client.IncorrectInstanceState``,
ModifyInstanceAttribute ``userData: <sensitiveDataRemoved>``), [X6] an IAM GetRole record with
``errorCode: NoSuchEntityException`` and IAM's message, [X7] published records and CloudTrail
analyses with ``Client.DryRunOperation`` ("Request would have succeeded, but DryRun flag is set.",
a CreateNetworkInterface record), ``Client.RequestLimitExceeded`` (the Karpenter troubleshooting
docs: "inspect the errorCode field for Client.RequestLimitExceeded to see throttled calls") and
``Server.InsufficientInstanceCapacity``.

**The event** (envelope [E], [S]): ``version`` "0", ``id``, ``detail-type`` "AWS API Call via
CloudTrail", ``source`` "aws.ec2" / "aws.iam", ``account``, ``time`` (ISO 8601, seconds),
``region`` (IAM: us-east-1 [G]), ``resources`` [] (empty in every published CloudTrail event),
``detail``: the CloudTrail record [R]: ``eventVersion`` "1.11" (the current version [R]),
``userIdentity``, ``eventTime``, ``eventSource`` (ec2.amazonaws.com / iam.amazonaws.com),
``eventName``, ``awsRegion``, ``sourceIPAddress`` and ``userAgent`` (the request's),
``requestParameters``, ``responseElements`` (null on a failure and for IAM calls that return
nothing [X1], [X6]), ``errorCode`` / ``errorMessage`` (failures only), ``requestID``, ``eventID``,
``readOnly`` false, ``eventType`` "AwsApiCall", ``managementEvent`` true, ``recipientAccountId``,
``eventCategory`` "Management". No ``tlsDetails`` (the sandbox speaks plain HTTP on loopback).

``userIdentity`` [U], [X1]: the caller as STS GetCallerIdentity names it in the sandbox, so a rule
comparing ``userIdentity.arn`` with its own caller ARN (not to react to its own changes) works as on
AWS: an assumed role ``{type AssumedRole, principalId "AROA..:session", arn
arn:aws:sts::ACCT:assumed-role/ROLE/SESSION, accountId, accessKeyId, sessionContext {sessionIssuer
{type Role, principalId, arn, accountId, userName}, webIdFederationData {}, attributes
{creationDate, mfaAuthenticated "false"}}}``, an IAM user ``{type IAMUser, principalId, arn,
accountId, accessKeyId, userName}``, and the sandbox's own key (no IAM user: moto answers
``arn:aws:sts::ACCT:user/moto``) ``{type IAMUser, userName "moto"}`` with that ARN.

**requestParameters and responseElements.** EC2 records two shapes:

* The older actions, in the EC2 XML API's lowerCamelCase names (RunInstances [X1], [S]):
  ``instancesSet.items[] {imageId, minCount, maxCount, keyName}``, ``instanceType``,
  ``blockDeviceMapping`` ({} when none), ``monitoring {enabled}``, ``disableApiTermination``,
  ``iamInstanceProfile`` (``{name}`` / ``{arn}``, and ``{}`` when the request names none, as in
  [X1]: a rule asking "was a profile given?" must not test that the key exists),
  ``metadataOptions`` (lowerCamelCase, only when the request sets it: not published; our reading,
  the stricter one: the launch template's and the account default's options never show here, read
  ``responseElements.instancesSet.items[].metadataOptions`` [X1] or the instance),
  ``launchTemplate {launchTemplateId|launchTemplateName, version}`` [S], ``tagSpecificationSet.items[]
  {resourceType, tags[] {key, value}}`` [X1], ``groupSet.items[] {groupId}``, ``subnetId``,
  ``userData`` "<sensitiveDataRemoved>" [X5]; Start/Stop/TerminateInstances ``instancesSet.items[]
  {instanceId}`` [X5], CreateTags/DeleteTags ``resourcesSet.items[] {resourceId}``, ``tagSet.items[]``.
  Other older actions: the request's parameters in lowerCamelCase (not the per-action XML names:
  the sandbox does not know them all; no rule of ours reads them). Responses: the answer's elements
  in lowerCamelCase with ``requestId``, sets as ``{"items": [...]}`` (``{}`` when empty),
  ``return`` as ``_return`` [X1], [X5], times as epoch milliseconds (``launchTime`` [X1]), numbers
  and booleans typed.
* The newer actions (Associate/Disassociate/ReplaceIamInstanceProfileAssociation,
  ModifyInstanceMetadataOptions, ModifyInstanceMetadataDefaults, Create/Modify/DeleteLaunchTemplate,
  CreateLaunchTemplateVersion, DeleteLaunchTemplateVersions, CreateFleet), wrapped in
  ``<Action>Request`` with the query's PascalCase names [X1], [X2], [X3], [X4], [S], and the answer
  in ``<Action>Response {xmlns, requestId, ...}`` in its XML's lowerCamelCase names [X2], [S]: an
  XML-to-JSON conversion. A list member is ``{"tag": N, "content": value}`` (a structure: its
  members with ``"tag": N``), a list of one such item is the item itself, of several a JSON array
  [X4]: a rule must take both. Numbers and booleans are typed (``"tag": 1`` [X4]): our reading for
  every value, so ``SetDefaultVersion`` is the number 2, not "2", and ``HttpPutResponseHopLimit``
  a number. ModifyInstanceMetadataDefaults (2023) and CreateLaunchTemplateVersion have no
  published record: our reading is the same wrapping (the one the other actions of their
  generation show). ``UserData`` is "<sensitiveDataRemoved>" [X4].

IAM records the parameters in lowerCamelCase (``roleName``, ``instanceProfileName``,
``policyDocument`` as the JSON *text* the caller sent, a string, not an object: the API's type) and
the result's members in lowerCamelCase, ``null`` when the call returns nothing (RemoveRoleFrom-
InstanceProfile, UpdateAssumeRolePolicy: [R] says responseElements is null then); dates as
"Jan 19, 2014, 12:13:27 PM" (our reading of the published "Jan 19, 2014 12:13:27 PM" form).
Secrets never appear: secret keys and private keys are left out of responses, a password-like
parameter is "HIDDEN_DUE_TO_SECURITY_REASONS".

**errorCode** [X1], [X5], [X6]: EC2 prefixes its code with ``Client.`` (``Server.`` for the server
errors of the EC2 error-code reference: InternalError, Unavailable, Insufficient*Capacity ...), so
a throttled call is ``Client.RequestLimitExceeded`` and a DryRun ``Client.DryRunOperation`` [X7] (a
rule that does not check ``errorCode`` reacts to a dry run).
IAM's codes are its exception names: ``NoSuchEntityException`` [X6], and, our reading of the same
pattern, ``EntityAlreadyExistsException``, ``DeleteConflictException``, ``LimitExceededException``,
``MalformedPolicyDocumentException``, ``InvalidInputException``, ``UnmodifiableEntityException``,
``ConcurrentModificationException``, ``ServiceFailureException``; ``AccessDenied`` and
``Throttling`` as they are.

**Read-only calls** make no event: EventBridge matches read-only management events only for rules
in state ``ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS`` [E] (not modelled). Read-only here:
``Describe*``, ``Get*``, ``List*`` and IAM's ``Simulate*``.

**What AWS requires, on by default (rules, each switchable):**

``trail_required``  "To record events with a detail-type value of AWS API Call via CloudTrail, a
                    CloudTrail trail with logging enabled is required" [E]. An event is published
                    only when a trail that is logging records it: in the caller's account (or an
                    organization trail of its management account), in the event's region or
                    multi-region, whose event selectors take write management events from the
                    service (none: all management events; classic: ``IncludeManagementEvents``
                    and ``ReadWriteType`` All/WriteOnly, ``ExcludeManagementEventSources``;
                    advanced: ``eventCategory`` Management, ``readOnly`` absent or false,
                    ``eventSource`` Equals/NotEquals). IAM (a global service): a trail with
                    ``IncludeGlobalServiceEvents`` that is multi-region or in us-east-1 (our
                    reading). Otherwise the call is counted ``not_recorded``.
``queue_policy``    EventBridge delivers to an SQS queue only when the queue's policy lets
                    ``events.amazonaws.com`` ``sqs:SendMessage`` (an explicit Deny wins;
                    conditions on ``aws:SourceArn`` (the rule's ARN) and ``aws:SourceAccount``
                    evaluated as IAM does, tests/sandbox/organizations.py). Otherwise the
                    delivery is counted in ``failed_invocations`` (AWS's FailedInvocations
                    metric) and the event is lost, as on AWS.

**Routing** is the sandbox's, not moto's ``PutEvents``: moto 5.2.5 delivers to DISABLED rules, never
matches a pattern inside an array of objects (``responseElements.instancesSet.items.instanceId``),
and adds an ``ingestion-time`` field no AWS event has. Here: the rules of the bus in state ENABLED
(not DISABLED; a rule with no pattern, a schedule, matches nothing), patterns as EventBridge reads
them (exact values, ``prefix``, ``suffix``, ``equals-ignore-case``, ``anything-but``, ``numeric``,
``exists``, ``cidr``, ``wildcard``, ``$or``; arrays of objects flattened, a field matching when any
element's value does; not modelled: the rule that two fields of one pattern must come from the same
array element), to the SQS targets (``Input``, ``InputPath`` ``$`` / ``$.a.b``, FIFO
``SqsParameters.MessageGroupId``) and the event-bus targets of another account or region (put on
that bus and routed there; its bus policy is not checked). Other targets, and ``InputTransformer``,
are counted as failed invocations with the reason. Not modelled: retries and a target's
dead-letter queue (a lost event is lost), CloudTrail's delivery delay (``delay`` seconds can be
configured; default 0: the event is in the queue when the client has its answer).

**Cost.** Publication is always on. Where no trail records the call (the rest of the test suite
makes none) it costs a few dictionary reads: 16 microseconds per call in the observer, 0.3 % of a
CreateTags + DescribeInstances loop of 2,000 calls (2026-12, this machine); with a trail and a rule,
building and routing an event adds well under a millisecond (moto's SQS SendMessage grows with the
messages left in the queue: drain it).

From Python (``sandbox.cloudtrail_events``, a ``CloudTrailEvents``)::

    route = route_events(sandbox, "drift", {"source": ["aws.ec2"]})   # trail + rule + queue + policy
    ...                                                               # EC2 / IAM calls
    sandbox.cloudtrail_events.published()            # the events published (newest last, at most 1000)
    receive_events(route)                            # the event bodies in the queue (and deletes them)
    with sandbox.cloudtrail_events.disabled("trail_required"):   # publish without a trail
        ...
    sandbox.cloudtrail_events.configure({"enabled": False, "delay": 2.5})
    sandbox.cloudtrail_events.stats()                # published, not_recorded, delivered,
                                                     # failed_invocations, errors

From another process, the same as JSON::

    GET    $URL/_sandbox/cloudtrail_events   {"enabled", "delay", "rules": {name: enabled},
                                              "stats": {...}, "recent": [last 20 events, short]}
    POST   $URL/_sandbox/cloudtrail_events   {"enabled": bool, "delay": s, "disable": [names],
                                              "enable": [names]}; answers as GET; 400 {"error"}
    DELETE $URL/_sandbox/cloudtrail_events   the defaults again; answers as GET

A sandbox reset (``app.reset_hooks``) restores the defaults and forgets the events.
"""

import collections
import contextlib
import datetime
import html
import ipaddress
import json
import re
import threading
import time
import uuid
from xml.etree import ElementTree

from .extensions import EC2_XMLNS
from .limits import request_account
from .organizations import _conditions
from .organizations import _listed
from .organizations import _organization_of
from .organizations import _statement_action
from .organizations import _wildcard
from .server import json_control

CONTROL_PATH = "/_sandbox/cloudtrail_events"
DETAIL_TYPE = "AWS API Call via CloudTrail"
EVENT_VERSION = "1.11"
GLOBAL_REGION = "us-east-1"
SERVICES = {"ec2": ("aws.ec2", "ec2.amazonaws.com"), "iam": ("aws.iam", "iam.amazonaws.com")}
RULE_NAMES = ("trail_required", "queue_policy")
READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Simulate")
SENSITIVE = "<sensitiveDataRemoved>"
HIDDEN = "HIDDEN_DUE_TO_SECURITY_REASONS"
KEEP = 1000
# EC2 actions CloudTrail records wrapped in <Action>Request / <Action>Response (see the docstring).
WRAPPED_EC2 = frozenset((
    "AssociateIamInstanceProfile", "DisassociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation",
    "ModifyInstanceMetadataOptions", "ModifyInstanceMetadataDefaults", "CreateLaunchTemplate",
    "CreateLaunchTemplateVersion", "ModifyLaunchTemplate", "DeleteLaunchTemplate", "DeleteLaunchTemplateVersions",
    "CreateFleet",
))
# EC2's server errors (the EC2 API reference, "Error codes for the Amazon EC2 API": server errors);
# every other code is a client error.
EC2_SERVER_ERRORS = frozenset((
    "InternalError", "InternalFailure", "ServiceUnavailable", "Unavailable", "InsufficientAddressCapacity",
    "InsufficientCapacity", "InsufficientInstanceCapacity", "InsufficientHostCapacity",
    "InsufficientReservedInstanceCapacity", "InsufficientCapacityOnHost",
))
IAM_ERROR_CODES = {code: code + "Exception" for code in (
    "NoSuchEntity", "EntityAlreadyExists", "DeleteConflict", "LimitExceeded", "MalformedPolicyDocument",
    "InvalidInput", "UnmodifiableEntity", "ConcurrentModification", "ServiceFailure")}
# Old-style EC2 list parameters and the set CloudTrail records them in ([X1], [X5]).
EC2_SETS = {"InstanceId": ("instancesSet", "instanceId"), "ResourceId": ("resourcesSet", "resourceId"),
            "Tag": ("tagSet", None), "SecurityGroupId": ("groupSet", "groupId"),
            "SecurityGroup": ("groupSet", "groupName")}
_SECRET_RESPONSE = re.compile(r"(secretaccesskey|privatekey|sessiontoken|password)", re.I)
_PASSWORD_PARAM = re.compile(r"(password|secret)", re.I)
_ACCESS_KEY = re.compile(r"Credential=([^/,\s]+)/")
_INTEGER = re.compile(r"^-?(0|[1-9][0-9]{0,17})$")
_ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)$")


# ---- values ------------------------------------------------------------------------------------


def _typed(text):
    """A value of the XML-to-JSON conversion: booleans and integers typed, the rest as text."""
    if text is None:
        return ""
    if text in ("true", "false"):
        return text == "true"
    if _INTEGER.match(text):
        return int(text)
    return text


def _lower(name):
    return name[:1].lower() + name[1:]


def _lowered(value):
    """Every key of a nested value in lowerCamelCase."""
    if isinstance(value, dict):
        return {_lower(k): _lowered(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lowered(v) for v in value]
    return value


def _iso_seconds(text):
    text = text.replace("Z", "+00:00")
    when = datetime.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- the request's query parameters as a tree --------------------------------------------------


class _Indexed(dict):
    """A list parameter of the query (``Name.1``, ``Name.2``): index -> value or subtree."""


def _query_tree(params):
    """``{"A.B.1.C": v}`` -> ``{"A": {"B": _Indexed({1: {"C": v}})}}``; IAM's ``member`` segments
    are list markers too."""
    tree = {}
    for key, value in params.items():
        if key in ("Action", "Version"):
            continue
        parts = [p for p in key.split(".") if p != "member"]
        node = tree
        for position, part in enumerate(parts):
            last = position == len(parts) - 1
            following = parts[position + 1] if not last else None
            if part.isdigit():
                continue
            if following is not None and following.isdigit():
                indexed = node.setdefault(part, _Indexed())
                index = int(following)
                if position + 1 == len(parts) - 1:
                    indexed[index] = value
                    break
                node = indexed.setdefault(index, {})
                continue
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return tree


def _as_xml_json(tree):
    """The wrapped form: list items ``{"tag": N, "content": v}`` / ``{"tag": N, ...}``, one item as
    itself, several as an array; every value typed; UserData and secrets hidden."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, _Indexed):
            items = []
            for index in sorted(value):
                item = value[index]
                if isinstance(item, dict):
                    rendered = {"tag": index}
                    rendered.update(_as_xml_json(item))
                else:
                    rendered = {"tag": index, "content": _typed(item)}
                items.append(rendered)
            out[key] = items[0] if len(items) == 1 else items
        elif isinstance(value, dict):
            out[key] = _as_xml_json(value)
        elif key.lower() == "userdata":
            out[key] = SENSITIVE
        elif _PASSWORD_PARAM.search(key):
            out[key] = HIDDEN
        else:
            out[key] = _typed(value)
    return out


# ---- the services' models (botocore's), for the types of the older shapes ---------------------------

_MODELS = {}


def _model(service):
    if service not in _MODELS:
        import botocore.session

        _MODELS[service] = botocore.session.get_session().get_service_model(service)
    return _MODELS[service]


def _operation(service, action):
    try:
        return _model(service).operation_model(action)
    except Exception:  # pylint: disable=broad-except
        return None  # an action botocore does not know: values keep the XML-to-JSON types


def _by_shape(value, shape, key=""):
    """A value of the query tree typed by its botocore shape (lists as lists); secrets hidden."""
    if isinstance(value, _Indexed):
        member = shape.member if shape is not None and shape.type_name == "list" else None
        return [_by_shape(value[i], member, key) for i in sorted(value)]
    if isinstance(value, dict):
        members = _members_by_query_name(shape)
        return {k: _by_shape(v, members.get(k), k) for k, v in value.items()}
    if key.lower() == "userdata":
        return SENSITIVE
    if _PASSWORD_PARAM.search(key):
        return HIDDEN
    return _scalar(value, shape)


def _scalar(text, shape):
    kind = shape.type_name if shape is not None else None
    if kind in ("integer", "long"):
        try:
            return int(text)
        except ValueError:
            return text
    if kind == "boolean":
        return text.lower() == "true"
    if kind in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            return text
    if kind is None:
        return _typed(text)
    return text


def _members_by_query_name(shape):
    """A structure's members by the names they take in a query (EC2: queryName, else the
    capitalized locationName; IAM: the member name)."""
    if shape is None or shape.type_name != "structure":
        return {}
    names = {}
    for name, member in shape.members.items():
        query = member.serialization.get("queryName")
        location = member.serialization.get("name")
        names[query or (location[:1].upper() + location[1:] if location else name)] = member
        names.setdefault(name, member)
    return names


# ---- EC2: requestParameters ----------------------------------------------------------------------


def _items(values, key=None):
    return {"items": [{key: v} if key else _lowered(v) for v in values]}


def _old_style_list(name, values, out):
    """A list parameter of an older EC2 action, in its set when CloudTrail's name is known."""
    target = EC2_SETS.get(name)
    if target is None:
        out[_lower(name)] = _lowered(values)
        return
    set_name, item_key = target
    out.setdefault(set_name, {"items": []})["items"].extend(_items(values, item_key)["items"])


def _run_instances_request(typed):
    plain = dict(typed)
    item = {_lower(k): plain.pop(k) for k in ("ImageId", "MinCount", "MaxCount", "KeyName") if k in plain}
    out = {"instancesSet": {"items": [item]}}
    out["instanceType"] = plain.pop("InstanceType", None)
    devices = plain.pop("BlockDeviceMapping", None)
    out["blockDeviceMapping"] = _items(devices) if devices else {}
    out["monitoring"] = {"enabled": (plain.pop("Monitoring", None) or {}).get("Enabled", False)}
    out["disableApiTermination"] = plain.pop("DisableApiTermination", False)
    out["iamInstanceProfile"] = _lowered(plain.pop("IamInstanceProfile", None) or {})
    for name, key in (("MetadataOptions", "metadataOptions"), ("LaunchTemplate", "launchTemplate")):
        if name in plain:
            out[key] = _lowered(plain.pop(name))
    specifications = plain.pop("TagSpecification", None)
    if specifications:
        out["tagSpecificationSet"] = {"items": [
            {"resourceType": s.get("ResourceType"), "tags": _lowered(s.get("Tag") or [])} for s in specifications]}
    interfaces = plain.pop("NetworkInterface", None)
    if interfaces:
        out["networkInterfaceSet"] = _items(interfaces)
    placement = plain.pop("Placement", None) or {}
    if "AvailabilityZone" in placement:
        out["availabilityZone"] = placement.pop("AvailabilityZone")
    if placement:
        out["placement"] = _lowered(placement)
    for name, value in plain.items():
        if isinstance(value, list):
            _old_style_list(name, value, out)
        else:
            out[_lower(name)] = _lowered(value)
    return {k: v for k, v in out.items() if v is not None}


def ec2_request_parameters(action, params):
    tree = _query_tree(params)
    if action in WRAPPED_EC2:
        return {action + "Request": _as_xml_json(tree)}
    operation = _operation("ec2", action)
    typed = _by_shape(tree, operation.input_shape if operation is not None else None)
    if action == "RunInstances":
        return _run_instances_request(typed)
    out = {}
    for name, value in typed.items():
        if isinstance(value, list):
            _old_style_list(name, value, out)
        else:
            out[_lower(name)] = _lowered(value)
    return out


def iam_request_parameters(action, params):
    operation = _operation("iam", action)
    return _lowered(_by_shape(_query_tree(params), operation.input_shape if operation is not None else None))


# ---- EC2 and IAM: responseElements ------------------------------------------------------------------


def _local(tag):
    return tag.rsplit("}", 1)[-1]


def _xml_json(element):
    """org.json-style conversion of one element: text -> typed value; children -> object, repeated
    names -> array; attributes as keys (``content`` beside them for the text)."""
    children = list(element)
    if not children:
        value = _typed((element.text or "").strip())
        if element.attrib:
            out = {k: _typed(v) for k, v in element.attrib.items()}
            if value != "":
                out["content"] = value
            return out
        return value
    out = {k: _typed(v) for k, v in element.attrib.items()}
    for child in children:
        name, value = _local(child.tag), _xml_json(child)
        if name in out:
            if not isinstance(out[name], list):
                out[name] = [out[name]]
            out[name].append(value)
        else:
            out[name] = value
    return out


def _scrubbed(value):
    """No secret in a response: secret keys, private keys, tokens, passwords left out; user data
    "<sensitiveDataRemoved>" (as in requests)."""
    if isinstance(value, dict):
        return {k: SENSITIVE if k.lower() == "userdata" else _scrubbed(v) for k, v in value.items()
                if not _SECRET_RESPONSE.search(k)}
    if isinstance(value, list):
        return [_scrubbed(v) for v in value]
    return value


def _wrapped_response(root, request_id):
    # EC2's namespace as EC2 writes it (moto leaves out the final slash)
    out = {"xmlns": EC2_XMLNS, "requestId": request_id}
    converted = _xml_json(root)
    out.update(converted if isinstance(converted, dict) else {})
    return {_local(root.tag): _scrubbed(out)}


def _xml_members(shape):
    """A structure's members by their XML names (locationName, else the member name)."""
    if shape is None or shape.type_name != "structure":
        return {}
    return {member.serialization.get("name", name): member for name, member in shape.members.items()}


def _old_style(element, shape, timestamps_in_ms=True):
    """An older EC2 answer's element (typed by its shape): sets as {"items": [...]} ({} when
    empty), ``return`` as ``_return``, times as epoch milliseconds."""
    children = list(element)
    name = _local(element.tag)
    kind = shape.type_name if shape is not None else None
    if not children:
        text = (element.text or "").strip()
        if kind in ("list", "structure") or (name.endswith("Set") and not text):
            return {}
        if kind == "timestamp" or (kind is None and _ISO_TIME.match(text)):
            return int(_iso_seconds(text).timestamp() * 1000) if timestamps_in_ms else text
        return _scalar(text, shape) if kind else _typed(text)
    if kind == "list" or (kind is None and all(_local(c.tag) == "item" for c in children)):
        member = shape.member if kind == "list" else None
        return {"items": [_old_style(c, member) for c in children]}
    members = _xml_members(shape)
    out = {}
    for child in children:
        key = _local(child.tag)
        out["_return" if key == "return" else key] = _old_style(child, members.get(key))
    return out


def ec2_response_elements(action, body, request_id):
    root = _parsed(body)
    if root is None:
        return None
    if action in WRAPPED_EC2:
        return _wrapped_response(root, request_id)
    if not list(root):
        return None
    operation = _operation("ec2", action)
    value = _old_style(root, operation.output_shape if operation is not None else None)
    out = {"requestId": request_id}
    out.update(value if isinstance(value, dict) else {})
    return _scrubbed(out)


def _iam_value(element, shape):
    children = list(element)
    kind = shape.type_name if shape is not None else None
    if not children:
        text = (element.text or "").strip()
        if kind == "list":
            return []
        if kind == "structure":
            return {}
        if kind == "timestamp" or (kind is None and _ISO_TIME.match(text)):
            when = _iso_seconds(text)
            return "{0} {1}, {2}, {3}:{4} {5}".format(when.strftime("%b"), when.day, when.year,
                                                      int(when.strftime("%I")), when.strftime("%M:%S"),
                                                      when.strftime("%p"))
        return _scalar(text, shape) if kind else _typed(text)
    if kind == "list" or (kind is None and all(_local(c.tag) == "member" for c in children)):
        member = shape.member if kind == "list" else None
        return [_iam_value(c, member) for c in children]
    members = _xml_members(shape)
    return {_lower(_local(c.tag)): _iam_value(c, members.get(_local(c.tag))) for c in children}


def iam_response_elements(action, body):
    root = _parsed(body)
    if root is None:
        return None
    result = next((c for c in root if _local(c.tag).endswith("Result")), None)
    if result is None or not list(result):
        return None
    operation = _operation("iam", action)
    value = _iam_value(result, operation.output_shape if operation is not None else None)
    return _scrubbed(value) if value else None


def _parsed(body):
    if not body:
        return None
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return None


def error_of(service, body):
    """(errorCode, errorMessage) as CloudTrail records a refused call."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    code = re.search(r"<Code>(.*?)</Code>", text, re.S)
    message = re.search(r"<Message>(.*?)</Message>", text, re.S)
    code = html.unescape(code.group(1)) if code else "InternalError"
    message = html.unescape(message.group(1)) if message else ""
    if service == "ec2":
        return ("Server." if code in EC2_SERVER_ERRORS else "Client.") + code, message
    return IAM_ERROR_CODES.get(code, code), message


def _request_id(body):
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    match = re.search(r"<Request[Ii][Dd]>(.*?)</Request[Ii][Dd]>", text)
    return match.group(1) if match else str(uuid.uuid4())


# ---- who called -----------------------------------------------------------------------------------


def user_identity(info, account):
    """The record's ``userIdentity`` for the key that signed the request (see the docstring)."""
    from moto.iam.models import iam_backends
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    match = _ACCESS_KEY.search(info["environ"].get("HTTP_AUTHORIZATION", ""))
    key = match.group(1) if match else ""
    partition = get_partition(info.get("region") or GLOBAL_REGION)
    session = sts_backends[account][partition].get_assumed_role_from_access_key(key)
    if session is not None:
        role_name = session.role_arn.split("/")[-1]
        principal = session.user_id
        created = getattr(session.access_key, "create_date", None)
        return {
            "type": "AssumedRole", "principalId": principal, "arn": session.arn, "accountId": account,
            "accessKeyId": key,
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "principalId": principal.split(":", 1)[0], "arn": session.role_arn,
                                  "accountId": session.role_arn.split(":")[4] or account, "userName": role_name},
                "webIdFederationData": {},
                "attributes": {"creationDate": created.strftime("%Y-%m-%dT%H:%M:%SZ") if created else _now(),
                               "mfaAuthenticated": "false"},
            },
        }
    user = iam_backends[account][partition].get_user_from_access_key_id(key)
    if user is not None:
        return {"type": "IAMUser", "principalId": user.id, "arn": user.arn, "accountId": account,
                "accessKeyId": key, "userName": user.name}
    user_id, arn, _account = sts_backends[account][partition].get_caller_identity(key, info.get("region") or GLOBAL_REGION)
    return {"type": "IAMUser", "principalId": user_id, "arn": arn, "accountId": account, "accessKeyId": key,
            "userName": arn.rsplit("/", 1)[-1]}


# ---- the record and the event -------------------------------------------------------------------


def is_read_only(action):
    return action.startswith(READ_ONLY_PREFIXES)


def build_event(info, status, body):
    """The EventBridge event for an answered EC2 / IAM request, and the bus (account, region) it goes
    to; None for any other request."""
    service, action = info.get("service"), info.get("action") or ""
    if service not in SERVICES or status == 0 or is_read_only(action) or " " in action:
        return None
    account = request_account(info)
    region = GLOBAL_REGION if service == "iam" else (info.get("region") or GLOBAL_REGION)
    source, event_source = SERVICES[service]
    params = info.get("params") or {}
    detail = {
        "eventVersion": EVENT_VERSION,
        "userIdentity": user_identity(info, account),
        "eventTime": _now(),
        "eventSource": event_source,
        "eventName": action,
        "awsRegion": region,
        "sourceIPAddress": info["environ"].get("REMOTE_ADDR", "127.0.0.1"),
        "userAgent": info["environ"].get("HTTP_USER_AGENT", ""),
    }
    request_id = _request_id(body)
    if service == "ec2":
        detail["requestParameters"] = ec2_request_parameters(action, params)
    else:
        detail["requestParameters"] = iam_request_parameters(action, params)
    if status >= 400:
        detail["errorCode"], detail["errorMessage"] = error_of(service, body)
        detail["responseElements"] = None
    elif service == "ec2":
        detail["responseElements"] = ec2_response_elements(action, body, request_id)
    else:
        detail["responseElements"] = iam_response_elements(action, body)
    detail.update({
        "requestID": request_id,
        "eventID": str(uuid.uuid4()),
        "readOnly": False,
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": account,
        "eventCategory": "Management",
    })
    event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": DETAIL_TYPE, "source": source,
             "account": account, "time": detail["eventTime"], "region": region, "resources": [], "detail": detail}
    return event


# ---- CloudTrail: is a trail recording it? ----------------------------------------------------------


def _selectors_take(trail, event_source):
    """Whether the trail's event selectors record write management events of ``event_source``."""
    advanced = getattr(trail, "advanced_event_selectors", None) or []
    if advanced:
        return any(_advanced_takes(selector, event_source) for selector in advanced)
    classic = getattr(trail, "event_selectors", None) or []
    if not classic:
        return True
    for selector in classic:
        if selector.get("IncludeManagementEvents", True) in (False, "false"):
            continue
        if selector.get("ReadWriteType", "All") not in ("All", "WriteOnly"):
            continue
        if event_source in (selector.get("ExcludeManagementEventSources") or []):
            continue
        return True
    return False


def _advanced_takes(selector, event_source):
    values = {"eventCategory": "Management", "readOnly": "false", "eventSource": event_source}
    category_seen = False
    for field in selector.get("FieldSelectors") or []:
        name = field.get("Field")
        value = values.get(name)
        if value is None:
            return False  # a field of data events (resources.type ...): not a management selector
        category_seen = category_seen or name == "eventCategory"
        if "Equals" in field and value not in field["Equals"]:
            return False
        if "NotEquals" in field and value in field["NotEquals"]:
            return False
        if "StartsWith" in field and not any(value.startswith(v) for v in field["StartsWith"]):
            return False
        if "NotStartsWith" in field and any(value.startswith(v) for v in field["NotStartsWith"]):
            return False
    return category_seen


def _trails_of(account):
    from moto.cloudtrail.models import cloudtrail_backends

    if account not in cloudtrail_backends:
        return []
    return [trail for backend in list(cloudtrail_backends[account].values()) for trail in list(backend.trails.values())]


def recording_trail(account, region, event_source):
    """The first logging trail that records the event, or None."""
    candidates = _trails_of(account)
    organization = _organization_of(account)
    if organization is not None and organization.master_account_id != account:
        candidates = candidates + [t for t in _trails_of(organization.master_account_id) if t.is_org_trail]
    for trail in candidates:
        if not trail.status.is_logging:
            continue
        if event_source == SERVICES["iam"][1]:
            if not trail.include_global_service_events or not (trail.is_multi_region or trail.region_name == GLOBAL_REGION):
                continue
        elif not (trail.is_multi_region or trail.region_name == region):
            continue
        if _selectors_take(trail, event_source):
            return trail
    return None


# ---- EventBridge: patterns ----------------------------------------------------------------------------

_MISSING = object()


def _leaves(value, path, out):
    """Flatten an event: path -> every leaf value found there (arrays of objects flattened)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _leaves(item, path + (key,), out)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                _leaves(item, path, out)
            else:
                out.setdefault(path, []).append(item)
        if not value:
            out.setdefault(path, [])
    else:
        out.setdefault(path, []).append(value)
    return out


def _numeric_ok(value, conditions):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    tests = {"<": value.__lt__, "<=": value.__le__, "=": value.__eq__, ">=": value.__ge__, ">": value.__gt__}
    return all(tests[op](bound) is True for op, bound in zip(conditions[::2], conditions[1::2]))


def _wildcard_ok(value, pattern):
    """EventBridge's wildcard: ``*`` any run of characters, ``\\*`` a star, ``\\\\`` a backslash."""
    if not isinstance(value, str):
        return False
    expression, position = "", 0
    while position < len(pattern):
        char = pattern[position]
        if char == "\\" and position + 1 < len(pattern) and pattern[position + 1] in "*\\":
            expression += re.escape(pattern[position + 1])
            position += 2
            continue
        expression += ".*" if char == "*" else re.escape(char)
        position += 1
    return re.fullmatch(expression, value, re.S) is not None


def _operator_ok(value, operator):
    """One value against one content filter (a dict of one operator)."""
    (name, argument), = operator.items()
    if name == "prefix":
        if isinstance(argument, dict):
            return isinstance(value, str) and value.lower().startswith(argument["equals-ignore-case"].lower())
        return isinstance(value, str) and value.startswith(argument)
    if name == "suffix":
        if isinstance(argument, dict):
            return isinstance(value, str) and value.lower().endswith(argument["equals-ignore-case"].lower())
        return isinstance(value, str) and value.endswith(argument)
    if name == "equals-ignore-case":
        return isinstance(value, str) and any(value.lower() == a.lower() for a in _listed(argument))
    if name == "anything-but":
        if isinstance(argument, dict):
            return not _operator_ok(value, argument)
        return value not in _listed(argument)
    if name == "numeric":
        return _numeric_ok(value, argument)
    if name == "cidr":
        try:
            return ipaddress.ip_address(value) in ipaddress.ip_network(argument, strict=False)
        except (TypeError, ValueError):
            return False
    if name == "wildcard":
        return _wildcard_ok(value, argument)
    return False


def _field_ok(values, filters):
    """A leaf field (its values, or _MISSING) against the pattern's list of filters."""
    for wanted in filters:
        if isinstance(wanted, dict) and "exists" in wanted:
            if (values is not _MISSING) == bool(wanted["exists"]):
                return True
            continue
        if values is _MISSING:
            continue
        for value in values:
            if isinstance(wanted, dict):
                if _operator_ok(value, wanted):
                    return True
            elif value == wanted and type(value) is type(wanted):  # noqa: E721 (1 is not true)
                return True
    return False


def pattern_matches(pattern, event, _flat=None, _path=()):
    """Whether an EventBridge event pattern matches the event."""
    flat = _flat if _flat is not None else _leaves(event, (), {})
    if not isinstance(pattern, dict) or not pattern:
        return False
    for key, wanted in pattern.items():
        if key == "$or":
            if not any(pattern_matches(p, event, flat, _path) for p in wanted):
                return False
        elif isinstance(wanted, dict):
            if not pattern_matches(wanted, event, flat, _path + (key,)):
                return False
        elif isinstance(wanted, list):
            values = flat.get(_path + (key,), _MISSING)
            if values == []:
                values = _MISSING
            if not _field_ok(values, wanted):
                return False
        else:
            return False
    return True


# ---- SQS: the queue policy --------------------------------------------------------------------------


def _events_principal(statement):
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return "events.amazonaws.com" in _listed(principal.get("Service")) or "*" in _listed(principal.get("AWS"))
    return False


def queue_policy_allows(policy, queue_arn, rule_arn, rule_account):
    """Whether the queue's policy lets EventBridge (``events.amazonaws.com``) send the rule's events:
    ``"allow"``, ``"deny"`` (an explicit Deny) or ``"implicit"`` (no Allow applies)."""
    try:
        document = json.loads(policy) if isinstance(policy, str) else (policy or {})
    except ValueError:
        return "implicit"
    context = {"aws:sourcearn": rule_arn, "aws:sourceaccount": rule_account}
    allowed = False
    for statement in _listed(document.get("Statement")):
        if not isinstance(statement, dict) or "NotPrincipal" in statement or "NotResource" in statement:
            continue
        if not (_events_principal(statement) and _statement_action(statement, "sqs:SendMessage")):
            continue
        resources = _listed(statement.get("Resource", "*"))
        if not any(_wildcard(str(r), queue_arn) for r in resources):
            continue
        holds = _conditions(statement, context)
        if statement.get("Effect") == "Deny" and holds is not False:
            return "deny"
        if statement.get("Effect") == "Allow" and holds is True:
            allowed = True
    return "allow" if allowed else "implicit"


# ---- the publisher ------------------------------------------------------------------------------------


class CloudTrailEventsError(ValueError):
    """A bad configuration of the event publication (nothing was changed)."""


class CloudTrailEvents:
    """``sandbox.cloudtrail_events``: publication on the sandbox, its switches and its counters."""

    def __init__(self):
        self._lock = threading.Lock()
        self._timers = set()
        self.enabled, self.delay, self.rules = True, 0.0, {}
        self._published, self._stats = collections.deque(maxlen=KEEP), {}
        self.restore_defaults()

    # ---- configuration --------------------------------------------------------------------------
    def restore_defaults(self):
        with self._lock:
            self.enabled = True
            self.delay = 0.0
            self.rules = {name: True for name in RULE_NAMES}
            self._published = collections.deque(maxlen=KEEP)
            self._stats = {"published": 0, "not_recorded": 0, "delivered": 0, "failed_invocations": [],
                           "errors": []}
            for timer in list(self._timers):
                timer.cancel()
            self._timers.clear()

    reset = restore_defaults

    def configure(self, config):
        if not isinstance(config, dict):
            raise CloudTrailEventsError("give an object: enabled, delay, disable, enable")
        unknown = sorted(set(config) - {"enabled", "delay", "disable", "enable"})
        if unknown:
            raise CloudTrailEventsError("unknown setting(s) {0}; use enabled, delay, disable, enable".format(
                ", ".join(unknown)))
        for key in ("disable", "enable"):
            bad = [n for n in _listed(config.get(key)) if n not in RULE_NAMES]
            if bad:
                raise CloudTrailEventsError("{0}: unknown rule(s) {1}; the rules are {2}".format(
                    key, ", ".join(map(str, bad)), ", ".join(RULE_NAMES)))
        if "enabled" in config and not isinstance(config["enabled"], bool):
            raise CloudTrailEventsError("enabled: true or false, not {0!r}".format(config["enabled"]))
        delay = config.get("delay", self.delay)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 600:
            raise CloudTrailEventsError("delay: seconds from 0 to 600, not {0!r}".format(delay))
        with self._lock:
            self.enabled = config.get("enabled", self.enabled)
            self.delay = float(delay)
            for name in _listed(config.get("disable")):
                self.rules[name] = False
            for name in _listed(config.get("enable")):
                self.rules[name] = True
        return self.status()

    @contextlib.contextmanager
    def disabled(self, *names):
        """The named rules off inside the block, as they were after it."""
        before = dict(self.rules)
        self.configure({"disable": list(names)})
        try:
            yield self
        finally:
            with self._lock:
                self.rules = before

    # ---- reading ----------------------------------------------------------------------------------
    def published(self, event_name=None):
        with self._lock:
            events = list(self._published)
        return [e for e in events if event_name is None or e["detail"]["eventName"] == event_name]

    def stats(self):
        with self._lock:
            return json.loads(json.dumps(self._stats))

    def status(self):
        recent = [{"eventName": e["detail"]["eventName"], "account": e["account"], "region": e["region"],
                   "errorCode": e["detail"].get("errorCode")} for e in self.published()[-20:]]
        return {"enabled": self.enabled, "delay": self.delay, "rules": dict(self.rules), "stats": self.stats(),
                "recent": recent}

    def control(self, method, path, body):
        def delete():
            self.restore_defaults()
            return self.status()

        def post(config):
            try:
                return self.configure(config)
            except CloudTrailEventsError as error:
                raise ValueError(str(error)) from None

        return json_control(path, CONTROL_PATH, method, body, self.status, post, delete)

    # ---- publishing -------------------------------------------------------------------------------
    def observe(self, info, status, body):
        """``SandboxApp`` observer: every answered request the log records."""
        if not self.enabled or info.get("service") not in SERVICES:
            return
        try:
            if is_read_only(info.get("action") or "") or status == 0:
                return
            account = request_account(info)
            region = GLOBAL_REGION if info["service"] == "iam" else (info.get("region") or GLOBAL_REGION)
            if self.rules["trail_required"] and recording_trail(account, region, SERVICES[info["service"]][1]) is None:
                with self._lock:
                    self._stats["not_recorded"] += 1
                return
            event = build_event(info, status, body)
            if event is None:
                return
            with self._lock:
                self._published.append(event)
                self._stats["published"] += 1
            if self.delay > 0:
                timer = threading.Timer(self.delay, self._deliver_later, (event,))
                timer.daemon = True
                with self._lock:
                    self._timers.add(timer)
                timer.start()
            else:
                self.deliver(event, event["account"], event["region"])
        except Exception as error:  # pylint: disable=broad-except
            # The client's answer must never suffer; the tests read the errors (stats()["errors"]).
            with self._lock:
                self._stats["errors"].append("{0} {1}: {2!r}".format(info.get("service"), info.get("action"), error))

    def _deliver_later(self, event):
        with self._lock:
            self._timers.discard(threading.current_thread())
        try:
            self.deliver(event, event["account"], event["region"])
        except Exception as error:  # pylint: disable=broad-except
            with self._lock:
                self._stats["errors"].append("delivery: {0!r}".format(error))

    def _failed(self, rule_arn, target_arn, reason):
        with self._lock:
            self._stats["failed_invocations"].append({"rule": rule_arn, "target": target_arn, "reason": reason})

    def deliver(self, event, account, region, bus_name="default", hops=0):
        """Route the event through the rules of the bus to their targets (see the docstring)."""
        from moto.events.models import events_backends

        backend = events_backends[account][region]
        bus = backend.event_buses.get(bus_name)
        if bus is None:
            return
        for rule in list(bus.rules.values()):
            if rule.state == "DISABLED":
                continue
            pattern = rule.event_pattern.get_pattern() if rule.event_pattern is not None else None
            if not pattern or not pattern_matches(pattern, event):
                continue
            for target in list(rule.targets):
                self._to_target(rule, target, event, account, region, hops)

    def _to_target(self, rule, target, event, account, region, hops):
        arn = target["Arn"]
        parts = arn.split(":", 5)
        service = parts[2] if len(parts) > 5 else ""
        if target.get("InputTransformer"):
            self._failed(rule.arn, arn, "InputTransformer is not modelled by the sandbox")
            return
        if service == "events" and parts[5].startswith("event-bus/"):
            if hops >= 2:
                self._failed(rule.arn, arn, "event bus chain longer than EventBridge allows")
                return
            # The event keeps its own account and region on the other bus.
            self.deliver(event, parts[4], parts[3], parts[5].split("/", 1)[1], hops + 1)
            return
        if service != "sqs":
            self._failed(rule.arn, arn, "target kind not modelled by the sandbox (SQS and event buses are)")
            return
        payload = self._input(target, event)
        if payload is None:
            self._failed(rule.arn, arn, "InputPath {0!r} selects nothing".format(target.get("InputPath")))
            return
        queue_region, queue_account, queue_name = parts[3], parts[4], parts[5]
        if queue_region != region:
            self._failed(rule.arn, arn, "an SQS target must be in the rule's region")
            return
        from moto.sqs.models import sqs_backends

        sqs = sqs_backends[queue_account][queue_region]
        queue = sqs.queues.get(queue_name)
        if queue is None:
            self._failed(rule.arn, arn, "no such queue")
            return
        if self.rules["queue_policy"]:
            verdict = queue_policy_allows(getattr(queue, "policy", None), queue.queue_arn, rule.arn, account)
            if verdict != "allow":
                self._failed(rule.arn, arn, "the queue policy does not let events.amazonaws.com send ({0})".format(
                    verdict))
                return
        group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
        kwargs = {"group_id": group_id} if group_id else {}
        if group_id:
            kwargs["deduplication_id"] = event["id"]
        sqs.send_message(queue_name=queue_name, message_body=payload, **kwargs)
        with self._lock:
            self._stats["delivered"] += 1

    @staticmethod
    def _input(target, event):
        if target.get("Input") is not None:
            return target["Input"]
        path = target.get("InputPath")
        if not path or path == "$":
            return json.dumps(event)
        value = event
        for part in path[2:].split(".") if path.startswith("$.") else [None]:
            if part is None or not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return json.dumps(value)


# ---- helpers for tests and demos ------------------------------------------------------------------------


def queue_policy(queue_arn, rule_arn):
    """The SQS queue policy AWS documents for an EventBridge rule's queue target: events.amazonaws.com
    may SendMessage, for this rule only (``aws:SourceArn``)."""
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "EventBridgeSendMessage", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage", "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}]})


def route_events(sandbox, queue_name, event_pattern, region=None, client=None, rule_name=None, trail=True):
    """Through the API, as a user sets it up: a logging multi-region trail (and its bucket) when
    ``trail``, an SQS queue with the policy EventBridge needs, a rule on the default bus with
    ``event_pattern`` (a dict) and the queue as its target. ``client(service, region)`` gives the
    boto3 clients (default: the sandbox's own key). Returns {"queue_url", "queue_arn", "rule_arn",
    "region", "client"} (``receive_events`` reads the queue with them)."""
    region = region or sandbox.REGION
    client = client or (lambda service, where: sandbox.client(service, region_name=where))
    rule_name = rule_name or "keyless-" + queue_name
    if trail:
        s3 = client("s3", GLOBAL_REGION)
        bucket = "keyless-trail-" + uuid.uuid4().hex[:12]
        s3.create_bucket(Bucket=bucket)
        cloudtrail = client("cloudtrail", region)
        name = "keyless-" + uuid.uuid4().hex[:8]
        cloudtrail.create_trail(Name=name, S3BucketName=bucket, IsMultiRegionTrail=True, IncludeGlobalServiceEvents=True)
        cloudtrail.start_logging(Name=name)
    sqs = client("sqs", region)
    queue_url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = client("events", region)
    rule_arn = events.put_rule(Name=rule_name, EventPattern=json.dumps(event_pattern), State="ENABLED")["RuleArn"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": queue_policy(queue_arn, rule_arn)})
    events.put_targets(Rule=rule_name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return {"queue_url": queue_url, "queue_arn": queue_arn, "rule_arn": rule_arn, "region": region,
            "client": client}


def receive_events(route, wait=0, limit=10):
    """The event bodies (dicts) waiting in the route's queue, deleted as read."""
    sqs = route["client"]("sqs", route["region"])
    events, deadline = [], time.monotonic() + wait
    while True:
        answer = sqs.receive_message(QueueUrl=route["queue_url"], MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = answer.get("Messages", [])
        for message in messages:
            events.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=route["queue_url"], ReceiptHandle=message["ReceiptHandle"])
        if len(events) >= limit or (not messages and time.monotonic() >= deadline):
            return events
        if not messages:
            time.sleep(0.05)


def delete_message_batch_answer(_info, body):
    """SQS DeleteMessageBatch as SQS answers it: ``Failed`` only when an entry failed.

    moto's JSON answer always carries ``"Failed": []``. amazon.aws's ``aws_sqs_queue`` event source
    (amazon.aws 11.3+, ``_delete_messages``) reads any ``Failed`` key as a failed deletion and, with
    ``feedback: true``, stops the source ("Failed to delete messages, exiting"). That source's
    feedback was built and tested against SQS (ansible-collections/amazon.aws pull request #2925,
    with its dev scripts against a real queue), so SQS leaves the key out when nothing failed; the
    API reference (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_DeleteMessageBatch.html)
    does not say either way. A non-empty ``Failed`` is passed on untouched."""
    try:
        answer = json.loads(body)
    except ValueError:  # the query protocol's XML: an empty list is no element at all already
        return body
    if isinstance(answer, dict) and answer.get("Failed") == []:
        del answer["Failed"]
        return json.dumps(answer).encode("utf-8")
    return body


def install(sandbox):
    """Register on a started sandbox (idempotent): ``sandbox.cloudtrail_events``; SQS's
    DeleteMessageBatch answered as SQS does (``delete_message_batch_answer``)."""
    app = sandbox.app
    app.response_filters[("sqs", "DeleteMessageBatch")] = delete_message_batch_answer
    publisher = getattr(app, "keyless_cloudtrail_events", None)
    if publisher is None:
        publisher = CloudTrailEvents()
        app.observers.append(publisher.observe)
        app.observed_services.update(SERVICES)
        app.reset_hooks.append(publisher.reset)
        app.control_handlers[CONTROL_PATH] = publisher.control
        app.keyless_cloudtrail_events = publisher
    sandbox.cloudtrail_events = publisher
    return publisher
