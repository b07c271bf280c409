# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The jobs of keyless.aws.iam_instance_profile and iam_instance_profile_info: converge one
instance profile to a desired state (created, holding its role, tagged, or deleted), and
describe profiles with their EC2 trust and usage.

``ensure_*`` functions return ``(changed, state)`` and mutate nothing in check mode. Every AWS
call goes through one small wrapper (``call_aws``): "not found" and the failure sentence are
declared where the call is, once. Functions take boto3 clients (``RetryingClient`` in the
modules) and return plain data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import Timing
from ansible_collections.keyless.aws.plugins.module_utils.common import call_aws
from ansible_collections.keyless.aws.plugins.module_utils.common import error_code
from ansible_collections.keyless.aws.plugins.module_utils.common import poll
from ansible_collections.keyless.aws.plugins.module_utils.common import retrying
from ansible_collections.keyless.aws.plugins.module_utils.instances import ids_text
from ansible_collections.keyless.aws.plugins.module_utils.instances import profile_usage
from ansible_collections.keyless.aws.plugins.module_utils.profiles import CONSISTENCY_DEADLINE
from ansible_collections.keyless.aws.plugins.module_utils.profiles import check_role_arn
from ansible_collections.keyless.aws.plugins.module_utils.profiles import get_profile
from ansible_collections.keyless.aws.plugins.module_utils.profiles import get_role
from ansible_collections.keyless.aws.plugins.module_utils.profiles import list_profiles
from ansible_collections.keyless.aws.plugins.module_utils.profiles import normalize_profile
from ansible_collections.keyless.aws.plugins.module_utils.profiles import profiles_for_role
from ansible_collections.keyless.aws.plugins.module_utils.profiles import role_names
from ansible_collections.keyless.aws.plugins.module_utils.profiles import wait_for_profile
from ansible_collections.keyless.aws.plugins.module_utils.trust import role_trust
from ansible_collections.keyless.aws.plugins.module_utils.trust import trust_verdict

try:
    from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
    from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
    from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags
except ImportError:  # pragma: no cover - amazon.aws is a declared dependency
    ansible_dict_to_boto3_tag_list = boto3_tag_list_to_ansible_dict = compare_aws_tags = None

NOT_FOUND = ("NoSuchEntity",)


def _not_found(exc):
    return error_code(exc) in NOT_FOUND


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


def ensure_created(iam, current, desired, check_mode):
    """Create the profile (with its tags) when missing. A create that loses a race with a
    parallel run converges on the profile the other run created."""
    if current is not None:
        return False, current
    path = desired.path or "/"
    tags = ansible_dict_to_boto3_tag_list(desired.tags or {})
    if check_mode:
        return True, {"InstanceProfileName": desired.name, "Path": path, "Roles": [], "Tags": tags}
    kwargs = {"InstanceProfileName": desired.name, "Path": path}
    if tags:
        kwargs["Tags"] = tags
    created = call_aws("creating instance profile {0!r}".format(desired.name), iam.create_instance_profile,
                       expected=("EntityAlreadyExists",), **kwargs)
    if created is None:
        # Somebody else created it a moment ago: converge on theirs.
        existing = wait_for_profile(iam, desired.name)
        check_path(existing, desired)
        return False, existing
    return True, wait_for_profile(iam, desired.name)


def ensure_role(iam, current, desired, role, check_mode):
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
        _add_role(iam, desired.name, role["RoleName"])
    return True, new


def remove_role(iam, profile_name, role_name):
    """Take the role out of the profile; False when it was gone already (a parallel run)."""
    done = call_aws("removing role {0!r} from instance profile {1!r}".format(role_name, profile_name),
                    iam.remove_role_from_instance_profile, expected=NOT_FOUND,
                    InstanceProfileName=profile_name, RoleName=role_name)
    return done is not None


def _add_role(iam, profile_name, role_name):
    # Right after CreateInstanceProfile, IAM can still answer NoSuchEntity for the profile.
    patient = retrying(iam).with_extra(_not_found, deadline=CONSISTENCY_DEADLINE)
    added = call_aws("adding role {0!r} to instance profile {1!r}".format(role_name, profile_name),
                     patient.add_role_to_instance_profile, expected=("LimitExceeded",),
                     InstanceProfileName=profile_name, RoleName=role_name)
    if added is not None:
        return
    # A parallel run added a role first: fine if it is ours, else say what happened.
    holder = get_profile(iam, profile_name)
    if role_names(holder) == [role_name]:
        return
    raise KeylessError(
        "role: instance profile {0!r} already holds role {1} (added by another run while this one was "
        "converging); run again to replace it with {2!r}.".format(profile_name, ", ".join(role_names(holder)),
                                                                  role_name),
        param="role", code="LimitExceeded",
    )


def tags_dict(profile):
    return boto3_tag_list_to_ansible_dict((profile or {}).get("Tags") or [])


