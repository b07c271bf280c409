"""Evidence before enforcement against the sandbox: metadata_options.py reads the IMDSv1 calls the
IMDS emulator published to the sandbox's CloudWatch from real token-less requests (and, for past
use, ``publish_imds_usage``), with GetMetricData, and with ``skip_instances_using_imdsv1`` leaves
the instances that used IMDSv1 allowing it; check mode predicts the same, and once the calls are
out of the window the instance is enforced."""

import datetime
import http.client

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import metadata_options as mo
from sandbox.imds import publish_imds_usage

UTC = datetime.timezone.utc
MUTATING = ("ModifyInstanceMetadataOptions", "CreateLaunchTemplateVersion", "ModifyLaunchTemplate",
            "ModifyInstanceMetadataDefaults")


# Instances settle at once: these tests are about metrics (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("instant_transitions")


def params(**kwargs):
    base = dict(instance_ids=[], filters={}, launch_templates=[], account_defaults=False, http_tokens="required",
                http_endpoint=None, http_put_response_hop_limit=None, instance_metadata_tags=None,
                http_protocol_ipv6=None, wait=True, wait_timeout=60, set_default_version=True,
                version_description=None, imdsv1_usage_window=14, skip_instances_using_imdsv1=True)
    base.update(kwargs)
    return base


def launch(sandbox, count):
    instances = sandbox.client("ec2").run_instances(ImageId="ami-12345678", MinCount=count, MaxCount=count,
                                                    MetadataOptions={"HttpTokens": "optional"})["Instances"]
    return sorted(instance["InstanceId"] for instance in instances)


