#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: guard_event_info
short_description: What an AWS API event calls for now - the plan of the keyless guard
version_added: 0.2.0
description:
  - Takes one EC2 or IAM API event as EventBridge delivers it (detail-type C(AWS API Call via CloudTrail)), reads
    the current state of what the event names, and returns what to put right, what to report and what to leave
    alone. It changes nothing; C(playbooks/guard_remediate.yml) runs it for each event the rulebook
    C(extensions/eda/rulebooks/keyless_guard.yml) receives, then the modules that change things.
  - The event is a hint, never the truth. Its instances, launch template, profile or role are read again, and only
    what is wrong now is planned, so an old event, a repeated one, or the event of the guard's own fix plans
    nothing.
  - "The events and what each one calls for: C(RunInstances) - each instance launched gets the profile it must
    carry (see O(expected_profiles)) if it has none or another, and IMDSv2 required if it allows IMDSv1;
    C(ModifyInstanceMetadataOptions) - IMDSv2 required again if the instance allows IMDSv1;
    C(DisassociateIamInstanceProfile), C(ReplaceIamInstanceProfileAssociation) - the instance gets back the profile
    it must carry; C(ModifyInstanceMetadataDefaults) - the account default set back (see O(account_defaults));
    C(CreateLaunchTemplateVersion), C(ModifyLaunchTemplate) - when the template's default version allows IMDSv1
    (unset counts, unless the account default requires IMDSv2), a new default version that requires it; else, when
    its latest version (what launches naming C($Latest) get) allows IMDSv1, a new latest version that requires it,
    the default left as it is;
    C(RemoveRoleFromInstanceProfile) - reported when the profile holds no role; C(UpdateAssumeRolePolicy) -
    reported when the role, held by instance profiles, no longer trusts EC2. The last two are never fixed: which role
    a profile holds and whom a role trusts are decisions the guard does not take."
  - "Ignored, with the reason in RV(ignored), and no AWS call: an event of another kind, a call the guard does not
    watch, a failed call (C(errorCode): it changed nothing; a DryRun is one), and the calls of the guard's own role
    (O(own_roles)). The guard never loops on its own changes even without that role - what it changes is not drift,
    so the event of its own change plans nothing."
  - An instance or launch template tagged O(exemption_tag) (default C(keyless:guard=exempt)), a profile or role
    tagged so, is left alone and listed in RV(exempt).
  - Each finding the guard does not act on is a warning and an entry of RV(reports).
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  event:
    description:
      - The event - as EventBridge delivers it (C(detail-type), C(account), C(detail) holding the CloudTrail record),
        or as C(ansible-rulebook) hands it to a playbook (C(ansible_eda.event), whose C(body) is the event).
    type: dict
    required: true
  expected_profiles:
    description:
      - Which profile an instance must carry, by its tags - the first entry whose O(expected_profiles[].tags) the
        instance carries (all of them, with these values) names it. An entry with no tags matches every instance (a
        default, last).
      - An instance's own tag O(profile_tag) comes first, for the profiles the guard may attach.
      - An instance that carries no profile and that nothing names one for is reported
        (C(instance_without_profile)), never given one by guess.
    type: list
    elements: dict
    default: []
    suboptions:
      tags:
        description: The tags (key to value) an instance must carry for the entry to apply.
        type: dict
        default: {}
      instance_profile:
        description: The profile (name or ARN) those instances must carry.
        type: str
        required: true
  allowed_profiles:
    description:
      - Profiles (names or ARNs) an instance's tag O(profile_tag) may name, besides those of O(expected_profiles).
      - A tag naming any other profile is reported (C(profile_not_allowed)) and not acted on - whoever may tag an
        instance could otherwise have the guard attach any profile (the guard may pass roles they may not).
    type: list
    elements: str
    default: []
  profile_tag:
    description:
      - The tag whose value names the profile an instance must carry (a profile of O(allowed_profiles) or
        O(expected_profiles)). An empty string turns it off.
    type: str
    default: keyless:instance-profile
  exemption_tag:
    description:
      - The tag that exempts an instance, a launch template, an instance profile or a role from the guard.
    type: dict
    default: {key: "keyless:guard", value: exempt}
    suboptions:
      key:
        description: The tag's key.
        type: str
        default: keyless:guard
      value:
        description: The tag's value.
        type: str
        default: exempt
  account_defaults:
    description:
      - What a C(ModifyInstanceMetadataDefaults) that loosened the account's instance metadata defaults calls for.
      - V(report) - reported only (C(account_defaults_allow_imdsv1), C(account_enforcement_off)); the default, as the
        account default is an account-wide decision.
      - V(required) - the default C(HttpTokens) is set back to V(required) (RV(account_defaults)); enforcement turned
        off is reported.
      - V(enforced) - also IMDSv2 enforcement (C(HttpTokensEnforced)) turned back on.
    type: str
    choices: [report, required, enforced]
    default: report
  usage_regions:
    description:
      - For IAM events (IAM's events reach EventBridge in us-east-1 only, whatever region the instances are in) -
        the regions where to look for the instances that carry the broken profile, for the report.
      - Left empty, the module's region.
    type: list
    elements: str
    default: []
  own_roles:
    description:
      - The roles (names or ARNs) the guard acts through. Events of calls made by their sessions (the event's
        C(userIdentity.sessionContext.sessionIssuer)) are ignored.
      - Not the session name or the User-Agent, which any caller chooses - a drift-maker could hide behind them;
        only a principal allowed to assume the role makes a call of it.
    type: list
    elements: str
    default: [keyless-guard]
  account_id:
    description:
      - The account the module's credentials act in. An event of another account fails the module before any read
        (its instances are not here; its account defaults must not be changed here).
    type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - keyless.aws.attributes
  - keyless.aws.attributes.INFO_MODULE
  - keyless.aws.attributes.ACTIONGROUP
notes:
  - The module's region must be the event's (C(detail.awsRegion)) for EC2 events; it fails otherwise, before any
    read. IAM events are read in any region.
  - "Reads: C(DescribeInstances) and C(DescribeIamInstanceProfileAssociations) of the event's instances;
    C(DescribeLaunchTemplates), C(DescribeLaunchTemplateVersions) of its default version and
    C(GetInstanceMetadataDefaults) for a template; C(GetInstanceMetadataDefaults) for the account; C(GetInstanceProfile),
    C(GetRole), C(ListInstanceProfilesForRole) and, when something is broken, C(DescribeIamInstanceProfileAssociations)
    per region of O(usage_regions) for IAM events."
seealso:
  - module: keyless.aws.ec2_profile_association
    description: Puts the profile right (C(associate) in the result).
  - module: keyless.aws.ec2_metadata_options
    description: Requires IMDSv2 on instances, launch templates and the account default.
  - module: keyless.aws.audit_info
    description: The whole region read at once, on a schedule - the backstop of the guard.
  - name: Keyless, continuously
    description: The user guide page on the guard - rulebook, setup, EDA Controller and ansible-rulebook.
    link: https://github.com/keyless-aws/keyless.aws/blob/main/docs/keyless-continuously.md
"""

EXAMPLES = r"""
- name: What the event ansible-rulebook hands over calls for (its run_playbook action passes it as ansible_eda.event)
  keyless.aws.guard_event_info:
    event: "{{ ansible_eda.event }}"
  register: guard_plan

- name: An instance launched without a profile and allowing IMDSv1, as EventBridge delivers the event
  keyless.aws.guard_event_info:
    event:
      version: "0"
      detail-type: AWS API Call via CloudTrail
      source: aws.ec2
      account: "123456789012"
      region: us-east-1
      detail:
        eventSource: ec2.amazonaws.com
        eventName: RunInstances
        awsRegion: us-east-1
        userIdentity: {type: IAMUser, arn: "arn:aws:iam::123456789012:user/alice"}
        requestParameters: {iamInstanceProfile: {}}
        responseElements: {instancesSet: {items: [{instanceId: i-0123456789abcdef0}]}}
    expected_profiles:
      - tags: {team: web}
        instance_profile: web-app
      - instance_profile: baseline
  register: guard_plan

- name: Give each instance the profile it must carry, as the plan says
  keyless.aws.ec2_profile_association:
    instance_ids: "{{ item.instance_ids }}"
    instance_profile: "{{ item.instance_profile }}"
  loop: "{{ guard_plan.associate }}"

- name: And require IMDSv2 where it is allowed
  keyless.aws.ec2_metadata_options:
    instance_ids: "{{ guard_plan.require_imdsv2 }}"
  when: guard_plan.require_imdsv2 | length > 0
"""

RETURN = r"""
msg:
  description: One line - the event, who made the call, and what it calls for (or why it is ignored).
  returned: always
  type: str
  sample: "RunInstances by arn:aws:iam::123456789012:user/alice: i-0123456789abcdef0 to carry web-app; IMDSv2 required
    on i-0123456789abcdef0."
event:
  description: The event - C(name), C(source), C(id) (EventBridge's), C(event_id) (CloudTrail's), C(time),
    C(account_id), C(region), C(principal) (the caller's ARN), C(error_code).
  returned: always
  type: dict
  sample: {"name": "RunInstances", "source": "ec2.amazonaws.com", "id": "6f1d...", "event_id": "a2c4...",
           "time": "2026-12-05T10:00:00Z", "account_id": "123456789012", "region": "us-east-1",
           "principal": "arn:aws:iam::123456789012:user/alice", "error_code": null}
ignored:
  description: Why the guard does nothing for this event (no AWS call was made); V(null) when it looked.
  returned: always
  type: str
  sample: the call failed (Client.DryRunOperation), so it changed nothing
associate:
  description: The instances to give a profile (associate, or swap the one they carry), per profile - for
    M(keyless.aws.ec2_profile_association).
  returned: always
  type: list
  elements: dict
  sample: [{"instance_profile": "web-app", "instance_ids": ["i-0123456789abcdef0"]}]
require_imdsv2:
  description: The instances that allow IMDSv1 and must require IMDSv2 - for M(keyless.aws.ec2_metadata_options).
  returned: always
  type: list
  elements: str
  sample: ["i-0123456789abcdef0"]
launch_templates:
  description: The launch templates whose default version allows IMDSv1, as O(keyless.aws.ec2_metadata_options#module:launch_templates)
    takes them (a new version from the default, made the default).
  returned: always
  type: list
  elements: dict
  sample: [{"id": "lt-0123456789abcdef0", "version": "$Default"}]
launch_templates_latest:
  description: The launch templates whose default version requires IMDSv2 but whose later latest version allows
    IMDSv1 - for O(keyless.aws.ec2_metadata_options#module:launch_templates) with
    O(keyless.aws.ec2_metadata_options#module:set_default_version=false) (a new version from the latest, the default
    left as it is).
  returned: always
  type: list
  elements: dict
  sample: [{"id": "lt-0123456789abcdef0", "version": "$Latest"}]
account_defaults:
  description: What to set the account defaults back to (C(http_tokens), C(http_tokens_enforced) or V(null)), or
    V(null) when nothing (or O(account_defaults=report)).
  returned: always
  type: dict
  sample: {"http_tokens": "required", "http_tokens_enforced": null}
reports:
  description: What the guard saw and does not change - C(kind), C(resource), C(detail) (each also a warning). Kinds
    C(instance_without_profile), C(profile_not_allowed), C(account_defaults_allow_imdsv1), C(account_enforcement_off),
    C(account_defaults_managed), C(profile_without_role), C(role_does_not_trust_ec2), C(event_without_subject).
  returned: always
  type: list
  elements: dict
  sample: [{"kind": "profile_without_role", "resource": "web-app", "detail": "Instance profile web-app holds no role
    since arn:aws:iam::123456789012:user/alice removed web-app (...)"}]
exempt:
  description: The instances, launch template, profile or role the event named that carry the exemption tag.
  returned: always
  type: list
  elements: str
  sample: ["i-0fedcba9876543210"]
instances:
  description: Per instance the event named - C(instance_id), C(state), C(exempt), C(instance_profile) (carried),
    C(expected_instance_profile), C(http_tokens), C(actions), C(reports), and C(skipped) when it is gone.
  returned: always
  type: list
  elements: dict
launch_template:
  description: The launch template the event named - C(id), C(name), C(exempt), C(default_version),
    C(latest_version), C(http_tokens) (what a launch from its default version gets), C(source) (where that comes
    from), C(latest_http_tokens), C(action), C(latest_action); V(null) for other events.
  returned: always
  type: dict
account:
  description: The account defaults read for a C(ModifyInstanceMetadataDefaults) - C(http_tokens),
    C(http_tokens_enforced), C(managed_by), C(reports); V(null) for other events.
  returned: always
  type: dict
iam:
  description: The profile (RemoveRoleFromInstanceProfile) or role (UpdateAssumeRolePolicy) read - its roles or trust,
    the profiles holding it, the instances carrying them, C(exempt), C(reports); V(null) for other events.
  returned: always
  type: dict
"""

from ansible_collections.keyless.aws.plugins.module_utils.common import RetryingClient
from ansible_collections.keyless.aws.plugins.module_utils.common import botocore_config
from ansible_collections.keyless.aws.plugins.module_utils.guard import guard
from ansible_collections.keyless.aws.plugins.module_utils.module import KeylessModule
from ansible_collections.keyless.aws.plugins.module_utils.pacing import Pacer


def main():
    module = KeylessModule(
        argument_spec=dict(
            event=dict(type="dict", required=True),
            expected_profiles=dict(type="list", elements="dict", default=[], options=dict(
                tags=dict(type="dict", default={}),
                instance_profile=dict(type="str", required=True),
            )),
            allowed_profiles=dict(type="list", elements="str", default=[]),
            profile_tag=dict(type="str", default="keyless:instance-profile"),
            exemption_tag=dict(type="dict", default={"key": "keyless:guard", "value": "exempt"}, options=dict(
                key=dict(type="str", default="keyless:guard", no_log=False),
                value=dict(type="str", default="exempt"),
            )),
            account_defaults=dict(type="str", choices=["report", "required", "enforced"], default="report"),
            usage_regions=dict(type="list", elements="str", default=[]),
            own_roles=dict(type="list", elements="str", default=["keyless-guard"]),
            account_id=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    regional = {}

    def clients(service, region):
        """The module's client, or one of another region (the instances of IAM events), paced alike."""
        if region is None or region == module.region:
            return module.retrying_client(service)
        if (service, region) not in regional:
            raw = module.client(service, config=botocore_config(), region=region)
            regional[(service, region)] = RetryingClient(raw, module.retry_policy, Pacer.for_service(service),
                                                         module.call_stats)
        return regional[(service, region)]

    module.run(lambda: guard(clients, module.params, module.region))


if __name__ == "__main__":
    main()
