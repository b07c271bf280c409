# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""How much IMDSv1 each instance used over a window, read from CloudWatch with GetMetricData,
many instances per call: the evidence to look at before requiring IMDSv2.

The metrics (EC2 user guide, "CloudWatch metrics that are available for your instances",
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/viewing_metrics_with_cloudwatch.html,
"Instance metrics"): namespace ``AWS/EC2``, dimension ``InstanceId``, unit Count, statistic
Sum. ``MetadataNoToken`` is "the number of times the Instance Metadata Service (IMDS) was
successfully accessed using a method that does not use a token" (IMDSv1 calls served);
``MetadataNoTokenRejected`` "the number of times an IMDSv1 call was attempted after IMDSv1 was
disabled" (IMDSv1 calls refused). "Transition to using Instance Metadata Service Version 2"
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-transition-to-version-2.html)
tells users to watch the first before requiring IMDSv2. A period without such calls may have no
datapoint at all: a missing datapoint counts as 0, and no datapoint is ever required to prove
that an instance made no call.

The call (CloudWatch API reference, GetMetricData,
https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_GetMetricData.html, and
botocore's cloudwatch model, which carries the same text):

* "A single GetMetricData call can include as many as 500 MetricDataQuery structures", "with a
  total of as many as 100,800 data points" (``MaxDatapoints``: "If you omit this, the default of
  100,800 is used"; beyond it the answer is paginated with ``NextToken``, which we follow). Two
  queries per instance (one per metric): ``BATCH`` = 250 instances per call, never one call per
  instance.
* A query ``Id`` "must be unique within a single call"; "The valid characters are letters,
  numbers, and underscore. The first character must be a lowercase letter": ``served_<n>`` and
  ``rejected_<n>``.
* ``StartTime`` is inclusive and ``EndTime`` exclusive; CloudWatch rounds a start time down (to
  the minute under 15 days ago, to 5 minutes under 63 days, else to the hour), and a start more
  than 63 days ago needs a ``Period`` that is a multiple of 3600 "or no data points in that time
  range is returned".
* Retention: 1-minute datapoints 15 days, 5-minute ones 63 days, 1-hour ones 455 days
  (``MAX_WINDOW_DAYS``).

Our period (a decision, documented in the module): the smallest of 1 hour, 1 day, or a whole
number of days, that keeps one query's datapoints within 100,800 / 500 = 201, so a full batch of
500 queries never paginates. That is 1 hour for windows up to 8 days, 1 day up to 200 days, and
2 or 3 days beyond. The period's multiple of 3600 is valid for any start (the 63-day rule). The
window is aligned to whole periods: ``EndTime`` is the end of the period that holds ``now`` (so
the newest, still-filling period is read), ``StartTime`` the start of the period that holds
``now - window``: the window read is at most one period longer than asked, never shorter.
``last_imdsv1_call`` is the start of the newest period with an IMDSv1 call (served or refused),
so its granularity is the period's.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import aws_failure

NAMESPACE = "AWS/EC2"
SERVED = "MetadataNoToken"
REJECTED = "MetadataNoTokenRejected"
MAX_QUERIES = 500  # MetricDataQueries per GetMetricData call
MAX_DATAPOINTS = 100800  # per call before NextToken
BATCH = MAX_QUERIES // 2  # instances per call: one query per metric
PER_QUERY = MAX_DATAPOINTS // MAX_QUERIES  # 201 datapoints per query keep a full call in one page
HOUR = 3600
DAY = 86400
MAX_WINDOW_DAYS = 455  # CloudWatch keeps 1-hour datapoints 455 days
_UTC = datetime.timezone.utc
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=_UTC)


def _periods(window_seconds, period):
    """How many periods an aligned window of ``window_seconds`` can span (one more than it holds)."""
    return -(-window_seconds // period) + 1


def usage_period(window_seconds):
    """The Period for a window: 1 hour, else 1 day, else a whole number of days, the smallest that
    keeps one query within ``PER_QUERY`` datapoints."""
    if window_seconds <= 0:
        raise ValueError("the window must be longer than 0 seconds")
    if _periods(window_seconds, HOUR) <= PER_QUERY:
        return HOUR
    days = 1
    while _periods(window_seconds, days * DAY) > PER_QUERY:
        days += 1
    return days * DAY


def usage_window(window_seconds, now=None):
    """(StartTime, EndTime, Period) of the GetMetricData calls for a window ending ``now`` (an aware
    datetime, default the current time): aligned to whole periods, the newest included."""
    period = usage_period(int(window_seconds))
    now = now or datetime.datetime.now(_UTC)
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    stamp = int((now - _EPOCH).total_seconds())
    end = (stamp // period + 1) * period
    start = ((stamp - int(window_seconds)) // period) * period
    return _EPOCH + datetime.timedelta(seconds=start), _EPOCH + datetime.timedelta(seconds=end), period


def iso(moment):
    """An aware datetime as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC)."""
    return moment.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _query(query_id, metric, instance_id, period):
    return {"Id": query_id, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": NAMESPACE, "MetricName": metric,
                   "Dimensions": [{"Name": "InstanceId", "Value": instance_id}]},
        "Period": period, "Stat": "Sum", "Unit": "Count"}}


def _read_batch(cloudwatch, instance_ids, start, end, period):
    """{query id: [(timestamp, value)]} for one batch, every page (NextToken) read."""
    queries = []
    for index, instance_id in enumerate(instance_ids):
        queries.append(_query("served_{0}".format(index), SERVED, instance_id, period))
        queries.append(_query("rejected_{0}".format(index), REJECTED, instance_id, period))
    points = dict((query["Id"], []) for query in queries)
    kwargs = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end, "ScanBy": "TimestampDescending"}
    while True:
        try:
            answer = cloudwatch.get_metric_data(**kwargs)
        except Exception as exc:  # pylint: disable=broad-except
            raise aws_failure(exc, "reading the IMDSv1 metrics of {0} instances (CloudWatch GetMetricData)".format(
                len(instance_ids)))
        for result in answer.get("MetricDataResults") or []:
            if result.get("StatusCode") in ("InternalError", "Forbidden"):
                raise KeylessError(
                    "reading the IMDSv1 metrics (CloudWatch GetMetricData) failed: query {0} answered {1}{2}".format(
                        result.get("Id"), result.get("StatusCode"),
                        "".join(": " + m.get("Value", "") for m in result.get("Messages") or [])),
                    code=result.get("StatusCode"))
            if result.get("Id") in points:
                points[result["Id"]].extend(zip(result.get("Timestamps") or [], result.get("Values") or []))
        token = answer.get("NextToken")
        if not token:
            return points
        kwargs["NextToken"] = token


