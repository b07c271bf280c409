# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""IAM instance profiles and roles: read and normalise them, and decide, once, "profile or
role?" (``identify``), which profile a task attaches (``wanted_profile``: exists, holds a role
that trusts EC2) or detaches (``profile_matcher``). Converging a profile is instance_profile.py.

Every read goes through ``call_aws``: "not found" and the failure sentence are declared with
the call. Functions take boto3 clients (``RetryingClient`` in the modules) and return plain data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import call_aws
from ansible_collections.keyless.aws.plugins.module_utils.common import error_code
from ansible_collections.keyless.aws.plugins.module_utils.common import paginate
from ansible_collections.keyless.aws.plugins.module_utils.common import parse_arn
from ansible_collections.keyless.aws.plugins.module_utils.common import retrying
from ansible_collections.keyless.aws.plugins.module_utils.trust import trust_verdict

try:
    from ansible_collections.amazon.aws.plugins.module_utils.iam import normalize_iam_instance_profile
except ImportError:  # pragma: no cover - amazon.aws is a declared dependency
    normalize_iam_instance_profile = None

# IAM is eventually consistent: a profile just created can be "NoSuchEntity" for a few seconds.
CONSISTENCY_DEADLINE = 30.0


NOT_FOUND = ("NoSuchEntity",)


def _not_found(exc):
    return error_code(exc) in NOT_FOUND


# ---- reading --------------------------------------------------------------------------


def get_profile(iam, name):
    """The profile named ``name`` (boto3 shape, with Tags), or None."""
    found = call_aws("reading instance profile {0!r}".format(name), iam.get_instance_profile,
                     expected=NOT_FOUND, InstanceProfileName=name)
    return found["InstanceProfile"] if found else None


def wait_for_profile(iam, name):
    """Read a profile that must exist (we just created it): retries "not yet" for a while."""
    patient = retrying(iam).with_extra(_not_found, deadline=CONSISTENCY_DEADLINE)
    return call_aws("reading instance profile {0!r} after creating it".format(name), patient.get_instance_profile,
                    InstanceProfileName=name)["InstanceProfile"]


def while_iam_holds(not_known_yet, iam_holds, clock, deadline, gone=None):
    """The retry rule of a call that names a profile IAM made (or gave its role) a moment ago, which
    EC2 and Auto Scaling may not know for a minute or two: try again while the answer is one of
    the "not known yet" forms (``not_known_yet(exc)``), ``clock()`` is before ``deadline`` and IAM
    still holds the profile (``iam_holds()``, read only then). A profile IAM no longer holds ends
    the wait; its answer goes into ``gone["error"]`` when ``gone`` is given."""
    def not_yet(exc):
        if not not_known_yet(exc) or clock() >= deadline:
            return False
        if not iam_holds():
            if gone is not None:
                gone["error"] = exc
            return False
        return True
    return not_yet


def list_profiles(iam, path_prefix=None):
    kwargs = {"PathPrefix": path_prefix} if path_prefix else {}
    return call_aws("listing instance profiles", paginate, call=iam.list_instance_profiles,
                    result_key="InstanceProfiles", **kwargs)


def profiles_for_role(iam, role_name):
    """Profiles that hold the role (an empty list when the role does not exist)."""
    return call_aws("listing the instance profiles of role {0!r}".format(role_name), paginate,
                    expected=NOT_FOUND, call=iam.list_instance_profiles_for_role, result_key="InstanceProfiles",
                    RoleName=role_name) or []


def get_role(iam, name):
    """The role named ``name`` (boto3 shape, trust policy decoded), or None."""
    found = call_aws("reading role {0!r}".format(name), iam.get_role, expected=NOT_FOUND, RoleName=name)
    return found["Role"] if found else None


def role_names(profile):
    return [r["RoleName"] for r in (profile or {}).get("Roles") or []]


def profile_summary(profile):
    """The ``instance_profile`` a module returns for a boto3 profile: name, ARN, the role it
    holds (None for none); None for no profile."""
    if not profile:
        return None
    roles = role_names(profile)
    return {"instance_profile_name": profile.get("InstanceProfileName"), "arn": profile.get("Arn"),
            "role_name": roles[0] if roles else None}


def normalize_profile(profile):
    """A boto3 profile in the snake_case shape of amazon.aws.iam_instance_profile."""
    if profile is None:
        return None
    result = normalize_iam_instance_profile(copy.deepcopy(profile))
    result.setdefault("tags", {})
    result.setdefault("roles", [])
    return result


# ---- "profile or role?" (decided here, once) ------------------------------------------------


