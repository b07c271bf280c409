"""The IMDS emulator publishes MetadataNoToken and MetadataNoTokenRejected to the sandbox's CloudWatch,
as EC2 does (tests/sandbox/imds.py): read back here as a client reads them, with GetMetricData."""

import datetime
import http.client

import pytest

from sandbox.imds import BASIC_PERIOD
from sandbox.imds import DETAILED_PERIOD
from sandbox.imds import METRIC_RETENTION
from sandbox.imds import imds_metrics_enabled
from sandbox.imds import imds_usage
from sandbox.imds import publish_imds_usage
from sandbox.imds import set_imds_metrics

NO_TOKEN = "MetadataNoToken"
REJECTED = "MetadataNoTokenRejected"
TTL = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN = "X-aws-ec2-metadata-token"
UTC = datetime.timezone.utc


# Instances settle at once: these tests are about metrics (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("instant_transitions")


def launch(sandbox, count=1, monitoring=False, **metadata_options):
    kwargs = {"ImageId": "ami-12345678", "MinCount": count, "MaxCount": count}
    if monitoring:
        kwargs["Monitoring"] = {"Enabled": True}
    instances = sandbox.client("ec2").run_instances(**kwargs)["Instances"]
    ids = [instance["InstanceId"] for instance in instances]
    if metadata_options:
        for instance_id in ids:
            sandbox.client("ec2").modify_instance_metadata_options(InstanceId=instance_id, **metadata_options)
    return ids if count > 1 else ids[0]


def request(emulator, method, path, headers=None):
    connection = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8")
    finally:
        connection.close()


def v1_get(emulator, path="/latest/meta-data/instance-id"):
    return request(emulator, "GET", path)[0]


def v2_get(emulator, path="/latest/meta-data/instance-id"):
    status, token = request(emulator, "PUT", "/latest/api/token", {TTL: "60"})
    assert status == 200
    return request(emulator, "GET", path, {TOKEN: token})[0]


def now():
    return datetime.datetime.now(UTC)


