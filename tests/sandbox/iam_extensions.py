"""IAM behaviours moto 5.2 gets wrong, answered as IAM does.

* ``ListInstanceProfiles`` ignores ``PathPrefix``, ``MaxItems`` and ``Marker`` in moto; IAM
  filters by path prefix and pages (MaxItems default 100, ``IsTruncated`` + ``Marker``).
  https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListInstanceProfiles.html
* ``ListInstanceProfilesForRole`` pages the same way, and refuses a role that does not exist:
  ``NoSuchEntity`` (404), as the API reference lists it for that call; moto answers an empty list.
  https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListInstanceProfilesForRole.html
* ``NoSuchEntity`` says what IAM says: "The role with name NAME cannot be found." and "Instance
  Profile NAME cannot be found." (moto: "Role NAME not found", "Instance profile NAME not
  found"). The API reference gives the code only; the text is IAM's as users quote it: GetRole and
  ListRolePolicies in https://github.com/jarpy/lambkin/pull/3 and
  https://github.com/prowler-cloud/prowler/pull/2872, GetInstanceProfile and DeleteInstanceProfile
  in https://github.com/DataBiosphere/toil/issues/4836 and
  https://github.com/skyplane-project/skyplane/pull/724. Every call that names a missing role or
  profile answers with these (moto raises them from the same two places).
* An IAM user's permissions boundary: moto 5.2 ignores ``PermissionsBoundary`` in ``CreateUser``,
  does not implement ``PutUserPermissionsBoundary`` / ``DeleteUserPermissionsBoundary``, and its
  ``GetUser`` never returns one, so a client would read every user as unbounded and give a role
  more than the user had. The sandbox keeps the boundary on moto's user and answers as IAM does:
  ``GetUser`` / ``CreateUser`` return ``User.PermissionsBoundary`` {``PermissionsBoundaryType``
  ``Policy``, ``PermissionsBoundaryArn``} (botocore's iam model, shape ``AttachedPermissionsBoundary``;
  https://docs.aws.amazon.com/IAM/latest/APIReference/API_PutUserPermissionsBoundary.html); a
  missing user is ``NoSuchEntity`` "The user with name NAME cannot be found." (moto's own text for
  GetUser, IAM's as users quote it). A boundary naming a policy that does not exist is refused with
  ``NoSuchEntity`` "Policy ARN does not exist or is not attachable." before anything changes: the
  API reference lists NoSuchEntity for the call; the message is IAM's for AttachUserPolicy, the
  stricter reading for this call (whose exact text is not published).
(moto 5.2 does not implement ``ListInstanceProfileTags``: a 500 for any profile. The collection
reads a profile's tags from GetInstanceProfile and never calls it.)
"""

import re
from xml.etree import ElementTree

IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
DEFAULT_MAX_ITEMS = 100


def _paged_list(result_tag, path_filter):
    def response_filter(info, body):
        ElementTree.register_namespace("", IAM_NS)
        root = ElementTree.fromstring(body)
        ns = {"iam": IAM_NS}
        result = root.find("iam:" + result_tag, ns)
        if result is None:
            return body
        members_parent = result.find("iam:InstanceProfiles", ns)
        if members_parent is None:
            return body
        members = list(members_parent.findall("iam:member", ns))
        params = info["params"]
        prefix = params.get("PathPrefix") if path_filter else None
        kept = [m for m in members if not prefix or (m.findtext("iam:Path", "", ns) or "").startswith(prefix)]
        start = int(params.get("Marker") or 0)
        size = int(params.get("MaxItems") or DEFAULT_MAX_ITEMS)
        page = kept[start:start + size]
        truncated = start + size < len(kept)
        for member in members:
            members_parent.remove(member)
        for member in page:
            members_parent.append(member)
        for tag in ("IsTruncated", "Marker"):
            element = result.find("iam:" + tag, ns)
            if element is not None:
                result.remove(element)
        ElementTree.SubElement(result, "{%s}IsTruncated" % IAM_NS).text = "true" if truncated else "false"
        if truncated:
            ElementTree.SubElement(result, "{%s}Marker" % IAM_NS).text = str(start + size)
        return ElementTree.tostring(root, encoding="utf-8")

    return response_filter


ROLE_NOT_FOUND = "The role with name {0} cannot be found."
PROFILE_NOT_FOUND = "Instance Profile {0} cannot be found."
_MOTO_NOT_FOUND = (
    (re.compile(rb"<Message>Role (.+?) not found</Message>"), ROLE_NOT_FOUND),
    (re.compile(rb"<Message>Instance profile (.+?) not found</Message>"), PROFILE_NOT_FOUND),
)