class Named:
    """What a name given as an instance profile names: the profile; or, when there is none, a
    role of that name (with the profiles that hold it: the user meant one of those); or nothing."""

    def __init__(self, name, profile=None, role=None, holders=()):
        self.name = name
        self.profile = profile
        self.role = role
        self.holders = list(holders)

    def not_a_profile(self, param="instance_profile"):
        """The failure for a name that is not a profile: a role's name, or nothing at all."""
        if self.role is None:
            return KeylessError(
                "{0}: there is no instance profile named {1!r} (nor a role of that name). Create it with "
                "keyless.aws.iam_instance_profile, or check the spelling.".format(param, self.name),
                param=param,
            )
        if self.holders:
            hint = "the profile(s) that hold it: {0}; use one of those.".format(
                ", ".join(sorted(p["InstanceProfileName"] for p in self.holders)))
        else:
            hint = ("no instance profile holds it yet; create one with keyless.aws.iam_instance_profile "
                    "(name: {0}, role: {0}).".format(self.name))
        return KeylessError(
            "{0}: {1!r} is an IAM role, not an instance profile. EC2 attaches instance profiles, which "
            "hold a role; {2}".format(param, self.name, hint),
            param=param,
        )


def identify(iam, name):
    """What ``name`` names (see Named): the one answer to "profile or role?"."""
    profile = get_profile(iam, name)
    if profile is not None:
        return Named(name, profile=profile)
    role = get_role(iam, name)
    if role is None:
        return Named(name)
    return Named(name, role=role, holders=profiles_for_role(iam, name))


def resolve_profile(iam, name, param="instance_profile"):
    """The profile named ``name``; when there is none, fail saying what the name is instead."""
    named = identify(iam, name)
    if named.profile is None:
        raise named.not_a_profile(param)
    return named.profile


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


def check_role_arn(role, given_arn, param="role"):
    """A role given by ARN must be the role of that name in this account (not another path or account)."""
    if given_arn and role is not None and role["Arn"] != given_arn:
        raise KeylessError("{0}: the ARN {1!r} does not match role {2!r} of this account ({3}).".format(
            param, given_arn, role["RoleName"], role["Arn"]), param=param)


def check_profile_arn(profile, given_arn, param="instance_profile"):
    """A profile given by ARN must be the profile of that name in this account."""
    if given_arn and profile["Arn"] != given_arn:
        raise KeylessError(
            "{0}: the ARN {1!r} does not match instance profile {2!r} of this account, whose ARN is {3!r}.".format(
                param, given_arn, profile["InstanceProfileName"], profile["Arn"]),
            param=param,
        )


def profile_name_of(arn):
    parts = parse_arn(arn)
    return parts["name"] if parts else None


# ---- which profile a task attaches, or detaches ---------------------------------------------


def wanted_profile(iam, params):
    """The profile to attach (boto3 shape), checked before any change: it exists, holds a role
    (``require_role``) and that role trusts EC2 (``trust_check``). Returns (profile,
    role_trusts_ec2, warnings)."""
    if params.get("role"):
        param = "role"
        if params.get("role_arn"):
            check_role_arn(get_role(iam, params["role"]), params["role_arn"])
        profile = profile_for_role(iam, params["role"], param="role")
    else:
        param = "instance_profile"
        profile = resolve_profile(iam, params["instance_profile"], param="instance_profile")
        check_profile_arn(profile, params.get("instance_profile_arn"), param)
    name = profile["InstanceProfileName"]
    roles = profile.get("Roles") or []
    if not roles:
        if params["require_role"]:
            raise KeylessError(
                "{0}: instance profile {1!r} holds no role, so instances given it get no credentials. Add a "
                "role to it (keyless.aws.iam_instance_profile with role: ...), or set require_role: false to "
                "attach it anyway.".format(param, name),
                param=param,
            )
        return profile, None, []
    role = roles[0]
    if params["trust_check"] != "skip" and not role.get("AssumeRolePolicyDocument"):
        role = get_role(iam, role["RoleName"]) or role
    trusts, warnings = trust_verdict(role, params["trust_check"], "role {0!r} of instance profile {1!r}".format(
        role["RoleName"], name), param, prefix=param + ": ")
    return profile, trusts, warnings


class Matcher:
    """For detaching and reading: which associations carry the profile the user named.

    A profile that no longer exists still matches its associations by name (a name is unique
    in an account). ``named`` (see Named) tells the caller, when nothing matched, whether the
    name was a role's (the role and a deleted profile often share a name)."""

    def __init__(self, predicate, profile=None, named=None):
        self.predicate = predicate
        self.profile = profile
        self.named = named

    def __call__(self, arn):
        return self.predicate(arn)

    @property
    def is_a_role(self):
        return self.named is not None and self.named.profile is None and self.named.role is not None


def profile_matcher(iam, instance_profile=None, instance_profile_arn=None, role=None):
    """(Matcher, warnings) for the profile named by ``instance_profile`` (and its ARN) or held by ``role``."""
    if role:
        if get_role(iam, role) is None:
            return Matcher(lambda arn: False), [
                "role: there is no IAM role named {0!r}, so no instance carries a profile that holds it.".format(role)]
        arns = set(p["Arn"] for p in profiles_for_role(iam, role))
        return Matcher(lambda arn: arn in arns), []
    named = identify(iam, instance_profile)
    if named.profile is not None:
        check_profile_arn(named.profile, instance_profile_arn)
        return Matcher(lambda arn: arn == named.profile["Arn"], named.profile, named), []
    if instance_profile_arn:
        return Matcher(lambda arn: arn == instance_profile_arn, named=named), []
    return Matcher(lambda arn: profile_name_of(arn) == instance_profile, named=named), []
