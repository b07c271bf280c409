"""imds_usage.py: botocore Stubber pins the exact GetMetricData requests (batching, NextToken,
period and alignment), which the sandbox cannot say; tests/functional/plugins/module_utils/
test_imdsv1_evidence.py reads what the IMDS emulator published."""

import datetime
import re

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.keyless.aws.plugins.module_utils import imds_usage as iu
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 12, 1, 11, 17, 42, tzinfo=UTC)
# The MetricDataQuery Id rule of the API reference: letters, numbers, underscore; a lowercase letter first.
QUERY_ID = re.compile(r"^[a-z][A-Za-z0-9_]*$")


@pytest.fixture
def cloudwatch():
    client = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                          aws_secret_access_key="x" * 40)
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()


def ids(count):
    return ["i-{0:017x}".format(index + 1) for index in range(count)]


def query(query_id, metric, instance_id, period):
    return {"Id": query_id, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": "AWS/EC2", "MetricName": metric,
                   "Dimensions": [{"Name": "InstanceId", "Value": instance_id}]},
        "Period": period, "Stat": "Sum", "Unit": "Count"}}


def expected(instance_ids, start, end, period, token=None):
    queries = []
    for index, instance_id in enumerate(instance_ids):
        queries.append(query("served_{0}".format(index), "MetadataNoToken", instance_id, period))
        queries.append(query("rejected_{0}".format(index), "MetadataNoTokenRejected", instance_id, period))
    params = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end, "ScanBy": "TimestampDescending"}
    if token:
        params["NextToken"] = token
    return params


def answer(results, token=None):
    response = {"MetricDataResults": [dict({"StatusCode": "Complete", "Timestamps": [], "Values": []}, **r)
                                      for r in results]}
    if token:
        response["NextToken"] = token
    return response


DAY_START = datetime.datetime(2026, 11, 17, tzinfo=UTC)  # 14 days before NOW, down to the day
DAY_END = datetime.datetime(2026, 12, 2, tzinfo=UTC)  # the end of the day that holds NOW


def test_one_instance_over_14_days_reads_daily_sums_with_the_current_day_included(cloudwatch):
    instance = ids(1)
    stamps = [datetime.datetime(2026, 11, 20, tzinfo=UTC), datetime.datetime(2026, 11, 30, tzinfo=UTC)]
    cloudwatch.stubber.add_response("get_metric_data", answer([
        {"Id": "served_0", "Timestamps": list(reversed(stamps)), "Values": [5.0, 2.0]},
        {"Id": "rejected_0"}]), expected(instance, DAY_START, DAY_END, 86400))
    usage = iu.imdsv1_usage(cloudwatch, instance, window_days=14, now=NOW)
    assert usage == {instance[0]: {"imdsv1_calls": 7, "imdsv1_calls_rejected": 0,
                                   "last_imdsv1_call": "2026-11-30T00:00:00Z"}}


def test_missing_datapoints_are_zero_and_no_last_call(cloudwatch):
    instance = ids(2)
    cloudwatch.stubber.add_response("get_metric_data", answer([
        {"Id": "served_0"}, {"Id": "rejected_0"}, {"Id": "served_1"}, {"Id": "rejected_1"}]),
        expected(instance, DAY_START, DAY_END, 86400))
    usage = iu.imdsv1_usage(cloudwatch, instance, window_days=14, now=NOW)
    assert usage == dict((i, {"imdsv1_calls": 0, "imdsv1_calls_rejected": 0, "last_imdsv1_call": None})
                         for i in instance)


def test_a_results_list_that_leaves_a_query_out_counts_it_as_zero(cloudwatch):
    instance = ids(1)
    cloudwatch.stubber.add_response("get_metric_data", answer([]), expected(instance, DAY_START, DAY_END, 86400))
    assert iu.imdsv1_usage(cloudwatch, instance, window_days=14, now=NOW)[instance[0]]["imdsv1_calls"] == 0


def test_refused_calls_count_and_date_the_last_use_too(cloudwatch):
    instance = ids(1)
    cloudwatch.stubber.add_response("get_metric_data", answer([
        {"Id": "served_0", "Timestamps": [datetime.datetime(2026, 11, 25, tzinfo=UTC)], "Values": [1.0]},
        {"Id": "rejected_0", "Timestamps": [datetime.datetime(2026, 11, 28, tzinfo=UTC),
                                            datetime.datetime(2026, 11, 27, tzinfo=UTC)], "Values": [3.0, 0.0]}]),
        expected(instance, DAY_START, DAY_END, 86400))
    usage = iu.imdsv1_usage(cloudwatch, instance, window_days=14, now=NOW)[instance[0]]
    assert usage == {"imdsv1_calls": 1, "imdsv1_calls_rejected": 3, "last_imdsv1_call": "2026-11-28T00:00:00Z"}


