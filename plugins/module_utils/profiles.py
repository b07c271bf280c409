# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""IAM instance profiles: read and normalise them, resolve "profile or role?", find where they
are used, and converge one to a desired state.

Functions take boto3 clients (wrapped in ``RetryingClient`` by the modules) and return plain
data; ``ensure_*`` functions return ``(changed, state)`` and mutate nothing in check mode.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import time

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryPolicy
from ansible_collections.keyless.aws.plugins.module_utils.common import aws_failure
from ansible_collections.keyless.aws.plugins.module_utils.common import error_code
from ansible_collections.keyless.aws.plugins.module_utils.common import paginate
from ansible_collections.keyless.aws.plugins.module_utils.common import parse_arn
from ansible_collections.keyless.aws.plugins.module_utils.instances import profile_usage
from ansible_collections.keyless.aws.plugins.module_utils.trust import analyse_trust

try:
    from ansible_collections.amazon.aws.plugins.module_utils.iam import normalize_iam_instance_profile
except ImportError:  # pragma: no cover - amazon.aws is a declared dependency
    normalize_iam_instance_profile = None

# IAM is eventually consistent: a profile just created can be "NoSuchEntity" for a few seconds.
CONSISTENCY_DEADLINE = 30.0


def _not_found(exc):
    return error_code(exc) == "NoSuchEntity"


# ---- reading --------------------------------------------------------------------------


def get_profile(iam, name):
    """The profile named ``name`` (boto3 shape, with Tags), or None."""
    try:
        return iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
    except Exception as exc:  # pylint: disable=broad-except
        if _not_found(exc):
            return None
        raise aws_failure(exc, "reading instance profile {0!r}".format(name))


