# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Instance profile associations: which profile each EC2 instance carries, and converging a
whole fleet to the profile it should carry.

Three steps, kept apart so each can be tested on its own:

* **read**, batched: instances are described by ``instance-id`` filter in chunks (or by the
  user's filters), associations in chunks too (or one region-wide scan for big fleets); never
  one call per instance. The truth is ``DescribeIamInstanceProfileAssociations``, never the
  instance's own ``IamInstanceProfile`` (moto does not update it on replace; AWS lags).
* **plan**, pure: current associations + what is wanted -> one step per instance
  (``associated``, ``replaced``, ``disassociated``, ``unchanged``). See ``plan``.
* **apply**, with bounded parallelism (a thread pool; boto3 clients are thread-safe): one
  mutating call per instance that changes, each through the client's retry policy plus, for
  calls that name the profile, the IAM-to-EC2 propagation error retried until
  ``propagation_timeout``. A swap is ``ReplaceIamInstanceProfileAssociation``, never
  disassociate-then-associate, so the instance is never without credentials.

Functions take boto3 clients (``RetryingClient`` in the modules) and return plain data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryingClient
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryPolicy
from ansible_collections.keyless.aws.plugins.module_utils.common import aws_failure
from ansible_collections.keyless.aws.plugins.module_utils.common import error_code
from ansible_collections.keyless.aws.plugins.module_utils.common import error_message
from ansible_collections.keyless.aws.plugins.module_utils.common import paginate
from ansible_collections.keyless.aws.plugins.module_utils.common import parse_arn
from ansible_collections.keyless.aws.plugins.module_utils.profiles import get_profile
from ansible_collections.keyless.aws.plugins.module_utils.profiles import get_role
from ansible_collections.keyless.aws.plugins.module_utils.profiles import profile_for_role
from ansible_collections.keyless.aws.plugins.module_utils.profiles import profiles_for_role
from ansible_collections.keyless.aws.plugins.module_utils.profiles import resolve_profile
from ansible_collections.keyless.aws.plugins.module_utils.profiles import role_trust

try:
    from ansible_collections.amazon.aws.plugins.module_utils.transformation import ansible_dict_to_boto3_filter_list
except ImportError:  # pragma: no cover - amazon.aws is a declared dependency
    ansible_dict_to_boto3_filter_list = None

# At most this many values in one describe filter (EC2 refuses long value lists).
CHUNK_SIZE = 200
# Page size of the describe calls (the most each API allows).
PAGE_SIZE = 1000

ASSOCIATED = "associated"
REPLACED = "replaced"
DISASSOCIATED = "disassociated"
UNCHANGED = "unchanged"
ACTIONS = (ASSOCIATED, REPLACED, DISASSOCIATED, UNCHANGED)

# Association states (DescribeIamInstanceProfileAssociations).
ACTIVE_STATES = ("associating", "associated")
TRANSITIONAL_STATES = ("associating", "disassociating")
# Instance states that can never be given a profile again.
GONE_INSTANCE_STATES = ("shutting-down", "terminated")
LIVE_INSTANCE_STATES = ("pending", "running", "stopping", "stopped")

_PROPAGATION = re.compile(r"Invalid IAM Instance Profile (name|ARN)", re.I)


def is_propagation_error(exc):
    """EC2 does not know the profile yet: ``InvalidParameterValue ... Invalid IAM Instance
    Profile name`` (or ``ARN``). Right after a profile is created this means "not yet"."""
    return error_code(exc) == "InvalidParameterValue" and bool(_PROPAGATION.search(error_message(exc)))


def chunks(items, size=CHUNK_SIZE):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _ids_text(ids, limit=20):
    ids = list(ids)
    text = ", ".join(ids[:limit])
    if len(ids) > limit:
        text += " and {0} more".format(len(ids) - limit)
    return text


def check_filters(filters, param="filters"):
    """EC2 filters: a dict of filter names to a value or a list of values."""
    if filters is None:
        return None
    for name, value in filters.items():
        if not isinstance(name, str) or not name.strip():
            raise KeylessError("{0}: filter names must be non-empty strings, such as 'tag:team'.".format(param),
                               param=param)
        values = value if isinstance(value, list) else [value]
        if not values or any(v is None or isinstance(v, (dict, list)) for v in values):
            raise KeylessError(
                "{0}: filter {1!r} needs a value or a list of values (strings), for example "
                "{{'tag:team': 'web'}} or {{'instance-state-name': ['running', 'stopped']}}.".format(param, name),
                param=param,
            )
    return filters


# ---- reading -----------------------------------------------------------------------------


def boto3_filters(filters):
    """Ansible's filter dict ({"tag:team": "web", "instance-state-name": ["running"]}) as EC2 wants it."""
    return ansible_dict_to_boto3_filter_list(filters) if filters else []


def _describe_instances(ec2, filters):
    try:
        reservations = paginate(ec2.describe_instances, "Reservations", token_in="NextToken",
                                token_out="NextToken", Filters=filters, MaxResults=PAGE_SIZE)
    except Exception as exc:  # pylint: disable=broad-except
        raise aws_failure(exc, "describing instances")
    found = {}
    for reservation in reservations:
        for instance in reservation.get("Instances") or []:
            found[instance["InstanceId"]] = {
                "instance_id": instance["InstanceId"],
                "state": (instance.get("State") or {}).get("Name"),
            }
    return found


def select_instances(ec2, instance_ids=None, filters=None, region=None, allow_gone=False):
    """The instances a task is about, as [{instance_id, state}], before anything changes.

    ``instance_ids`` are described in chunks through the ``instance-id`` filter (so that every
    id that does not exist is found in the same calls, not one error at a time); with
    ``filters`` too, only those that match them are kept. Ids that do not exist, or (unless
    ``allow_gone``) instances terminated or shutting down, fail naming them. ``filters`` alone
    select live instances only, unless they say otherwise with ``instance-state-name``.
    """
    user_filters = boto3_filters(filters)
    where = " in {0}".format(region) if region else ""
    if instance_ids:
        found = {}
        for chunk in chunks(instance_ids):
            found.update(_describe_instances(ec2, user_filters + [{"Name": "instance-id", "Values": chunk}]))
        missing = [i for i in instance_ids if i not in found]
        if missing and user_filters:
            # Tell "does not exist" from "does not match the filters" (only when something is missing).
            exist = {}
            for chunk in chunks(missing):
                exist.update(_describe_instances(ec2, [{"Name": "instance-id", "Values": chunk}]))
            missing = [i for i in missing if i not in exist]
        if missing:
            raise KeylessError(
                "instance_ids: {0} instance(s) do not exist{1}: {2}. Check the ids and the region. "
                "Nothing was changed.".format(len(missing), where, _ids_text(missing)),
                param="instance_ids", missing_instance_ids=missing,
            )
        selected = [found[i] for i in instance_ids if i in found]
        gone = [i for i in selected if i["state"] in GONE_INSTANCE_STATES]
        if gone and not allow_gone:
            raise KeylessError(
                "instance_ids: {0} instance(s) are terminated or shutting down, and a profile cannot be "
                "attached to or detached from them: {1}. Remove them from instance_ids. Nothing was "
                "changed.".format(len(gone), ", ".join("{0} ({1})".format(i["instance_id"], i["state"]) for i in gone[:20])),
                param="instance_ids", gone_instance_ids=[i["instance_id"] for i in gone],
            )
        return selected
    if not any(f["Name"] == "instance-state-name" for f in user_filters):
        user_filters.append({"Name": "instance-state-name", "Values": list(LIVE_INSTANCE_STATES)})
    found = _describe_instances(ec2, user_filters)
    selected = [found[i] for i in sorted(found)]
    gone = [i for i in selected if i["state"] in GONE_INSTANCE_STATES]
    if gone and not allow_gone:
        raise KeylessError(
            "filters: they select {0} instance(s) that are terminated or shutting down: {1}. Narrow the "
            "instance-state-name filter to live states. Nothing was changed.".format(
                len(gone), _ids_text(i["instance_id"] for i in gone)),
            param="filters",
        )
    return selected


def describe_associations(ec2, instance_ids=None):
    """{instance_id: [association, ...]} for ``instance_ids`` (every instance that has one when
    None), in boto3 shape, associations in state ``disassociated`` left out.

    Up to CHUNK_SIZE instances: one ``instance-id`` filtered call. More: one region-wide scan
    in pages of PAGE_SIZE, which for a fleet is fewer calls than chunks of CHUNK_SIZE.
    """
    kwargs = {"MaxResults": PAGE_SIZE}
    wanted = None
    if instance_ids is not None:
        wanted = set(instance_ids)
        if not wanted:
            return {}
        if len(wanted) <= CHUNK_SIZE:
            kwargs["Filters"] = [{"Name": "instance-id", "Values": sorted(wanted)}]
    try:
        items = paginate(ec2.describe_iam_instance_profile_associations, "IamInstanceProfileAssociations",
                         token_in="NextToken", token_out="NextToken", **kwargs)
    except Exception as exc:  # pylint: disable=broad-except
        raise aws_failure(exc, "reading instance profile associations")
    result = {}
    for association in items:
        instance_id = association.get("InstanceId")
        if association.get("State") == "disassociated":
            continue
        if wanted is not None and instance_id not in wanted:
            continue
        result.setdefault(instance_id, []).append(association)
    return result


def current_association(associations):
    """The association an instance carries now (associating or associated), simplified to
    {association_id, instance_profile_arn, state}; None when it carries none."""
    active = [a for a in associations or [] if a.get("State") in ACTIVE_STATES]
    if not active:
        return None
    # During a swap AWS can briefly list the old (disassociating) and the new one; with two
    # active ones (should not happen) the newest wins.
    latest = sorted(active, key=lambda a: str(a.get("Timestamp") or ""))[-1]
    return {
        "association_id": latest.get("AssociationId"),
        "instance_profile_arn": (latest.get("IamInstanceProfile") or {}).get("Arn"),
        "state": latest.get("State"),
    }


def is_settled(associations):
    """Nothing in flight: no association still associating, and none disassociating unless a
    new one is already active (the old half of a swap)."""
    associations = associations or []
    if any(a.get("State") == "associating" for a in associations):
        return False
    if any(a.get("State") == "disassociating" for a in associations):
        return any(a.get("State") == "associated" for a in associations)
    return True


def profile_name_of(arn):
    parts = parse_arn(arn)
    return parts["name"] if parts else None


# ---- planning (pure) -----------------------------------------------------------------------


def plan(instance_ids, current, state, profile_arn=None, matches=None):
    """What to do on each instance: a list of steps, in the order of ``instance_ids``.

    ``current``: {instance_id: None or {association_id, instance_profile_arn, state}} (see
    ``current_association``); ``state``: ``present`` (``profile_arn`` wanted everywhere) or
    ``absent`` (detach where ``matches(arn)`` is true; every association when ``matches`` is
    None). Each step: {instance_id, action, association_id, before, after} where before/after
    are profile ARNs (None: no profile) and association_id is the current association's.
    """
    if state == "present" and not profile_arn:
        raise ValueError("state present needs the profile ARN")
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
        steps.append({"instance_id": instance_id, "action": action, "association_id": association_id,
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
    return _entry(step, association_id, state)


def _entry(step, association_id, state):
    return {
        "instance_id": step["instance_id"],
        "action": step["action"],
        "association_id": association_id,
        "instance_profile_arn": step["after"],
        "previous_instance_profile_arn": step["before"],
        "state": state,
    }


# ---- applying ------------------------------------------------------------------------------


class _Timing:
    """Sleep and clock, replaceable in tests (nothing in the tests ever really sleeps)."""

    def __init__(self, sleep=time.sleep, clock=time.monotonic, poll_interval=1.0, max_poll_interval=10.0):
        self.sleep = sleep
        self.clock = clock
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval


class Applier:
    """Runs the steps of a plan: one mutating call per changing instance, bounded parallelism."""

    def __init__(self, ec2, profile, max_concurrency=10, propagation_timeout=120.0, timing=None, matches=None):
        if isinstance(ec2, RetryingClient):
            self.raw, self.policy = ec2.client, ec2.policy
        else:
            self.raw, self.policy = ec2, RetryPolicy()
        self.ec2 = ec2
        self.profile = profile
        self.matches = matches  # state absent: which profiles to detach (None: any)
        self.max_concurrency = max(1, int(max_concurrency))
        self.propagation_timeout = float(propagation_timeout)
        self.timing = timing or _Timing()
        self._deadline = None
        self._stop = threading.Event()

    def _profile_policy(self):
        """The client's retry policy, plus the propagation error while the deadline lasts."""
        clock = self.timing.clock
        deadline = self._deadline

        def not_yet(exc):
            return is_propagation_error(exc) and clock() < deadline

        return self.policy.with_extra(not_yet, deadline=max(self.policy.deadline, self.propagation_timeout))

    def _associate(self, instance_id):
        response = self._profile_policy().call(
            self.raw.associate_iam_instance_profile,
            InstanceId=instance_id, IamInstanceProfile={"Arn": self.profile["Arn"]})
        return response["IamInstanceProfileAssociation"]

    def _replace(self, association_id):
        response = self._profile_policy().call(
            self.raw.replace_iam_instance_profile_association,
            AssociationId=association_id, IamInstanceProfile={"Arn": self.profile["Arn"]})
        return response["IamInstanceProfileAssociation"]

    def _disassociate(self, association_id):
        response = self.policy.call(self.raw.disassociate_iam_instance_profile, AssociationId=association_id)
        return response["IamInstanceProfileAssociation"]

    def _reread(self, step):
        """A race (another run changed the instance since we read it): read it again and re-plan it."""
        fresh = current_association(describe_associations(self.ec2, [step["instance_id"]]).get(step["instance_id"]))
        if step["action"] == DISASSOCIATED:
            again = plan([step["instance_id"]], {step["instance_id"]: fresh}, "absent", matches=self.matches)[0]
        else:
            again = plan([step["instance_id"]], {step["instance_id"]: fresh}, "present", self.profile["Arn"])[0]
        return again, fresh

    def run_step(self, step):
        """Converge one instance; returns (step, association after the call or None)."""
        todo = dict(step)
        for _attempt in range(3):
            try:
                if todo["action"] == ASSOCIATED:
                    return step, self._associate(todo["instance_id"])
                if todo["action"] == REPLACED:
                    return step, self._replace(todo["association_id"])
                if todo["action"] == DISASSOCIATED:
                    return step, self._disassociate(todo["association_id"])
                return step, None
            except Exception as exc:  # pylint: disable=broad-except
                code = error_code(exc)
                raced = ((todo["action"] == ASSOCIATED and code == "IncorrectState")
                         or (todo["action"] in (REPLACED, DISASSOCIATED) and code == "InvalidAssociationID.NotFound"))
                if not raced:
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
        self._deadline = self.timing.clock() + self.propagation_timeout
        todo = [s for s in steps if s["action"] != UNCHANGED]
        done, failures = [], []

        def record(outcome):
            step, association, problem = outcome
            if problem is None:
                done.append((step, association))
            else:
                failures.append((step, problem))

        canary = next((s for s in todo if s["action"] in (ASSOCIATED, REPLACED)), None)
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


def _failure_sentence(step, problem, profile, propagation_timeout):
    if problem == "skipped":
        return None
    verb = {ASSOCIATED: "attaching", REPLACED: "replacing the profile of",
            DISASSOCIATED: "detaching the profile from"}[step["action"]]
    if isinstance(problem, KeylessError):
        return problem.message
    if is_propagation_error(problem):
        return ("EC2 does not know instance profile {0!r} yet (AWS said {1}: {2}) and still did not after "
                "{3:g} s of retries; IAM changes can take a few minutes to reach EC2. Run again later, or "
                "raise propagation_timeout.".format(profile["InstanceProfileName"], error_code(problem),
                                                    error_message(problem), propagation_timeout))
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
    return not any(a.get("State") in ACTIVE_STATES + ("disassociating",) for a in associations)


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

    ``params``: instance_ids (validated), filters, instance_profile (a name) and
    instance_profile_arn (when given as an ARN), or role / role_arn, state, require_role,
    trust_check, propagation_timeout, wait, wait_timeout, max_concurrency.
    """
    timing = timing or _Timing()
    warnings = []
    state = params.get("state", "present")
    wait = params.get("wait", True)
    wait_timeout = float(params.get("wait_timeout", 300))

    # 1. Everything that can fail on input, before any change.
    profile, trusts, matches = None, None, None
    if state == "present":
        profile, trusts = wanted_profile(iam, params, warnings)
    elif params.get("instance_profile") or params.get("role"):
        matches = profile_matcher(iam, params.get("instance_profile"), params.get("instance_profile_arn"),
                                  params.get("role"), warnings)
        profile = matches.profile
    instances = select_instances(ec2, params.get("instance_ids"), params.get("filters"), region)
    if not instances and not params.get("instance_ids"):
        warnings.append("filters: no instance matches {0}; nothing to do.".format(params.get("filters")))
    ids = [i["instance_id"] for i in instances]

    # 2. Read the associations (batched); let any in flight settle before planning on them.
    associations = describe_associations(ec2, ids)
    unsettled = [i for i in ids if not is_settled(associations.get(i))]
    if unsettled:
        associations.update(wait_for(ec2, dict((i, is_settled) for i in unsettled), wait_timeout, timing,
                                     "settled (an association was already in flight)"))
    current = dict((i, current_association(associations.get(i))) for i in ids)

    # 3. Plan.
    steps = plan(ids, current, state, profile["Arn"] if state == "present" else None, matches)
    if matches is not None and matches.role_error and not any(s["action"] == DISASSOCIATED for s in steps):
        # A role that profiles hold: the user meant one of those. A role no profile holds (its
        # profile was detached and deleted, say by an earlier run): nothing to detach, no error.
        if profiles_for_role(iam, params["instance_profile"]):
            raise matches.role_error
        warnings.append("instance_profile: there is no instance profile named {0!r} (only a role of that name, "
                        "which no profile holds), so no instance carries it; nothing to detach.".format(
                            params["instance_profile"]))
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
        entries = [predicted_entry(s, (current[s["instance_id"]] or {}).get("state"), wait) for s in steps]
        result.update(associations=entries, summary=summarize(entries))
        return result

    # 4. Apply.
    applier = Applier(ec2, profile, params.get("max_concurrency", 10), params.get("propagation_timeout", 120), timing,
                      matches)
    done, failures = applier.apply(steps)
    after_call = dict((step["instance_id"], association) for step, association in done)
    entries = []
    for step in steps:
        if step["action"] == UNCHANGED:
            entries.append(_entry(step, step["association_id"], (current[step["instance_id"]] or {}).get("state")))
        elif step["instance_id"] in after_call:
            association = after_call[step["instance_id"]] or {}
            default_id = step["association_id"] if step["action"] == DISASSOCIATED else None
            entries.append(_entry(step, association.get("AssociationId", default_id),
                                  association.get("State", "disassociated")))
    if failures:
        sentences = []
        for step, problem in failures:
            sentence = _failure_sentence(step, problem, profile, applier.propagation_timeout)
            if sentence and sentence not in sentences:
                sentences.append(sentence)
        not_done = [step["instance_id"] for step, _problem in failures]
        if done:
            outcome = ("{0} of {1} instance(s) to change were converged (listed in associations); {2} were not: "
                       "{3}. Run the task again to finish.".format(
                           len(done), len(done) + len(not_done), len(not_done), _ids_text(not_done)))
        else:
            outcome = "No instance was changed."
        raise KeylessError(
            "{0} {1}".format(" ".join(sentences), outcome),
            associations=entries, summary=summarize(entries), failed_instance_ids=not_done,
            code=next((error_code(p) for _s, p in failures if error_code(p)), None),
        )

    # 5. Wait until AWS says it is done (the truth is DescribeIamInstanceProfileAssociations).
    if wait:
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
    result.update(associations=entries, summary=summarize(entries))
    return result


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
        ids = [i["instance_id"] for i in instances]
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
