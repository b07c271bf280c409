# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""An SQS queue that EventBridge rules deliver to (keyless.aws.event_queue): the queue, its
dead-letter queue (the queue's ``RedrivePolicy``), and the one statement of the queue's policy
that lets ``events.amazonaws.com`` send to it, for the named rules only (``aws:SourceArn``), as
the EventBridge user guide documents for an SQS target ("Amazon SQS permissions",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions).

amazon.aws has no SQS module (``sqs_queue`` is in community.aws, which keyless.aws does not
depend on); this is the part of one the guard's setup needs. Other statements of the policy,
attributes not named and tags when ``tags`` is unset are left as they are. Decisions (what differs,
the merged policy) are pure functions; the calls are in ``converge``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import call_aws
from ansible_collections.keyless.aws.plugins.module_utils.common import parse_arn
from ansible_collections.keyless.aws.plugins.module_utils.common import partition_for_region

POLICY_SID = "KeylessEventBridgeSendMessage"
NOT_FOUND = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_RULE_NAME = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")
_RULE_ARN = re.compile(r"^arn:aws[a-z-]*:events:[a-z0-9-]+:\d{12}:rule/([.\-_A-Za-z0-9/]+)$")
# SQS attribute ranges (the SQS API reference, SetQueueAttributes).
RETENTION = (60, 1209600)
VISIBILITY = (0, 43200)
RECEIVES = (1, 1000)


# ---- inputs ------------------------------------------------------------------------------------


def _in_range(value, bounds, param, what):
    if isinstance(value, bool) or not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
        raise KeylessError("{0}: {1!r} is not {2} from {3} to {4}.".format(param, value, what, bounds[0], bounds[1]),
                           param=param)
    return value


def check_queue_name(name, param):
    if not isinstance(name, str) or not _QUEUE_NAME.match(name):
        if isinstance(name, str) and name.endswith(".fifo"):
            raise KeylessError(
                "{0}: {1!r} names a FIFO queue; EventBridge delivers to a FIFO queue only with a message group id, "
                "which amazon.aws.cloudwatchevent_rule cannot set. Use a standard queue.".format(param, name),
                param=param)
        raise KeylessError("{0}: {1!r} is not an SQS queue name (1 to 80 letters, digits, - and _).".format(param, name),
                           param=param)
    return name


def validated(params):
    """The options checked before any call; the dead-letter queue's name defaulted."""
    name = check_queue_name(params.get("name"), "name")
    dead = params.get("dead_letter_queue_name") or name + "-dlq"
    check_queue_name(dead, "dead_letter_queue_name")
    if dead == name:
        raise KeylessError("dead_letter_queue_name: a queue cannot be its own dead-letter queue; name another one.",
                           param="dead_letter_queue_name")
    if params.get("state", "present") == "present":
        _in_range(params.get("max_receive_count"), RECEIVES, "max_receive_count", "a number of receives")
        _in_range(params.get("message_retention_seconds"), RETENTION, "message_retention_seconds", "a number of seconds")
        _in_range(params.get("dead_letter_retention_seconds"), RETENTION, "dead_letter_retention_seconds",
                  "a number of seconds")
        _in_range(params.get("visibility_timeout"), VISIBILITY, "visibility_timeout", "a number of seconds")
        for rule in params.get("eventbridge_rules") or []:
            if not isinstance(rule, str) or not (_RULE_ARN.match(rule) or _RULE_NAME.match(rule)):
                raise KeylessError(
                    "eventbridge_rules: {0!r} is neither an EventBridge rule name (1 to 64 letters, digits, . - _) nor "
                    "a rule ARN (arn:aws:events:REGION:ACCOUNT:rule/NAME).".format(rule), param="eventbridge_rules")
        tags = params.get("tags")
        if tags is not None:
            bad = [k for k in tags if not isinstance(k, str) or not k or k.startswith("aws:")]
            if bad:
                raise KeylessError("tags: keys must be non-empty, and keys starting with aws: are reserved ({0}).".format(
                    ", ".join(repr(k) for k in bad)), param="tags")
    return dict(params, dead_letter_queue_name=dead)


def rule_arns(rules, partition, region, account):
    """The rules as ARNs, sorted, without duplicates (a name is a rule of the default bus here)."""
    arns = set()
    for rule in rules or []:
        arns.add(rule if rule.startswith("arn:") else "arn:{0}:events:{1}:{2}:rule/{3}".format(
            partition, region, account, rule))
    return sorted(arns)


def queue_arn(partition, region, account, name):
    return "arn:{0}:sqs:{1}:{2}:{3}".format(partition, region, account, name)


# ---- what differs (pure) -----------------------------------------------------------------------


def eventbridge_statement(arn, rules):
    """The statement that lets EventBridge send to the queue ``arn`` for the rules ``rules``."""
    return {"Sid": POLICY_SID, "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage", "Resource": arn, "Condition": {"ArnEquals": {"aws:SourceArn": list(rules)}}}


def _load(text):
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _statements(policy):
    statements = (policy or {}).get("Statement") or []
    return statements if isinstance(statements, list) else [statements]


def _same_statement(a, b):
    def norm(statement):
        statement = json.loads(json.dumps(statement))
        arns = _statements_arns(statement)
        if arns is not None:
            statement["Condition"]["ArnEquals"]["aws:SourceArn"] = sorted(arns)
        return statement
    return norm(a) == norm(b)


def _statements_arns(statement):
    arns = ((statement.get("Condition") or {}).get("ArnEquals") or {}).get("aws:SourceArn")
    if arns is None:
        return None
    return [arns] if isinstance(arns, str) else list(arns)


def merged_policy(current_text, arn, rules):
    """(policy text to set or None when it stays, policy after as a dict or None): the queue's
    policy with our statement (by its Sid) set to ``rules``, every other statement kept; our
    statement removed when ``rules`` is empty; no policy left when nothing is."""
    current = _load(current_text) or {}
    statements = _statements(current)
    others = [s for s in statements if not (isinstance(s, dict) and s.get("Sid") == POLICY_SID)]
    ours = [s for s in statements if isinstance(s, dict) and s.get("Sid") == POLICY_SID]
    wanted = eventbridge_statement(arn, rules) if rules else None
    if wanted is None and not ours:
        return None, current or None
    if wanted is not None and len(ours) == 1 and _same_statement(ours[0], wanted):
        return None, current
    after_statements = others + ([wanted] if wanted else [])
    if not after_statements:
        return "", None
    after = {"Version": current.get("Version") or "2012-10-17", "Statement": after_statements}
    if current.get("Id"):
        after = {"Version": after["Version"], "Id": current["Id"], "Statement": after_statements}
    return json.dumps(after, sort_keys=True), after


def redrive_policy(dead_letter_arn, max_receive_count):
    return json.dumps({"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": max_receive_count}, sort_keys=True)


def _same_redrive(current_text, wanted_text):
    current, wanted = _load(current_text), _load(wanted_text)
    if not current or not wanted:
        return current == wanted
    return (current.get("deadLetterTargetArn") == wanted["deadLetterTargetArn"]
            and str(current.get("maxReceiveCount")) == str(wanted["maxReceiveCount"]))


def attribute_changes(current, wanted):
    """{attribute: value} of ``wanted`` that differ from ``current`` (both as SQS gives them: text)."""
    changes = {}
    for name, value in wanted.items():
        have = (current or {}).get(name)
        if name == "RedrivePolicy":
            same = _same_redrive(have, value)
        else:
            same = str(have).lower() == str(value).lower() if have is not None else False
        if not same:
            changes[name] = value
    return changes


def tag_changes(current, wanted, purge):
    """(tags to set {key: value}, keys to remove) to go from ``current`` to ``wanted`` (None: tags
    left alone); ``aws:`` keys are never touched."""
    if wanted is None:
        return {}, []
    wanted = dict((k, "" if v is None else str(v)) for k, v in wanted.items())
    current = current or {}
    to_set = dict((k, v) for k, v in wanted.items() if current.get(k) != v)
    to_remove = sorted(k for k in current if purge and k not in wanted and not k.startswith("aws:"))
    return to_set, to_remove


def snake_attributes(attributes):
    """The attributes a result shows (snake_case, parsed JSON), without the counters."""
    shown = {}
    for name, value in sorted((attributes or {}).items()):
        if name.startswith("Approximate") or name in ("CreatedTimestamp", "LastModifiedTimestamp"):
            continue
        key = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        if name in ("Policy", "RedrivePolicy", "RedriveAllowPolicy"):
            value = _load(value)
        shown[key] = value
    return shown


# ---- calls -------------------------------------------------------------------------------------


def read_queue(sqs, name):
    """{name, url, arn, attributes, tags} of the queue named ``name``, or None."""
    found = call_aws("looking up SQS queue {0!r}".format(name), sqs.get_queue_url, expected=NOT_FOUND, QueueName=name)
    if not found:
        return None
    url = found["QueueUrl"]
    attributes = call_aws("reading the attributes of SQS queue {0!r}".format(name), sqs.get_queue_attributes,
                          QueueUrl=url, AttributeNames=["All"]).get("Attributes") or {}
    tags = call_aws("reading the tags of SQS queue {0!r}".format(name), sqs.list_queue_tags, QueueUrl=url).get(
        "Tags") or {}
    return {"name": name, "url": url, "arn": attributes.get("QueueArn"), "attributes": attributes, "tags": tags}


def _account(queues, sts):
    for queue in queues:
        if queue and queue.get("arn"):
            return parse_arn(queue["arn"])["account"]
    return call_aws("reading the account of the credentials (sts:GetCallerIdentity)", sts().get_caller_identity)[
        "Account"]


def ensure_queue(sqs, name, current, attributes, tags, purge_tags, check_mode, actions):
    """Create the queue or bring its attributes and tags to what is wanted; returns its URL (None
    for one a check run would create)."""
    if current is None:
        actions.append("create SQS queue {0}".format(name))
        if check_mode:
            return None
        kwargs = {"QueueName": name, "Attributes": attributes}
        if tags:
            kwargs["tags"] = dict((k, "" if v is None else str(v)) for k, v in tags.items())
        return call_aws("creating SQS queue {0!r}".format(name), sqs.create_queue, **kwargs)["QueueUrl"]
    changes = attribute_changes(current["attributes"], attributes)
    to_set, to_remove = tag_changes(current["tags"], tags, purge_tags)
    if changes:
        actions.append("set {0} of SQS queue {1}".format(", ".join(sorted(changes)), name))
    if to_set or to_remove:
        actions.append("tag SQS queue {0}".format(name))
    if check_mode:
        return current["url"]
    if changes:
        call_aws("setting the attributes of SQS queue {0!r}".format(name), sqs.set_queue_attributes,
                 QueueUrl=current["url"], Attributes=changes)
    if to_set:
        call_aws("tagging SQS queue {0!r}".format(name), sqs.tag_queue, QueueUrl=current["url"], Tags=to_set)
    if to_remove:
        call_aws("untagging SQS queue {0!r}".format(name), sqs.untag_queue, QueueUrl=current["url"], TagKeys=to_remove)
    return current["url"]


def _delete(sqs, queue, check_mode, actions):
    if queue is None:
        return
    actions.append("delete SQS queue {0}".format(queue["name"]))
    if not check_mode:
        call_aws("deleting SQS queue {0!r}".format(queue["name"]), sqs.delete_queue, expected=NOT_FOUND,
                 QueueUrl=queue["url"])


def _shown(queue):
    if queue is None:
        return None
    return {"name": queue["name"], "url": queue["url"], "arn": queue["arn"],
            "attributes": snake_attributes(queue["attributes"]), "tags": queue["tags"]}


def converge(sqs, sts, params, region, check_mode):
    """keyless.aws.event_queue's result. ``sts``: a function giving the STS client (called only
    when no queue says the account)."""
    params = validated(params)
    name, dead_name = params["name"], params["dead_letter_queue_name"]
    queue, dead = read_queue(sqs, name), read_queue(sqs, dead_name)
    before = {"queue": _shown(queue), "dead_letter_queue": _shown(dead)}
    actions = []
    if params.get("state") == "absent":
        _delete(sqs, queue, check_mode, actions)
        _delete(sqs, dead, check_mode, actions)
        return {"changed": bool(actions), "actions": actions, "queue": None, "dead_letter_queue": None,
                "queue_url": None, "queue_arn": None, "diff": {"before": before, "after": {}},
                "msg": "; ".join(actions) or "SQS queues {0} and {1} are absent.".format(name, dead_name)}
    partition = partition_for_region(region)
    account = _account([queue, dead], sts)
    arn, dead_arn = queue_arn(partition, region, account, name), queue_arn(partition, region, account, dead_name)
    sse = "true" if params.get("sqs_managed_sse", True) else "false"
    dead_url = ensure_queue(sqs, dead_name, dead, {
        "MessageRetentionPeriod": str(params["dead_letter_retention_seconds"]), "SqsManagedSseEnabled": sse},
        params.get("tags"), params.get("purge_tags", True), check_mode, actions)
    wanted = {
        "MessageRetentionPeriod": str(params["message_retention_seconds"]),
        "VisibilityTimeout": str(params["visibility_timeout"]),
        "SqsManagedSseEnabled": sse,
        "RedrivePolicy": redrive_policy(dead_arn, params["max_receive_count"]),
    }
    rules = rule_arns(params.get("eventbridge_rules"), partition, region, account)
    policy_text, policy = merged_policy((queue or {}).get("attributes", {}).get("Policy"), arn, rules)
    if policy_text is not None:
        wanted["Policy"] = policy_text
    url = ensure_queue(sqs, name, queue, wanted, params.get("tags"), params.get("purge_tags", True), check_mode,
                       actions)
    after = {"queue": {"name": name, "url": url, "arn": arn},
             "dead_letter_queue": {"name": dead_name, "url": dead_url, "arn": dead_arn}}
    if not check_mode and actions:
        after = {"queue": _shown(read_queue(sqs, name)), "dead_letter_queue": _shown(read_queue(sqs, dead_name))}
    elif queue is not None and not actions:
        after = before
    result = {
        "changed": bool(actions),
        "actions": actions,
        "queue": after["queue"],
        "dead_letter_queue": after["dead_letter_queue"],
        "queue_url": url,
        "queue_arn": arn,
        "dead_letter_queue_arn": dead_arn,
        "eventbridge_rules": rules,
        "policy": policy,
        "diff": {"before": before, "after": after},
        "msg": "; ".join(actions) or "SQS queue {0} (dead-letter queue {1}) is as asked.".format(name, dead_name),
    }
    return result