def wait_for_profile(iam, name, policy=None):
    """Read a profile that must exist (we just created it): retries "not yet" for a while."""
    policy = (policy or RetryPolicy()).with_extra(_not_found, deadline=CONSISTENCY_DEADLINE)
    try:
        return policy.call(lambda: iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"])
    except Exception as exc:  # pylint: disable=broad-except
        raise aws_failure(exc, "reading instance profile {0!r} after creating it".format(name))


def list_profiles(iam, path_prefix=None):
    kwargs = {"PathPrefix": path_prefix} if path_prefix else {}
    try:
        return paginate(iam.list_instance_profiles, "InstanceProfiles", **kwargs)
    except Exception as exc:  # pylint: disable=broad-except
        raise aws_failure(exc, "listing instance profiles")


def profiles_for_role(iam, role_name):
    """Profiles that hold the role (an empty list when the role does not exist)."""
    try:
        return paginate(iam.list_instance_profiles_for_role, "InstanceProfiles", RoleName=role_name)
    except Exception as exc:  # pylint: disable=broad-except
        if _not_found(exc):
            return []
        raise aws_failure(exc, "listing the instance profiles of role {0!r}".format(role_name))


def get_role(iam, name):
    """The role named ``name`` (boto3 shape, trust policy decoded), or None."""
    try:
        return iam.get_role(RoleName=name)["Role"]
    except Exception as exc:  # pylint: disable=broad-except
        if _not_found(exc):
            return None
        raise aws_failure(exc, "reading role {0!r}".format(name))


def role_names(profile):
    return [r["RoleName"] for r in (profile or {}).get("Roles") or []]


def normalize_profile(profile):
    """A boto3 profile in the snake_case shape of amazon.aws.iam_instance_profile."""
    if profile is None:
        return None
    result = normalize_iam_instance_profile(copy.deepcopy(profile))
    result.setdefault("tags", {})
    result.setdefault("roles", [])
    return result


def partition_of(profile_or_role, default="aws"):
    parts = parse_arn((profile_or_role or {}).get("Arn"))
    return parts["partition"] if parts else default


def role_trust(role, partition=None):
    """analyse_trust() of a role (boto3 shape)."""
    return analyse_trust(role.get("AssumeRolePolicyDocument") or {}, partition or partition_of(role))


# ---- "profile or role?" -----------------------------------------------------------------


def resolve_profile(iam, name, param="instance_profile"):
    """The profile named ``name``; when there is none but a role of that name exists, fail
    saying it is a role and naming the profiles that hold it."""
    profile = get_profile(iam, name)
    if profile is not None:
        return profile
    role = get_role(iam, name)
    if role is None:
        raise KeylessError(
            "{0}: there is no instance profile named {1!r} (nor a role of that name). Create it with "
            "keyless.aws.iam_instance_profile, or check the spelling.".format(param, name),
            param=param,
        )
    holders = [p["InstanceProfileName"] for p in profiles_for_role(iam, name)]
    if holders:
        hint = "the profile(s) that hold it: {0}; use one of those.".format(", ".join(sorted(holders)))
    else:
        hint = ("no instance profile holds it yet; create one with keyless.aws.iam_instance_profile "
                "(name: {0}, role: {0}).".format(name))
    raise KeylessError(
        "{0}: {1!r} is an IAM role, not an instance profile. EC2 attaches instance profiles, which "
        "hold a role; {2}".format(param, name, hint),
        param=param,
    )


def profile_for_role(iam, role_name, param="role"):
    """The one profile that holds ``role_name``; none or several is an error that says what to do."""
    if get_role(iam, role_name) is None:
        raise KeylessError("{0}: there is no IAM role named {1!r}.".format(param, role_name), param=param)
    holders = profiles_for_role(iam, role_name)
    if not holders:
        raise KeylessError(
            "{0}: no instance profile holds role {1!r}; create one with keyless.aws.iam_instance_profile "
            "(name: {1}, role: {1}) and run again.".format(param, role_name),
            param=param,
        )
    if len(holders) > 1:
        raise KeylessError(
            "{0}: role {1!r} is held by several instance profiles ({2}); name the one to use with "
            "instance_profile instead.".format(
                param, role_name, ", ".join(sorted(p["InstanceProfileName"] for p in holders))),
            param=param,
        )
    return holders[0]


# ---- converging one profile ---------------------------------------------------------------


class Desired:
    """What the user asked for. ``role``: None leaves it, "" removes it, else a role name.
    ``path``: None accepts any path (new profiles get "/"). ``tags``: None leaves them."""

    def __init__(self, name, path=None, role=None, tags=None, purge_tags=True):
        self.name = name
        self.path = path
        self.role = role
        self.tags = tags
        self.purge_tags = purge_tags


def check_path(current, desired):
    """IAM cannot move a profile to another path: say so, never recreate silently."""
    if current is None or desired.path is None or current["Path"] == desired.path:
        return
    raise KeylessError(
        "path: instance profile {0!r} already exists with path {1!r}, and IAM cannot change the path "
        "of an instance profile. Either leave path unset (or set it to {1!r}) to keep the profile, or "
        "delete it (state: absent) and create it again with path {2!r}; instances it is attached to "
        "must then be given the new profile.".format(desired.name, current["Path"], desired.path),
        param="path",
    )


def ensure_created(iam, current, desired, check_mode, policy=None):
    """Create the profile (with its tags) when missing. A create that loses a race with a
    parallel run converges on the profile the other run created."""
    if current is not None:
        return False, current
    path = desired.path or "/"
    tags = desired.tags or {}
    if check_mode:
        return True, {"InstanceProfileName": desired.name, "Path": path, "Roles": [],
                      "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
    kwargs = {"InstanceProfileName": desired.name, "Path": path}
    if tags:
        kwargs["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    try:
        iam.create_instance_profile(**kwargs)
    except Exception as exc:  # pylint: disable=broad-except
        if error_code(exc) != "EntityAlreadyExists":
            raise aws_failure(exc, "creating instance profile {0!r}".format(desired.name))
        # Somebody else created it a moment ago: converge on theirs.
        existing = wait_for_profile(iam, desired.name, policy)
        check_path(existing, desired)
        return False, existing
    return True, wait_for_profile(iam, desired.name, policy)


def ensure_role(iam, current, desired, role, check_mode, policy=None):
    """Make the profile hold ``role`` (boto3 role dict), or nothing when desired.role == ""."""
    if desired.role is None:
        return False, current
    have = role_names(current)
    want = [role["RoleName"]] if role else []
    if have == want:
        return False, current
    new = dict(current)
    new["Roles"] = [role] if role else []
    if check_mode:
        return True, new
    for name in have:
        remove_role(iam, desired.name, name)
    if role:
        _add_role(iam, desired.name, role["RoleName"], policy)
    return True, new


def remove_role(iam, profile_name, role_name):
    try:
        iam.remove_role_from_instance_profile(InstanceProfileName=profile_name, RoleName=role_name)
    except Exception as exc:  # pylint: disable=broad-except
        if _not_found(exc):
            return False  # already gone: a parallel run removed it
        raise aws_failure(exc, "removing role {0!r} from instance profile {1!r}".format(role_name, profile_name))
    return True


def _add_role(iam, profile_name, role_name, policy=None):
    # Right after CreateInstanceProfile, IAM can still answer NoSuchEntity for the profile.
    policy = (policy or RetryPolicy()).with_extra(_not_found, deadline=CONSISTENCY_DEADLINE)
    try:
        policy.call(iam.add_role_to_instance_profile, InstanceProfileName=profile_name, RoleName=role_name)
    except Exception as exc:  # pylint: disable=broad-except
        if error_code(exc) == "LimitExceeded":
            # A parallel run added a role first: fine if it is ours, else say what happened.
            holder = get_profile(iam, profile_name)
            if role_names(holder) == [role_name]:
                return
            raise KeylessError(
                "role: instance profile {0!r} already holds role {1} (added by another run while this "
                "one was converging); run again to replace it with {2!r}.".format(
                    profile_name, ", ".join(role_names(holder)), role_name),
                param="role", code="LimitExceeded", exception=exc,
            )
        raise aws_failure(exc, "adding role {0!r} to instance profile {1!r}".format(role_name, profile_name))


def tags_dict(profile):
    return dict((t["Key"], t["Value"]) for t in (profile or {}).get("Tags") or [])


def ensure_tags(iam, current, desired, check_mode):
    if desired.tags is None:
        return False, current
    have = tags_dict(current)
    to_set = dict((k, v) for k, v in desired.tags.items() if have.get(k) != v)
    to_unset = [k for k in have if k not in desired.tags and not k.startswith("aws:")] if desired.purge_tags else []
    if not to_set and not to_unset:
        return False, current
    merged = dict((k, v) for k, v in have.items() if k not in to_unset)
    merged.update(to_set)
    new = dict(current)
    new["Tags"] = [{"Key": k, "Value": v} for k, v in merged.items()]
    if check_mode:
        return True, new
    try:
        if to_unset:
            iam.untag_instance_profile(InstanceProfileName=desired.name, TagKeys=sorted(to_unset))
        if to_set:
            iam.tag_instance_profile(InstanceProfileName=desired.name,
                                     Tags=[{"Key": k, "Value": v} for k, v in sorted(to_set.items())])
    except Exception as exc:  # pylint: disable=broad-except
        raise aws_failure(exc, "tagging instance profile {0!r}".format(desired.name))
    return True, new


def ensure_deleted(iam, current, check_mode):
    """Remove the profile's roles, then the profile. "Already gone" is not an error."""
    if current is None:
        return False, None
    if check_mode:
        return True, None
    name = current["InstanceProfileName"]
    for role_name in role_names(current):
        remove_role(iam, name, role_name)
    try:
        iam.delete_instance_profile(InstanceProfileName=name)
    except Exception as exc:  # pylint: disable=broad-except
        if _not_found(exc):
            return True, None
        raise aws_failure(exc, "deleting instance profile {0!r}".format(name))
    return True, None


def wait_until(predicate, timeout, interval=1.0, sleep=time.sleep, clock=time.monotonic):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` seconds pass."""
    deadline = clock() + timeout
    while True:
        value = predicate()
        if value or clock() >= deadline:
            return value
        sleep(interval)


# ---- the whole job of keyless.aws.iam_instance_profile ------------------------------------


def _snapshot(profile):
    """What --diff shows of a profile."""
    if profile is None:
        return {}
    return {
        "instance_profile_name": profile.get("InstanceProfileName"),
        "path": profile.get("Path"),
        "roles": role_names(profile),
        "tags": tags_dict(profile),
    }


def _trust_verdict(role, trust_check, warnings):
    """Check the role the profile will hold; returns role_trusts_ec2 (None when skipped)."""
    if role is None or trust_check == "skip":
        return None
    analysis = role_trust(role)
    message = None
    if not analysis["trusts_ec2"]:
        message = ("role {0!r} does not trust EC2, so instances given this profile get no credentials: "
                   "{1}.".format(role["RoleName"], analysis["problem"]))
    elif analysis["wildcard_principal"]:
        warnings.append("role {0!r} lets any principal ('*') assume it; name the principals it must "
                        "trust instead.".format(role["RoleName"]))
    elif analysis["conditional"]:
        warnings.append("role {0!r} trusts {1} only under a Condition; make sure EC2 meets it.".format(
            role["RoleName"], analysis["principal"]))
    if message and trust_check == "fail":
        raise KeylessError(message + " Fix the role's trust policy, or set trust_check to warn or skip.",
                           param="role")
    if message:
        warnings.append(message)
    return analysis["trusts_ec2"]


def manage_profile(iam, ec2_client, params, check_mode):
    """Converge one instance profile; returns the module's result.

    ``params``: name, path, role ("" removes, None leaves; name or ARN, already validated to a
    name), tags, purge_tags, state, trust_check, force. ``ec2_client``: a callable returning the
    EC2 client (needed only to delete a profile, to find the instances that use it).
    """
    desired = Desired(params["name"], params.get("path"), params.get("role"), params.get("tags"),
                      params.get("purge_tags", True))
    warnings = []
    current = get_profile(iam, desired.name)
    before = _snapshot(current)
    actions = []

    if params.get("state", "present") == "absent":
        result = {"changed": False, "actions": actions, "iam_instance_profile": {}, "role_trusts_ec2": None}
        if current is None:
            result["diff"] = {"before": before, "after": {}}
            return result
        usage = profile_usage(ec2_client(), {current["Arn"]}).get(current["Arn"], [])
        in_use = [u["instance_id"] for u in usage]
        if in_use and not params.get("force"):
            raise KeylessError(
                "instance profile {0!r} is attached to {1} instance(s) in this region ({2}); deleting it "
                "would leave them without credentials. Detach it first (keyless.aws.ec2_profile_association, "
                "state: absent), or set force: true to detach it and delete it.".format(
                    desired.name, len(in_use), ", ".join(in_use)),
                param="force", instances=in_use,
            )
        if in_use:
            result["disassociated_instances"] = in_use
            actions.append("disassociated")
            if not check_mode:
                _disassociate_all(ec2_client(), usage)
        if role_names(current):
            actions.append("role_removed")
        changed, _gone = ensure_deleted(iam, current, check_mode)
        actions.append("deleted")
        result.update(changed=changed, diff={"before": before, "after": {}})
        return result

    # Everything that can fail on input is settled before the first change.
    check_path(current, desired)
    role = None
    if desired.role:
        role = get_role(iam, desired.role)
        if role is None:
            raise KeylessError(
                "role: there is no IAM role named {0!r} in this account; create it first (for example with "
                "amazon.aws.iam_role) or correct the name. Nothing was changed.".format(desired.role),
                param="role",
            )
        if params.get("role_arn") and params["role_arn"] != role["Arn"]:
            raise KeylessError(
                "role: the ARN {0!r} does not match role {1!r} of this account ({2}).".format(
                    params["role_arn"], desired.role, role["Arn"]),
                param="role",
            )
    elif desired.role is None and current is not None and current.get("Roles"):
        role = current["Roles"][0]
    role_trusts_ec2 = _trust_verdict(role, params.get("trust_check", "warn"), warnings)
    in_use = _role_change_in_use(ec2_client, current, desired, role, params.get("role_change_in_use", "warn"),
                                 warnings)

    changed, state = ensure_created(iam, current, desired, check_mode)
    if changed:
        actions.append("created")
    role_changed, state = ensure_role(iam, state, desired, role if desired.role else None, check_mode)
    if role_changed:
        if role_names(current):
            actions.append("role_removed")
        if desired.role:
            actions.append("role_added")
    tags_changed, state = ensure_tags(iam, state, desired, check_mode)
    if tags_changed:
        actions.append("tags_updated")
    changed = changed or role_changed or tags_changed

    if changed and not check_mode:
        # Describe again, and wait (briefly) until IAM's reads show what we wrote.
        expected = _snapshot(state)
        expected.pop("path")
        latest = {}

        def settled():
            latest["profile"] = wait_for_profile(iam, desired.name)
            seen = _snapshot(latest["profile"])
            seen.pop("path")
            return seen == expected

        wait_until(settled, CONSISTENCY_DEADLINE)
        state = latest["profile"]
    result = {
        "changed": changed,
        "actions": actions,
        "iam_instance_profile": normalize_profile(state),
        "role_trusts_ec2": role_trusts_ec2,
        "diff": {"before": before, "after": _snapshot(state)},
        "warnings": warnings,
    }
    if in_use:
        result["instances_in_use"] = in_use
    return result


def _role_change_in_use(ec2_client, current, desired, role, mode, warnings):
    """Changing or removing the role of a profile that instances carry is never silent.

    The instances keep the old role's credentials until their next scheduled rotation, then get
    the new role's (or, role removed, none): a change the fleet feels at an hour nobody chose.
    ``mode`` ``warn`` warns naming them and the path without a gap, ``fail`` refuses before any
    change. Returns the instance ids (empty when the role does not change or nothing uses it).
    """
    if current is None or desired.role is None or not role_names(current):
        return []
    want = [role["RoleName"]] if role else []
    if role_names(current) == want:
        return []
    usage = profile_usage(ec2_client(), {current["Arn"]}).get(current["Arn"], [])
    ids = [u["instance_id"] for u in usage]
    if not ids:
        return []
    change = ("changing its role from {0!r} to {1!r}".format(role_names(current)[0], want[0]) if want
              else "removing its role {0!r}".format(role_names(current)[0]))
    effect = ("they keep the old role's credentials until each next rotates them, then get the new role's"
              if want else "they keep the old role's credentials until each next rotates them, then get none")
    message = (
        "role: instance profile {0!r} is attached to {1} instance(s) in this region ({2}); {3} does not reach "
        "them at once: {4}. To change roles without a gap, create a new profile with the new role "
        "(keyless.aws.iam_instance_profile) and swap the instances to it (keyless.aws.ec2_profile_association, "
        "which replaces the association of running instances in one call).".format(
            desired.name, len(ids), ", ".join(ids[:20]) + (" and {0} more".format(len(ids) - 20) if len(ids) > 20
                                                           else ""),
            change, effect))
    if mode == "fail":
        raise KeylessError(message + " Nothing was changed (role_change_in_use: fail).", param="role",
                           instances=ids)
    warnings.append(message + " Set role_change_in_use: fail to refuse such a change.")
    return ids


def _disassociate_all(ec2, usage):
    for entry in usage:
        try:
            ec2.disassociate_iam_instance_profile(AssociationId=entry["association_id"])
        except Exception as exc:  # pylint: disable=broad-except
            if error_code(exc) == "InvalidAssociationID.NotFound":
                continue  # already detached
            raise aws_failure(exc, "detaching the profile from instance {0}".format(entry["instance_id"]))


# ---- keyless.aws.iam_instance_profile_info -----------------------------------------------


def describe_profiles(iam, ec2_client=None, name=None, path_prefix=None, role=None):
    """Profiles by name, path prefix and/or role, normalised, with ``role_trusts_ec2`` and,
    when ``ec2_client`` (a callable) is given, the ``instances`` each is attached to."""
    if name is not None:
        found = get_profile(iam, name)
        profiles = [found] if found else []
    elif role is not None:
        profiles = profiles_for_role(iam, role)
    else:
        profiles = list_profiles(iam, path_prefix)
    if role is not None:
        profiles = [p for p in profiles if role in role_names(p)]
    if path_prefix:
        profiles = [p for p in profiles if p["Path"].startswith(path_prefix)]
    if profiles and name is None:
        # List calls leave out tags; GetInstanceProfile carries them.
        profiles = [get_profile(iam, p["InstanceProfileName"]) or p for p in profiles]
    usage = profile_usage(ec2_client(), set(p["Arn"] for p in profiles)) if ec2_client and profiles else {}
    result = []
    for profile in sorted(profiles, key=lambda p: p["InstanceProfileName"]):
        entry = normalize_profile(profile)
        roles = profile.get("Roles") or []
        entry["role_trusts_ec2"] = role_trust(roles[0])["trusts_ec2"] if roles else None
        if ec2_client is not None:
            entry["instances"] = usage.get(profile["Arn"], [])
        result.append(entry)
    return result