def test_251_instances_are_two_calls_of_500_and_2_queries(cloudwatch):
    instances = ids(251)
    first, second = instances[:250], instances[250:]
    cloudwatch.stubber.add_response("get_metric_data", answer(
        [{"Id": "served_{0}".format(i)} for i in range(250)] + [{"Id": "rejected_{0}".format(i)} for i in range(250)]
        + [{"Id": "served_249", "Timestamps": [datetime.datetime(2026, 11, 29, tzinfo=UTC)], "Values": [9.0]}]),
        expected(first, DAY_START, DAY_END, 86400))
    cloudwatch.stubber.add_response("get_metric_data", answer([
        {"Id": "served_0", "Timestamps": [datetime.datetime(2026, 12, 1, tzinfo=UTC)], "Values": [4.0]},
        {"Id": "rejected_0"}]), expected(second, DAY_START, DAY_END, 86400))
    usage = iu.imdsv1_usage(cloudwatch, list(reversed(instances)), window_days=14, now=NOW)
    assert len(usage) == 251
    assert usage[instances[249]] == {"imdsv1_calls": 9, "imdsv1_calls_rejected": 0,
                                     "last_imdsv1_call": "2026-11-29T00:00:00Z"}
    assert usage[instances[250]]["imdsv1_calls"] == 4
    assert sum(u["imdsv1_calls"] for u in usage.values()) == 13
    for params in (expected(first, DAY_START, DAY_END, 86400), expected(second, DAY_START, DAY_END, 86400)):
        assert len(params["MetricDataQueries"]) <= 500
        assert all(QUERY_ID.match(q["Id"]) for q in params["MetricDataQueries"])


def test_next_token_is_followed_and_the_pages_add_up(cloudwatch):
    instance = ids(1)
    cloudwatch.stubber.add_response("get_metric_data", answer([
        {"Id": "served_0", "StatusCode": "PartialData", "Timestamps": [datetime.datetime(2026, 12, 1, tzinfo=UTC)],
         "Values": [2.0]}, {"Id": "rejected_0", "StatusCode": "PartialData"}], token="page-2"),
        expected(instance, DAY_START, DAY_END, 86400))
    cloudwatch.stubber.add_response("get_metric_data", answer([
        {"Id": "served_0", "Timestamps": [datetime.datetime(2026, 11, 18, tzinfo=UTC)], "Values": [3.0]},
        {"Id": "rejected_0", "Timestamps": [datetime.datetime(2026, 11, 18, tzinfo=UTC)], "Values": [1.0]}]),
        expected(instance, DAY_START, DAY_END, 86400, token="page-2"))
    usage = iu.imdsv1_usage(cloudwatch, instance, window_days=14, now=NOW)[instance[0]]
    assert usage == {"imdsv1_calls": 5, "imdsv1_calls_rejected": 1, "last_imdsv1_call": "2026-12-01T00:00:00Z"}


def test_a_short_window_reads_hourly_sums_aligned_to_the_hour(cloudwatch):
    instance = ids(1)
    start = datetime.datetime(2026, 11, 24, 11, tzinfo=UTC)  # 7 days before NOW, down to the hour
    end = datetime.datetime(2026, 12, 1, 12, tzinfo=UTC)  # the end of the hour that holds NOW
    cloudwatch.stubber.add_response("get_metric_data", answer([
        {"Id": "served_0", "Timestamps": [datetime.datetime(2026, 12, 1, 11, tzinfo=UTC)], "Values": [1.0]},
        {"Id": "rejected_0"}]), expected(instance, start, end, 3600))
    usage = iu.imdsv1_usage(cloudwatch, instance, window_days=7, now=NOW)[instance[0]]
    assert usage["last_imdsv1_call"] == "2026-12-01T11:00:00Z"


def test_window_seconds_is_accepted_for_sub_day_windows(cloudwatch):
    instance = ids(1)
    start = datetime.datetime(2026, 12, 1, 9, tzinfo=UTC)
    end = datetime.datetime(2026, 12, 1, 12, tzinfo=UTC)
    cloudwatch.stubber.add_response("get_metric_data", answer([{"Id": "served_0"}, {"Id": "rejected_0"}]),
                                    expected(instance, start, end, 3600))
    assert iu.imdsv1_usage(cloudwatch, instance, window_seconds=7200, now=NOW)[instance[0]]["imdsv1_calls"] == 0


def test_no_instances_no_call(cloudwatch):
    assert iu.imdsv1_usage(cloudwatch, [], window_days=14, now=NOW) == {}


