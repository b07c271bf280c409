"""Fixtures shared by the sandbox-backed tests of module_utils."""

import json

import pytest

EC2_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


@pytest.fixture
def aws(sandbox):
    iam = sandbox.client("iam")
    ec2 = sandbox.client("ec2")
    iam.create_role(RoleName="web", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    iam.create_role(RoleName="web-v2", AssumeRolePolicyDocument=json.dumps(EC2_TRUST))
    iam.create_role(RoleName="lambda-only", AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
    sandbox.app.clear_log()
    return sandbox, iam, ec2
