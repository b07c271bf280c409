"""docs/troubleshooting.md quotes messages (blocks fenced as ```text message```): each is provoked
here, through the sandbox's faults, and must be exactly what the code says (instance ids aside).
A message changed in the code without the page, or the other way round, fails here."""

import json
import re
import time

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import associations as A
from ansible_collections.keyless.aws.plugins.module_utils import instance_profile as IP
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryingClient
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryPolicy
from ansible_collections.keyless.aws.plugins.module_utils.common import Timing
from reliability_support import launch
from reliability_support import make_profile
from reliability_support import make_role
from quoted import message_blocks
from sandbox.faults import ec2_error

INSTANCE_ID = re.compile(r"i-[0-9a-f]{17}")


def quoted():
    return message_blocks("troubleshooting.md")


def ids_out(message):
    return INSTANCE_ID.sub("i-<id>", message)


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def sleep(self, seconds):
        self.now += seconds

    def clock(self):
        return self.now


def detach_all(ec2):
    """Disassociate every association and wait, as a careful client does, until EC2 lists none:
    a ``disassociating`` one still holds its instance (tests/sandbox/moto_fixes.py)."""
    for association in ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]:
        ec2.disassociate_iam_instance_profile(AssociationId=association["AssociationId"])
    deadline = time.monotonic() + 30
    while ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]:
        assert time.monotonic() < deadline, "associations still listed 30 s after they were disassociated"
        time.sleep(0.05)


def produced(sandbox):
    fake = FakeClock()
    # The retries wait on a fake clock: 120 s of propagation retries take no time at all.
    policy = RetryPolicy(sleep=fake.sleep, clock=fake.clock)
    iam = RetryingClient(sandbox.client("iam"), policy)
    ec2 = RetryingClient(sandbox.client("ec2"), policy)
    for name in ("web", "batch"):
        make_role(iam, name)
    make_profile(iam, "web", "web")
    # EC2 knows web, as minutes after it was made: the propagation message below is provoked by the
    # fault proxy's scripted refusals, and the other messages are not about propagation.
    sandbox.rules.settle("web")
    fleet = launch(sandbox.client("ec2"), 3)
    messages = []

    def fails(call, *args, **kwargs):
        with pytest.raises(KeylessError) as raised:
            call(*args, **kwargs)
        messages.append(raised.value.message)

    def converge(timing=None, **params):
        params.setdefault("state", "present")
        params.setdefault("instance_profile", "web")
        return A.converge(ec2, iam, params, False, region="us-east-1", timing=timing)

    timing = Timing(sleep=fake.sleep, clock=fake.clock)
    # EC2 does not know the profile, for longer than propagation_timeout (the default, 120 s).
    sandbox.faults.configure({"scripted": [{"preset": "propagation", "first": 1000}]})
    fails(converge, timing=timing, instance_ids=fleet[:1], propagation_timeout=120)
    sandbox.faults.clear()

    # An error part way: the second instance refuses.
    def refuse_second(info):
        if info["action"] == "AssociateIamInstanceProfile" and info["params"].get("InstanceId") == fleet[1]:
            return ec2_error(400, "UnauthorizedOperation", "You are not authorized to perform this operation.")
        return None

    sandbox.app.interceptors.append(refuse_second)
    try:
        fails(converge, instance_ids=fleet, max_concurrency=1)
    finally:
        sandbox.app.interceptors.remove(refuse_second)
    detach_all(ec2)

    # Another run keeps attaching something else first: every attach finds the instance taken.
    def always_taken(info):
        if info["action"] == "AssociateIamInstanceProfile":
            return ec2_error(400, "IncorrectState", "There is an existing association for instance {0}".format(
                info["params"].get("InstanceId")))
        return None

    sandbox.app.interceptors.append(always_taken)
    try:
        fails(converge, instance_ids=fleet[:1])
    finally:
        sandbox.app.interceptors.remove(always_taken)

    # Another run puts role batch into profile web while this one adds role web.
    make_profile(iam, "batch-holder")
    raw_iam = sandbox.client("iam")

    def batch_first(info):
        if info["action"] == "AddRoleToInstanceProfile" and info["params"].get("RoleName") == "web":
            raw_iam.add_role_to_instance_profile(InstanceProfileName=info["params"]["InstanceProfileName"],
                                                 RoleName="batch")
        return None

    iam.remove_role_from_instance_profile(InstanceProfileName="web", RoleName="web")
    sandbox.app.interceptors.append(batch_first)
    try:
        fails(IP.manage_profile, iam, lambda: ec2, {"name": "web", "role": "web"}, False)
    finally:
        sandbox.app.interceptors.remove(batch_first)
    iam.remove_role_from_instance_profile(InstanceProfileName="web", RoleName="batch")
    iam.add_role_to_instance_profile(InstanceProfileName="web", RoleName="web")
    sandbox.rules.settle("web")  # web holds its role again, as it did minutes ago: EC2 knows it

    # A killed run left an association in flight that AWS does not finish within wait_timeout.
    sandbox.faults.configure({"associating_reads": 1000})
    ec2.associate_iam_instance_profile(InstanceId=fleet[2], IamInstanceProfile={"Name": "web"})
    fails(converge, timing=timing, instance_ids=fleet[2:], wait_timeout=300)
    sandbox.faults.clear()
    detach_all(ec2)

    # Deleting a profile in use.
    ec2.associate_iam_instance_profile(InstanceId=fleet[0], IamInstanceProfile={"Name": "web"})
    ec2.associate_iam_instance_profile(InstanceId=fleet[1], IamInstanceProfile={"Name": "web"})
    fails(IP.manage_profile, iam, lambda: ec2, {"name": "web", "state": "absent"}, False)
    return messages


def test_the_page_quotes_exactly_what_the_code_says(sandbox):
    page = quoted()
    assert len(page) == 6
    said = produced(sandbox)
    assert sorted(ids_out(m) for m in page) == sorted(ids_out(m) for m in said), json.dumps(said, indent=1)
