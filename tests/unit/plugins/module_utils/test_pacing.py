"""The client-side pacer (pacing.py) on a fake clock: nothing here really sleeps."""

import botocore.exceptions
import pytest

from ansible_collections.keyless.aws.plugins.module_utils import common
from ansible_collections.keyless.aws.plugins.module_utils import pacing


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.slept = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept += seconds
        self.now += seconds


def throttled_error():
    return botocore.exceptions.ClientError(
        {"Error": {"Code": "RequestLimitExceeded", "Message": "Request limit exceeded."},
         "ResponseMetadata": {"HTTPStatusCode": 503}}, "AssociateIamInstanceProfile")


@pytest.mark.parametrize("action,bucket", [
    ("AssociateIamInstanceProfile", "associations"),
    ("DisassociateIamInstanceProfile", "associations"),
    ("ReplaceIamInstanceProfileAssociation", "mutating"),
    ("ModifyInstanceMetadataOptions", "metadata_options"),
    ("ModifyInstanceMetadataDefaults", "metadata_defaults"),
    ("CreateLaunchTemplateVersion", "launch_template_versions"),
    ("RunInstances", "run_instances"),
    ("CreateTags", "mutating"),
    ("DescribeInstances", "non_mutating"),
    ("DescribeIamInstanceProfileAssociations", "non_mutating"),
    ("GetInstanceMetadataDefaults", "non_mutating"),
])
def test_each_action_draws_from_its_documented_bucket(action, bucket):
    assert pacing.bucket_of(action) == bucket


def test_a_bucket_serves_its_burst_at_once_then_its_refill_rate():
    clock = FakeClock()
    bucket = pacing.TokenBucket(100, 5.0, clock, clock.sleep)
    waits = [bucket.take() for _n in range(100)]
    assert waits == [0.0] * 100 and clock.now == 0.0
    for _n in range(50):
        bucket.take()
    assert clock.now == pytest.approx(10.0, abs=50 * pacing.MARGIN)  # 50 more at 5 a second
    clock.now += 4.0  # idle time refills, up to the capacity
    assert [bucket.take() for _n in range(20)] == [0.0] * 20
    assert bucket.take() > 0


def test_a_throttled_answer_empties_the_bucket_and_halves_the_rate_then_answers_win_it_back():
    clock = FakeClock()
    bucket = pacing.TokenBucket(100, 5.0, clock, clock.sleep)
    bucket.throttled()
    assert bucket.tokens == 0.0 and bucket.rate == 2.5
    bucket.throttled()
    assert bucket.rate == 2.5  # refused together (within a second): one event
    clock.now += 1.0
    bucket.throttled()
    assert bucket.rate == 1.25
    for _n in range(100):
        clock.now += 1.0
        bucket.throttled()
    assert bucket.rate == pytest.approx(5.0 * pacing.FLOOR_SHARE)  # never stops altogether
    clock.now += 10.0
    bucket.answered()
    assert bucket.rate == pytest.approx(5.0 * pacing.FLOOR_SHARE + 10 * 0.04 * 5.0)  # 4 % of the ceiling a second
    clock.now += 100.0
    bucket.answered()
    assert bucket.rate == 5.0  # and never above the documented rate


def test_max_rate_sets_mutating_buckets_and_their_burst_in_proportion():
    pacer = pacing.Pacer("ec2", max_rate=2.0)
    assert pacer.limits("associations") == (40.0, 2.0)
    assert pacer.limits("mutating") == (20.0, 2.0)
    assert pacer.limits("metadata_defaults") == (2, 2.0)  # already at it
    assert pacer.limits("non_mutating") == (100, 20.0)  # reads are not what the user rations
    assert pacing.Pacer("ec2").limits("associations") == (100, 5.0)


def test_max_rate_above_the_documented_rate_raises_it_for_an_account_with_raised_limits():
    pacer = pacing.Pacer("ec2", max_rate=20.0)
    assert pacer.limits("associations") == (400.0, 20.0)
    assert pacer.limits("metadata_defaults") == (20.0, 20.0)
    assert pacer.limits("non_mutating") == (100, 20.0)
    assert pacing.Pacer.for_service("sts") is None


class FakeEC2:
    """An EC2 whose account bucket (capacity, rate) is drained by our calls and, optionally, by
    other automation in the account at ``others`` calls a second."""

    def __init__(self, clock, capacity=100, rate=5.0, others=0.0):
        self.clock = clock
        self.capacity, self.rate, self.others = capacity, rate, others
        self.tokens = float(capacity)
        self.updated = clock()
        self.answers = []

    class meta:  # noqa: N801 - boto3's attribute name
        method_to_api_mapping = {"associate_iam_instance_profile": "AssociateIamInstanceProfile"}

    def associate_iam_instance_profile(self, **kwargs):
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * (self.rate - self.others))
        self.updated = now
        self.clock.now += 0.02  # the call's latency
        if self.tokens < 1:
            self.answers.append(503)
            raise throttled_error()
        self.tokens -= 1
        self.answers.append(200)
        return {"IamInstanceProfileAssociation": {"InstanceId": kwargs["InstanceId"]}}