def ensure_tags(iam, current, desired, check_mode):
    """Tags through amazon.aws's tagging helpers (``aws:`` keys are never touched)."""
    if desired.tags is None:
        return False, current
    have = tags_dict(current)
    to_set, to_unset = compare_aws_tags(have, desired.tags, desired.purge_tags)
    if not to_set and not to_unset:
        return False, current
    merged = dict((k, v) for k, v in have.items() if k not in to_unset)
    merged.update(to_set)
    new = dict(current)
    new["Tags"] = ansible_dict_to_boto3_tag_list(merged)
    if check_mode:
        return True, new
    doing = "tagging instance profile {0!r}".format(desired.name)
    if to_unset:
        call_aws(doing, iam.untag_instance_profile, InstanceProfileName=desired.name, TagKeys=sorted(to_unset))
    if to_set:
        call_aws(doing, iam.tag_instance_profile, InstanceProfileName=desired.name,
                 Tags=ansible_dict_to_boto3_tag_list(dict(sorted(to_set.items()))))
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
    call_aws("deleting instance profile {0!r}".format(name), iam.delete_instance_profile, expected=NOT_FOUND,
             InstanceProfileName=name)
    return True, None


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


# ---- the whole job of keyless.aws.iam_instance_profile ------------------------------------


def manage_profile(iam, ec2_client, params, check_mode, timing=None):
    """Converge one instance profile; returns the module's result.

    ``params``: name, path, role ("" removes, None leaves; name or ARN, already validated to a
    name), role_arn, tags, purge_tags, state, trust_check, force, role_change_in_use.
    ``ec2_client``: a callable returning the EC2 client (needed only where the instances that
    use the profile matter: a delete, a role change).
    """
    desired = Desired(params["name"], params.get("path"), params.get("role"), params.get("tags"),
                      params.get("purge_tags", True))
    current = get_profile(iam, desired.name)
    if params.get("state", "present") == "absent":
        return _delete(iam, ec2_client, current, desired, params.get("force"), check_mode)
    return _present(iam, ec2_client, current, desired, params, check_mode, timing or Timing())


def _delete(iam, ec2_client, current, desired, force, check_mode):
    before = _snapshot(current)
    actions = []
    result = {"changed": False, "actions": actions, "iam_instance_profile": {}, "role_trusts_ec2": None,
              "diff": {"before": before, "after": {}}}
    if current is None:
        return result
    usage = profile_usage(ec2_client(), {current["Arn"]}).get(current["Arn"], [])
    in_use = [u["instance_id"] for u in usage]
    if in_use and not force:
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
    result["changed"], _gone = ensure_deleted(iam, current, check_mode)
    actions.append("deleted")
    return result


def _role_to_hold(iam, current, desired, params):
    """The role the profile will hold (boto3 shape, None for none), checked before any change."""
    if desired.role:
        role = get_role(iam, desired.role)
        if role is None:
            raise KeylessError(
                "role: there is no IAM role named {0!r} in this account; create it first (for example with "
                "amazon.aws.iam_role) or correct the name. Nothing was changed.".format(desired.role),
                param="role",
            )
        check_role_arn(role, params.get("role_arn"))
        return role
    if desired.role is None and current is not None and current.get("Roles"):
        return current["Roles"][0]
    return None


def _present(iam, ec2_client, current, desired, params, check_mode, timing):
    # Everything that can fail on input is settled before the first change.
    check_path(current, desired)
    role = _role_to_hold(iam, current, desired, params)
    trusts, warnings = trust_verdict(role, params.get("trust_check", "warn"),
                                     "role {0!r}".format(role["RoleName"]) if role else None, "role")
    in_use = _role_change_in_use(ec2_client, current, desired, role, params.get("role_change_in_use", "warn"),
                                 warnings)
    actions = []
    created, state = ensure_created(iam, current, desired, check_mode)
    if created:
        actions.append("created")
    role_changed, state = ensure_role(iam, state, desired, role if desired.role else None, check_mode)
    if role_changed:
        actions.extend((["role_removed"] if role_names(current) else []) + (["role_added"] if desired.role else []))
    tags_changed, state = ensure_tags(iam, state, desired, check_mode)
    if tags_changed:
        actions.append("tags_updated")
    changed = created or role_changed or tags_changed
    if changed and not check_mode:
        state = _read_back(iam, desired.name, state, timing)
    result = {
        "changed": changed,
        "actions": actions,
        "iam_instance_profile": normalize_profile(state),
        "role_trusts_ec2": trusts,
        "diff": {"before": _snapshot(current), "after": _snapshot(state)},
        "warnings": warnings,
    }
    if in_use:
        result["instances_in_use"] = in_use
    return result


def _read_back(iam, name, written, timing):
    """Describe the profile again, waiting (briefly) until IAM's reads show what was written."""
    def comparable(profile):
        seen = _snapshot(profile)
        seen.pop("path")
        return seen

    expected = comparable(written)
    try:
        return poll(lambda: wait_for_profile(iam, name), lambda profile: comparable(profile) == expected,
                    CONSISTENCY_DEADLINE, timing, _Settled)
    except _Settled as late:  # what IAM shows after the deadline is the answer
        return late.profile


class _Settled(Exception):
    """IAM's reads did not show every change within the deadline: return what they show."""

    def __init__(self, profile):
        super(_Settled, self).__init__("not settled")
        self.profile = profile


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
            desired.name, len(ids), ids_text(ids), change, effect))
    if mode == "fail":
        raise KeylessError(message + " Nothing was changed (role_change_in_use: fail).", param="role",
                           instances=ids)
    warnings.append(message + " Set role_change_in_use: fail to refuse such a change.")
    return ids


def _disassociate_all(ec2, usage):
    for entry in usage:
        call_aws("detaching the profile from instance {0}".format(entry["instance_id"]),
                 ec2.disassociate_iam_instance_profile, expected=("InvalidAssociationID.NotFound",),
                 AssociationId=entry["association_id"])


# ---- the whole job of keyless.aws.iam_instance_profile_info -------------------------------


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
