import botocore.exceptions
import pytest

from ansible_collections.keyless.aws.plugins.module_utils import common


def client_error(code, status=400, message="boom"):
    return botocore.exceptions.ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self):
        return self.now


def policy(**kwargs):
    clock = FakeClock()
    kwargs.setdefault("rand", lambda low, high: high)
    return common.RetryPolicy(sleep=clock.sleep, clock=clock, **kwargs), clock


@pytest.mark.parametrize("exc,expected", [
    (client_error("Throttling"), True),
    (client_error("RequestLimitExceeded"), True),
    (client_error("InternalError", 500), True),
    (client_error("Whatever", 503), True),
    (client_error("NoSuchEntity", 404), False),
    (client_error("InvalidParameterValue"), False),
    (botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
    (botocore.exceptions.ConnectionClosedError(endpoint_url="http://127.0.0.1:1"), True),
    (botocore.exceptions.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), True),
    (ValueError("no"), False),
])
def test_is_retryable(exc, expected):
    assert common.is_retryable(exc) is expected


def test_retry_policy_retries_until_success_with_growing_jittered_delays():
    retry, clock = policy(base_delay=1, max_delay=5)
    outcomes = [client_error("Throttling")] * 4 + ["ok"]

    def call():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert retry.call(call) == "ok"
    assert clock.sleeps == [1, 2, 4, 5]  # doubling, capped at max_delay (rand gives the top)


def test_retry_policy_gives_up_on_server_errors_after_max_attempts_and_reraises():
    retry, clock = policy(max_attempts=3)
    calls = []

    def call():
        calls.append(1)
        raise client_error("InternalError", 500)

    with pytest.raises(botocore.exceptions.ClientError):
        retry.call(call)
    assert len(calls) == 3 and len(clock.sleeps) == 2


def test_a_sustained_throttle_is_retried_past_max_attempts_until_the_deadline():
    """Throttling means "slower", not "failed": 25 throttled answers in a row (more than the old
    limit of 10 attempts) and then an answer: the call succeeds."""
    retry, clock = policy(max_attempts=10, base_delay=0.5, max_delay=4, deadline=300)
    outcomes = [client_error("RequestLimitExceeded", 503)] * 25 + ["ok"]

    def call():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert retry.call(call) == "ok"
    assert len(clock.sleeps) == 25 and clock.now <= 300


def test_a_sustained_throttle_ends_at_the_deadline_not_before():
    retry, clock = policy(max_attempts=3, base_delay=1, max_delay=8, deadline=60)
    calls = []

    def call():
        calls.append(clock.now)
        raise client_error("Throttling")

    with pytest.raises(botocore.exceptions.ClientError):
        retry.call(call)
    assert len(calls) > 3  # not bounded by max_attempts
    assert 60 - 8 < clock.now <= 60  # it gave up only when the next wait would pass the deadline


def test_a_paced_throttle_retry_does_not_sleep_a_backoff_of_its_own():
    retry, clock = policy(base_delay=1)
    outcomes = [client_error("Throttling")] * 3 + ["ok"]

    def attempt():
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert retry.run(attempt, paced=True) == "ok"
    assert clock.sleeps == []  # the pacer's bucket does the waiting


def test_retry_policy_never_retries_what_is_not_retryable():
    retry, clock = policy()
    calls = []

    def call():
        calls.append(1)
        raise client_error("AccessDenied", 403)

    with pytest.raises(botocore.exceptions.ClientError):
        retry.call(call)
    assert calls == [1] and clock.sleeps == []


def test_with_extra_retries_not_yet_errors_only_until_its_deadline():
    retry, clock = policy(base_delay=1, max_delay=4)
    patient = retry.with_extra(lambda exc: common.error_code(exc) == "NoSuchEntity", deadline=10)
    calls = []

    def call():
        calls.append(1)
        raise client_error("NoSuchEntity", 404)

    with pytest.raises(botocore.exceptions.ClientError):
        patient.call(call)
    assert sum(clock.sleeps) <= 10
    assert len(calls) > 3
    # the original policy is unchanged
    calls.clear()
    with pytest.raises(botocore.exceptions.ClientError):
        retry.call(call)
    assert calls == [1]


def test_retrying_client_retries_every_call_and_passes_other_attributes_through():
    class Raw:
        meta = "meta"
        attempts = 0

        def get_role(self, RoleName):
            Raw.attempts += 1
            if Raw.attempts < 3:
                raise client_error("Throttling")
            return {"Role": RoleName}

        def get_paginator(self, name):
            return "paginator:" + name

    retry, _clock = policy()
    client = common.RetryingClient(Raw(), retry)
    assert client.get_role(RoleName="r") == {"Role": "r"}
    assert Raw.attempts == 3
    assert client.meta == "meta"
    assert client.get_paginator("x") == "paginator:x"


