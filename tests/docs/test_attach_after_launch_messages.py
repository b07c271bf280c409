"""docs/attach-after-launch.md quotes the module's messages word for word (blocks fenced as
```text message```). This test provokes each mistake against the sandbox and checks that the
set of messages the code gives is exactly the set the page quotes: a message changed in the
code without the page (or the other way round) fails here."""

import json

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import associations as A
from ansible_collections.keyless.aws.plugins.module_utils.applier import wait_for
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import RetryingClient
from ansible_collections.keyless.aws.plugins.module_utils.common import Timing
from ansible_collections.keyless.aws.plugins.module_utils.instances import is_settled
from quoted import message_blocks
from sandbox.faults import propagation_fault

EC2_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
LAMBDA_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
# The page's placeholders for ids the sandbox makes up.
TERMINATED_PLACEHOLDER = "i-0aaaaaaaaaaaaaaaa"
INSTANCE_PLACEHOLDER = "i-0123456789abcdef0"


def quoted_messages():
    return message_blocks("attach-after-launch.md")


def test_the_guide_quotes_messages():
    assert len(quoted_messages()) >= 10


@pytest.fixture
def produced(sandbox):
    ec2 = RetryingClient(sandbox.client("ec2"))
    iam = RetryingClient(sandbox.client("iam"))

    def role(name, trust=EC2_TRUST):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)

    def profile(name, role_name=None):
        iam.create_instance_profile(InstanceProfileName=name)
        if role_name:
            iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role_name)

    for name, trust in (("web-app-role", EC2_TRUST), ("lonely", EC2_TRUST), ("shared", EC2_TRUST),
                        ("lambda-only", LAMBDA_TRUST), ("fresh", EC2_TRUST)):
        role(name, trust)
    for name, role_name in (("web-app", "web-app-role"), ("shared-a", "shared"), ("shared-b", "shared"),
                            ("lambda-only", "lambda-only"), ("empty", None), ("fresh", "fresh")):
        profile(name, role_name)
    ids = sorted(i["InstanceId"] for i in ec2.run_instances(ImageId="ami-12345678", MinCount=5, MaxCount=5)["Instances"])
    doomed = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    ec2.terminate_instances(InstanceIds=[doomed])
    # The guide quotes the message for a terminated instance: wait until EC2 (the sandbox, like EC2, passes
    # through shutting-down first) says so, or the message names the other state, depending on timing.
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[doomed], WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    messages = []

    def fails(**params):
        params.setdefault("state", "present")
        params.setdefault("instance_ids", ids)
        with pytest.raises(KeylessError) as raised:
            A.converge(ec2, iam, params, False, region="us-east-1")
        messages.append(raised.value.message.replace(doomed, TERMINATED_PLACEHOLDER)
                        .replace(ids[0], INSTANCE_PLACEHOLDER))

    fails(instance_profile="web-app-role")
    fails(role="lonely")
    fails(role="shared")
    fails(instance_profile="web-ap")
    fails(instance_profile="empty")
    fails(instance_profile="lambda-only")
    propagation_fault(sandbox).arm("fresh", 1000)
    fails(instance_profile="fresh", propagation_timeout=0)
    fails(instance_ids=ids[:1] + ["i-0123456789abcdef0", "i-0123456789abcdef1"], instance_profile="web-app")
    fails(instance_ids=ids + [doomed], instance_profile="web-app")

    class AlwaysAssociating:
        def describe_iam_instance_profile_associations(self, **kwargs):
            return {"IamInstanceProfileAssociations": [{
                "InstanceId": INSTANCE_PLACEHOLDER, "AssociationId": "iip-assoc-1", "State": "associating",
                "IamInstanceProfile": {"Arn": "arn:aws:iam::123456789012:instance-profile/web-app"}}]}

    clock = {"now": 0.0}

    def sleep(seconds):
        clock["now"] += seconds

    with pytest.raises(KeylessError) as raised:
        wait_for(AlwaysAssociating(), {INSTANCE_PLACEHOLDER: is_settled}, 300,
                 Timing(sleep=sleep, clock=lambda: clock["now"]), "attached or detached as asked")
    messages.append(raised.value.message)
    return messages


def test_every_message_the_guide_quotes_is_exactly_what_the_module_says(produced):
    assert sorted(quoted_messages()) == sorted(produced)
