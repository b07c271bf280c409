# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Instance profile associations: converging a whole fleet to the profile it should carry.

Three steps, kept apart so each can be tested on its own:

* **read**, batched, through the one EC2 reader (``instances.py``): the instances selected by
  ``instance_ids`` / ``filters`` (pending and stopping ones waited out: EC2 attaches profiles
  to running or stopped instances only), then their associations.
* **plan**, pure: current associations + instance states + what is wanted -> one step per
  instance (``associated``, ``replaced``, ``disassociated``, ``unchanged``) with the EC2 calls it
  takes. See ``plan``.
* **apply**, with bounded parallelism (a thread pool; boto3 clients are thread-safe): the calls
  of each step, each through the client's retry policy plus, for calls that name the profile,
  every form of the IAM-to-EC2 propagation error retried until ``propagation_timeout``. On a
  running instance a swap is ``ReplaceIamInstanceProfileAssociation`` (never a gap); EC2 takes
  that call for running instances only, so on a stopped one (where nothing runs to need
  credentials) a swap is disassociate, wait until the old association is gone, associate.

Functions take boto3 clients (``RetryingClient`` in the modules) and return plain data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryingClient
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryPolicy
from ansible_collections.keyless.aws.plugins.module_utils.common import Timing
from ansible_collections.keyless.aws.plugins.module_utils.common import error_code
from ansible_collections.keyless.aws.plugins.module_utils.common import error_message
from ansible_collections.keyless.aws.plugins.module_utils.common import parse_arn
from ansible_collections.keyless.aws.plugins.module_utils.instances import ACTIVE_ASSOCIATION_STATES
from ansible_collections.keyless.aws.plugins.module_utils.instances import current_association
from ansible_collections.keyless.aws.plugins.module_utils.instances import describe_associations
from ansible_collections.keyless.aws.plugins.module_utils.instances import describe_instances
from ansible_collections.keyless.aws.plugins.module_utils.instances import ids_text
from ansible_collections.keyless.aws.plugins.module_utils.instances import is_settled
from ansible_collections.keyless.aws.plugins.module_utils.instances import select_instances
from ansible_collections.keyless.aws.plugins.module_utils.instances import state_of
from ansible_collections.keyless.aws.plugins.module_utils.instances import wait_for_states
from ansible_collections.keyless.aws.plugins.module_utils.profiles import get_profile
from ansible_collections.keyless.aws.plugins.module_utils.profiles import get_role
from ansible_collections.keyless.aws.plugins.module_utils.profiles import profile_for_role
from ansible_collections.keyless.aws.plugins.module_utils.profiles import profiles_for_role
from ansible_collections.keyless.aws.plugins.module_utils.profiles import resolve_profile
from ansible_collections.keyless.aws.plugins.module_utils.profiles import role_trust

ASSOCIATED = "associated"
REPLACED = "replaced"
DISASSOCIATED = "disassociated"
UNCHANGED = "unchanged"
ACTIONS = (ASSOCIATED, REPLACED, DISASSOCIATED, UNCHANGED)

# keyless.aws.ec2_profile_association's options: the module's argument spec and the one place
# its defaults live (``with_defaults`` fills them in for callers that are not the module).
ARGUMENT_SPEC = dict(
    instance_ids=dict(type="list", elements="str"),
    filters=dict(type="dict"),
    instance_profile=dict(type="str", aliases=["iam_instance_profile"]),
    role=dict(type="str"),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    require_role=dict(type="bool", default=True),
    trust_check=dict(type="str", default="fail", choices=["fail", "warn", "skip"]),
    propagation_timeout=dict(type="int", default=120),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=300),
    max_concurrency=dict(type="int", default=10),
)


def with_defaults(params):
    """``params`` with every option the caller left out at its argument-spec default."""
    full = dict((name, spec.get("default")) for name, spec in ARGUMENT_SPEC.items())
    full.update((k, v) for k, v in params.items() if v is not None or k not in full)
    return full


ASSOCIATE = "AssociateIamInstanceProfile"
REPLACE = "ReplaceIamInstanceProfileAssociation"
DISASSOCIATE = "DisassociateIamInstanceProfile"

GONE_REASON = "a profile cannot be attached to or detached from them"