@pytest.mark.parametrize("days, period", [(1, 3600), (8, 3600), (9, 86400), (200, 86400), (201, 2 * 86400),
                                          (400, 2 * 86400), (455, 3 * 86400)])
def test_the_period_keeps_a_full_call_within_100800_datapoints(days, period):
    assert iu.usage_period(days * 86400) == period
    start, end, found = iu.usage_window(days * 86400, NOW)
    assert found == period
    periods = int((end - start).total_seconds()) // period
    assert periods * 500 <= 100800
    assert start <= NOW - datetime.timedelta(days=days) and end > NOW
    assert int((start - iu._EPOCH).total_seconds()) % period == 0  # pylint: disable=protected-access
    assert period % 3600 == 0  # valid for a start more than 63 days ago


def test_a_refused_read_names_what_was_read(cloudwatch):
    cloudwatch.stubber.add_client_error("get_metric_data", "AccessDenied", "User is not authorized to perform: "
                                        "cloudwatch:GetMetricData", 403)
    with pytest.raises(KeylessError, match="reading the IMDSv1 metrics of 1 instances .*AccessDenied"):
        iu.imdsv1_usage(cloudwatch, ids(1), window_days=14, now=NOW)


def test_a_query_answered_forbidden_fails(cloudwatch):
    instance = ids(1)
    cloudwatch.stubber.add_response("get_metric_data", answer([
        {"Id": "served_0", "StatusCode": "Forbidden", "Messages": [{"Code": "Forbidden", "Value": "no access"}]},
        {"Id": "rejected_0"}]), expected(instance, DAY_START, DAY_END, 86400))
    with pytest.raises(KeylessError, match="served_0 answered Forbidden: no access"):
        iu.imdsv1_usage(cloudwatch, instance, window_days=14, now=NOW)


def test_a_naive_now_is_refused():
    with pytest.raises(ValueError, match="aware"):
        iu.usage_window(86400, datetime.datetime(2026, 12, 1))


def instance(instance_id, tokens, endpoint="enabled", state="running"):
    return {"InstanceId": instance_id, "State": {"Name": state},
            "MetadataOptions": {"HttpTokens": tokens, "HttpEndpoint": endpoint}}


def test_usage_report_is_one_entry_per_instance_with_its_options_and_the_totals(cloudwatch):
    first, second, third = ids(3)
    cloudwatch.stubber.add_response("get_metric_data", answer([
        {"Id": "served_0", "Timestamps": [datetime.datetime(2026, 11, 30, tzinfo=UTC)], "Values": [4.0]},
        {"Id": "rejected_1", "Timestamps": [datetime.datetime(2026, 11, 29, tzinfo=UTC)], "Values": [2.0]}]),
        expected([first, second, third], DAY_START, DAY_END, 86400))
    # given in the caller's order (not sorted): the entries keep it
    report = iu.usage_report(lambda: cloudwatch, [instance(second, "required"), instance(first, "optional"),
                                                  instance(third, "optional", endpoint="disabled", state="stopped")],
                             14, now=NOW)
    assert [e["instance_id"] for e in report["instances"]] == [second, first, third]
    by_id = dict((e["instance_id"], e) for e in report["instances"])
    assert by_id[first] == {"instance_id": first, "state": "running", "http_tokens": "optional",
                            "http_endpoint": "enabled", "allows_imdsv1": True, "imdsv1_calls": 4,
                            "imdsv1_calls_rejected": 0, "last_imdsv1_call": "2026-11-30T00:00:00Z"}
    assert (by_id[second]["allows_imdsv1"], by_id[second]["imdsv1_calls_rejected"]) == (False, 2)
    assert by_id[third]["allows_imdsv1"] is False  # the metadata service is off
    summary = report["imdsv1_usage"]
    assert summary == {"window_days": 14, "start": "2026-11-17T00:00:00Z", "end": "2026-12-02T00:00:00Z",
                       "period_seconds": 86400, "instances_read": 3, "instances_using_imdsv1": [first],
                       "instances_refusing_imdsv1": [second], "imdsv1_calls": 4, "imdsv1_calls_rejected": 2}
    assert report["changed"] is False


def test_usage_report_of_no_instance_makes_no_client():
    def no_client():
        raise AssertionError("no CloudWatch client is needed for no instance")

    report = iu.usage_report(no_client, [], 14, now=NOW)
    assert report["instances"] == [] and report["imdsv1_usage"]["instances_read"] == 0


@pytest.mark.parametrize("window", [0, 456, True, "14", None])
def test_check_window_names_the_parameter(window):
    with pytest.raises(KeylessError, match="imdsv1_usage_window: .* is not a number of days from 1 to 455"):
        iu.check_window(window)
