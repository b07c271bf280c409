#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: event_queue
short_description: An SQS queue EventBridge rules deliver to, with its dead-letter queue and policy
version_added: 0.2.0
description:
  - Creates or updates an SQS standard queue for the events of EventBridge rules, its dead-letter queue (the queue's
    C(RedrivePolicy) - a message received O(max_receive_count) times and never deleted goes there instead of being
    lost or received for ever), and the statement of the queue's policy that lets C(events.amazonaws.com) send to
    it for the rules of O(eventbridge_rules) only (condition C(aws:SourceArn)), as the EventBridge user guide
    documents for an SQS target. The event source C(amazon.aws.aws_sqs_queue) of C(ansible-rulebook) reads such a
    queue.
  - C(amazon.aws) has no SQS module (C(sqs_queue) is in C(community.aws)); this one does what the keyless guard's
    setup (C(playbooks/guard_setup.yml)) needs, with the rule itself made by M(amazon.aws.cloudwatchevent_rule).
  - Only what it names is changed - the statement it owns in the policy (Sid C(KeylessEventBridgeSendMessage)), the
    attributes of its options, and the tags when O(tags) is given. Other statements of the policy are kept.
  - Server-side encryption with SQS-managed keys (C(SqsManagedSseEnabled)) is on by default; EventBridge delivers to
    such a queue with no key policy to write (a KMS key would need one).
  - With O(state=absent) the queue and its dead-letter queue are deleted, with the messages they hold.
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  name:
    description:
      - The queue's name (1 to 80 letters, digits, C(-) and C(_)). FIFO queues are refused - EventBridge delivers to
        them only with a message group id, which M(amazon.aws.cloudwatchevent_rule) cannot set.
    type: str
    required: true
  state:
    description: V(present) creates or updates both queues; V(absent) deletes them.
    type: str
    choices: [present, absent]
    default: present
  dead_letter_queue_name:
    description: The dead-letter queue's name. Left unset, O(name) with C(-dlq) appended.
    type: str
  max_receive_count:
    description:
      - How many times a message may be received without being deleted before SQS moves it to the dead-letter queue
        (1 to 1000).
    type: int
    default: 5
  message_retention_seconds:
    description: How long the queue keeps a message (60 to 1209600 seconds); 4 days by default.
    type: int
    default: 345600
  dead_letter_retention_seconds:
    description:
      - How long the dead-letter queue keeps a message (60 to 1209600 seconds); 14 days, the most SQS allows, by
        default. SQS counts a message's retention from when it first entered the source queue.
    type: int
    default: 1209600
  visibility_timeout:
    description: How long a received message stays invisible to other receivers (0 to 43200 seconds).
    type: int
    default: 30
  eventbridge_rules:
    description:
      - The EventBridge rules that may send to the queue, by ARN or by name (a name is a rule of the default event bus
        of the queue's account and region).
      - Empty, the module's statement is taken out of the policy (no rule may send).
    type: list
    elements: str
    default: []
  sqs_managed_sse:
    description: Server-side encryption with SQS-managed keys on both queues.
    type: bool
    default: true
  tags:
    description:
      - Tags of both queues. Left unset, their tags are left as they are. Keys starting with C(aws:) are refused.
    type: dict
  purge_tags:
    description: With O(tags), remove the tags not named there.
    type: bool
    default: true
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - keyless.aws.attributes
  - keyless.aws.attributes.ACTIONGROUP
attributes:
  check_mode:
    support: full
    details:
      - A check run reads only and returns what a real run would change; the ARNs of queues it would create are
        predicted (their URLs are V(null)).
  diff_mode:
    support: full
    details:
      - Both queues before and after, with their attributes, policy and tags.
  idempotent:
    support: full
notes:
  - "Calls: C(GetQueueUrl), C(GetQueueAttributes) and C(ListQueueTags) per queue; C(sts:GetCallerIdentity) only when
    neither queue exists yet (the account of the ARNs); C(CreateQueue), C(SetQueueAttributes), C(TagQueue),
    C(UntagQueue) or C(DeleteQueue) where something differs."
  - After C(DeleteQueue), SQS refuses a queue of the same name for 60 seconds.
seealso:
  - module: amazon.aws.cloudwatchevent_rule
    description: The EventBridge rule whose target the queue is.
  - module: keyless.aws.cloudtrail_coverage_info
    description: Whether a CloudTrail trail records the API calls EventBridge is to deliver.
  - name: Amazon SQS permissions for EventBridge
    description: The queue policy an SQS target needs.
    link: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sqs-permissions
"""

EXAMPLES = r"""
- name: The queue the rule keyless-guard delivers to, its dead-letter queue keyless-guard-dlq, and its policy
  keyless.aws.event_queue:
    name: keyless-guard
    eventbridge_rules:
      - keyless-guard
    tags:
      purpose: keyless-guard
  register: guard_queue

- name: The ARN to give the rule as its target (amazon.aws.cloudwatchevent_rule, targets[].arn)
  ansible.builtin.debug:
    msg: "{{ guard_queue.queue_arn }}"

- name: A queue for two rules, a message tried 3 times before the dead-letter queue, kept a day
  keyless.aws.event_queue:
    name: drift-events
    dead_letter_queue_name: drift-events-failed
    max_receive_count: 3
    message_retention_seconds: 86400
    eventbridge_rules:
      - arn:aws:events:us-east-1:123456789012:rule/ec2-drift
      - arn:aws:events:us-east-1:123456789012:rule/iam-drift

- name: Both queues gone
  keyless.aws.event_queue:
    name: drift-events
    dead_letter_queue_name: drift-events-failed
    state: absent
"""

RETURN = r"""
queue_url:
  description: The queue's URL; V(null) in check mode for a queue a real run would create, and with O(state=absent).
  returned: always
  type: str
  sample: https://sqs.us-east-1.amazonaws.com/123456789012/keyless-guard
queue_arn:
  description: The queue's ARN (the rule's target); V(null) with O(state=absent).
  returned: always
  type: str
  sample: arn:aws:sqs:us-east-1:123456789012:keyless-guard
