"""Where moto 5.2.5 differs from AWS in a way our modules feel, fixed inside moto itself: the moto
fixes (``aws_fidelity``) and the transitional states of instances and associations
(``transitions``).

Both wrap moto's own methods (moto runs in this process), process-wide, hence a switch:
``install`` turns them on for good, a test can turn them on for its own duration with
``with aws_fidelity(): ...``.

**The moto fixes.** While on:

1. ``DescribeIamInstanceProfileAssociations`` honours ``MaxResults`` (moto reads ``MaxItems``,
   which is not an AWS parameter, so it always pages at 100);
2. ``ReplaceIamInstanceProfileAssociation`` gives the instance a new association id and updates
   the instance's own ``IamInstanceProfile``, as AWS does (moto keeps the old id and the old
   attribute);
3. ``RunInstances`` with ``IamInstanceProfile`` and a count above one gives *every* instance the
   profile (moto associates the first instance only);
4. ``CreateLaunchTemplateVersion`` with a ``ClientToken`` already used answers what the first
   call answered and creates nothing (moto ignores the token, so a retried call made a second
   version);
5. ``RemoveRoleFromInstanceProfile`` for a role the profile does not hold answers
   ``NoSuchEntity`` (moto fails with a 500 and an HTML page);
6. associating, replacing and disassociating are atomic per backend: two parallel
   ``AssociateIamInstanceProfile`` calls for one instance give one association and one
   ``IncorrectState``, as on AWS (moto checks, then creates, and the later call silently
   replaces the earlier one);
7. ``associating_reads`` (also a setting of the fault proxy, ``faults.py``): new associations
   (associate, replace) show ``associating`` in the answer of the call and in their first N
   reads, then ``associated``. While it is set it decides, instead of the time below, when the
   associations made meanwhile settle (tests count reads exactly).

**Transitional states** (on by default, by time; moto 5.2.5 puts instances straight into
``running`` / ``stopped`` / ``terminated`` and associations straight into ``associated`` / gone).
"When you launch or start an instance, it enters the pending state and then the running state.
When you stop an instance, it enters the stopping state and then the stopped state. When you
terminate an instance, it enters the shutting-down state and then the terminated state."
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instance-state-changes.html,
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-lifecycle.html; the codes are
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_InstanceState.html):

  ==========================  ==================================  =========================
  call                        state for ``<setting>`` seconds     then
  ==========================  ==================================  =========================
  RunInstances                ``pending`` (0), pending_seconds     ``running`` (16)
  StartInstances (stopped)    ``pending`` (0), pending_seconds     ``running`` (16)
  StopInstances               ``stopping`` (64), stopping_seconds  ``stopped`` (80)
  TerminateInstances          ``shutting-down`` (32),              ``terminated`` (48)
                              shutting_down_seconds
  Associate / Replace         ``associating``,                     ``associated``
                              associating_seconds
  DisassociateIamInstance...  ``disassociating``,                  gone (not listed)
                              disassociating_seconds
  ==========================  ==================================  =========================

The defaults are 0.2 s each. A state settles lazily, by time, whenever moto's backend reads the
instance: every ``InstanceBackend`` read (``get_instance``, ``get_multi_instances_by_id``,
``all_instances``, ``describe_instances``, ``get_reservations_by_instance_ids``,
``get_instance_by_id``, ``describe_instance_status``) goes through ``all_reservations`` in moto
5.2.5, which settles first; so another sandbox module reading
``backend.get_instance(id)._state.name`` sees the settled state, and an
``instance-state-name`` filter filters on it. Associations settle whenever moto's association
backend reads or changes them.

The answers give the state of the moment after the call, as AWS does, whatever the delay (with
a delay of 0 the state has settled already): ``RunInstances`` ``pending``, ``Associate`` /
``Replace`` ``associating``, ``Disassociate`` ``disassociating`` (moto writes these three
itself), and ``StartInstances`` / ``StopInstances`` / ``TerminateInstances`` ``PreviousState``
and ``CurrentState`` (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/
API_InstanceStateChange.html): current is ``pending`` / ``stopping`` / ``shutting-down`` for an
instance the call changes; a call that changes an instance not at all answers the state it is
in (moto writes the transitional state whatever happened): starting a ``pending`` or
``running`` instance, stopping a ``stopping`` or ``stopped`` one, terminating a
``shutting-down`` or ``terminated`` one ("This operation is idempotent; if you terminate an
instance more than once, each call succeeds",
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TerminateInstances.html). Refused,
with ``IncorrectInstanceState``, before any instance of the call changes (our reading: the
reference says so for TerminateInstances only):

* ``StartInstances`` of a ``stopping``, ``shutting-down`` or ``terminated`` instance: "The
  instance 'i-...' is not in a state from which it can be started." (the text EC2 answers,
  reported in https://github.com/burstable-ai/burst/issues/42 and
  https://github.com/canonical/ubuntu-pro-client/pull/1697; which states give it is not
  published: this is our reading, the stricter one);
* ``StopInstances`` of an instance still ``pending`` since its launch: "Instance 'i-...' cannot
  be stopped as it has never reached the 'running' state."
  (https://github.com/cloud-custodian/cloud-custodian/pull/6014; a ``pending`` instance that
  ran before, i.e. restarting, may be stopped, our reading of
  https://github.com/awsdocs/amazon-ec2-user-guide/issues/67, which reports stopping a pending
  instance);
* ``StopInstances`` of a ``shutting-down`` or ``terminated`` instance: "The instance 'i-...' is
  not in a state from which it can be stopped." (exact text not published; this is our reading,
  modelled on the StartInstances text; moto would "stop" a terminated instance).

Associations: the answer of ``AssociateIamInstanceProfile`` and of
``ReplaceIamInstanceProfileAssociation`` is the new association in ``associating``, that of
``DisassociateIamInstanceProfile`` is ``disassociating`` (the examples of
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_AssociateIamInstanceProfile.html,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ReplaceIamInstanceProfileAssociation.html,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DisassociateIamInstanceProfile.html).
A disassociating association is listed as ``disassociating`` and then is gone:
``DescribeIamInstanceProfileAssociations`` lists ``associating | associated | disassociating``
(its ``state`` filter, https://docs.aws.amazon.com/AWSEC2/latest/APIReference/
API_DescribeIamInstanceProfileAssociations.html); ``disassociated``, in the state enumeration,
is never listed (our reading). While it is disassociating the instance keeps its
``IamInstanceProfile`` in DescribeInstances (our reading, the stricter one) and:

* ``AssociateIamInstanceProfile`` for the instance is ``IncorrectState`` "There is an existing
  association for instance i-..." (the text EC2 answers,
  https://github.com/aws-samples/one-observability-demo/issues/201,
  https://github.com/aws-samples/aws-cloud9-bootstrapping-example/issues/5; moto has it);
* ``ReplaceIamInstanceProfileAssociation`` of it is ``IncorrectState`` "The association
  iip-assoc-... is not the active association" (the text EC2 answers for an association it will
  not replace, https://github.com/aws/aws-cli/issues/5251; for a disassociating one, our
  reading);
* ``DisassociateIamInstanceProfile`` of it again answers it, ``disassociating``, and changes
  nothing (not published; our reading). Once gone, it is moto's
  ``InvalidAssociationID.NotFound``.

At launch (``RunInstances`` with a profile) the associations are ``associated`` at once while
the instance is ``pending`` (kept simple: AWS publishes no timing for them). Terminating an
instance disassociates its profile (moto does it), so its association is ``disassociating``
for a moment too.

Setting the delays, from Python::

    sandbox.transitions.configure(pending_seconds=1.0)   # or moto_fixes.configure(...)
    with sandbox.transitions.instant():                  # every delay 0 (plain moto) in the block
        ...
    with sandbox.transitions.configured(stopping_seconds=2): ...
    sandbox.transitions.defaults()

From another process, JSON ``{"pending_seconds": 0.5, ...}``::

    GET    $URL/_sandbox/transitions   the settings
    POST   $URL/_sandbox/transitions   change the settings given (the others keep theirs)
    DELETE $URL/_sandbox/transitions   the defaults again

A sandbox reset restores the defaults. A change applies to transitions that begin after it; a
state already in flight settles at the time it was given.
"""
# This module patches moto's internals (Instance._state and the like):
# pylint: disable=protected-access