# Every form in which EC2 says "I do not know this profile (yet)" (IAM-to-EC2 propagation):
# * InvalidParameterValue "... Invalid IAM Instance Profile name" / "ARN": right after the profile
#   was created, and for a profile that does not exist at all (EC2 cannot tell the two apart);
# * InvalidParameterValue 'IAM Instance Profile "arn:..." has no associated IAM Roles': right after a
#   role was added to the profile (hashicorp/terraform-provider-aws retries it on RunInstances);
# * IncorrectState "ResultDetail: { Code=InstanceIdentityProfileNotFound, ... }" on
#   AssociateIamInstanceProfile (hashicorp/terraform-provider-aws issue 12533).
_PROPAGATION_FORMS = (
    ("InvalidParameterValue", re.compile(r"Invalid IAM Instance Profile (name|ARN)", re.I)),
    ("InvalidParameterValue", re.compile(r"has no associated IAM Roles", re.I)),
    ("IncorrectState", re.compile(r"InstanceIdentityProfileNotFound")),
)


def is_propagation_error(exc):
    """EC2 does not know the profile (yet): one of the forms above. Right after a profile is
    created or given its role this means "not yet"; whether the profile still exists is IAM's
    to say (the Applier asks it between retries)."""
    code = error_code(exc)
    if code is None:
        return False
    message = error_message(exc)
    return any(code == form_code and pattern.search(message) for form_code, pattern in _PROPAGATION_FORMS)


def profile_name_of(arn):
    parts = parse_arn(arn)
    return parts["name"] if parts else None


# ---- planning (pure) -----------------------------------------------------------------------


def calls_for(action, instance_state):
    """The EC2 calls a step makes (what check mode predicts, and what the real run does)."""
    if action == ASSOCIATED:
        return [ASSOCIATE]
    if action == DISASSOCIATED:
        return [DISASSOCIATE]
    if action == REPLACED:
        # EC2 replaces the association of running instances only (ReplaceIamInstanceProfileAssociation:
        # "for the specified running instance"); on a stopped one it answers IncorrectState.
        return [REPLACE] if instance_state == "running" else [DISASSOCIATE, ASSOCIATE]
    return []


def plan(instance_ids, current, state, profile_arn=None, matches=None, instance_states=None):
    """What to do on each instance: a list of steps, in the order of ``instance_ids``.

    ``current``: {instance_id: None or {association_id, instance_profile_arn, state}} (see
    ``current_association``); ``state``: ``present`` (``profile_arn`` wanted everywhere) or
    ``absent`` (detach where ``matches(arn)`` is true; every association when ``matches`` is
    None); ``instance_states``: {instance_id: running|stopped} (running when not given). Each
    step: {instance_id, instance_state, action, calls, association_id, before, after} where
    before/after are profile ARNs (None: no profile) and association_id is the current one's.
    """
    if state == "present" and not profile_arn:
        raise ValueError("state present needs the profile ARN")
    instance_states = instance_states or {}
    steps = []
    for instance_id in instance_ids:
        have = current.get(instance_id)
        before = have["instance_profile_arn"] if have else None
        association_id = have["association_id"] if have else None
        if state == "present":
            if have is None:
                action = ASSOCIATED
            elif before == profile_arn:
                action = UNCHANGED
            else:
                action = REPLACED
            after = profile_arn
        else:
            if have is not None and (matches is None or matches(before)):
                action = DISASSOCIATED
                after = None
            else:
                action = UNCHANGED
                after = before
        instance_state = instance_states.get(instance_id, "running")
        steps.append({"instance_id": instance_id, "instance_state": instance_state, "action": action,
                      "calls": calls_for(action, instance_state), "association_id": association_id,
                      "before": before, "after": after})
    return steps


def summarize(entries):
    summary = dict((action, 0) for action in ACTIONS)
    for entry in entries:
        summary[entry["action"]] += 1
    return summary


def predicted_entry(step, current_state, wait):
    """The result entry a check-mode run reports for a step (association ids of new
    associations are unknown until AWS creates them)."""
    action = step["action"]
    if action == UNCHANGED:
        association_id, state = step["association_id"], current_state
    elif action == DISASSOCIATED:
        association_id, state = step["association_id"], "disassociated" if wait else "disassociating"
    else:
        association_id, state = None, "associated" if wait else "associating"
    return entry_for(step, association_id, state)