def iam_error(info, status, body):
    """moto's NoSuchEntity messages as IAM words them (the name stays as moto escaped it)."""
    if status != 404 or b"NoSuchEntity" not in body:
        return body
    for pattern, text in _MOTO_NOT_FOUND:
        body = pattern.sub(lambda m, text=text: b"<Message>" + text.format(m.group(1).decode("utf-8")).encode(
            "utf-8") + b"</Message>", body)
    return body


def _iam_backend(info):
    from moto.iam.models import iam_backends
    from moto.utilities.utils import get_partition

    from sandbox.limits import request_account

    return iam_backends[request_account(info)][get_partition(info["region"] or "us-east-1")]


def _not_found(text, name):
    from sandbox.faults import error_response

    return error_response("iam", 404, "NoSuchEntity", text.format(name))


def role_must_exist(info):
    """Calls IAM refuses for a role that does not exist, and moto answers as if it did."""
    name = info["params"].get("RoleName")
    if name and name not in set(role.name for role in _iam_backend(info).roles.values()):
        return _not_found(ROLE_NOT_FOUND, name)
    return None


USER_NOT_FOUND = "The user with name {0} cannot be found."
POLICY_NOT_ATTACHABLE = "Policy {0} does not exist or is not attachable."


def _boundary_refused(info):
    """The user (when the call names an existing one) and the boundary policy must exist."""
    backend, params = _iam_backend(info), info["params"]
    if info["action"] != "CreateUser" and params.get("UserName") not in backend.users:
        return _not_found(USER_NOT_FOUND, params.get("UserName"))
    arn = params.get("PermissionsBoundary")
    if arn and arn not in backend.managed_policies:
        return _not_found(POLICY_NOT_ATTACHABLE, arn)
    return None


def _ok(action):
    body = ('<{0}Response xmlns="{1}"><ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000'
            "</RequestId></ResponseMetadata></{0}Response>").format(action, IAM_NS)
    return 200, [("Content-Type", "text/xml")], body


def put_user_permissions_boundary(info):
    refused = _boundary_refused(info)
    if refused:
        return refused
    _iam_backend(info).users[info["params"]["UserName"]].keyless_permissions_boundary = info["params"][
        "PermissionsBoundary"]
    return _ok("PutUserPermissionsBoundary")


def delete_user_permissions_boundary(info):
    if info["params"].get("UserName") not in _iam_backend(info).users:
        return _not_found(USER_NOT_FOUND, info["params"].get("UserName"))
    _iam_backend(info).users[info["params"]["UserName"]].keyless_permissions_boundary = None
    return _ok("DeleteUserPermissionsBoundary")


def _with_boundary(info, body):
    """CreateUser and GetUser's User with its boundary (CreateUser's also keeps the one it was given)."""
    ElementTree.register_namespace("", IAM_NS)
    root = ElementTree.fromstring(body)
    user_element = root.find(".//{{{0}}}User".format(IAM_NS))
    if user_element is None:
        return body
    name = user_element.findtext("{{{0}}}UserName".format(IAM_NS))
    user = _iam_backend(info).users.get(name)
    if user is None:
        return body
    if info["action"] == "CreateUser" and info["params"].get("PermissionsBoundary"):
        user.keyless_permissions_boundary = info["params"]["PermissionsBoundary"]
    arn = getattr(user, "keyless_permissions_boundary", None)
    if not arn:
        return body
    boundary = ElementTree.SubElement(user_element, "{{{0}}}PermissionsBoundary".format(IAM_NS))
    ElementTree.SubElement(boundary, "{{{0}}}PermissionsBoundaryType".format(IAM_NS)).text = "Policy"
    ElementTree.SubElement(boundary, "{{{0}}}PermissionsBoundaryArn".format(IAM_NS)).text = arn
    return ElementTree.tostring(root, encoding="utf-8")


def install(sandbox):
    sandbox.app.error_filters["iam"] = iam_error
    sandbox.app.extensions[("iam", "ListInstanceProfilesForRole")] = role_must_exist
    sandbox.app.extensions[("iam", "CreateUser")] = _boundary_refused
    sandbox.app.extensions[("iam", "PutUserPermissionsBoundary")] = put_user_permissions_boundary
    sandbox.app.extensions[("iam", "DeleteUserPermissionsBoundary")] = delete_user_permissions_boundary
    filters = sandbox.app.response_filters
    filters[("iam", "ListInstanceProfiles")] = _paged_list("ListInstanceProfilesResult", path_filter=True)
    filters[("iam", "ListInstanceProfilesForRole")] = _paged_list("ListInstanceProfilesForRoleResult", path_filter=False)
    filters[("iam", "CreateUser")] = _with_boundary
    filters[("iam", "GetUser")] = _with_boundary
    return sandbox