def paced_client(raw, clock, max_rate=None):
    stats = pacing.CallStats()
    pacer = pacing.Pacer("ec2", max_rate, clock=clock, sleep=clock.sleep)
    stats.pacers.append(pacer)
    policy = common.RetryPolicy(sleep=clock.sleep, clock=clock, rand=lambda low, high: high, deadline=3600)
    return common.RetryingClient(raw, policy, pacer, stats), stats


def test_a_thousand_attaches_run_at_the_account_limit_with_no_refusal():
    clock = FakeClock()
    raw = FakeEC2(clock)
    client, stats = paced_client(raw, clock)
    for n in range(1000):
        client.associate_iam_instance_profile(InstanceId="i-{0:08x}".format(n))
    limit = (1000 - 100) / 5.0
    assert raw.answers.count(503) == 0
    assert limit <= clock.now <= limit * 1.1
    assert stats.summary()["api_calls"] == 1000 and stats.summary()["throttled"] == 0


def test_with_other_automation_spending_the_budget_the_pacer_settles_with_few_refusals():
    """Another tool takes 2 of the 5 calls a second: a pacer at the documented rate is refused,
    slows down, and spends only a few per cent of its calls on refusals (an unpaced client would
    be refused on most calls once the burst is gone)."""
    clock = FakeClock()
    raw = FakeEC2(clock, others=2.0)
    client, stats = paced_client(raw, clock)
    for n in range(600):
        client.associate_iam_instance_profile(InstanceId="i-{0:08x}".format(n))
    summary = stats.summary()
    assert raw.answers.count(200) == 600
    assert summary["throttled"] <= 0.05 * summary["api_calls"]
    assert summary["throttled"] >= 1  # it did have to learn
    assert clock.now <= 1.25 * (600 - 100) / 3.0  # near the 3 calls a second left to it
    assert summary["request_rates"]["ec2/associations"] < 5.0


def test_a_user_set_rate_is_kept_even_when_ec2_would_take_more():
    clock = FakeClock()
    raw = FakeEC2(clock)
    client, stats = paced_client(raw, clock, max_rate=1.0)
    for n in range(60):
        client.associate_iam_instance_profile(InstanceId="i-{0:08x}".format(n))
    # burst 100 * 1/5 = 20, then 1 a second
    assert clock.now == pytest.approx(40.0, abs=1.0)
    assert raw.answers.count(503) == 0
    assert stats.summary()["request_rates"] == {"ec2/associations": 1.0}


def test_stats_count_attempts_and_throttles_and_the_stopwatch_reports_them_with_the_phases():
    clock = FakeClock()
    raw = FakeEC2(clock, capacity=1, rate=0.5)
    client, stats = paced_client(raw, clock)
    watch = common.Stopwatch(clock)
    with watch.phase("apply"):
        for n in range(3):
            client.associate_iam_instance_profile(InstanceId="i-{0:08x}".format(n))
    timing = watch.result(client, client)  # one CallStats counted once
    assert timing["api_calls"] == len(raw.answers)
    assert timing["throttled"] == raw.answers.count(503) >= 1
    assert timing["calls_by_action"] == {"AssociateIamInstanceProfile": len(raw.answers)}
    assert set(timing["seconds"]) == {"read", "plan", "apply", "wait", "total"}
    assert timing["seconds"]["apply"] == pytest.approx(clock.now, abs=0.01)
    assert timing["seconds"]["read"] == 0.0
    assert timing["paced_seconds"] > 0


def test_in_parallel_keeps_order_and_stops_starting_after_a_failure():
    assert common.in_parallel(lambda n: n * 2, range(30), 5) == [n * 2 for n in range(30)]
    started = []

    def work(n):
        started.append(n)
        if n == 0:
            raise ValueError("first fails")
        return n

    with pytest.raises(ValueError):
        common.in_parallel(work, range(1000), 2)
    assert len(started) < 1000


def test_the_pacer_believes_what_the_sandbox_enforces():
    """The pacer's table and the sandbox's (tests/sandbox/limits.py, the EC2 page as the sandbox
    encodes it) are written separately on purpose, so that a slip in one is caught here. The
    sandbox's IAM figures are our reading; the pacer never asks IAM for more than they give."""
    from sandbox import limits

    for name, (capacity, rate) in pacing.EC2_BUCKETS.items():
        assert limits.DEFAULT_BUCKETS["ec2"][name] == {"capacity": capacity, "refill": rate}, name
    assert pacing.EC2_ACTION_BUCKETS == limits.EC2_ACTION_BUCKETS
    for name, (capacity, rate) in pacing.IAM_BUCKETS.items():
        server = limits.DEFAULT_BUCKETS["iam"][name]
        assert capacity <= server["capacity"] and rate <= server["refill"], name
    for action in ("ReplaceIamInstanceProfileAssociation", "DescribeInstances", "GetInstanceMetadataDefaults"):
        assert pacing.bucket_of(action) == limits.bucket_for("ec2", action)
