"""The SQS queue EventBridge delivers to (module_utils/event_queue.py): the inputs, the policy
statement it owns merged with the others, what differs, and the tags."""

import json

import pytest

from ansible_collections.keyless.aws.plugins.module_utils import event_queue
from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError

QUEUE = "arn:aws:sqs:us-east-1:123456789012:keyless-guard"
RULE = "arn:aws:events:us-east-1:123456789012:rule/keyless-guard"
BASE = {"name": "keyless-guard", "state": "present", "max_receive_count": 5, "message_retention_seconds": 345600,
        "dead_letter_retention_seconds": 1209600, "visibility_timeout": 30, "eventbridge_rules": ["keyless-guard"]}


@pytest.mark.parametrize("change, param", [
    ({"name": "guard.fifo"}, "name"),
    ({"name": "a" * 81}, "name"),
    ({"name": "has space"}, "name"),
    ({"dead_letter_queue_name": "keyless-guard"}, "dead_letter_queue_name"),
    ({"max_receive_count": 0}, "max_receive_count"),
    ({"message_retention_seconds": 59}, "message_retention_seconds"),
    ({"dead_letter_retention_seconds": 1209601}, "dead_letter_retention_seconds"),
    ({"visibility_timeout": 43201}, "visibility_timeout"),
    ({"eventbridge_rules": ["arn:aws:sqs:us-east-1:123456789012:q"]}, "eventbridge_rules"),
    ({"eventbridge_rules": ["a rule"]}, "eventbridge_rules"),
    ({"tags": {"aws:owner": "x"}}, "tags"),
])
def test_bad_input_fails_naming_the_parameter(change, param):
    with pytest.raises(KeylessError) as failed:
        event_queue.validated(dict(BASE, **change))
    assert failed.value.param == param and param in failed.value.message


def test_fifo_is_refused_saying_why():
    with pytest.raises(KeylessError) as failed:
        event_queue.validated(dict(BASE, name="guard.fifo"))
    assert "message group id" in failed.value.message


def test_the_dead_letter_queue_is_named_after_the_queue_by_default():
    assert event_queue.validated(BASE)["dead_letter_queue_name"] == "keyless-guard-dlq"
    assert event_queue.validated(dict(BASE, state="absent", max_receive_count=None))["dead_letter_queue_name"]


def test_rule_names_become_arns_of_the_queues_account_and_region():
    assert event_queue.rule_arns(["keyless-guard", RULE, "arn:aws-cn:events:cn-north-1:123456789012:rule/x"],
                                 "aws", "us-east-1", "123456789012") == [
        "arn:aws-cn:events:cn-north-1:123456789012:rule/x", RULE]


def test_the_policy_keeps_other_statements_and_owns_one():
    other = {"Sid": "Audit", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
             "Action": "sqs:GetQueueAttributes", "Resource": QUEUE}
    text, after = event_queue.merged_policy(json.dumps({"Version": "2012-10-17", "Id": "mine", "Statement": [other]}),
                                            QUEUE, [RULE])
    assert after["Id"] == "mine" and after["Statement"][0] == other
    ours = after["Statement"][1]
    assert ours["Sid"] == event_queue.POLICY_SID and ours["Principal"] == {"Service": "events.amazonaws.com"}
    assert ours["Condition"] == {"ArnEquals": {"aws:SourceArn": [RULE]}}
    assert json.loads(text) == after
    # as it is now: nothing to set (whatever the order of the rules, or one ARN as a string)
    assert event_queue.merged_policy(text, QUEUE, [RULE])[0] is None
    as_string = dict(ours, Condition={"ArnEquals": {"aws:SourceArn": RULE}})
    assert event_queue.merged_policy(json.dumps({"Statement": [as_string]}), QUEUE, [RULE])[0] is None
    # no rule: our statement leaves, the other stays; nothing left: the policy goes
    text, after = event_queue.merged_policy(text, QUEUE, [])
    assert after["Statement"] == [other]
    assert event_queue.merged_policy(json.dumps({"Statement": [ours]}), QUEUE, []) == ("", None)
    assert event_queue.merged_policy(None, QUEUE, []) == (None, None)


def test_attributes_that_differ():
    current = {"MessageRetentionPeriod": "345600", "VisibilityTimeout": "30", "SqsManagedSseEnabled": "true",
               "RedrivePolicy": '{"deadLetterTargetArn":"' + QUEUE + '-dlq","maxReceiveCount":"5"}'}
    wanted = {"MessageRetentionPeriod": "345600", "VisibilityTimeout": "60", "SqsManagedSseEnabled": "true",
              "RedrivePolicy": event_queue.redrive_policy(QUEUE + "-dlq", 5)}
    assert event_queue.attribute_changes(current, wanted) == {"VisibilityTimeout": "60"}
    wanted["RedrivePolicy"] = event_queue.redrive_policy(QUEUE + "-dlq", 3)
    assert "RedrivePolicy" in event_queue.attribute_changes(current, wanted)
    assert event_queue.attribute_changes({}, {"SqsManagedSseEnabled": "false"}) == {"SqsManagedSseEnabled": "false"}


def test_tags():
    assert event_queue.tag_changes({"a": "1"}, None, True) == ({}, [])
    assert event_queue.tag_changes({"a": "1", "b": "2", "aws:x": "y"}, {"a": "1", "c": 3}, True) == ({"c": "3"}, ["b"])
    assert event_queue.tag_changes({"a": "1", "b": "2"}, {"a": "2"}, False) == ({"a": "2"}, [])


def test_attributes_shown():
    shown = event_queue.snake_attributes({"ApproximateNumberOfMessages": "3", "QueueArn": QUEUE,
                                          "RedrivePolicy": '{"maxReceiveCount": 5}', "SqsManagedSseEnabled": "true"})
    assert shown == {"queue_arn": QUEUE, "redrive_policy": {"maxReceiveCount": 5}, "sqs_managed_sse_enabled": "true"}