def imdsv1_usage(cloudwatch, instance_ids, window_days=None, window_seconds=None, now=None):
    """{instance_id: {"imdsv1_calls": n, "imdsv1_calls_rejected": m, "last_imdsv1_call": ISO or None}}
    over the window (``window_days``, or ``window_seconds``) that ends ``now``, for every id given
    (0 and None where CloudWatch holds nothing); one GetMetricData call (and its pages) per
    ``BATCH`` instances. ``cloudwatch``: a boto3 CloudWatch client (or RetryingClient)."""
    if window_seconds is None:
        if window_days is None:
            raise ValueError("give window_days or window_seconds")
        window_seconds = int(window_days) * DAY
    start, end, period = usage_window(window_seconds, now)
    ids = sorted(set(instance_ids or []))
    usage = {}
    for offset in range(0, len(ids), BATCH):
        batch = ids[offset:offset + BATCH]
        points = _read_batch(cloudwatch, batch, start, end, period)
        for index, instance_id in enumerate(batch):
            served = points["served_{0}".format(index)]
            rejected = points["rejected_{0}".format(index)]
            used = [stamp for stamp, value in served + rejected if value > 0]
            usage[instance_id] = {
                "imdsv1_calls": int(round(sum(value for _stamp, value in served))),
                "imdsv1_calls_rejected": int(round(sum(value for _stamp, value in rejected))),
                "last_imdsv1_call": iso(max(used)) if used else None,
            }
    return usage


def window_summary(window_days, now=None):
    """What the window read was: {window_days, start, end, period_seconds}."""
    start, end, period = usage_window(int(window_days) * DAY, now)
    return {"window_days": window_days, "start": iso(start), "end": iso(end), "period_seconds": period}


# ---- the whole job of keyless.aws.ec2_imdsv1_usage_info -----------------------------------------

WINDOW_PARAM = "imdsv1_usage_window"
DEFAULT_WINDOW_DAYS = 14


def check_window(window, param=WINDOW_PARAM, then=""):
    """The window in days (1 to ``MAX_WINDOW_DAYS``), or a KeylessError naming ``param``; ``then``
    is a sentence the message ends with (a module that changes things says nothing was)."""
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= MAX_WINDOW_DAYS:
        raise KeylessError(
            "{0}: {1!r} is not a number of days from 1 to {2} (CloudWatch keeps the hourly datapoints of the "
            "IMDSv1 metrics for {2} days).{3}".format(param, window, MAX_WINDOW_DAYS, " " + then if then else ""),
            param=param)
    return window


def _entry(instance, usage):
    options = instance.get("MetadataOptions") or {}
    entry = {
        "instance_id": instance["InstanceId"],
        "state": (instance.get("State") or {}).get("Name"),
        "http_tokens": options.get("HttpTokens"),
        "http_endpoint": options.get("HttpEndpoint"),
    }
    entry.update(usage)
    # IMDSv1 is served only while the instance allows it and its metadata service is on.
    entry["allows_imdsv1"] = entry["http_tokens"] != "required" and entry["http_endpoint"] != "disabled"
    return entry


def usage_report(cloudwatch, instances, window_days, now=None):
    """The result of keyless.aws.ec2_imdsv1_usage_info for ``instances`` (boto3 shape, as
    ``instances.select_instances`` returns them): one entry each, in their order, with its metadata
    options and its IMDSv1 calls over the window (``imdsv1_usage``), and the window read with the
    totals. ``cloudwatch``: a function returning the client, called only when there is an instance."""
    now = now or datetime.datetime.now(_UTC)
    usage = imdsv1_usage(cloudwatch(), [i["InstanceId"] for i in instances], window_days=window_days,
                         now=now) if instances else {}
    entries = [_entry(instance, usage[instance["InstanceId"]]) for instance in instances]
    summary = window_summary(window_days, now)
    summary.update(
        instances_read=len(entries),
        instances_using_imdsv1=sorted(e["instance_id"] for e in entries if e["imdsv1_calls"]),
        instances_refusing_imdsv1=sorted(e["instance_id"] for e in entries if e["imdsv1_calls_rejected"]),
        imdsv1_calls=sum(e["imdsv1_calls"] for e in entries),
        imdsv1_calls_rejected=sum(e["imdsv1_calls_rejected"] for e in entries),
    )
    return {"changed": False, "instances": entries, "imdsv1_usage": summary}