def test_paginate_follows_markers_and_tokens():
    pages = {None: {"Items": [1, 2], "IsTruncated": True, "Marker": "m1"},
             "m1": {"Items": [3], "IsTruncated": False}}
    seen = []

    def call(**kwargs):
        seen.append(kwargs.get("Marker"))
        return pages[kwargs.get("Marker")]

    assert common.paginate(call, "Items", PathPrefix="/") == [1, 2, 3]
    assert seen == [None, "m1"]

    tokens = {None: {"Things": ["a"], "NextToken": "t"}, "t": {"Things": ["b"]}}
    assert common.paginate(lambda **kw: tokens[kw.get("NextToken")], "Things",
                           token_in="NextToken", token_out="NextToken") == ["a", "b"]


@pytest.mark.parametrize("region,partition", [
    ("us-east-1", "aws"), ("eu-west-3", "aws"), ("cn-north-1", "aws-cn"), ("cn-northwest-1", "aws-cn"),
    ("us-gov-west-1", "aws-us-gov"), ("us-iso-east-1", "aws-iso"), ("us-isob-east-1", "aws-iso-b"),
    (None, "aws"),
])
def test_partition_for_region(region, partition):
    assert common.partition_for_region(region) == partition


def test_parse_arn():
    parts = common.parse_arn("arn:aws-cn:iam::123456789012:role/app/team/web")
    assert parts["partition"] == "aws-cn"
    assert parts["resource_type"] == "role"
    assert parts["path"] == "/app/team/"
    assert parts["name"] == "web"
    assert common.parse_arn("arn:aws:iam::123456789012:instance-profile/web")["path"] == "/"
    assert common.parse_arn("web") is None
    assert common.parse_arn("arn:aws:iam::12345:role/x") is None


def test_aws_failure_names_what_was_done_and_the_code():
    err = common.aws_failure(client_error("AccessDenied", 403, "not allowed"), "reading role 'x'")
    assert err.code == "AccessDenied"
    assert err.message == "reading role 'x' failed: AWS said AccessDenied: not allowed"


def test_with_extra_waits_longer_for_its_own_errors_only_a_throttle_keeps_the_policy_deadline():
    retry, clock = policy(base_delay=1, max_delay=4, deadline=10)
    patient = retry.with_extra(lambda exc: common.error_code(exc) == "NoSuchEntity", deadline=100)

    def throttled():
        raise client_error("RequestLimitExceeded", 503)

    with pytest.raises(botocore.exceptions.ClientError):
        patient.call(throttled)
    assert clock.now <= 10  # the propagation deadline does not stretch the throttle's

    clock.now, clock.sleeps = 0.0, []

    def not_yet():
        raise client_error("NoSuchEntity", 404)

    with pytest.raises(botocore.exceptions.ClientError):
        patient.call(not_yet)
    assert 90 < clock.now <= 100


def _denied(service, method, message):
    """A RetryingClient of a real (stubbed, offline) boto3 client whose ``method`` is refused."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="AKIAEXAMPLEEXAMPLE00",
                          aws_secret_access_key="x" * 40)
    stubber = Stubber(client)
    code = "UnauthorizedOperation" if service == "ec2" else "AccessDenied"
    stubber.add_client_error(method, service_error_code=code, service_message=message, http_status_code=403)
    stubber.activate()
    retry, _clock = policy()
    return getattr(common.RetryingClient(client, retry), method)


def test_a_refused_call_names_the_iam_action_the_caller_lacks():
    call = _denied("ec2", "describe_instances", "You are not authorized to perform this operation.")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    failure = common.aws_failure(caught.value, "reading the instances")
    assert failure.code == "UnauthorizedOperation"
    assert failure.message == ("reading the instances failed: AWS said UnauthorizedOperation: You are not authorized "
                               "to perform this operation. (ec2:DescribeInstances is not allowed to the caller)")


def test_a_refusal_that_names_its_action_is_not_told_twice():
    said = "User: arn:aws:sts::123456789012:assumed-role/a/b is not authorized to perform: cloudwatch:GetMetricData"
    call = _denied("cloudwatch", "get_metric_data", said)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(MetricDataQueries=[], StartTime=0, EndTime=1)
    assert common.aws_failure(caught.value, "reading").message == "reading failed: AWS said AccessDenied: " + said
    # Only refusals: any other error is said as AWS said it.
    assert "not allowed" not in common.aws_failure(client_error("Throttling"), "reading").message


def test_a_refused_call_that_gives_a_role_to_ec2_names_pass_role_too():
    call = _denied("ec2", "associate_iam_instance_profile", "You are not authorized to perform this operation.")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(InstanceId="i-0123456789abcdef0", IamInstanceProfile={"Name": "web"})
    assert common.aws_failure(caught.value, "attaching").message.endswith(
        "(ec2:AssociateIamInstanceProfile, or iam:PassRole on the role it gives, is not allowed to the caller)")