import contextlib
import copy
import threading
import time

from .server import json_control

CONTROL_PATH = "/_sandbox/transitions"

# setting -> default seconds
DEFAULT_SECONDS = {
    "pending_seconds": 0.2,
    "stopping_seconds": 0.2,
    "shutting_down_seconds": 0.2,
    "associating_seconds": 0.2,
    "disassociating_seconds": 0.2,
}
MAX_SECONDS = 3600

# (transitional name, code) -> (settled name, code), and the setting that times it.
PENDING, RUNNING = ("pending", 0), ("running", 16)
STOPPING, STOPPED = ("stopping", 64), ("stopped", 80)
SHUTTING_DOWN, TERMINATED = ("shutting-down", 32), ("terminated", 48)

_FIDELITY = {"permanent": False, "depth": 0, "patched": False, "associating_reads": 0}
_PATCH_LOCK = threading.Lock()
# One change of moto's instance and association state at a time per process (moto checks, then
# creates: not atomic). One lock for both: a termination disassociates, an association reads the
# instance.
_STATE_LOCK = threading.RLock()
_ASSOCIATION_LOCK = _STATE_LOCK
# CreateLaunchTemplateVersion's ClientToken: (account, region, token) -> the first answer.
_CLIENT_TOKENS = {}
_TOKEN_LOCK = threading.Lock()


