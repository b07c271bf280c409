# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Applying a plan of associations (association_plan.py) and waiting for AWS to finish it.

The first step that names the profile runs alone (a canary): when EC2 does not know the profile
yet, only that call waits for it. Then the rest, with bounded parallelism (a thread pool; boto3
clients are thread-safe). Each call goes through the client's retry policy; calls that name the
profile also retry every IAM-to-EC2 propagation form until ``propagation_timeout``, asking IAM
between retries whether the profile still exists (EC2 answers alike for a fresh and a deleted
profile). A swap on a stopped instance is disassociate, wait, associate; when the attach fails,
the old profile is attached again.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.keyless.aws.plugins.module_utils.association_plan import ASSOCIATED
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import DISASSOCIATE
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import DISASSOCIATED
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import REPLACE
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import REPLACED
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import UNCHANGED
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import is_propagation_error
from ansible_collections.keyless.aws.plugins.module_utils.association_plan import plan
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import Timing
from ansible_collections.keyless.aws.plugins.module_utils.common import denied_note
from ansible_collections.keyless.aws.plugins.module_utils.common import error_code
from ansible_collections.keyless.aws.plugins.module_utils.common import error_message
from ansible_collections.keyless.aws.plugins.module_utils.common import poll
from ansible_collections.keyless.aws.plugins.module_utils.common import retrying
from ansible_collections.keyless.aws.plugins.module_utils.instances import ACTIVE_ASSOCIATION_STATES
from ansible_collections.keyless.aws.plugins.module_utils.instances import current_association
from ansible_collections.keyless.aws.plugins.module_utils.instances import describe_associations
from ansible_collections.keyless.aws.plugins.module_utils.instances import instances_by_id
from ansible_collections.keyless.aws.plugins.module_utils.instances import state_of
from ansible_collections.keyless.aws.plugins.module_utils.profiles import get_profile
from ansible_collections.keyless.aws.plugins.module_utils.profiles import profile_name_of
from ansible_collections.keyless.aws.plugins.module_utils.profiles import while_iam_holds


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
        self.ec2 = retrying(ec2)
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

    def _profile_exists(self, arn):
        if self.iam is None:
            return True
        found = get_profile(self.iam, profile_name_of(arn))
        return found is not None and found.get("Arn") == arn

    def _call_naming_profile(self, name, arn=None, **kwargs):
        """EC2 call ``name`` with the profile (``arn``, else the one to attach): the client's
        retries plus the propagation forms while the deadline lasts and IAM still has the profile."""
        arn = arn or self.profile["Arn"]
        gone = {}
        not_yet = while_iam_holds(is_propagation_error, lambda: self._profile_exists(arn), self.timing.clock,
                                  self._deadline, gone)
        patient = self.ec2.with_extra(not_yet, deadline=max(self.ec2.policy.deadline, self.propagation_timeout))
        try:
            return getattr(patient, name)(IamInstanceProfile={"Arn": arn}, **kwargs)
        except Exception:  # pylint: disable=broad-except
            if gone:
                raise ProfileGone(profile_name_of(arn), self.waited(), gone["error"])
            raise

    def _associate(self, instance_id, arn=None):
        response = self._call_naming_profile("associate_iam_instance_profile", arn, InstanceId=instance_id)
        return response["IamInstanceProfileAssociation"]

    def _replace(self, association_id):
        response = self._call_naming_profile("replace_iam_instance_profile_association", AssociationId=association_id)
        return response["IamInstanceProfileAssociation"]

    def _disassociate(self, association_id):
        response = self.ec2.disassociate_iam_instance_profile(AssociationId=association_id)
        return response["IamInstanceProfileAssociation"]

    def _swap_stopped(self, step):
        """Disassociate, wait until the old association is gone, associate the new profile. When
        the new profile cannot be attached, the old one is put back (never left detached)."""
        self._disassociate(step["association_id"])
        wait_for(self.ec2, {step["instance_id"]: has_none}, self.wait_timeout, self.timing,
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
            instance = instances_by_id(self.ec2, [instance_id]).get(instance_id)
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
        return "AWS said {0}: {1}{2}".format(error_code(exc), error_message(exc).rstrip(), denied_note(exc))
    return str(exc)


def failure_sentence(step, problem, profile, propagation_timeout):
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
        return "{0} {1} failed: AWS said {2}: {3}{4}".format(
            verb, step["instance_id"], error_code(problem), error_message(problem).rstrip(), denied_note(problem))
    return "{0} {1} failed: {2}".format(verb, step["instance_id"], problem)


# ---- waiting -------------------------------------------------------------------------------


def wait_for(ec2, expectations, timeout, timing, what):
    """Poll the associations of the instances in ``expectations`` ({instance_id: predicate
    (associations) -> bool}) until every predicate holds; only the instances not there yet
    are read again. Returns {instance_id: associations} as last read.

    The first read happens at once (no sleep), so where AWS is already done this costs one
    batched read. On timeout, fails naming the instances and their states.
    """
    latest = {}
    remaining = dict(expectations)

    def read():
        found = describe_associations(ec2, list(remaining))
        for instance_id in remaining:
            latest[instance_id] = found.get(instance_id, [])
        for instance_id in [i for i, ok in remaining.items() if ok(latest[i])]:
            del remaining[instance_id]
        return latest

    def timed_out(_latest):
        states = []
        for instance_id in sorted(remaining)[:20]:
            seen = "/".join(sorted(set(a.get("State") for a in latest[instance_id]))) or "no association"
            states.append("{0} ({1})".format(instance_id, seen))
        return KeylessError(
            "wait_timeout: after {0:g} s, {1} instance(s) are still not {2}: {3}. AWS may still finish; "
            "run the task again to check, or raise wait_timeout.".format(
                timeout, len(remaining), what, ", ".join(states)),
            param="wait_timeout", pending_instance_ids=sorted(remaining),
        )

    return poll(read, lambda _latest: not remaining, timeout, timing, timed_out)


def has_profile(arn):
    def check(associations):
        return any(a.get("State") == "associated" and (a.get("IamInstanceProfile") or {}).get("Arn") == arn
                   for a in associations)
    return check


def has_none(associations):
    return not any(a.get("State") in ACTIVE_ASSOCIATION_STATES + ("disassociating",) for a in associations)
