"""Seeding the sandbox for fleet tests and the bench: profiles that hold an EC2-trusting role,
and fleets of instances, made through the sandbox's API in as few calls as possible."""

import json

ACCOUNT = "123456789012"  # moto's default account, the sandbox's
AMI = "ami-1e749f67"  # an image moto knows
EC2_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


def profile_arn(name):
    return "arn:aws:iam::{0}:instance-profile/{1}".format(ACCOUNT, name)


def make_profile(sandbox, name):
    """A role ``name`` that EC2 may assume, and the profile ``name`` that holds it."""
    iam = sandbox.client("iam")
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=EC2_TRUST)
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)


def launch(sandbox, count, instance_type="t3.micro"):
    """``count`` instances, in RunInstances calls of at most 500; their ids, sorted."""
    ec2 = sandbox.client("ec2")
    ids = []
    while len(ids) < count:
        batch = min(500, count - len(ids))
        reply = ec2.run_instances(ImageId=AMI, InstanceType=instance_type, MinCount=batch, MaxCount=batch)
        ids.extend(i["InstanceId"] for i in reply["Instances"])
    return sorted(ids)