class TransitionsError(ValueError):
    """Settings the transitions cannot use (the control API answers 400)."""


class Transitions:
    """How long each transitional state lasts (seconds; 0: settled at once, as plain moto).

    ``clock`` (monotonic seconds) times every transition; a test may replace it with one it
    moves itself, so that "still in flight" never depends on the speed of the machine."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seconds = dict(DEFAULT_SECONDS)
        self.clock = time.monotonic

    @staticmethod
    def _checked(settings):
        if not isinstance(settings, dict):
            raise TransitionsError("give an object of settings, not {0!r}".format(settings))
        unknown = sorted(set(settings) - set(DEFAULT_SECONDS))
        if unknown:
            raise TransitionsError("unknown setting(s) {0}; known: {1}".format(
                ", ".join(unknown), ", ".join(sorted(DEFAULT_SECONDS))))
        checked = {}
        for name, value in settings.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_SECONDS:
                raise TransitionsError("{0}: give a number of seconds from 0 to {1}, not {2!r}".format(
                    name, MAX_SECONDS, value))
            checked[name] = float(value)
        return checked

    def configure(self, settings=None, **seconds):
        """Change the settings given (``pending_seconds=0.5`` or a dict); the others keep theirs."""
        checked = self._checked(dict(settings or {}, **seconds))
        _patch_moto()
        with self._lock:
            self._seconds.update(checked)
            return dict(self._seconds)

    def defaults(self):
        """Every setting back to its default."""
        with self._lock:
            self._seconds = dict(DEFAULT_SECONDS)
            return dict(self._seconds)

    def settings(self):
        with self._lock:
            return dict(self._seconds)

    def seconds(self, name):
        with self._lock:
            return self._seconds[name]

    def _restore(self, saved):
        with self._lock:
            self._seconds = saved

    @contextlib.contextmanager
    def configured(self, settings=None, **seconds):
        """``with transitions.configured(pending_seconds=1): ...``: the settings before come back after."""
        saved = self.settings()
        self.configure(settings, **seconds)
        try:
            yield self
        finally:
            self._restore(saved)

    def instant(self):
        """``with transitions.instant(): ...``: every delay 0 in the block (states settle at once, as
        plain moto), the settings before come back after."""
        return self.configured(dict((name, 0) for name in DEFAULT_SECONDS))

    def control(self, method, path, body):
        """The control API at /_sandbox/transitions."""
        return json_control(path, CONTROL_PATH, method, body, self.settings, self.configure, self.defaults)


TRANSITIONS = Transitions()
configure = TRANSITIONS.configure
defaults = TRANSITIONS.defaults
settings = TRANSITIONS.settings
configured = TRANSITIONS.configured
instant = TRANSITIONS.instant


# ---- the switch and the count-based associating reads -------------------------------------


def forget_client_tokens():
    with _TOKEN_LOCK:
        _CLIENT_TOKENS.clear()


def _fidelity_on():
    return _FIDELITY["permanent"] or _FIDELITY["depth"] > 0


def associating_reads():
    return _FIDELITY["associating_reads"]


def set_associating_reads(reads):
    """New associations show ``associating`` in their first ``reads`` reads (0: by time again)."""
    _patch_moto()
    _FIDELITY["associating_reads"] = int(reads or 0)


# ---- instance transitions ------------------------------------------------------------------


def _in_transition(backend):
    """The backend's instances whose state has not settled yet: id -> instance."""
    table = getattr(backend, "keyless_transitioning", None)
    if table is None:
        table = backend.keyless_transitioning = {}
    return table


