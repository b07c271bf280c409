"""A snapshot of the sandbox's IAM and EC2 state, for before/after comparisons.

``snapshot(sandbox)`` reads, through the API (never through moto's memory), everything our
modules and the role can change: IAM roles (path, trust policy, description, session duration,
boundary, managed and inline policies, tags), instance profiles (path, id, roles, tags),
instances (state, metadata options), every association (id, instance, profile, state), launch
templates (every version's data, default and latest version, tags) and the account-level
metadata defaults. The result is plain, sorted data: two snapshots are equal exactly when
nothing changed, and ``diff(before, after)`` lists what did, one line per path.

Reads made here carry ``X-Keyless-Sandbox-Origin: snapshot``: the request log leaves them out
and the fault proxy never faults them, so a snapshot can be taken while faults are on.
"""

import json

ORIGIN_HEADER = "X-Keyless-Sandbox-Origin"


def _client(sandbox, service):
    client = sandbox.client(service)

    def mark(request, **_kwargs):
        request.headers[ORIGIN_HEADER] = "snapshot"

    client.meta.events.register("before-sign", mark)
    return client


def _pages(client, method, key, **kwargs):
    paginator = client.get_paginator(method)
    items = []
    for page in paginator.paginate(**kwargs):
        items.extend(page.get(key) or [])
    return items


def _tags(tags):
    return dict((t["Key"], t["Value"]) for t in tags or [])


def _document(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _iam(iam):
    roles = {}
    for role in _pages(iam, "list_roles", "Roles"):
        name = role["RoleName"]
        full = iam.get_role(RoleName=name)["Role"]
        inline = {}
        for policy_name in _pages(iam, "list_role_policies", "PolicyNames", RoleName=name):
            inline[policy_name] = _document(
                iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"])
        roles[name] = {
            "arn": full["Arn"],
            "path": full["Path"],
            "id": full["RoleId"],
            "trust": _document(full.get("AssumeRolePolicyDocument")),
            "description": full.get("Description"),
            "max_session_duration": full.get("MaxSessionDuration"),
            "boundary": (full.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
            "managed_policies": sorted(p["PolicyArn"] for p in _pages(
                iam, "list_attached_role_policies", "AttachedPolicies", RoleName=name)),
            "inline_policies": inline,
            "tags": _tags(full.get("Tags")),
        }
    profiles = {}
    for listed in _pages(iam, "list_instance_profiles", "InstanceProfiles"):
        profile = iam.get_instance_profile(InstanceProfileName=listed["InstanceProfileName"])["InstanceProfile"]
        profiles[profile["InstanceProfileName"]] = {
            "arn": profile["Arn"],
            "id": profile["InstanceProfileId"],
            "path": profile["Path"],
            "roles": sorted(r["RoleName"] for r in profile.get("Roles") or []),
            "tags": _tags(profile.get("Tags")),
        }
    policies = {}
    for policy in _pages(iam, "list_policies", "Policies", Scope="Local"):
        policies[policy["PolicyName"]] = {"arn": policy["Arn"], "default_version": policy.get("DefaultVersionId")}
    users = sorted(u["UserName"] for u in _pages(iam, "list_users", "Users"))
    return {"roles": roles, "instance_profiles": profiles, "policies": policies, "users": users}


def _ec2(ec2):
    instances = {}
    for reservation in _pages(ec2, "describe_instances", "Reservations"):
        for instance in reservation["Instances"]:
            options = instance.get("MetadataOptions") or {}
            instances[instance["InstanceId"]] = {
                "state": instance["State"]["Name"],
                "metadata_options": dict((k, v) for k, v in options.items() if k != "State"),
                "tags": _tags(instance.get("Tags")),
            }
    associations = {}
    for association in _pages(ec2, "describe_iam_instance_profile_associations", "IamInstanceProfileAssociations"):
        associations[association["AssociationId"]] = {
            "instance_id": association["InstanceId"],
            "instance_profile_arn": (association.get("IamInstanceProfile") or {}).get("Arn"),
            "state": association.get("State"),
        }
    templates = {}
    for template in _pages(ec2, "describe_launch_templates", "LaunchTemplates"):
        versions = {}
        for version in _pages(ec2, "describe_launch_template_versions", "LaunchTemplateVersions",
                              LaunchTemplateId=template["LaunchTemplateId"]):
            versions[str(version["VersionNumber"])] = {
                "data": version.get("LaunchTemplateData") or {},
                "description": version.get("VersionDescription"),
            }
        templates[template["LaunchTemplateName"]] = {
            "id": template["LaunchTemplateId"],
            "default_version": template.get("DefaultVersionNumber"),
            "latest_version": template.get("LatestVersionNumber"),
            "tags": _tags(template.get("Tags")),
            "versions": versions,
        }
    defaults = ec2.get_instance_metadata_defaults().get("AccountLevel") or {}
    return {"instances": instances, "associations": associations, "launch_templates": templates,
            "account_metadata_defaults": defaults}


def snapshot(sandbox):
    """IAM and EC2 state of the sandbox (its default region), as plain sorted data."""
    state = {"iam": _iam(_client(sandbox, "iam")), "ec2": _ec2(_client(sandbox, "ec2"))}
    # Round-trip through JSON: datetimes and the like become text, dict order stops mattering.
    return json.loads(json.dumps(state, sort_keys=True, default=str))


def diff(before, after, path=""):
    """What differs between two snapshots: ["path: before -> after", ...] (empty when equal)."""
    if isinstance(before, dict) and isinstance(after, dict):
        lines = []
        for key in sorted(set(before) | set(after)):
            where = "{0}/{1}".format(path, key)
            if key not in before:
                lines.append("{0}: added {1}".format(where, json.dumps(after[key], sort_keys=True)[:200]))
            elif key not in after:
                lines.append("{0}: removed {1}".format(where, json.dumps(before[key], sort_keys=True)[:200]))
            else:
                lines.extend(diff(before[key], after[key], where))
        return lines
    if before != after:
        return ["{0}: {1} -> {2}".format(path or "/", json.dumps(before, sort_keys=True)[:200],
                                         json.dumps(after, sort_keys=True)[:200])]
    return []


def active_associations(state):
    """{instance_id: [profile ARN, ...]} of the associations not disassociated, from a snapshot."""
    found = {}
    for association in state["ec2"]["associations"].values():
        if association["state"] != "disassociated":
            found.setdefault(association["instance_id"], []).append(association["instance_profile_arn"])
    return found