def entry_for(step, association_id, state):
    """One instance's entry in the module's ``associations`` result (the one place it is built)."""
    return {
        "instance_id": step["instance_id"],
        "action": step["action"],
        "calls": list(step["calls"]),
        "association_id": association_id,
        "instance_profile_arn": step["after"],
        "previous_instance_profile_arn": step["before"],
        "state": state,
    }


# ---- applying ------------------------------------------------------------------------------

_Timing = Timing  # the name the tests have used


class ProfileGone(Exception):
    """IAM says the profile being attached no longer exists (deleted while the run waited)."""

    def __init__(self, name, waited, last_error):
        super(ProfileGone, self).__init__(name)
        self.name = name
        self.waited = waited
        self.last_error = last_error


class Applier:
    """Runs the steps of a plan: the calls of each changing instance, bounded parallelism.

    ``iam`` (optional): asked between propagation retries whether the profile still exists;
    when it does not, the wait ends at once (``ProfileGone``).
    """

    def __init__(self, ec2, profile, max_concurrency=10, propagation_timeout=120.0, timing=None, matches=None,
                 iam=None, wait_timeout=300.0):
        if isinstance(ec2, RetryingClient):
            self.raw, self.policy = ec2.client, ec2.policy
        else:
            self.raw, self.policy = ec2, RetryPolicy()
        self.ec2 = ec2
        self.iam = iam
        self.profile = profile
        self.matches = matches  # state absent: which profiles to detach (None: any)
        self.max_concurrency = max(1, int(max_concurrency))
        self.propagation_timeout = float(propagation_timeout)
        self.wait_timeout = float(wait_timeout)
        self.timing = timing or Timing()
        self._started = None
        self._deadline = None
        self._stop = threading.Event()

    def waited(self):
        """Seconds since the apply began (what a propagation message reports)."""
        return self.timing.clock() - self._started if self._started is not None else 0.0

    def _profile_exists(self):
        if self.iam is None:
            return True
        found = get_profile(self.iam, self.profile["InstanceProfileName"])
        return found is not None and found.get("Arn") == self.profile["Arn"]

    def _profile_policy(self):
        """The client's retry policy, plus the propagation errors while the deadline lasts and
        IAM still has the profile."""
        clock = self.timing.clock
        deadline = self._deadline
        gone = {}

        def not_yet(exc):
            if not is_propagation_error(exc) or clock() >= deadline:
                return False
            if not self._profile_exists():
                gone["error"] = exc
                return False
            return True

        policy = self.policy.with_extra(not_yet, deadline=max(self.policy.deadline, self.propagation_timeout))
        return policy, gone

    def _call_naming_profile(self, method, arn=None, **kwargs):
        policy, gone = self._profile_policy()
        try:
            return policy.call(method, IamInstanceProfile={"Arn": arn or self.profile["Arn"]}, **kwargs)
        except Exception as exc:  # pylint: disable=broad-except
            if gone:
                raise ProfileGone(self.profile["InstanceProfileName"], self.waited(), gone["error"])
            raise

    def _associate(self, instance_id, arn=None):
        response = self._call_naming_profile(self.raw.associate_iam_instance_profile, arn, InstanceId=instance_id)
        return response["IamInstanceProfileAssociation"]

    def _replace(self, association_id):
        response = self._call_naming_profile(self.raw.replace_iam_instance_profile_association,
                                             AssociationId=association_id)
        return response["IamInstanceProfileAssociation"]

    def _disassociate(self, association_id):
        response = self.policy.call(self.raw.disassociate_iam_instance_profile, AssociationId=association_id)
        return response["IamInstanceProfileAssociation"]

    def _swap_stopped(self, step):
        """Disassociate, wait until the old association is gone, associate the new profile. When
        the new profile cannot be attached, the old one is put back (never left detached)."""
        self._disassociate(step["association_id"])
        wait_for(self.ec2, {step["instance_id"]: _has_none}, self.wait_timeout, self.timing,
                 "rid of its old association (a swap on a stopped instance)")
        try:
            return self._associate(step["instance_id"])
        except Exception as exc:
            try:
                self._associate(step["instance_id"], arn=step["before"])
                exc.keyless_restored = step["before"]
            except Exception as restore_exc:  # pylint: disable=broad-except
                raise KeylessError(
                    "instance {0} is stopped, so its profile was swapped by detaching {1} and attaching {2}; the "
                    "attach failed ({3}) and putting {1} back failed too ({4}). The instance carries no profile "
                    "now: run the task again, or attach a profile by hand.".format(
                        step["instance_id"], profile_name_of(step["before"]), self.profile["InstanceProfileName"],
                        _aws_said(exc), _aws_said(restore_exc)),
                    code=error_code(exc))
            raise

    def _reread(self, step):
        """A race (another run changed the instance since we read it): read it again and re-plan it."""
        instance_id = step["instance_id"]
        fresh = current_association(describe_associations(self.ec2, [instance_id]).get(instance_id))
        if step["action"] == DISASSOCIATED:
            return plan([instance_id], {instance_id: fresh}, "absent", matches=self.matches)[0], fresh
        again = plan([instance_id], {instance_id: fresh}, "present", self.profile["Arn"])[0]
        if again["action"] == REPLACED:
            # How to swap depends on the instance's state now (it may have been stopped meanwhile).
            instance = describe_instances(self.ec2, [{"Name": "instance-id", "Values": [instance_id]}],
                                          "instance_ids").get(instance_id)
            again = plan([instance_id], {instance_id: fresh}, "present", self.profile["Arn"],
                         instance_states={instance_id: state_of(instance) or step["instance_state"]})[0]
        return again, fresh

    def _raced(self, step, exc):
        """Whether an error means the instance changed since it was read (then re-read, re-plan)."""
        code = error_code(exc)
        if is_propagation_error(exc):
            return False
        if step["action"] == ASSOCIATED:
            return code in ("IncorrectState", "IncorrectInstanceState")
        if step["action"] == REPLACED and step["calls"] == [REPLACE]:
            # Replace on an instance that has just been stopped: IncorrectState "... is not the active association".
            return code in ("InvalidAssociationID.NotFound", "IncorrectState")
        return code == "InvalidAssociationID.NotFound"

    def run_step(self, step):
        """Converge one instance; returns (step, association after the call or None)."""
        todo = dict(step)
        for _attempt in range(3):
            try:
                if todo["action"] == ASSOCIATED:
                    return step, self._associate(todo["instance_id"])
                if todo["action"] == REPLACED:
                    if todo["calls"] == [REPLACE]:
                        return step, self._replace(todo["association_id"])
                    return step, self._swap_stopped(todo)
                if todo["action"] == DISASSOCIATED:
                    return step, self._disassociate(todo["association_id"])
                return step, None
            except Exception as exc:  # pylint: disable=broad-except
                if not self._raced(todo, exc):
                    raise
                again, fresh = self._reread(todo)
                if again["action"] == UNCHANGED:
                    # Somebody else already did it (detaching: the profile named is gone).
                    if fresh is None or step["action"] == DISASSOCIATED:
                        return step, None
                    return step, {"AssociationId": fresh["association_id"], "State": fresh["state"],
                                  "IamInstanceProfile": {"Arn": fresh["instance_profile_arn"]}}
                again["before"] = todo["before"]
                todo = again
        raise KeylessError("instance {0} kept changing under this run (another run is converging it too); "
                           "run again.".format(step["instance_id"]))

    def _guarded(self, step):
        if self._stop.is_set():
            return step, None, "skipped"
        try:
            step, association = self.run_step(step)
        except Exception as exc:  # pylint: disable=broad-except
            self._stop.set()
            return step, None, exc
        return step, association, None

    def apply(self, steps):
        """Run every changing step. Returns (done, failures): done is [(step, association)],
        failures [(step, exception or "skipped")].

        The first step that names the profile runs alone (a canary): when EC2 does not know
        the profile yet, only that call waits for it, and when it never does, nothing else
        was attempted. After the first failure no new step starts.
        """
        self._started = self.timing.clock()
        self._deadline = self._started + self.propagation_timeout
        todo = [s for s in steps if s["action"] != UNCHANGED]
        done, failures = [], []

        def record(outcome):
            step, association, problem = outcome
            if problem is None:
                done.append((step, association))
            else:
                failures.append((step, problem))

        # A canary that needs no detach first, where there is one.
        naming = [s for s in todo if s["action"] in (ASSOCIATED, REPLACED)]
        canary = next((s for s in naming if DISASSOCIATE not in s["calls"]), naming[0] if naming else None)
        if canary is not None:
            record(self._guarded(canary))
            todo = [s for s in todo if s is not canary]
        if failures:
            failures.extend((s, "skipped") for s in todo)
        elif todo:
            with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(todo))) as pool:
                for outcome in pool.map(self._guarded, todo):
                    record(outcome)
        return done, failures


