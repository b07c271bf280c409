"""Shared by the unit tests of association_plan.py and applier.py: profile ARNs, scripted AWS
errors, current associations, and a fake clock (nothing in them really sleeps)."""

import threading

from botocore.exceptions import ClientError

from ansible_collections.keyless.aws.plugins.module_utils.common import RetryingClient
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryPolicy
from ansible_collections.keyless.aws.plugins.module_utils.common import Timing

P1 = "arn:aws:iam::123456789012:instance-profile/web"
P2 = "arn:aws:iam::123456789012:instance-profile/web-v2"
P_OTHER = "arn:aws:iam::123456789012:instance-profile/batch"


def cur(arn, association_id="iip-assoc-1", state="associated"):
    return {"association_id": association_id, "instance_profile_arn": arn, "state": state}


def client_error(code, message, operation="AssociateIamInstanceProfile", status=400):
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


def propagation_error(name="web"):
    return client_error("InvalidParameterValue", "Value ({0}) for parameter iamInstanceProfile.name is invalid. "
                                                 "Invalid IAM Instance Profile name".format(name))


class FakeTime:
    """A clock that only moves when somebody sleeps."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []
        self._lock = threading.Lock()

    def clock(self):
        return self.now

    def sleep(self, seconds):
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def timing(fake):
    return Timing(sleep=fake.sleep, clock=fake.clock)


def retrying(client, fake):
    # rand returns the upper bound: deterministic delays 0.5, 1, 2, 4, ...
    return RetryingClient(client, RetryPolicy(sleep=fake.sleep, clock=fake.clock, rand=lambda low, high: high))


def assoc(instance_id, arn, state="associated", association_id="iip-assoc-1", timestamp="2026-01-01"):
    return {"InstanceId": instance_id, "AssociationId": association_id, "State": state,
            "IamInstanceProfile": {"Arn": arn, "Id": "AIPA"}, "Timestamp": timestamp}