def _begin(backend, instance, transitional, settled, setting):
    """Put ``instance`` in ``transitional`` until ``setting`` seconds have passed, then ``settled``."""
    seconds = TRANSITIONS.seconds(setting)
    if seconds <= 0:
        instance._state.name, instance._state.code = settled
        instance.keyless_settles = None
        _in_transition(backend).pop(instance.id, None)
        if settled == RUNNING:
            instance.keyless_ran = True
        return
    instance._state.name, instance._state.code = transitional
    instance.keyless_settles = (settled, TRANSITIONS.clock() + seconds)
    _in_transition(backend)[instance.id] = instance


def _settle_instances(backend, now=None):
    """Every instance of the backend whose transition is over takes its settled state."""
    table = getattr(backend, "keyless_transitioning", None)
    if not table:
        return
    now = TRANSITIONS.clock() if now is None else now
    with _STATE_LOCK:
        for instance_id, instance in list(table.items()):
            settles = getattr(instance, "keyless_settles", None)
            if settles is None:
                table.pop(instance_id, None)
                continue
            settled, moment = settles
            if now >= moment:
                instance._state.name, instance._state.code = settled
                instance.keyless_settles = None
                if settled == RUNNING:
                    instance.keyless_ran = True
                table.pop(instance_id, None)


def _incorrect_instance_state(message):
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError("IncorrectInstanceState", message)


def _current_states(result, key, unchanged, transitional):
    """The ``CurrentState`` of an answer's entries: ``transitional`` for an instance the call
    changed (AWS's answer, whatever the delay), the state it was in for one it left alone
    (``PreviousState`` in ``unchanged``); moto writes ``transitional`` for all."""
    for entry in (getattr(result, "result", None) or {}).get(key) or []:
        previous = entry.get("PreviousState")
        name = getattr(previous, "name", None)
        if name in unchanged:
            entry["CurrentState"] = {"Code": previous.code, "Name": name}
        else:
            entry["CurrentState"] = {"Code": transitional[1], "Name": transitional[0]}