def _aws_said(exc):
    if isinstance(exc, KeylessError):
        return exc.message
    if error_code(exc):
        return "AWS said {0}: {1}".format(error_code(exc), error_message(exc))
    return str(exc)


def _failure_sentence(step, problem, profile, propagation_timeout):
    if problem == "skipped":
        return None
    sentence = _failure_cause(step, problem, profile, propagation_timeout)
    restored = getattr(problem, "keyless_restored", None)
    if restored:
        sentence += " Instance {0} is stopped, so the swap detached its profile first; {1!r} was attached to it " \
                    "again.".format(step["instance_id"], profile_name_of(restored))
    return sentence


def _failure_cause(step, problem, profile, propagation_timeout):
    verb = {ASSOCIATED: "attaching", REPLACED: "replacing the profile of",
            DISASSOCIATED: "detaching the profile from"}[step["action"]]
    if isinstance(problem, KeylessError):
        return problem.message
    if isinstance(problem, ProfileGone):
        return ("instance profile {0!r} no longer exists in IAM: it was deleted after this run checked it, while "
                "the run waited {1:.0f} s for EC2 to know it (AWS said {2}). Create it again "
                "(keyless.aws.iam_instance_profile) or name another profile, and run again.".format(
                    problem.name, problem.waited, _aws_said(problem.last_error)[len("AWS said "):]))
    if is_propagation_error(problem):
        return ("EC2 does not know instance profile {0!r} yet (AWS said {1}: {2}) and still did not after "
                "{3:g} s of retries; IAM changes can take a few minutes to reach EC2. "
                "Run again later, or raise propagation_timeout.".format(
                    profile["InstanceProfileName"], error_code(problem), error_message(problem),
                    propagation_timeout))
    if error_code(problem):
        return "{0} {1} failed: AWS said {2}: {3}".format(verb, step["instance_id"], error_code(problem),
                                                          error_message(problem))
    return "{0} {1} failed: {2}".format(verb, step["instance_id"], problem)


