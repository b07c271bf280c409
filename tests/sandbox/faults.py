"""Scripted faults for the association tests, and two places where moto's EC2 associations
differ from AWS in a way a fleet feels.

* ``PropagationFault``: IAM is eventually consistent with EC2. Right after a profile is
  created, EC2 answers ``AssociateIamInstanceProfile`` / ``ReplaceIamInstanceProfileAssociation``
  with ``400 InvalidParameterValue: Value (NAME) for parameter iamInstanceProfile.name is
  invalid. Invalid IAM Instance Profile name`` (``...iamInstanceProfile.arn ... Invalid IAM
  Instance Profile ARN`` when the call names the ARN), for a minute or two. ``arm(profile, K)``
  makes the next K such calls naming that profile fail that way (counted, never timed, so tests
  do not depend on the clock). An interceptor: it never takes a (service, action) slot of
  ``app.extensions``. Disarmed on every sandbox reset.
* ``aws_fidelity()``: while on, (1) ``DescribeIamInstanceProfileAssociations`` honours
  ``MaxResults`` (moto reads ``MaxItems``, which is not an AWS parameter, so it always pages at
  100), and (2) ``ReplaceIamInstanceProfileAssociation`` gives the instance a new association id
  and updates the instance's own ``IamInstanceProfile``, as AWS does (moto keeps the old id and
  the old attribute). moto runs in this process, so these wrap moto's own methods; they are
  process-wide, hence the switch: ``install`` turns them on for good, a test can turn them on for
  its own duration with ``with aws_fidelity(): ...``.

``install(sandbox)`` registers all of it (idempotent) and returns the ``PropagationFault``.
"""

import contextlib
import threading
import uuid
from xml.sax.saxutils import escape

PROPAGATION_ACTIONS = ("AssociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation")


def ec2_error(status, code, message):
    """An EC2 (query protocol) error response: (status, headers, body)."""
    body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{0}</Code>'
            "<Message>{1}</Message></Error></Errors><RequestID>{2}</RequestID></Response>").format(
                escape(code), escape(message), uuid.uuid4())
    return status, [("Content-Type", "text/xml;charset=UTF-8")], body


class PropagationFault:
    """The next K association calls naming a profile fail as EC2 fails for a fresh profile."""

    def __init__(self):
        self._lock = threading.Lock()
        self._armed = {}
        self.injected = 0

    def arm(self, profile_name, failures):
        with self._lock:
            self._armed[profile_name] = int(failures)

    def disarm(self):
        with self._lock:
            self._armed = {}
            self.injected = 0

    def remaining(self, profile_name):
        with self._lock:
            return self._armed.get(profile_name, 0)

    def __call__(self, info):
        if info.get("service") != "ec2" or info.get("action") not in PROPAGATION_ACTIONS:
            return None
        params = info.get("params") or {}
        name = params.get("IamInstanceProfile.Name")
        arn = params.get("IamInstanceProfile.Arn")
        profile = name or (arn.rsplit("/", 1)[-1] if arn else None)
        with self._lock:
            left = self._armed.get(profile, 0)
            if left <= 0:
                return None
            self._armed[profile] = left - 1
            self.injected += 1
        if arn and not name:
            message = ("Value ({0}) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance "
                       "Profile ARN".format(arn))
        else:
            message = ("Value ({0}) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance "
                       "Profile name".format(name))
        return ec2_error(400, "InvalidParameterValue", message)


# ---- moto fidelity --------------------------------------------------------------------------

_FIDELITY = {"permanent": False, "depth": 0, "patched": False}
_PATCH_LOCK = threading.Lock()


def _fidelity_on():
    return _FIDELITY["permanent"] or _FIDELITY["depth"] > 0


def _patch_moto():
    with _PATCH_LOCK:
        if _FIDELITY["patched"]:
            return
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

        replace = IamInstanceProfileAssociationBackend.replace_iam_instance_profile_association

        def replace_with_new_id(self, association_id, iam_instance_profile_name=None,
                                iam_instance_profile_arn=None):
            association = replace(self, association_id, iam_instance_profile_name, iam_instance_profile_arn)
            if _fidelity_on() and association is not None:
                association.association_id = random_iam_instance_profile_association_id()
                self.modify_instance_attribute(
                    association.instance_id, "iam_instance_profile",
                    {"Arn": association.iam_instance_profile.arn, "Id": association.association_id})
            return association

        IamInstanceProfiles.describe_iam_instance_profile_associations = describe_with_max_results
        IamInstanceProfileAssociationBackend.replace_iam_instance_profile_association = replace_with_new_id
        _FIDELITY["patched"] = True


@contextlib.contextmanager
def aws_fidelity():
    """The moto fixes above, on for the duration of the block (and for good once ``install`` ran)."""
    _patch_moto()
    with _PATCH_LOCK:
        _FIDELITY["depth"] += 1
    try:
        yield
    finally:
        with _PATCH_LOCK:
            _FIDELITY["depth"] -= 1


def propagation_fault(sandbox):
    """The sandbox's PropagationFault, registered on first use (without the fidelity fixes)."""
    app = sandbox.app
    fault = getattr(app, "keyless_propagation_fault", None)
    if fault is None:
        fault = PropagationFault()
        app.interceptors.append(fault)
        app.reset_hooks.append(fault.disarm)
        app.keyless_propagation_fault = fault
    return fault


def install(sandbox):
    """Register the propagation fault (inert until armed) and turn the moto fixes on for good."""
    _patch_moto()
    _FIDELITY["permanent"] = True
    return propagation_fault(sandbox)