def metric_sums(sandbox, instance_ids, start=None, end=None, metrics=(NO_TOKEN, REJECTED)):
    """{(instance, metric): Sum over the window, or None when there is no datapoint at all}, in ONE
    GetMetricData call (as a client batches them): namespace AWS/EC2, dimension InstanceId, Sum."""
    start = start or now() - datetime.timedelta(days=14)
    end = end or now() + datetime.timedelta(minutes=10)
    period = max(60, int((end - start).total_seconds()) // 60 * 60)
    keys = [(instance_id, metric) for instance_id in instance_ids for metric in metrics]
    queries = [{"Id": "q{0}".format(index), "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": "AWS/EC2", "MetricName": metric,
                   "Dimensions": [{"Name": "InstanceId", "Value": instance_id}]},
        "Period": period, "Stat": "Sum"}} for index, (instance_id, metric) in enumerate(keys)]
    results = sandbox.client("cloudwatch").get_metric_data(
        MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampAscending")["MetricDataResults"]
    assert "NextToken" not in results
    by_id = {result["Id"]: result for result in results}
    assert len(by_id) == len(keys)
    return {key: (sum(by_id["q{0}".format(index)]["Values"]) if by_id["q{0}".format(index)]["Values"] else None)
            for index, key in enumerate(keys)}


# ---- real IMDS calls --------------------------------------------------------------------------


def test_an_imdsv1_call_served_is_counted_as_metadata_no_token(sandbox, imds):
    instance_id = launch(sandbox)
    emulator = imds(instance_id)
    assert metric_sums(sandbox, [instance_id]) == {(instance_id, NO_TOKEN): None, (instance_id, REJECTED): None}
    since = len(sandbox.app.log)
    assert v1_get(emulator) == 200
    assert sandbox.calls(service="monitoring", since=since) == []  # EC2 publishes; no API call of the user's
    assert metric_sums(sandbox, [instance_id]) == {(instance_id, NO_TOKEN): 1, (instance_id, REJECTED): None}
    assert v1_get(emulator, "/latest/meta-data/no-such-item") == 404  # still IMDS reached without a token
    assert metric_sums(sandbox, [instance_id])[(instance_id, NO_TOKEN)] == 2
    assert emulator.describe()["usage"] == {NO_TOKEN: 2, REJECTED: 0}


def test_imdsv2_calls_and_refusals_other_than_imdsv1_add_nothing(sandbox, imds):
    instance_id = launch(sandbox)
    emulator = imds(instance_id)
    assert v2_get(emulator) == 200  # the token PUT and the GET with a token: IMDSv2
    assert request(emulator, "GET", "/latest/meta-data/instance-id", {TOKEN: "AQAEAnot-a-token"})[0] == 401
    assert request(emulator, "POST", "/latest/meta-data/instance-id")[0] == 405
    assert v1_get(emulator) == 200  # the one IMDSv1 call
    assert metric_sums(sandbox, [instance_id]) == {(instance_id, NO_TOKEN): 1, (instance_id, REJECTED): None}
    sandbox.client("ec2").modify_instance_metadata_options(InstanceId=instance_id, HttpEndpoint="disabled")
    assert v1_get(emulator) == 403  # no IMDS at all: neither served nor refused for want of a token
    assert metric_sums(sandbox, [instance_id]) == {(instance_id, NO_TOKEN): 1, (instance_id, REJECTED): None}


def test_with_http_tokens_required_an_imdsv1_call_is_refused_and_counted_rejected(sandbox, imds):
    instance_id = launch(sandbox, HttpTokens="required", HttpEndpoint="enabled")
    emulator = imds(instance_id)
    assert v1_get(emulator) == 401
    assert v1_get(emulator, "/latest/meta-data/iam/info") == 401
    assert v2_get(emulator) == 200
    assert metric_sums(sandbox, [instance_id]) == {(instance_id, NO_TOKEN): None, (instance_id, REJECTED): 2}


def test_the_switch_from_optional_to_required_moves_the_counting(sandbox, imds):
    instance_id = launch(sandbox)
    emulator = imds(instance_id)
    assert v1_get(emulator) == 200
    sandbox.client("ec2").modify_instance_metadata_options(InstanceId=instance_id, HttpTokens="required",
                                                           HttpEndpoint="enabled")
    assert v1_get(emulator) == 401
    assert v1_get(emulator) == 401
    assert metric_sums(sandbox, [instance_id]) == {(instance_id, NO_TOKEN): 1, (instance_id, REJECTED): 2}


def test_counts_are_per_instance(sandbox, imds):
    first, second = launch(sandbox), launch(sandbox)
    one, other = imds(first), imds(second)
    for _index in range(3):
        assert v1_get(one) == 200
    assert v1_get(other) == 200
    assert metric_sums(sandbox, [first, second]) == {
        (first, NO_TOKEN): 3, (first, REJECTED): None, (second, NO_TOKEN): 1, (second, REJECTED): None}


def test_datapoints_are_stamped_with_the_start_of_their_5_minute_period(sandbox, imds):
    instance_id = launch(sandbox)
    emulator = imds(instance_id)
    before = now()
    assert v1_get(emulator) == 200
    assert v1_get(emulator) == 200
    after = now()
    points = imds_usage(sandbox, instance_id)["datapoints"]
    periods = {moment.replace(minute=moment.minute - moment.minute % 5, second=0, microsecond=0)
               for moment in (before, after)}
    if len(periods) == 1:  # (the two calls did not straddle a period's end)
        assert len(points) == 1  # one datapoint per period, updated in place
    assert {point["timestamp"] for point in points} <= periods
    assert sum(point["sum"] for point in points) == 2
    assert {(point["metric"], point["period"]) for point in points} == {(NO_TOKEN, BASIC_PERIOD)}


def test_switched_off_nothing_is_published_and_on_again_it_is(sandbox, imds):
    instance_id = launch(sandbox)
    emulator = imds(instance_id)
    set_imds_metrics(sandbox, False)
    assert not imds_metrics_enabled(sandbox)
    assert v1_get(emulator) == 200
    assert metric_sums(sandbox, [instance_id]) == {(instance_id, NO_TOKEN): None, (instance_id, REJECTED): None}
    assert emulator.usage[NO_TOKEN] == 1  # counted by the emulator, not published
    assert sandbox.control("POST", "/_sandbox/imds-metrics", {"enabled": True}) == (200, {"enabled": True})
    assert v1_get(emulator) == 200
    assert metric_sums(sandbox, [instance_id])[(instance_id, NO_TOKEN)] == 1


def test_a_reset_turns_publishing_on_again(sandbox, imds):
    set_imds_metrics(sandbox, False)
    sandbox.reset()
    assert imds_metrics_enabled(sandbox)
    instance_id = launch(sandbox)
    assert v1_get(imds(instance_id)) == 200
    assert metric_sums(sandbox, [instance_id])[(instance_id, NO_TOKEN)] == 1


# ---- past usage (publish_imds_usage) ----------------------------------------------------------


def test_past_usage_lands_in_its_window(sandbox):
    instance_id = launch(sandbox)
    moment = now()
    publish_imds_usage(sandbox, instance_id, no_token=7, when=moment - datetime.timedelta(days=3))
    publish_imds_usage(sandbox, instance_id, rejected=2, when=moment - datetime.timedelta(days=10))
    publish_imds_usage(sandbox, instance_id, no_token=50, when=moment - datetime.timedelta(days=20))
    assert metric_sums(sandbox, [instance_id]) == {(instance_id, NO_TOKEN): 7, (instance_id, REJECTED): 2}
    assert metric_sums(sandbox, [instance_id], start=moment - datetime.timedelta(days=2)) == {
        (instance_id, NO_TOKEN): None, (instance_id, REJECTED): None}
    window = metric_sums(sandbox, [instance_id], start=moment - datetime.timedelta(days=4),
                         end=moment - datetime.timedelta(days=2))
    assert window == {(instance_id, NO_TOKEN): 7, (instance_id, REJECTED): None}
    month = metric_sums(sandbox, [instance_id], start=moment - datetime.timedelta(days=30))
    assert month[(instance_id, NO_TOKEN)] == 57
    usage = imds_usage(sandbox, instance_id, start=moment - datetime.timedelta(days=14))
    assert (usage[NO_TOKEN], usage[REJECTED]) == (7, 2)


def test_past_usage_and_live_calls_add_up_in_the_same_period(sandbox, imds):
    instance_id = launch(sandbox)
    publish_imds_usage(sandbox, instance_id, no_token=4)
    assert v1_get(imds(instance_id)) == 200
    assert metric_sums(sandbox, [instance_id])[(instance_id, NO_TOKEN)] == 5
    assert len(imds_usage(sandbox, instance_id)["datapoints"]) == 1


def test_the_period_is_5_minutes_and_1_minute_with_detailed_monitoring(sandbox):
    basic, detailed = launch(sandbox), launch(sandbox, monitoring=True)
    ten = (now() - datetime.timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    for instance_id in (basic, detailed):
        publish_imds_usage(sandbox, instance_id, no_token=1, when=ten + datetime.timedelta(minutes=1, seconds=10))
        publish_imds_usage(sandbox, instance_id, no_token=3, when=ten + datetime.timedelta(minutes=3, seconds=20))
    basic_points = imds_usage(sandbox, basic)["datapoints"]
    assert [(p["timestamp"], p["period"], p["sum"], p["sample_count"]) for p in basic_points] == [
        (ten, BASIC_PERIOD, 4, 2)]  # one set of two per-minute samples: only Sum is the count
    detailed_points = imds_usage(sandbox, detailed)["datapoints"]
    assert [(p["timestamp"], p["period"], p["sum"]) for p in detailed_points] == [
        (ten + datetime.timedelta(minutes=1), DETAILED_PERIOD, 1),
        (ten + datetime.timedelta(minutes=3), DETAILED_PERIOD, 3)]
    window = {"start": ten, "end": ten + datetime.timedelta(minutes=5)}
    assert metric_sums(sandbox, [basic, detailed], metrics=(NO_TOKEN,), **window) == {
        (basic, NO_TOKEN): 4, (detailed, NO_TOKEN): 4}
    # a window that starts after the period's start misses the 5-minute datapoint, as on AWS
    late = {"start": ten + datetime.timedelta(minutes=2), "end": ten + datetime.timedelta(minutes=5)}
    assert metric_sums(sandbox, [basic, detailed], metrics=(NO_TOKEN,), **late) == {
        (basic, NO_TOKEN): None, (detailed, NO_TOKEN): 3}


@pytest.mark.parametrize("kwargs, message", [
    ({"no_token": -1}, "no_token"),
    ({"rejected": 1.5}, "rejected"),
    ({"no_token": True}, "no_token"),
    ({"no_token": 1, "when": datetime.datetime(2024, 1, 1)}, "aware"),
    ({"no_token": 1, "when": "yesterday"}, "aware"),
    ({"no_token": 1, "when": "future"}, "future"),
    ({"no_token": 1, "when": "too old"}, "older than CloudWatch keeps"),
])
def test_past_usage_is_checked(sandbox, kwargs, message):
    instance_id = launch(sandbox)
    if kwargs.get("when") == "future":
        kwargs["when"] = now() + datetime.timedelta(minutes=5)
    elif kwargs.get("when") == "too old":
        kwargs["when"] = now() - METRIC_RETENTION - datetime.timedelta(days=1)
    with pytest.raises(ValueError, match=message):
        publish_imds_usage(sandbox, instance_id, **kwargs)
    publish_imds_usage(sandbox, instance_id, rejected=1)  # the refused one left nothing behind
    assert metric_sums(sandbox, [instance_id]) == {(instance_id, NO_TOKEN): None, (instance_id, REJECTED): 1}


def test_past_usage_needs_an_instance_of_the_sandbox_in_any_state(sandbox):
    with pytest.raises(ValueError, match="no instance i-0123456789abcdef0"):
        publish_imds_usage(sandbox, "i-0123456789abcdef0", no_token=1)
    instance_id = launch(sandbox)
    sandbox.client("ec2").terminate_instances(InstanceIds=[instance_id])
    assert publish_imds_usage(sandbox, instance_id, no_token=2) == {NO_TOKEN: 2, REJECTED: 0}
    assert metric_sums(sandbox, [instance_id]) == {(instance_id, NO_TOKEN): 2, (instance_id, REJECTED): None}


def test_past_usage_through_the_control_api(sandbox):
    instance_id = launch(sandbox)
    when = (now() - datetime.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = "/_sandbox/imds-metrics/" + instance_id
    assert sandbox.control("POST", path, {"no_token": 3, "rejected": 1, "when": when}) == (
        200, {"published": {NO_TOKEN: 3, REJECTED: 1}})
    status, usage = sandbox.control("GET", path)
    assert status == 200 and (usage[NO_TOKEN], usage[REJECTED]) == (3, 1)
    assert all(point["timestamp"].endswith("Z") for point in usage["datapoints"])
    assert metric_sums(sandbox, [instance_id]) == {(instance_id, NO_TOKEN): 3, (instance_id, REJECTED): 1}
    future = (now() + datetime.timedelta(hours=1)).isoformat()
    assert sandbox.control("POST", path, {"no_token": 1, "when": future})[0] == 400
    assert sandbox.control("POST", path, {"no_token": 1, "rate": 2})[0] == 400
    assert sandbox.control("POST", "/_sandbox/imds-metrics/i-0000000000000000f", {"no_token": 1})[0] == 400
    assert sandbox.control("POST", "/_sandbox/imds-metrics", {"enabled": "no"})[0] == 400
    assert sandbox.control("GET", "/_sandbox/imds-metrics") == (200, {"enabled": True})
    assert metric_sums(sandbox, [instance_id]) == {(instance_id, NO_TOKEN): 3, (instance_id, REJECTED): 1}


# ---- many instances: what a client batches --------------------------------------------------


@pytest.mark.parametrize("instances", [250])
def test_one_get_metric_data_call_reads_many_instances(sandbox, instances):
    """100 instances x 2 metrics, and 250 x 2: the 500 queries a GetMetricData call may carry
    (botocore's cloudwatch model: "as many as 500 MetricDataQuery structures")."""
    ids = launch(sandbox, count=instances)
    moment = now() - datetime.timedelta(days=1)
    for index, instance_id in enumerate(ids):
        publish_imds_usage(sandbox, instance_id, no_token=index % 7, rejected=index % 3, when=moment)
    since = len(sandbox.app.log)
    sums = metric_sums(sandbox, ids)
    assert len(sandbox.calls(service="monitoring", action="GetMetricData", since=since)) == 1
    assert sums == {key: value for index, instance_id in enumerate(ids)
                    for key, value in (((instance_id, NO_TOKEN), index % 7 or None),
                                       ((instance_id, REJECTED), index % 3 or None))}