# ---- waiting -------------------------------------------------------------------------------


def wait_for(ec2, expectations, timeout, timing, what):
    """Poll the associations of the instances in ``expectations`` ({instance_id: predicate
    (associations) -> bool}) until every predicate holds; only the instances not there yet
    are read again. Returns {instance_id: associations} as last read.

    The first read happens at once (no sleep), so where AWS is already done this costs one
    batched read. On timeout, fails naming the instances and their states.
    """
    started = timing.clock()
    interval = timing.poll_interval
    remaining = dict(expectations)
    latest = {}
    while True:
        read = describe_associations(ec2, list(remaining))
        for instance_id in remaining:
            latest[instance_id] = read.get(instance_id, [])
        remaining = dict((i, ok) for i, ok in remaining.items() if not ok(latest[i]))
        if not remaining:
            return latest
        if timing.clock() - started + interval > timeout:
            states = []
            for instance_id in sorted(remaining)[:20]:
                seen = "/".join(sorted(set(a.get("State") for a in latest[instance_id]))) or "no association"
                states.append("{0} ({1})".format(instance_id, seen))
            raise KeylessError(
                "wait_timeout: after {0:g} s, {1} instance(s) are still not {2}: {3}. AWS may still finish; "
                "run the task again to check, or raise wait_timeout.".format(
                    timeout, len(remaining), what, ", ".join(states)),
                param="wait_timeout", pending_instance_ids=sorted(remaining),
            )
        timing.sleep(interval)
        interval = min(interval * 2, timing.max_poll_interval)


def _has_profile(arn):
    def check(associations):
        return any(a.get("State") == "associated" and (a.get("IamInstanceProfile") or {}).get("Arn") == arn
                   for a in associations)
    return check


def _has_none(associations):
    return not any(a.get("State") in ACTIVE_ASSOCIATION_STATES + ("disassociating",) for a in associations)


# ---- which profile -------------------------------------------------------------------------