def _patch_instances():
    from moto.ec2.models.instances import InstanceBackend
    from moto.ec2.responses.instances import InstanceResponse

    all_reservations = InstanceBackend.all_reservations

    def all_reservations_settled(self, *args, **kwargs):
        if _fidelity_on():
            _settle_instances(self)
        return all_reservations(self, *args, **kwargs)

    run = InstanceBackend.run_instances

    def run_pending(self, *args, **kwargs):
        reservation = run(self, *args, **kwargs)
        if _fidelity_on():
            with _STATE_LOCK:
                for instance in reservation.instances:
                    instance.keyless_ran = False
                    _begin(self, instance, PENDING, RUNNING, "pending_seconds")
        return reservation

    start = InstanceBackend.start_instances

    def start_pending(self, instance_ids):
        if not _fidelity_on():
            return start(self, instance_ids)
        with _STATE_LOCK:
            instances = self.get_multi_instances_by_id(instance_ids)  # settles; unknown ids: moto's error
            for instance in instances:
                if instance.state in ("stopping", "shutting-down", "terminated"):
                    raise _incorrect_instance_state(
                        "The instance '{0}' is not in a state from which it can be started.".format(instance.id))
            changing = [instance.id for instance in instances if instance.state not in ("pending", "running")]
            started = dict((instance.id, (instance, previous)) for instance, previous in
                           (start(self, changing) if changing else []))
            for instance, _previous in started.values():
                _begin(self, instance, PENDING, RUNNING, "pending_seconds")
            return [started.get(instance.id) or (instance, copy.copy(instance._state))
                    for instance in instances]

    stop = InstanceBackend.stop_instances

    def stop_stopping(self, instance_ids):
        if not _fidelity_on():
            return stop(self, instance_ids)
        with _STATE_LOCK:
            instances = self.get_multi_instances_by_id(instance_ids)
            for instance in instances:
                if instance.state == "pending" and not getattr(instance, "keyless_ran", True):
                    raise _incorrect_instance_state(
                        "Instance '{0}' cannot be stopped as it has never reached the 'running' state.".format(
                            instance.id))
                if instance.state in ("shutting-down", "terminated"):
                    raise _incorrect_instance_state(
                        "The instance '{0}' is not in a state from which it can be stopped.".format(instance.id))
            changing = [instance.id for instance in instances if instance.state not in ("stopping", "stopped")]
            stopped = dict((instance.id, (instance, previous)) for instance, previous in
                           (stop(self, changing) if changing else []))
            for instance, _previous in stopped.values():
                _begin(self, instance, STOPPING, STOPPED, "stopping_seconds")
            return [stopped.get(instance.id) or (instance, copy.copy(instance._state))
                    for instance in instances]

    terminate = InstanceBackend.terminate_instances

    def terminate_shutting_down(self, instance_ids):
        if not _fidelity_on() or not instance_ids:
            return terminate(self, instance_ids)
        with _STATE_LOCK:
            instances = self.get_multi_instances_by_id(instance_ids)
            changing = [instance.id for instance in instances
                        if instance.state not in ("shutting-down", "terminated")]
            ended = dict((instance.id, (instance, previous)) for instance, previous in
                         (terminate(self, changing) if changing else []))
            for instance, _previous in ended.values():
                _begin(self, instance, SHUTTING_DOWN, TERMINATED, "shutting_down_seconds")
            return [ended.get(instance.id) or (instance, copy.copy(instance._state))
                    for instance in instances]

    def answering_current_state(response_method, key, unchanged, transitional):
        def answer(self):
            result = response_method(self)
            if _fidelity_on():
                _current_states(result, key, unchanged, transitional)
            return result

        return answer

    InstanceBackend.all_reservations = all_reservations_settled
    InstanceBackend.run_instances = run_pending
    InstanceBackend.start_instances = start_pending
    InstanceBackend.stop_instances = stop_stopping
    InstanceBackend.terminate_instances = terminate_shutting_down
    InstanceResponse.start_instances = answering_current_state(
        InstanceResponse.start_instances, "StartingInstances", ("pending", "running"), PENDING)
    InstanceResponse.stop_instances = answering_current_state(
        InstanceResponse.stop_instances, "StoppingInstances", ("stopping", "stopped"), STOPPING)
    InstanceResponse.terminate_instances = answering_current_state(
        InstanceResponse.terminate_instances, "TerminatingInstances", ("shutting-down", "terminated"), SHUTTING_DOWN)


# ---- association transitions ---------------------------------------------------------------


def _start_associating(association):
    """A new association (associate, replace): ``associating`` for a number of reads (when
    ``associating_reads`` is set) or for ``associating_seconds``, else ``associated`` at once."""
    if association is None:
        return
    reads = _FIDELITY["associating_reads"]
    seconds = TRANSITIONS.seconds("associating_seconds")
    association.keyless_settles_at = None
    association.keyless_gone_at = None
    if reads > 0:
        association.state = "associating"
        association.keyless_reads_left = reads
    elif seconds > 0:
        association.state = "associating"
        association.keyless_reads_left = None
        association.keyless_settles_at = TRANSITIONS.clock() + seconds
    else:
        association.state = "associated"
        association.keyless_reads_left = None


def _settle_associations(backend, disassociate, now=None):
    """Associations whose ``associating`` time is over are ``associated``; ``disassociating``
    ones whose time is over are gone (moto's own disassociate removes them)."""
    now = TRANSITIONS.clock() if now is None else now
    with _ASSOCIATION_LOCK:
        for association in list(backend.iam_instance_profile_associations.values()):
            gone_at = getattr(association, "keyless_gone_at", None)
            if association.state == "disassociating" and gone_at is not None:
                if now >= gone_at:
                    disassociate(backend, association.association_id)
                continue
            settles_at = getattr(association, "keyless_settles_at", None)
            if association.state == "associating" and settles_at is not None and now >= settles_at:
                association.state = "associated"
                association.keyless_settles_at = None


