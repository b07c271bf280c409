"""Clients of the sandbox tests: bare boto3 clients with botocore's retries off, so a test sees
every answer the sandbox gives (a refusal, a throttle) exactly as it came."""

import botocore.config
import pytest

NO_RETRIES = botocore.config.Config(retries={"total_max_attempts": 1})


@pytest.fixture
def ec2(sandbox):
    return sandbox.client("ec2", config=NO_RETRIES)


@pytest.fixture
def iam(sandbox):
    return sandbox.client("iam", config=NO_RETRIES)
