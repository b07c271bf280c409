"""Seeding the sandbox for fleet tests and the bench: profiles that hold an EC2-trusting role,
and fleets of instances, made through the sandbox's API in as few calls as possible."""

import json

ACCOUNT = "123456789012"  # moto's default account, the sandbox's
AMI = "ami-1e749f67"  # an image moto knows
EC2_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def profile_arn(name):
    return "arn:aws:iam::{0}:instance-profile/{1}".format(ACCOUNT, name)


def make_profile(sandbox, name, settled=False):
    """A role ``name`` that EC2 may assume, and the profile ``name`` that holds it. EC2 does not
    know a fresh profile for a moment (the sandbox's ``profile_propagation`` rule); ``settled``
    makes it one EC2 already knows, as minutes after it was made."""
    iam = sandbox.client("iam")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=EC2_TRUST)
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    if settled:
        sandbox.rules.settle(name)


def launch(sandbox, count, instance_type="t3.micro"):
    """``count`` instances, in RunInstances calls of at most 500; their ids, sorted."""
    ec2 = sandbox.client("ec2")
    ids = []
    while len(ids) < count:
        batch = min(500, count - len(ids))
        reply = ec2.run_instances(ImageId=AMI, InstanceType=instance_type, MinCount=batch, MaxCount=batch)
        ids.extend(i["InstanceId"] for i in reply["Instances"])
    return sorted(ids)


def wait_states(ec2, instance_ids, states=("running", "stopped"), timeout=30.0):
    """Wait, as a careful client does, until every instance is in one of ``states`` (the sandbox,
    like EC2, shows pending and stopping for a moment), reading at most 200 ids a call;
    returns {id: state}. ``ec2``: a boto3 EC2 client."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        seen = {}
        for start in range(0, len(instance_ids), 200):
            reply = ec2.describe_instances(Filters=[{"Name": "instance-id",
                                                     "Values": list(instance_ids[start:start + 200])}])
            for reservation in reply["Reservations"]:
                for instance in reservation["Instances"]:
                    seen[instance["InstanceId"]] = instance["State"]["Name"]
        if all(seen.get(i) in states for i in instance_ids):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError("instances still not {0} after {1} s: {2}".format(states, timeout, seen))
        time.sleep(0.05)


def wait_until(sandbox, instance_ids, states=("running", "stopped"), timeout=30.0):
    """``wait_states`` through the sandbox's own client."""
    return wait_states(sandbox.client("ec2"), instance_ids, states, timeout)


def launch_running(sandbox, count, instance_type="t3.micro"):
    """``launch``, then wait until every instance runs."""
    ids = launch(sandbox, count, instance_type)
    wait_until(sandbox, ids, ("running",))
    return ids


def not_known_yet(exc):
    """EC2 does not know the profile yet: one of the propagation forms (tests/sandbox/rules.py)."""
    error = getattr(exc, "response", {}).get("Error", {})
    return (error.get("Code") in ("InvalidParameterValue", "IncorrectState")
            and ("IAM Instance Profile" in error.get("Message", "")
                 or "InstanceIdentityProfileNotFound" in error.get("Message", "")))


def launch_with(ec2, wait=True, timeout=30.0, **kwargs):
    """RunInstances as a careful client makes it: retried while EC2 does not know the profile
    the request (or its launch template) names yet, then (``wait``) until every instance runs.
    Returns the answer's instances. ``ec2``: a boto3 EC2 client."""
    import time

    import botocore.exceptions

    kwargs.setdefault("MinCount", 1)
    kwargs.setdefault("MaxCount", kwargs["MinCount"])
    if "LaunchTemplate" not in kwargs:
        kwargs.setdefault("ImageId", AMI)
        kwargs.setdefault("InstanceType", "t3.micro")
    deadline = time.monotonic() + timeout
    while True:
        try:
            instances = ec2.run_instances(**kwargs)["Instances"]
            break
        except botocore.exceptions.ClientError as exc:
            if not not_known_yet(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    if wait:
        wait_states(ec2, [i["InstanceId"] for i in instances], ("running",), timeout)
    return instances


def run_instances(sandbox, wait=True, timeout=30.0, **kwargs):
    """``launch_with`` through the sandbox's own client."""
    return launch_with(sandbox.client("ec2"), wait, timeout, **kwargs)


def associate(sandbox, instance_id, profile_name, timeout=30.0):
    """AssociateIamInstanceProfile as a careful client makes it: retried while EC2 does not know
    the profile yet (the sandbox, like EC2, refuses a fresh profile for a moment)."""
    import time

    import botocore.exceptions

    ec2 = sandbox.client("ec2")
    deadline = time.monotonic() + timeout
    while True:
        try:
            return ec2.associate_iam_instance_profile(InstanceId=instance_id,
                                                      IamInstanceProfile={"Name": profile_name})
        except botocore.exceptions.ClientError as exc:
            if not not_known_yet(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
