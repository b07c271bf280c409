# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The plan that moves instances off their static keys: which role replaces each key, in what stages.

Input: what ``credential_sources_info`` found on each host (``found_on``: host name to its result,
plus the host's ``instance_id``), the account's keys as ``static_keys_info`` reads them, and each
key owner's permissions (``owner_permissions``: the IAM user's managed and inline policies, its
groups' policies and its permissions boundary, read from IAM). Output, decided here and nowhere
else (the playbook only wires it):

* per key: its owner, the hosts and the programs, users and services that use it, and the role
  that replaces it;
* per role: the permissions it gets (the owner's, flattened: managed policies by ARN, inline
  policies under ``user-<name>`` / ``group-<group>-<name>``, the boundary), or a role the user
  names, and the instances that get it;
* per host: the keys it gives up, its role, and its stage: ``canary``, ``rest`` or ``skipped``
  (with the reason: no instance id, keys of no user of this account, keys of two users and no
  role named, an owner whose permissions do not fit in one role).

IAM's quotas for one role, from "IAM and AWS STS quotas" (IAM user guide, reference_iam-quotas):
managed policies attached to a role, 10 by default (adjustable); the inline policies of a role,
10,240 characters in all, white space not counted. A plan that would break either is refused for
that owner here, before anything changes, rather than half-built by AttachRolePolicy's
``LimitExceeded``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import re

from ansible_collections.keyless.aws.plugins.module_utils.access_keys import check_fingerprints
from ansible_collections.keyless.aws.plugins.module_utils.access_keys import key_owners
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import call_aws
from ansible_collections.keyless.aws.plugins.module_utils.common import paginate
from ansible_collections.keyless.aws.plugins.module_utils.stages import canary_split
from ansible_collections.keyless.aws.plugins.module_utils.stages import check_percent
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_iam_name

ROLE_MANAGED_POLICIES = 10  # PoliciesPerRole, the default quota
ROLE_INLINE_CHARACTERS = 10240  # all inline policies of a role, white space not counted
ROLE_PREFIX = "keyless-"
_WHITESPACE = re.compile(r"\s+")


# ---- the owner's permissions, from IAM ------------------------------------------------------
def _inline(iam, kind, name, list_call, get_call):
    policies = []
    names = call_aws("listing the inline policies of IAM {0} {1}".format(kind, name), paginate,
                     call=list_call, result_key="PolicyNames", **{kind.capitalize() + "Name": name})
    for policy in sorted(names or []):
        answer = call_aws("reading inline policy {0} of IAM {1} {2}".format(policy, kind, name), get_call,
                          PolicyName=policy, **{kind.capitalize() + "Name": name})
        document = answer["PolicyDocument"]
        policies.append({"name": policy, "document": json.loads(document) if isinstance(document, str) else document})
    return policies


def _managed(iam, kind, name, list_call):
    attached = call_aws("listing the managed policies of IAM {0} {1}".format(kind, name), paginate,
                        call=list_call, result_key="AttachedPolicies", **{kind.capitalize() + "Name": name})
    return sorted(policy["PolicyArn"] for policy in attached or [])


def owner_permissions(iam, user):
    """What the IAM user may do: {user, managed_policies, inline_policies, groups, permissions_boundary}."""
    check_iam_name(user, "user_names", "user")
    answer = call_aws("reading IAM user {0}".format(user), iam.get_user, UserName=user)["User"]
    boundary = (answer.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
    permissions = {"user": user, "permissions_boundary": boundary,
                   "managed_policies": _managed(iam, "user", user, iam.list_attached_user_policies),
                   "inline_policies": [dict(policy, source="user")
                                       for policy in _inline(iam, "user", user, iam.list_user_policies,
                                                             iam.get_user_policy)],
                   "groups": []}
    groups = call_aws("listing the groups of IAM user {0}".format(user), paginate,
                      call=iam.list_groups_for_user, result_key="Groups", UserName=user)
    for group in sorted(entry["GroupName"] for entry in groups or []):
        permissions["groups"].append(group)
        permissions["managed_policies"].extend(_managed(iam, "group", group, iam.list_attached_group_policies))
        permissions["inline_policies"].extend(
            dict(policy, source="group", group=group)
            for policy in _inline(iam, "group", group, iam.list_group_policies, iam.get_group_policy))
    permissions["managed_policies"] = sorted(set(permissions["managed_policies"]))
    return permissions


# ---- the role that replaces a key ----------------------------------------------------------
def role_name_for(user):
    """keyless-<user>, kept within IAM's 64 characters (a long name ends with a hash of the whole)."""
    name = ROLE_PREFIX + user
    if len(name) <= 64:
        return name
    digest = hashlib.sha256(user.encode("utf-8")).hexdigest()[:8]
    return name[:64 - 9] + "-" + digest


def _policy_name(policy):
    if policy["source"] == "user":
        name = "user-" + policy["name"]
    else:
        name = "group-{0}-{1}".format(policy["group"], policy["name"])
    return name[:128]


def role_for_owner(permissions, role_name=None):
    """The role that gives an instance what the key's owner could do: {role_name, managed_policies,
    inline_policies, permissions_boundary, problem}; ``problem`` says why it cannot be one role."""
    inline = {}
    for policy in permissions["inline_policies"]:
        inline[_policy_name(policy)] = policy["document"]
    role = {"role_name": role_name or role_name_for(permissions["user"]), "owner": permissions["user"],
            "managed_policies": list(permissions["managed_policies"]), "inline_policies": inline,
            "permissions_boundary": permissions.get("permissions_boundary"), "problem": None}
    size = sum(len(_WHITESPACE.sub("", json.dumps(document))) for document in inline.values())
    if len(role["managed_policies"]) > ROLE_MANAGED_POLICIES:
        role["problem"] = ("user {0} has {1} managed policies (with its groups'); a role takes {2} by default "
                           "(PoliciesPerRole): name a role for these instances (role_name)").format(
                               permissions["user"], len(role["managed_policies"]), ROLE_MANAGED_POLICIES)
    elif size > ROLE_INLINE_CHARACTERS:
        role["problem"] = ("user {0}'s inline policies (with its groups') take {1} characters; a role's take at most "
                           "{2}: name a role for these instances (role_name)").format(
                               permissions["user"], size, ROLE_INLINE_CHARACTERS)
    return role


# ---- the plan ------------------------------------------------------------------------------
def _uses(result, wanted):
    """The programs, users and services of one host's result for which ``wanted(entry)`` holds, each
    with a ``label`` ("service reports.service", "python3 (pid 812)", "user app")."""
    users = []
    for kind, name in (("programs", "pid"), ("services", "unit"), ("users", "user")):
        for entry in result.get(kind) or []:
            if wanted(entry):
                use = {"kind": kind[:-1], name: entry.get(name), "command": entry.get("command"),
                       "unit": entry.get("unit"), "user": entry.get("user"), "method": entry.get("method"),
                       "key": entry.get("key")}
                use["label"] = {"programs": "{command} (pid {pid})", "services": "service {unit}",
                                "users": "user {user}"}[kind].format(**use)
                users.append(use)
    return users


def _users_of(result, fingerprint_value):
    """The programs, users and services of one host's result whose chain takes this key."""
    return [dict((k, v) for k, v in use.items() if k != "key")
            for use in _uses(result, lambda entry: (entry.get("key") or {}).get("fingerprint") == fingerprint_value)]


def static_key_users(result):
    """The programs, users and services of one host's result that take a key kept on the host
    before the instance role (credential_sources_info's ``static_key``)."""
    return _uses(result, lambda entry: bool(entry.get("static_key")))


def check_found_on(found_on):
    if not isinstance(found_on, dict):
        raise KeylessError("found_on: give {host: what credential_sources_info returned there, with instance_id}.",
                           param="found_on")
    for host, result in found_on.items():
        if not isinstance(result, dict) or not isinstance(result.get("keys", []), list):
            raise KeylessError("found_on: the entry of host {0} is not a credential_sources_info result (a dict with "
                               "keys).".format(host), param="found_on")
    return found_on


def _host_decision(host, result, owned, role_name, roles):
    """(role name, fingerprints, reason to skip or None) for one host."""
    held = sorted(set(key.get("fingerprint") for key in result.get("keys") or []))
    mine = [value for value in held if value in owned]
    if not held:
        return None, [], "no static key found"
    if not mine:
        foreign = [key for key in result["keys"] if key.get("fingerprint") not in owned]
        return None, [], "its keys ({0}) belong to no user of this account: retire them in their own".format(
            ", ".join("...{0} of account {1}".format(k.get("suffix"), k.get("account") or "unknown") for k in foreign))
    if not result.get("instance_id"):
        return None, mine, ("no instance id: set the host variable instance_id (the amazon.aws.aws_ec2 inventory "
                            "sets it)")
    owners = sorted(set(owned[value]["user"] for value in mine))
    if role_name:
        return role_name, mine, None
    if len(owners) > 1:
        return None, mine, "holds keys of users {0}: name one role for it (role_name)".format(" and ".join(owners))
    role = roles[owners[0]]
    if role["problem"]:
        return None, mine, role["problem"]
    return role["role_name"], mine, None


def plan_migration(found_on, access_keys, permissions, role_name=None, canary_percent=10):
    """The plan (see the module docstring): {keys, roles, hosts, canaries, rest, skipped}."""
    check_found_on(found_on)
    check_percent(canary_percent, "canary_percent")
    if role_name:
        check_iam_name(role_name, "role_name", "role")
    owned = dict((key["fingerprint"], key) for key in access_keys)
    roles = dict((user, role_for_owner(perms)) for user, perms in permissions.items())
    hosts, skipped, migrating = [], [], []
    for host in sorted(found_on):
        result = found_on[host]
        chosen, fingerprints, reason = _host_decision(host, result, owned, role_name, roles)
        entry = {"host": host, "instance_id": result.get("instance_id"), "fingerprints": fingerprints,
                 "role_name": chosen, "stage": "skipped" if reason else None, "reason": reason}
        hosts.append(entry)
        (skipped if reason else migrating).append(entry)
    canaries, rest = canary_split(migrating, canary_percent)
    for entry in canaries:
        entry["stage"] = "canary"
    for entry in rest:
        entry["stage"] = "rest"
    plan_roles = {}
    for entry in canaries + rest:
        if entry["role_name"] not in plan_roles:
            if role_name:
                plan_roles[role_name] = {"role_name": role_name, "owner": None, "named": True}
            else:
                owner = owned[entry["fingerprints"][0]]["user"]
                plan_roles[entry["role_name"]] = dict(roles[owner], named=False)
            plan_roles[entry["role_name"]].update(canary_instance_ids=[], rest_instance_ids=[])
        plan_roles[entry["role_name"]][entry["stage"] + "_instance_ids"].append(entry["instance_id"])
    keys = []
    for value in sorted(set(v for result in found_on.values() for v in
                            (key.get("fingerprint") for key in result.get("keys") or []))):
        holders = [host for host in sorted(found_on) if value in
                   set(key.get("fingerprint") for key in found_on[host].get("keys") or [])]
        described = next(key for host in holders for key in found_on[host]["keys"] if key.get("fingerprint") == value)
        key = dict((name, described.get(name)) for name in ("kind", "suffix", "account", "fingerprint"))
        owner = owned.get(value)
        perms = permissions.get(owner["user"]) if owner else None
        key["owner_permissions"] = None if perms is None else {
            "managed_policies": perms["managed_policies"], "groups": perms["groups"],
            "inline_policies": [_policy_name(policy) for policy in perms["inline_policies"]],
            "permissions_boundary": perms.get("permissions_boundary")}
        key.update(user=owner["user"] if owner else None, status=owner["status"] if owner else None,
                   last_used=owner.get("last_used") if owner else None, hosts=holders,
                   used_by=[dict(use, host=host, label="{0}: {1}".format(host, use["label"]))
                            for host in holders for use in _users_of(found_on[host], value)],
                   role_name=sorted(set(h["role_name"] for h in hosts if value in h["fingerprints"] and h["role_name"])))
        keys.append(key)
    return {"keys": keys, "roles": [plan_roles[name] for name in sorted(plan_roles)], "hosts": hosts,
            "canaries": [entry["host"] for entry in canaries], "rest": [entry["host"] for entry in rest],
            "skipped": [{"host": entry["host"], "reason": entry["reason"]} for entry in skipped]}


def read_and_plan(iam, found_on, access_keys, role_name=None, canary_percent=10):
    """The plan, with each owner's permissions read from IAM once, however many keys and hosts."""
    permissions = {}
    for user in sorted(set(key["user"] for key in access_keys)):
        permissions[user] = owner_permissions(iam, user)
    return plan_migration(found_on, access_keys, permissions, role_name, canary_percent)


def keys_and_plan(iam, params):
    """static_keys_info's result: the keys (of O(fingerprints), or of every key found on the hosts) and,
    with ``found_on``, the plan. Every input is checked before the first call."""
    found_on, fingerprints = params.get("found_on"), params.get("fingerprints")
    if found_on is None:
        result = key_owners(iam, params.get("user_names"), fingerprints)
        result["plan"] = None
        return result
    check_found_on(found_on)
    check_percent(params.get("canary_percent", 10), "canary_percent")
    if params.get("role_name"):
        check_iam_name(params["role_name"], "role_name", "role")
    if fingerprints is None:
        fingerprints = sorted(set(key.get("fingerprint") for result in found_on.values()
                                  for key in result.get("keys") or [] if key.get("fingerprint")))
        check_fingerprints(fingerprints, "found_on")
    result = key_owners(iam, params.get("user_names"), fingerprints)
    result["plan"] = read_and_plan(iam, found_on, result["access_keys"], params.get("role_name"),
                                   params.get("canary_percent", 10))
    return result