def _check_given_arn(profile, given_arn, param):
    if given_arn and profile["Arn"] != given_arn:
        raise KeylessError(
            "{0}: the ARN {1!r} does not match instance profile {2!r} of this account, whose ARN is {3!r}.".format(
                param, given_arn, profile["InstanceProfileName"], profile["Arn"]),
            param=param,
        )


def wanted_profile(iam, params, warnings):
    """The profile to attach (boto3 shape), checked before any change: it exists, holds a role
    (``require_role``) and that role trusts EC2 (``trust_check``). Returns (profile, trusts)."""
    if params.get("role"):
        param = "role"
        if params.get("role_arn"):
            role = get_role(iam, params["role"])
            if role is not None and role["Arn"] != params["role_arn"]:
                raise KeylessError("role: the ARN {0!r} does not match role {1!r} of this account ({2}).".format(
                    params["role_arn"], params["role"], role["Arn"]), param="role")
        profile = profile_for_role(iam, params["role"], param="role")
    else:
        param = "instance_profile"
        profile = resolve_profile(iam, params["instance_profile"], param="instance_profile")
        _check_given_arn(profile, params.get("instance_profile_arn"), param)
    name = profile["InstanceProfileName"]
    roles = profile.get("Roles") or []
    if not roles:
        if params.get("require_role", True):
            raise KeylessError(
                "{0}: instance profile {1!r} holds no role, so instances given it get no credentials. Add a "
                "role to it (keyless.aws.iam_instance_profile with role: ...), or set require_role: false to "
                "attach it anyway.".format(param, name),
                param=param,
            )
        return profile, None
    trust_check = params.get("trust_check", "fail")
    if trust_check == "skip":
        return profile, None
    role = roles[0]
    if not role.get("AssumeRolePolicyDocument"):
        role = get_role(iam, role["RoleName"]) or role
    analysis = role_trust(role)
    if analysis["trusts_ec2"]:
        if analysis["wildcard_principal"]:
            warnings.append("role {0!r} of instance profile {1!r} lets any principal ('*') assume it; name the "
                            "principals it must trust instead.".format(role["RoleName"], name))
        elif analysis["conditional"]:
            warnings.append("role {0!r} of instance profile {1!r} trusts {2} only under a Condition; make sure "
                            "EC2 meets it.".format(role["RoleName"], name, analysis["principal"]))
        return profile, True
    message = ("{0}: role {1!r} of instance profile {2!r} does not trust EC2, so instances given this profile get "
               "no credentials: {3}.".format(param, role["RoleName"], name, analysis["problem"]))
    if trust_check == "fail":
        raise KeylessError(message + " Fix the role's trust policy, or set trust_check to warn or skip.",
                           param=param)
    warnings.append(message)
    return profile, False


class Matcher:
    """For detaching and reading: which associations name the profile the user named.

    A profile that no longer exists still matches its associations by name (a name is unique
    in an account). When it does not exist but a role of that name does, ``role_error`` holds
    the "is a role, not a profile" failure, raised by the caller only if nothing matched (the
    role and a deleted profile often share a name)."""

    def __init__(self, predicate, profile=None, role_error=None):
        self.predicate = predicate
        self.profile = profile
        self.role_error = role_error

    def __call__(self, arn):
        return self.predicate(arn)


def profile_matcher(iam, instance_profile=None, instance_profile_arn=None, role=None, warnings=None):
    if role:
        if get_role(iam, role) is None:
            if warnings is not None:
                warnings.append("role: there is no IAM role named {0!r}, so no instance carries a profile that "
                                "holds it.".format(role))
            return Matcher(lambda arn: False)
        arns = set(p["Arn"] for p in profiles_for_role(iam, role))
        return Matcher(lambda arn: arn in arns)
    profile = get_profile(iam, instance_profile)
    if profile is not None:
        _check_given_arn(profile, instance_profile_arn, "instance_profile")
        return Matcher(lambda arn: arn == profile["Arn"], profile)
    if instance_profile_arn:
        return Matcher(lambda arn: arn == instance_profile_arn)
    role_error = None
    if get_role(iam, instance_profile) is not None:
        try:
            resolve_profile(iam, instance_profile, param="instance_profile")
        except KeylessError as error:
            role_error = error
    return Matcher(lambda arn: profile_name_of(arn) == instance_profile, role_error=role_error)


# ---- the whole job of keyless.aws.ec2_profile_association ----------------------------------