def v1_get(emulator, path="/latest/meta-data/instance-id"):
    connection = http.client.HTTPConnection(emulator.host, emulator.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def tokens(sandbox, instance_ids):
    described = sandbox.client("ec2").describe_instances(InstanceIds=instance_ids)["Reservations"]
    return dict((i["InstanceId"], i["MetadataOptions"]["HttpTokens"]) for r in described for i in r["Instances"])


def run(sandbox, args, check_mode, now=None):
    sandbox.app.clear_log()
    result = mo.manage_metadata_options(sandbox.client("ec2"), args, check_mode,
                                        cloudwatch=lambda: sandbox.client("cloudwatch"), now=now)
    return result, sandbox.calls()


def by_id(result):
    return dict((entry["instance_id"], entry) for entry in result["instances"])


def test_an_instance_that_used_imdsv1_is_skipped_until_the_calls_leave_the_window(sandbox, imds):
    legacy, clean = launch(sandbox, 2)
    emulator = imds(legacy)
    for _call in range(3):
        assert v1_get(emulator) == 200  # real IMDSv1 calls: the emulator publishes MetadataNoToken
    args = params(instance_ids=[legacy, clean])

    predicted, calls = run(sandbox, args, True)
    assert [c["action"] for c in calls if c["action"] in MUTATING] == []
    assert [c["action"] for c in calls if c["service"] == "monitoring"] == ["GetMetricData"]
    real, calls = run(sandbox, args, False)
    for key in ("changed", "instances", "imdsv1_usage", "diff"):
        assert predicted[key] == real[key], key
    assert [c["action"] for c in calls if c["action"] in MUTATING] == ["ModifyInstanceMetadataOptions"]
    assert tokens(sandbox, [legacy, clean]) == {legacy: "optional", clean: "required"}

    entries = by_id(real)
    assert entries[legacy]["skipped_for_imdsv1_use"] is True and entries[legacy]["changed"] is False
    assert entries[legacy]["imdsv1_calls"] == 3 and entries[legacy]["imdsv1_calls_rejected"] == 0
    assert entries[legacy]["after"] == entries[legacy]["before"]
    last = datetime.datetime.strptime(entries[legacy]["last_imdsv1_call"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert datetime.timedelta(0) <= datetime.datetime.now(UTC) - last < datetime.timedelta(days=1)
    assert entries[clean]["skipped_for_imdsv1_use"] is False and entries[clean]["changed"] is True
    assert (entries[clean]["imdsv1_calls"], entries[clean]["last_imdsv1_call"]) == (0, None)
    assert entries[clean]["after"]["http_tokens"] == "required"
    usage = real["imdsv1_usage"]
    assert usage["window_days"] == 14 and usage["period_seconds"] == 86400 and usage["instances_read"] == 2
    assert usage["skipped_instances"] == [{"instance_id": legacy, "imdsv1_calls": 3, "imdsv1_calls_rejected": 0,
                                           "last_imdsv1_call": entries[legacy]["last_imdsv1_call"]}]
    assert any("1 of the instances made IMDSv1 calls in the last 14 days" in w and legacy in w
               for w in real["warnings"])
    assert [d["before_header"] for d in real["diff"]] == ["instance {0} metadata options".format(clean)]

    # The re-run: the skipped instance is read again (it would still change), the enforced one is not.
    again, calls = run(sandbox, args, False)
    assert again["changed"] is False and again["imdsv1_usage"]["instances_read"] == 1
    assert by_id(again)[clean]["imdsv1_calls"] is None

    # The application is fixed: no new calls, and 15 days on the window no longer holds the old ones.
    later = datetime.datetime.now(UTC) + datetime.timedelta(days=15)
    predicted, calls = run(sandbox, args, True, now=later)
    assert [c["action"] for c in calls if c["action"] in MUTATING] == []
    fixed, calls = run(sandbox, args, False, now=later)
    assert predicted["instances"] == fixed["instances"]
    assert by_id(fixed)[legacy]["skipped_for_imdsv1_use"] is False and by_id(fixed)[legacy]["changed"] is True
    assert by_id(fixed)[legacy]["imdsv1_calls"] == 0
    assert fixed["imdsv1_usage"]["skipped_instances"] == []
    assert tokens(sandbox, [legacy, clean]) == {legacy: "required", clean: "required"}

    # Everything required: a no-op run reads no metric at all.
    noop, calls = run(sandbox, args, False)
    assert noop["changed"] is False and [c for c in calls if c["service"] == "monitoring"] == []
    # After enforcement the refused calls are the evidence (MetadataNoTokenRejected), in the report.
    assert v1_get(emulator) == 401
    report, calls = run(sandbox, params(instance_ids=[legacy], skip_instances_using_imdsv1=False), True)
    assert (by_id(report)[legacy]["imdsv1_calls"], by_id(report)[legacy]["imdsv1_calls_rejected"]) == (3, 1)


def test_past_use_in_the_window_skips_and_a_shorter_window_enforces(sandbox):
    old_user, clean = launch(sandbox, 2)
    now = datetime.datetime.now(UTC)
    publish_imds_usage(sandbox, old_user, no_token=12, when=now - datetime.timedelta(days=5, hours=2))
    publish_imds_usage(sandbox, old_user, no_token=30, when=now - datetime.timedelta(days=40))  # outside 14 days
    predicted, _calls = run(sandbox, params(instance_ids=[old_user, clean]), True)
    entries = by_id(predicted)
    assert entries[old_user]["skipped_for_imdsv1_use"] is True and entries[old_user]["imdsv1_calls"] == 12
    day = (now - datetime.timedelta(days=5, hours=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert entries[old_user]["last_imdsv1_call"] == day.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert entries[clean]["changed"] is True
    short, calls = run(sandbox, params(instance_ids=[old_user, clean], imdsv1_usage_window=3), False)
    assert short["imdsv1_usage"]["period_seconds"] == 3600
    assert [e["skipped_for_imdsv1_use"] for e in short["instances"]] == [False, False]
    assert tokens(sandbox, [old_user, clean]) == {old_user: "required", clean: "required"}


def test_without_skip_the_window_reports_every_instance_and_enforces_all_with_a_warning(sandbox):
    user, clean = launch(sandbox, 2)
    publish_imds_usage(sandbox, user, no_token=4, rejected=1)
    result, calls = run(sandbox, params(instance_ids=[user, clean], skip_instances_using_imdsv1=False), False)
    assert [e["changed"] for e in result["instances"]] == [True, True]
    assert by_id(result)[user]["imdsv1_calls"] == 4 and by_id(result)[user]["imdsv1_calls_rejected"] == 1
    assert result["imdsv1_usage"]["skipped_instances"] == []
    assert any(user in w and "skip_instances_using_imdsv1 is off" in w for w in result["warnings"])
    # The window alone reads every selected instance, even with nothing left to change.
    again, calls = run(sandbox, params(instance_ids=[user, clean], skip_instances_using_imdsv1=False), False)
    assert again["changed"] is False and again["imdsv1_usage"]["instances_read"] == 2
    assert [c["action"] for c in calls if c["service"] == "monitoring"] == ["GetMetricData"]


def test_251_instances_are_read_in_two_calls(sandbox):
    ids = launch(sandbox, 251)
    publish_imds_usage(sandbox, ids[-1], no_token=2)
    result, calls = run(sandbox, params(instance_ids=ids, wait=False), True)
    assert len([c for c in calls if c["action"] == "GetMetricData"]) == 2
    assert result["imdsv1_usage"]["skipped_instances"] == [
        {"instance_id": ids[-1], "imdsv1_calls": 2, "imdsv1_calls_rejected": 0,
         "last_imdsv1_call": result["imdsv1_usage"]["skipped_instances"][0]["last_imdsv1_call"]}]
    assert sum(1 for e in result["instances"] if e["changed"]) == 250