dead_letter_queue_arn:
  description: The dead-letter queue's ARN.
  returned: when O(state=present)
  type: str
  sample: arn:aws:sqs:us-east-1:123456789012:keyless-guard-dlq
eventbridge_rules:
  description: The ARNs of the rules that may send to the queue.
  returned: when O(state=present)
  type: list
  elements: str
  sample: ["arn:aws:events:us-east-1:123456789012:rule/keyless-guard"]
policy:
  description: The queue's policy after the run (in check mode, predicted); V(null) for none.
  returned: when O(state=present)
  type: dict
queue:
  description: The queue - C(name), C(url), C(arn), C(attributes) (snake_case, the policies parsed), C(tags).
  returned: always
  type: dict
dead_letter_queue:
  description: The dead-letter queue, as RV(queue).
  returned: always
  type: dict
actions:
  description: What was done (in check mode, would be), in order.
  returned: always
  type: list
  elements: str
  sample: ["create SQS queue keyless-guard-dlq", "create SQS queue keyless-guard"]
msg:
  description: The actions in one line, or that both queues are as asked.
  returned: always
  type: str
"""

from ansible_collections.keyless.aws.plugins.module_utils.event_queue import converge
from ansible_collections.keyless.aws.plugins.module_utils.module import KeylessModule


def main():
    module = KeylessModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            dead_letter_queue_name=dict(type="str"),
            max_receive_count=dict(type="int", default=5),
            message_retention_seconds=dict(type="int", default=345600),
            dead_letter_retention_seconds=dict(type="int", default=1209600),
            visibility_timeout=dict(type="int", default=30),
            eventbridge_rules=dict(type="list", elements="str", default=[]),
            sqs_managed_sse=dict(type="bool", default=True),
            tags=dict(type="dict"),
            purge_tags=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    module.run(lambda: converge(module.retrying_client("sqs"), lambda: module.retrying_client("sts"), module.params,
                                module.region, module.check_mode))


if __name__ == "__main__":
    main()