def _association_by_id(backend, association_id):
    for association in backend.iam_instance_profile_associations.values():
        if association.association_id == association_id:
            return association
    return None


def _patch_associations():
    from moto.ec2.exceptions import EC2ClientError
    from moto.ec2.models.iam_instance_profile import IamInstanceProfileAssociationBackend
    from moto.ec2.responses.iam_instance_profiles import IamInstanceProfiles
    from moto.ec2.utils import random_iam_instance_profile_association_id

    describe = IamInstanceProfiles.describe_iam_instance_profile_associations

    def describe_with_max_results(self):
        if _fidelity_on() and self._get_param("MaxItems") is None:
            page_size = self._get_param("MaxResults")
            if page_size is not None:
                if getattr(self, "automated_parameter_parsing", False):
                    self.params["MaxItems"] = page_size
                else:
                    self.querystring["MaxItems"] = [str(page_size)]
        return describe(self)

    backend_describe = IamInstanceProfileAssociationBackend.describe_iam_instance_profile_associations
    disassociate = IamInstanceProfileAssociationBackend.disassociate_iam_instance_profile

    def describe_settling(self, *args, **kwargs):
        if not _fidelity_on():
            return backend_describe(self, *args, **kwargs)
        with _ASSOCIATION_LOCK:
            _settle_associations(self, disassociate)  # before moto filters by state
            associations, token = backend_describe(self, *args, **kwargs)
            for association in associations:  # the count-based reads (associating_reads)
                left = getattr(association, "keyless_reads_left", 0)
                if association.state != "associating" or left is None:
                    continue
                if left > 0 and _FIDELITY["associating_reads"] > 0:
                    association.keyless_reads_left = left - 1
                else:
                    association.state = "associated"
                    association.keyless_reads_left = None
        return associations, token

    associate = IamInstanceProfileAssociationBackend.associate_iam_instance_profile

    def associate_atomically(self, *args, **kwargs):
        if not _fidelity_on():
            return associate(self, *args, **kwargs)
        with _ASSOCIATION_LOCK:
            _settle_associations(self, disassociate)  # a disassociating one still there: IncorrectState
            association = associate(self, *args, **kwargs)
            _start_associating(association)
            return association

    replace = IamInstanceProfileAssociationBackend.replace_iam_instance_profile_association

    def replace_with_new_id(self, association_id, iam_instance_profile_name=None, iam_instance_profile_arn=None):
        if not _fidelity_on():
            return replace(self, association_id, iam_instance_profile_name, iam_instance_profile_arn)
        with _ASSOCIATION_LOCK:
            _settle_associations(self, disassociate)
            current = _association_by_id(self, association_id)
            if current is not None and current.state == "disassociating":
                raise EC2ClientError("IncorrectState",
                                     "The association {0} is not the active association".format(association_id))
            association = replace(self, association_id, iam_instance_profile_name, iam_instance_profile_arn)
            if association is not None:
                association.association_id = random_iam_instance_profile_association_id()
                self.modify_instance_attribute(
                    association.instance_id, "iam_instance_profile",
                    {"Arn": association.iam_instance_profile.arn, "Id": association.association_id})
                _start_associating(association)
            return association

    def disassociate_transitional(self, association_id):
        if not _fidelity_on():
            return disassociate(self, association_id)
        with _ASSOCIATION_LOCK:
            _settle_associations(self, disassociate)
            association = _association_by_id(self, association_id)
            if association is not None and association.state == "disassociating":
                return association
            seconds = TRANSITIONS.seconds("disassociating_seconds")
            if association is None or seconds <= 0:
                association = disassociate(self, association_id)  # unknown id: moto's NotFound
            else:
                association.keyless_gone_at = TRANSITIONS.clock() + seconds
            association.state = "disassociating"
            association.keyless_reads_left = None
            association.keyless_settles_at = None
            return association

    IamInstanceProfiles.describe_iam_instance_profile_associations = describe_with_max_results
    IamInstanceProfileAssociationBackend.describe_iam_instance_profile_associations = describe_settling
    IamInstanceProfileAssociationBackend.associate_iam_instance_profile = associate_atomically
    IamInstanceProfileAssociationBackend.replace_iam_instance_profile_association = replace_with_new_id
    IamInstanceProfileAssociationBackend.disassociate_iam_instance_profile = disassociate_transitional
    return associate


