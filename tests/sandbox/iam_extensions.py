"""IAM behaviours moto 5.2 gets wrong, answered as IAM does.

* ``ListInstanceProfiles`` ignores ``PathPrefix``, ``MaxItems`` and ``Marker`` in moto; IAM
  filters by path prefix and pages (MaxItems default 100, ``IsTruncated`` + ``Marker``).
  https://docs.aws.amazon.com/IAM/latest/APIReference/API_ListInstanceProfiles.html
* ``ListInstanceProfilesForRole`` pages the same way.
"""

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


def install(sandbox):
    filters = sandbox.app.response_filters
    filters[("iam", "ListInstanceProfiles")] = _paged_list("ListInstanceProfilesResult", path_filter=True)
    filters[("iam", "ListInstanceProfilesForRole")] = _paged_list("ListInstanceProfilesForRoleResult", path_filter=False)
    return sandbox