def converge(ec2, iam, params, check_mode, region=None, timing=None):
    """Converge the selected instances; returns the module's result.

    ``params``: the module's validated parameters: instance_ids, filters, instance_profile (a
    name) and instance_profile_arn (when given as an ARN), or role / role_arn, state,
    require_role, trust_check, propagation_timeout, wait, wait_timeout, max_concurrency.
    """
    params = with_defaults(params)
    timing = timing or Timing()
    warnings = []
    state = params["state"]
    profile, trusts, matches = _what_to_converge(iam, params, warnings)
    instances = _select(ec2, params, region, timing, warnings)
    current = _current_associations(ec2, [i["InstanceId"] for i in instances], params["wait_timeout"], timing)
    steps = plan([i["InstanceId"] for i in instances], current, state, profile["Arn"] if state == "present" else None,
                 matches, dict((i["InstanceId"], state_of(i)) for i in instances))
    if matches is not None and matches.role_error and not any(s["action"] == DISASSOCIATED for s in steps):
        _nothing_to_detach_for_role(iam, params["instance_profile"], matches.role_error, warnings)
    changed = any(s["action"] != UNCHANGED for s in steps)
    result = {
        "changed": changed,
        "instance_profile": _profile_summary(profile),
        "role_trusts_ec2": trusts,
        "diff": {
            "before": dict((s["instance_id"], s["before"]) for s in steps),
            "after": dict((s["instance_id"], s["after"]) for s in steps),
        },
        "warnings": warnings,
    }
    if check_mode or not changed:
        entries = [predicted_entry(s, (current[s["instance_id"]] or {}).get("state"), params["wait"]) for s in steps]
    else:
        entries = _apply(ec2, iam, profile, matches, steps, current, params, timing)
    result.update(associations=entries, summary=summarize(entries))
    return result


def _what_to_converge(iam, params, warnings):
    """(profile, role_trusts_ec2, matcher): the profile to attach, checked (state present), or
    the matcher of the associations to detach (state absent)."""
    if params["state"] == "present":
        profile, trusts = wanted_profile(iam, params, warnings)
        return profile, trusts, None
    if params.get("instance_profile") or params.get("role"):
        matches = profile_matcher(iam, params.get("instance_profile"), params.get("instance_profile_arn"),
                                  params.get("role"), warnings)
        return matches.profile, None, matches
    return None, None, None


def _select(ec2, params, region, timing, warnings):
    """The selected instances, pending and stopping ones waited out (EC2 attaches profiles to
    running or stopped instances only)."""
    instances = select_instances(ec2, params.get("instance_ids"), params.get("filters"), region,
                                 gone_reason=GONE_REASON)
    if not instances and not params.get("instance_ids"):
        warnings.append("filters: no instance matches {0}; nothing to do.".format(params.get("filters")))
    return wait_for_states(ec2, instances, params["wait_timeout"], timing)


def _current_associations(ec2, ids, wait_timeout, timing):
    """{instance_id: current association or None}, batched; any association in flight is let
    settle before the plan is made on it."""
    associations = describe_associations(ec2, ids)
    unsettled = [i for i in ids if not is_settled(associations.get(i))]
    if unsettled:
        associations.update(wait_for(ec2, dict((i, is_settled) for i in unsettled), wait_timeout, timing,
                                     "settled (an association was already in flight)"))
    return dict((i, current_association(associations.get(i))) for i in ids)


def _nothing_to_detach_for_role(iam, name, role_error, warnings):
    """state absent named a role as instance_profile and nothing matched: a role that profiles
    hold means the user meant one of those (fail); a role no profile holds (its profile was
    detached and deleted, say by an earlier run) leaves nothing to detach (warn)."""
    if profiles_for_role(iam, name):
        raise role_error
    warnings.append("instance_profile: there is no instance profile named {0!r} (only a role of that name, "
                    "which no profile holds), so no instance carries it; nothing to detach.".format(name))