# ---- the other fixes -------------------------------------------------------------------------


def _patch_launches(associate):
    from moto.ec2.responses.instances import InstanceResponse

    run_instances = InstanceResponse.run_instances

    def run_instances_with_every_profile(self):
        result = run_instances(self)
        if not _fidelity_on():
            return result
        name = self._get_param("IamInstanceProfile.Name")
        arn = self._get_param("IamInstanceProfile.Arn")
        reservation = getattr(result, "result", None)
        if (name or arn) and reservation is not None:
            with _ASSOCIATION_LOCK:
                for number, instance in enumerate(reservation.instances):
                    if number:
                        associate(self.ec2_backend, instance_id=instance.id, iam_instance_profile_name=name,
                                  iam_instance_profile_arn=None if name else arn)
                    association = self.ec2_backend.iam_instance_profile_associations.get(instance.id)
                    if association is not None:  # at launch, an instance carries its profile at once
                        association.state = "associated"
                        association.keyless_reads_left = None
                        association.keyless_settles_at = None
        return result

    InstanceResponse.run_instances = run_instances_with_every_profile


def _patch_launch_template_tokens():
    from moto.core.responses import ActionResult
    from moto.ec2.responses.launch_templates import LaunchTemplates

    create_version = LaunchTemplates.create_launch_template_version

    def create_version_once_per_token(self):
        token = self._get_param("ClientToken")
        if not _fidelity_on() or not token:
            return create_version(self)
        key = (self.current_account, self.region, token)
        with _TOKEN_LOCK:
            known = _CLIENT_TOKENS.get(key)
            if known is not None:
                return ActionResult(known)
            result = create_version(self)
            _CLIENT_TOKENS[key] = result.result
            return result

    LaunchTemplates.create_launch_template_version = create_version_once_per_token


def _patch_remove_role():
    from moto.iam.exceptions import NotFoundException
    from moto.iam.models import IAMBackend

    remove_role = IAMBackend.remove_role_from_instance_profile

    def remove_role_not_held(self, profile_name, role_name):
        if _fidelity_on():
            profile = self.get_instance_profile(profile_name)
            if role_name not in [role.name for role in profile.roles]:
                raise NotFoundException("Role {0} cannot be found in instance profile {1}.".format(
                    role_name, profile_name))
        return remove_role(self, profile_name, role_name)

    IAMBackend.remove_role_from_instance_profile = remove_role_not_held


def _patch_moto():
    with _PATCH_LOCK:
        if _FIDELITY["patched"]:
            return
        associate = _patch_associations()
        _patch_launches(associate)
        _patch_instances()
        _patch_launch_template_tokens()
        _patch_remove_role()
        _FIDELITY["patched"] = True


@contextlib.contextmanager
def aws_fidelity():
    """The moto fixes and the transitions, on for the duration of the block (and for good once
    ``install`` ran)."""
    _patch_moto()
    with _PATCH_LOCK:
        _FIDELITY["depth"] += 1
    try:
        yield
    finally:
        with _PATCH_LOCK:
            _FIDELITY["depth"] -= 1


def install(sandbox):
    """Turn the moto fixes and the transitions on for good; ``sandbox.transitions`` and its control
    path; a sandbox reset forgets the client tokens and restores the default delays."""
    _patch_moto()
    _FIDELITY["permanent"] = True
    app = sandbox.app
    for hook in (forget_client_tokens, TRANSITIONS.defaults):
        if hook not in app.reset_hooks:
            app.reset_hooks.append(hook)
    app.control_handlers[CONTROL_PATH] = TRANSITIONS.control
    sandbox.transitions = TRANSITIONS
    return TRANSITIONS