def _apply(ec2, iam, profile, matches, steps, current, params, timing):
    """Run the plan, then (``wait``) wait until AWS says it is done; returns the entries."""
    applier = Applier(ec2, profile, params["max_concurrency"], params["propagation_timeout"], timing, matches,
                      iam=iam, wait_timeout=params["wait_timeout"])
    done, failures = applier.apply(steps)
    after_call = dict((step["instance_id"], association) for step, association in done)
    entries = []
    for step in steps:
        if step["action"] == UNCHANGED:
            entries.append(entry_for(step, step["association_id"], (current[step["instance_id"]] or {}).get("state")))
        elif step["instance_id"] in after_call:
            association = after_call[step["instance_id"]] or {}
            default_id = step["association_id"] if step["action"] == DISASSOCIATED else None
            entries.append(entry_for(step, association.get("AssociationId", default_id),
                                     association.get("State", "disassociated")))
    if failures:
        raise _failure(failures, done, entries, profile, applier.propagation_timeout)
    if params["wait"]:
        _wait_done(ec2, steps, entries, profile, params["wait_timeout"], timing)
    return entries


def _failure(failures, done, entries, profile, propagation_timeout):
    sentences = []
    for step, problem in failures:
        sentence = _failure_sentence(step, problem, profile, propagation_timeout)
        if sentence and sentence not in sentences:
            sentences.append(sentence)
    not_done = [step["instance_id"] for step, _problem in failures]
    if done:
        outcome = ("{0} of {1} instance(s) to change were converged (listed in associations); {2} were not: "
                   "{3}. Run the task again to finish.".format(
                       len(done), len(done) + len(not_done), len(not_done), ids_text(not_done)))
    else:
        outcome = "No instance was changed."
    codes = [error_code(getattr(p, "last_error", p)) for _s, p in failures]
    return KeylessError("{0} {1}".format(" ".join(sentences), outcome),
                        associations=entries, summary=summarize(entries), failed_instance_ids=not_done,
                        code=next((c for c in codes if c), None))


def _wait_done(ec2, steps, entries, profile, wait_timeout, timing):
    """Wait until DescribeIamInstanceProfileAssociations (the truth) shows every change; the
    entries get the final association ids and states."""
    expectations = {}
    for step in steps:
        if step["action"] in (ASSOCIATED, REPLACED):
            expectations[step["instance_id"]] = _has_profile(profile["Arn"])
        elif step["action"] == DISASSOCIATED:
            expectations[step["instance_id"]] = _has_none
    try:
        final = wait_for(ec2, expectations, wait_timeout, timing, "attached or detached as asked")
    except KeylessError as error:
        error.details.update(associations=entries, summary=summarize(entries))
        raise
    for entry in entries:
        if entry["instance_id"] not in final:
            continue
        if entry["action"] == DISASSOCIATED:
            entry["state"] = "disassociated"
        else:
            now = current_association(final[entry["instance_id"]])
            entry.update(association_id=now["association_id"], state=now["state"])


def _profile_summary(profile):
    if not profile:
        return None
    roles = profile.get("Roles") or []
    return {
        "instance_profile_name": profile.get("InstanceProfileName"),
        "arn": profile.get("Arn"),
        "role_name": roles[0]["RoleName"] if roles else None,
    }


# ---- the whole job of keyless.aws.ec2_profile_association_info -----------------------------


def read_associations(ec2, iam, params, region=None):
    """Associations of the instances named by ``instance_ids`` / ``filters`` (an entry per
    instance, null fields when it carries no profile), narrowed to ``instance_profile`` when
    given; without instances, every association of that profile (or of the region)."""
    warnings = []
    matches = None
    if params.get("instance_profile"):
        matches = profile_matcher(iam, params["instance_profile"], params.get("instance_profile_arn"),
                                  warnings=warnings)
    if params.get("instance_ids") or params.get("filters"):
        instances = select_instances(ec2, params.get("instance_ids"), params.get("filters"), region, allow_gone=True)
        ids = [i["InstanceId"] for i in instances]
        associations = describe_associations(ec2, ids)
    else:
        associations = describe_associations(ec2)
        ids = sorted(associations)
    entries = []
    for instance_id in ids:
        now = current_association(associations.get(instance_id))
        if matches is not None and (now is None or not matches(now["instance_profile_arn"])):
            continue
        entries.append({
            "instance_id": instance_id,
            "association_id": now["association_id"] if now else None,
            "instance_profile_arn": now["instance_profile_arn"] if now else None,
            "state": now["state"] if now else None,
        })
    if matches is not None and matches.role_error and not entries:
        raise matches.role_error
    return {"changed": False, "associations": entries, "warnings": warnings}
