#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ec2_metadata_options
short_description: Enforce IMDSv2 on EC2 instances, launch templates and the account default
version_added: 0.1.0
description:
  - Sets the instance metadata service (IMDS) options of running and stopped EC2 instances, of launch templates
    and of the account-level defaults of the region, and changes only what differs.
  - Instance credentials from an instance profile are served by the metadata service. With IMDSv1 it answers any
    request that reaches it, the path of SSRF credential theft; O(http_tokens=required) (IMDSv2 only) closes it.
  - An instance whose options differ from the task's gets C(ModifyInstanceMetadataOptions) with every option the task
    names (resending an unchanged one is harmless), and always C(HttpTokens) (the value asked for, else the
    instance's current one). The API reference documents a default for an omitted C(HttpTokens), which can be
    V(optional), so a call that changed only the hop limit could turn IMDSv1 back on; no call of this module leaves
    it out. The same holds for launch template versions and the account defaults. With O(wait=true) the module waits
    while EC2 reports the options C(pending); once it reports them C(applied) but not as sent (an endpoint that
    dropped a field, as a plain C(moto_server) drops an omitted C(HttpEndpoint)), it fails at once naming the option,
    what was sent and what is reported.
  - A launch template gets a new version created from its base version (C(SourceVersion)) that changes only
    C(MetadataOptions), and with O(set_default_version=true) that version becomes the default. When the base version
    already has the options, or the latest version is already exactly the base with the new options, nothing is
    created.
  - The account defaults (C(GetInstanceMetadataDefaults) / C(ModifyInstanceMetadataDefaults)) apply to instances
    launched later in the region, where neither the launch request nor its launch template sets an option. They do
    not change existing instances.
  - With O(http_tokens_enforced=enabled) the account defaults also enforce IMDSv2 (C(HttpTokensEnforced)); EC2 then
    refuses, in the region, every launch whose effective C(HttpTokens) is not V(required) and every change that
    sets V(optional), with C(UnsupportedOperation). Before enabling it (in check mode too) the module reads what
    would then fail to launch, and returns it in RV(account_defaults.enforcement_report) - the launch template
    versions (V($Default), V($Latest), and the versions Auto Scaling groups pin) whose effective C(HttpTokens) is
    not V(required), and the Auto Scaling groups that launch from them or from a launch configuration that allows
    IMDSv1.
  - When that report is not empty, the module refuses to enable enforcement and fails before any change, naming
    the templates and groups and the way out, unless O(http_tokens_enforced_force=true) (then it enables it and
    warns). The reason - enforcement breaks the next scale-out or instance replacement of every such group at a
    time nobody chose, while hardening a template first costs one task; an account-wide switch that silently stops
    production launches is the worse surprise. Templates the same task hardens (O(launch_templates)) are counted as
    this task leaves them - the module hardens them first, then sets the account defaults.
  - Options left unset are left as they are on every target.
  - Everything is read and checked before the first change; bad input (an unknown template or version, an
    instance that does not exist or is terminated, a hop limit out of range) fails naming the parameter and changes
    nothing.
  - Never bakes keys, and tells when someone did. When the user data of a launch template version the module reads
    holds what looks like an AWS access key id (C(AKIA)/C(ASIA) and 16 characters) or a secret access key assignment,
    the module warns and lists where (template, version, line) in RV(user_data_findings); the keys are never echoed.
author:
  - keyless.aws maintainers (@keyless-aws)
options:
  instance_ids:
    description:
      - Instances whose metadata options to set. Every id must exist in the region and not be terminated.
      - With O(filters) too, only the instances that match the filters are changed (the filters narrow the ids,
        as C(DescribeInstances) does with C(InstanceIds) and C(Filters)), unless O(selection=union).
    type: list
    elements: str
    default: []
  selection:
    description:
      - How O(instance_ids) and O(filters) combine when both are given.
      - V(intersection) - the instances named by id that also match the filters.
      - V(union) - the instances named by id, and every live instance the filters match.
    type: str
    choices: [intersection, union]
    default: intersection
    version_added: 0.2.0
  filters:
    description:
      - Instances to act on, as C(DescribeInstances) filters (a dict of filter name to value or list of values, as in
        M(amazon.aws.ec2_instance_info)). Unless they name C(instance-state-name), only live instances (pending,
        running, stopping, stopped) are selected; filters that select terminated instances fail, naming this
        parameter. This is the meaning O(filters) has in every module of the collection.
      - EC2 takes at most 200 filter values in one call; the values of one filter are split over several calls
        where needed, and filters that cannot be split that way are refused before any change.
      - An empty dict selects no instance (never "all instances"). To act on every instance of the region, filter
        on C(instance-state-name) with the values C(running) and C(stopped).
    type: dict
    default: {}
  launch_templates:
    description:
      - Launch templates to harden.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Name of the launch template. Give O(launch_templates[].name) or O(launch_templates[].id).
        type: str
      id:
        description: Id of the launch template (C(lt-...)).
        type: str
      version:
        description:
          - The version to start from, V($Default), V($Latest) or a version number.
          - The new version is created from it (C(SourceVersion)), with every launch parameter of it and only
            C(MetadataOptions) changed.
        type: str
        default: $Default
  set_default_version:
    description:
      - Make the version that carries the desired options the template's default version (the one launches use
        when they name no version). When the base version already has the options but is not the default, it becomes
        the default.
      - With V(false), a new version is created but the default version is left as it is.
    type: bool
    default: true
  version_description:
    description:
      - Description of the launch template versions the module creates.
      - Left unset, the description says the version was made by this module, from which version and what changed.
    type: str
  account_defaults:
    description:
      - Set the account-level instance metadata defaults of the region too. They apply to instances launched later
        where the launch request and its template do not set an option.
      - O(http_protocol_ipv6) is not an account-level setting and is not applied there.
      - When the defaults are managed by a declarative policy of an AWS Organization, the module fails before any
        change if they would need to change.
      - Launch templates of O(launch_templates) are hardened before the account defaults change.
    type: bool
    default: false
  http_tokens_enforced:
    description:
      - IMDSv2 enforcement of the account defaults of the region (C(HttpTokensEnforced) of
        C(ModifyInstanceMetadataDefaults)); needs O(account_defaults=true).
      - V(enabled) - EC2 refuses to launch an instance in the region unless its effective C(HttpTokens) is
        V(required) (the launch request's, else its launch template's, else the AMI's C(ImdsSupport), else the
        account default), and refuses to set V(optional) on an existing instance, with C(UnsupportedOperation).
        Before enabling it, the module reports what would then fail to launch (RV(account_defaults.enforcement_report))
        and refuses while that is not empty, unless O(http_tokens_enforced_force=true). It cannot go with
        O(http_tokens=optional).
      - V(disabled) - launches that allow IMDSv1 are allowed. V(no-preference) - the setting is cleared (EC2 then
        does not enforce).
      - Left unset, the setting is left as it is.
    type: str
    choices: ["enabled", "disabled", "no-preference"]
    version_added: 0.2.0
  http_tokens_enforced_force:
    description:
      - With O(http_tokens_enforced=enabled), enable enforcement even when the enforcement report names launch
        templates or Auto Scaling groups that would then fail to launch; the module warns, naming them.
      - Left V(false), the module fails before any change while the report is not empty. Harden the templates first
        (O(launch_templates) in the same task), move groups pinned to a version number, replace launch
        configurations, and run again.
    type: bool
    default: false
    version_added: 0.2.0
  imdsv1_usage_window:
    description:
      - How many days back (1 to 455) to read the IMDSv1 use of the instances from CloudWatch, the evidence to
        look at before requiring IMDSv2. EC2 publishes, per instance, C(MetadataNoToken) (IMDSv1 calls the
        metadata service served) and C(MetadataNoTokenRejected) (IMDSv1 calls it refused because IMDSv2 was
        required), namespace C(AWS/EC2), dimension C(InstanceId).
      - When set, each entry of RV(instances) gets RV(instances[].imdsv1_calls), RV(instances[].imdsv1_calls_rejected)
        and RV(instances[].last_imdsv1_call), and RV(imdsv1_usage) says which window was read. Without
        O(skip_instances_using_imdsv1), every selected instance is read (a report); with it, only those whose
        change would take IMDSv1 away (see there).
      - The metrics are read with C(GetMetricData), 250 instances (500 queries) per call, never one call per
        instance, before any change. The datapoints are summed per period of 1 hour for windows up to 8 days, else
        1 day (2 or 3 days beyond 200 days), so that a call stays within CloudWatch's 100,800 datapoints; the window
        is widened to whole periods (at most one period more than asked, the current period included). A period
        without a datapoint counts as no call. Needs C(cloudwatch:GetMetricData).
      - Needs instances (O(instance_ids) or O(filters)).
    type: int
    version_added: 0.2.0
  skip_instances_using_imdsv1:
    description:
      - With O(http_tokens=required) and O(imdsv1_usage_window), leave an instance as it is (allowing IMDSv1, none of
        its options changed) when it made IMDSv1 calls in the window - served or refused - and its change would
        require IMDSv2. It is reported with RV(instances[].skipped_for_imdsv1_use=true), its counts and the period
        of its last call, in RV(imdsv1_usage.skipped_instances), and in a warning naming how many were skipped.
        Instances without IMDSv1 calls in the window get IMDSv2 required.
      - Only the instances whose change would require IMDSv2 are read, so a run that changes nothing makes no
        CloudWatch call; the other instances' counts are V(null).
      - Left V(false) (the default), every selected instance gets O(http_tokens) whatever its IMDSv1 use - that is the
        way to enforce IMDSv2 on an instance that was skipped; with O(imdsv1_usage_window) the module then warns,
        naming the instances that used IMDSv1 in the window.
      - Check mode shows exactly which instances would be enforced and which skipped (the same result).
    type: bool
    default: false
    version_added: 0.2.0
  canary_percent:
    description:
      - The stages of a staged rollout of the instances, returned in RV(stages) - the plan of
        C(playbooks/harden.yml), run in check mode first.
      - The instances this run changes (in check mode, would change) are sorted by id, and the first
        C(ceil(n * canary_percent / 100)) of them are the canaries (RV(stages.canary)), the others follow
        (RV(stages.rest)); the instances left as they are for their IMDSv1 use (O(skip_instances_using_imdsv1))
        are RV(stages.skipped). The same rule as the canaries of M(keyless.aws.static_keys_info), so a re-run
        picks the same canaries.
      - V(0) plans no canary stage (every instance in RV(stages.rest)); V(100) makes every instance a canary.
      - A later task acts on the ids of each stage (O(instance_ids)), so each stage changes exactly what the plan
        names.
      - Needs instances (O(instance_ids) or O(filters)). Changes nothing by itself.
    type: float
    version_added: 0.2.0
  hardened_launch_templates:
    description:
      - Launch templates an earlier task of the same run hardens with these options (as the role
        C(keyless.aws.instance_profile) does before its instances phase) - names, ids and the version the earlier
        task starts from.
      - Only read in check mode, with O(account_defaults=true) and O(http_tokens_enforced=enabled) - there the
        earlier task only predicted, so the templates are still as they were. The enforcement report
        (RV(account_defaults.enforcement_report)) then counts each as that task leaves it (the version named, with
        the options of this task); a template that does not exist yet is left out (the earlier task creates it,
        with the options). The ones counted are returned in RV(hardened_launch_templates).
      - They are not changed by this task, not listed in RV(launch_templates) or the diff, and do not make the task
        changed. Templates this task hardens itself (O(launch_templates)) are not counted twice.
      - A real run reads them as they are (the earlier task has hardened them by then).
    type: list
    elements: dict
    default: []
    version_added: 0.2.0
    suboptions:
      name:
        description: Name of the launch template. Give O(hardened_launch_templates[].name) or O(hardened_launch_templates[].id).
        type: str
      id:
        description: Id of the launch template (C(lt-...)).
        type: str
      version:
        description: The version the earlier task starts from, V($Default), V($Latest) or a version number.
        type: str
        default: $Default
  http_tokens:
    description:
      - V(required) allows IMDSv2 (session tokens) only; V(optional) also allows IMDSv1.
    type: str
    choices: ["optional", "required"]
    default: required
  http_endpoint:
    description:
      - V(disabled) switches the metadata service off. Instances then get no credentials from their instance profile
        at all (and no other metadata); the module warns.
      - Left unset, the endpoint is left as it is.
    type: str
    choices: ["enabled", "disabled"]
  http_put_response_hop_limit:
    description:
      - How many network hops the IMDSv2 token response may travel, from 1 to 64.
      - V(1) keeps the token on the instance itself. Containers on the instance (Docker bridge networking, Kubernetes
        pods) are one hop further and need V(2).
      - Left unset, the hop limit is left as it is.
    type: int
  instance_metadata_tags:
    description:
      - Whether the instance's tags are readable from the metadata service. Left unset, left as it is.
    type: str
    choices: ["enabled", "disabled"]
  http_protocol_ipv6:
    description:
      - Whether the metadata service also answers on its IPv6 address (Nitro instances in IPv6 subnets). Left unset,
        left as it is. Not an account-level setting.
    type: str
    choices: ["enabled", "disabled"]
  instance_user_data:
    description:
      - Also read the user data of every selected instance (C(DescribeInstanceAttribute) C(userData), one call per
        instance, paced like every call) and report what looks like AWS keys in it, by line, in
        RV(instance_user_data_findings), with a warning per instance. The keys are never returned; a key id is
        described (kind, last four characters, account, fingerprint) so M(keyless.aws.static_keys_info) finds its
        owner.
      - Needs O(instance_ids) or O(filters). Reads only; works in check mode.
    type: bool
    default: false
    version_added: 0.2.0
  wait:
    description:
      - Wait until EC2 reports the changed instances' new options as C(applied) (running instances answer
        C(pending) first). A stopped instance takes its new options when it starts; the module waits only until EC2
        shows them.
      - Only C(pending) is waited out. Options reported C(applied) but not as sent fail at once (waiting cannot
        help), naming the instance, the option, what was sent and what is reported.
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds to wait with O(wait=true) before failing; also how long a throttled call is retried.
    type: int
    default: 300
  max_concurrency:
    description:
      - How many instances are changed at the same time (1 to 100). More threads hide the latency of each call;
        they do not raise the rate EC2 allows (see O(max_request_rate)).
    type: int
    default: 10
    version_added: 0.2.0
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - keyless.aws.attributes
  - keyless.aws.attributes.ACTIONGROUP
  - keyless.aws.pacing
attributes:
  check_mode:
    support: full
    details:
      - A check-mode run makes only read calls and returns exactly what a real run would change, per target (the
        version number a new template version would get included), so an audit can use it.
  diff_mode:
    support: full
    details:
      - Shows, per changed target (instance, launch template, account defaults), the metadata options before and
        after, and for a template the version and default version.
  idempotent:
    support: full
notes:
  - Account defaults and instances are regional; the module acts in its region only.
  - Reads are batched (instances are described 200 ids at a time, every page read); each launch template costs one
    C(DescribeLaunchTemplateVersions) call.
  - Order of precedence at launch (AWS) - the launch request's options, then the launch template's, then the AMI's
    C(ImdsSupport), then the account defaults.
  - The enforcement report reads every launch template's V($Default) and V($Latest) versions in one paginated
    C(DescribeLaunchTemplateVersions) call, the versions Auto Scaling groups pin (one call per template that has
    such groups), C(DescribeAutoScalingGroups) and, for groups with a launch configuration,
    C(DescribeLaunchConfigurations). It needs C(ec2:DescribeLaunchTemplateVersions),
    C(autoscaling:DescribeAutoScalingGroups) and C(autoscaling:DescribeLaunchConfigurations).
  - The IMDSv1 evidence (O(imdsv1_usage_window)) costs one C(GetMetricData) call per 250 instances read.
    RV(instances[].last_imdsv1_call) is the start of the newest period (an hour, or a day for longer windows) with
    an IMDSv1 call, not the moment of the call.
  - The report does not read the AMI's C(ImdsSupport) - a template without C(HttpTokens) counts with the account
    default (as this task leaves it), else V(optional); an AMI registered with C(ImdsSupport=v2.0) would launch
    with V(required) anyway, so the report may name a template that would still launch (the stricter reading).
    Launches that use no launch template (a C(RunInstances) call with its own options, other tools) cannot be seen
    before they happen.
seealso:
  - module: keyless.aws.iam_instance_profile
  - module: keyless.aws.ec2_profile_association
  - module: keyless.aws.imds_credentials
    description: With require_imdsv2, proves on an instance that IMDSv1 is refused and the role's credentials arrive.
  - module: amazon.aws.ec2_instance
  - module: amazon.aws.ec2_launch_template
  - name: CloudWatch metrics of EC2 instances
    description: The EC2 user guide on C(MetadataNoToken) and C(MetadataNoTokenRejected).
    link: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/viewing_metrics_with_cloudwatch.html
  - name: Transition to IMDSv2
    description: The EC2 user guide on finding IMDSv1 use before requiring IMDSv2.
    link: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-transition-to-version-2.html
  - name: Enforce IMDSv2 at the account level
    description: The EC2 user guide on C(HttpTokensEnforced).
    link: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-IMDS-new-instances.html#enforce-imdsv2-at-the-account-level
  - name: Configure the instance metadata options
    description: The EC2 user guide on IMDS options and their order of precedence.
    link: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-options.html
"""

EXAMPLES = r"""
- name: Require IMDSv2 on two instances
  keyless.aws.ec2_metadata_options:
    instance_ids:
      - i-0123456789abcdef0
      - i-0fedcba9876543210

- name: Require IMDSv2 on every running instance of a team, with hop limit 2 for its containers
  keyless.aws.ec2_metadata_options:
    filters:
      "tag:team": web
      instance-state-name: running
    http_put_response_hop_limit: 2

- name: Harden two launch templates - web from its default version, another from its latest (new versions become the defaults)
  keyless.aws.ec2_metadata_options:
    launch_templates:
      - name: web
      - id: lt-0123456789abcdef0
        version: $Latest

- name: Make IMDSv2 the default for every new instance in the region
  keyless.aws.ec2_metadata_options:
    account_defaults: true

- name: Enforce IMDSv2 for every launch in the region, hardening the templates that would otherwise fail first
  keyless.aws.ec2_metadata_options:
    launch_templates:
      - name: web
      - name: batch
    account_defaults: true
    http_tokens_enforced: enabled
  register: enforced

- name: Show what enforcement would have stopped (empty here - both templates were hardened first)
  ansible.builtin.debug:
    var: enforced.account_defaults.enforcement_report

- name: Two named instances and every instance tagged team=web, at most 2 changes a second
  keyless.aws.ec2_metadata_options:
    instance_ids:
      - i-0123456789abcdef0
      - i-0fedcba9876543210
    filters:
      "tag:team": web
    selection: union
    max_request_rate: 2
    wait_timeout: 900

- name: Require IMDSv2 on the web servers that made no IMDSv1 call in the last 14 days; report the others
  keyless.aws.ec2_metadata_options:
    filters:
      "tag:team": web
      instance-state-name: running
    imdsv1_usage_window: 14
    skip_instances_using_imdsv1: true
  register: hardened

- name: Show the instances left allowing IMDSv1, with their calls and the period of the last one
  ansible.builtin.debug:
    var: hardened.imdsv1_usage.skipped_instances

- name: Plan a staged rollout - which web servers go first (a tenth of them), which follow, which are skipped
  keyless.aws.ec2_metadata_options:
    filters:
      "tag:team": web
    imdsv1_usage_window: 14
    skip_instances_using_imdsv1: true
    canary_percent: 10
    wait: false
  check_mode: true
  register: plan

- name: The stages - each later task takes one list as its instance_ids (playbooks/harden.yml does)
  ansible.builtin.debug:
    msg: "canaries {{ plan.stages.canary }}, then {{ plan.stages.rest }}; skipped {{ plan.stages.skipped }}"

- name: Report only - the IMDSv1 calls of two instances over the last 30 days, and what enforcing would change
  keyless.aws.ec2_metadata_options:
    instance_ids:
      - i-0123456789abcdef0
      - i-0fedcba9876543210
    imdsv1_usage_window: 30
  check_mode: true
  register: evidence

- name: Audit only - what would change? (no change is made in check mode)
  keyless.aws.ec2_metadata_options:
    filters:
      instance-state-name: [running, stopped]
    launch_templates:
      - name: web
    account_defaults: true
  check_mode: true
  register: imds_audit
"""

RETURN = r"""
instances:
  description:
    - One entry per instance acted on (named in O(instance_ids) or matched by O(filters)), sorted by id; in check
      mode, the prediction.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: The instance's id.
      type: str
      sample: i-0123456789abcdef0
    changed:
      description: Whether the instance's options were (or, in check mode, would be) changed.
      type: bool
      sample: true
    before:
      description:
        - The instance's options before, with the keys http_tokens, http_endpoint, http_put_response_hop_limit,
          instance_metadata_tags and http_protocol_ipv6.
      type: dict
      sample: {"http_tokens": "optional", "http_endpoint": "enabled", "http_put_response_hop_limit": 1,
               "instance_metadata_tags": "disabled", "http_protocol_ipv6": "disabled"}
    after:
      description: The instance's options after (as EC2 reports them once applied; in check mode, the prediction).
      type: dict
      sample: {"http_tokens": "required", "http_endpoint": "enabled", "http_put_response_hop_limit": 1,
               "instance_metadata_tags": "disabled", "http_protocol_ipv6": "disabled"}
    imdsv1_calls:
      description:
        - The IMDSv1 calls the metadata service served the instance in the window (the Sum of C(MetadataNoToken));
          V(0) when CloudWatch holds no datapoint. V(null) when the instance was not read (with
          O(skip_instances_using_imdsv1=true), an instance whose change would not require IMDSv2).
      returned: when O(imdsv1_usage_window) is set
      type: int
      sample: 42
      version_added: 0.2.0
    imdsv1_calls_rejected:
      description:
        - The IMDSv1 calls refused in the window (the Sum of C(MetadataNoTokenRejected)); V(0) and V(null) as for
          RV(instances[].imdsv1_calls).
      returned: when O(imdsv1_usage_window) is set
      type: int
      sample: 0
      version_added: 0.2.0
    last_imdsv1_call:
      description:
        - The start (UTC) of the newest period of the window with an IMDSv1 call, served or refused (the period is
          RV(imdsv1_usage.period_seconds)); V(null) when there was none or the instance was not read.
      returned: when O(imdsv1_usage_window) is set
      type: str
      sample: "2026-11-30T14:00:00Z"
      version_added: 0.2.0
    skipped_for_imdsv1_use:
      description:
        - Whether the instance was (in check mode, would be) left as it is because it made IMDSv1 calls in the window
          (O(skip_instances_using_imdsv1=true)); its RV(instances[].after) then equals its RV(instances[].before).
      returned: when O(imdsv1_usage_window) is set
      type: bool
      sample: true
      version_added: 0.2.0
imdsv1_usage:
  description:
    - The IMDSv1 evidence, with O(imdsv1_usage_window); V(null) otherwise.
  returned: always
  type: dict
  version_added: 0.2.0
  contains:
    window_days:
      description: The window asked for, in days.
      type: int
      sample: 14
    start:
      description: The start of the window read (inclusive, UTC, aligned to the period).
      type: str
      sample: "2026-11-17T00:00:00Z"
    end:
      description: The end of the window read (exclusive, UTC; the end of the current period).
      type: str
      sample: "2026-12-02T00:00:00Z"
    period_seconds:
      description: The period the datapoints were summed by (3600, or a multiple of 86400 for windows over 8 days).
      type: int
      sample: 86400
    instances_read:
      description: How many instances' metrics were read.
      type: int
      sample: 12
    skipped_instances:
      description:
        - The instances left allowing IMDSv1 for their IMDSv1 use, sorted by id - C(instance_id), C(imdsv1_calls),
          C(imdsv1_calls_rejected), C(last_imdsv1_call).
      type: list
      elements: dict
      sample: [{"instance_id": "i-0123456789abcdef0", "imdsv1_calls": 42, "imdsv1_calls_rejected": 0,
                "last_imdsv1_call": "2026-11-30T00:00:00Z"}]
launch_templates:
  description: One entry per launch template of O(launch_templates), in order; in check mode, the prediction.
  returned: always
  type: list
  elements: dict
  contains:
    launch_template_id:
      description: The template's id.
      type: str
      sample: lt-0123456789abcdef0
    launch_template_name:
      description: The template's name.
      type: str
      sample: web
    base_version:
      description: The version number O(launch_templates[].version) resolved to.
      type: int
      sample: 3
    new_version:
      description: The version this run created (in check mode, the number it would get), or V(null).
      type: int
      sample: 4
    matching_version:
      description:
        - The version that carries the desired options - the base version when it already did, the latest version
          when it already was the base with the new options, or the new version.
      type: int
      sample: 4
    default_version:
      description: The template's default version after the run.
      type: int
      sample: 4
    changed:
      description: Whether a version was created or the default version moved.
      type: bool
      sample: true
    actions:
      description: What was done, in order (V(version_created), V(default_version_set)).
      type: list
      elements: str
      sample: ["version_created", "default_version_set"]
    before:
      description: The metadata options of the base version (only those it sets).
      type: dict
      sample: {"http_tokens": "optional"}
    after:
      description: The metadata options of the matching version.
      type: dict
      sample: {"http_tokens": "required"}
account_defaults:
  description:
    - The account-level defaults of the region, with O(account_defaults=true); V(null) otherwise. Only options that
      are set appear (an absent one has no preference).
  returned: always
  type: dict
  contains:
    before:
      description: The defaults before (C(http_tokens_enforced) among them when it has a value).
      type: dict
      sample: {}
    after:
      description: The defaults after (in check mode, the prediction).
      type: dict
      sample: {"http_tokens": "required", "http_tokens_enforced": "enabled"}
    changed:
      description: Whether the defaults were (or would be) changed.
      type: bool
      sample: true
    enforcement_report:
      description:
        - What EC2 would refuse to launch in the region once IMDSv2 is enforced, read before enabling it (in check
          mode too), with the templates of O(launch_templates) as this task leaves them. Empty lists when nothing
          would be refused.
        - Also in the failure result when the module refuses to enable enforcement.
      returned: when O(http_tokens_enforced=enabled) is (or would be) switched on
      type: dict
      version_added: 0.2.0
      contains:
        launch_templates:
          description:
            - One entry per launch template version that allows IMDSv1 - C(id), C(name), C(version_checked) (the
              version number), C(referenced_as) (V($Default), V($Latest), or the number an Auto Scaling group pins),
              C(http_tokens) (the effective value) and C(http_tokens_from) (V(launch definition), V(account default)
              or V(EC2 default)).
          type: list
          elements: dict
          sample: [{"id": "lt-0123456789abcdef0", "name": "web", "version_checked": 1,
                    "referenced_as": ["$Default", "$Latest"], "http_tokens": "optional",
                    "http_tokens_from": "launch definition"}]
        auto_scaling_groups:
          description:
            - One entry per Auto Scaling group and launch definition that allows IMDSv1 - C(name), C(launch_template)
              and C(launch_template_id), C(version) (as the group names it - V($Default) when it names none - from
              its C(LaunchTemplate), its C(MixedInstancesPolicy) or one of the policy's overrides) and
              C(version_number), or C(launch_configuration); and C(http_tokens).
          type: list
          elements: dict
          sample: [{"name": "web-asg", "launch_template": "web", "launch_template_id": "lt-0123456789abcdef0",
                    "version": "$Default", "version_number": 1, "launch_configuration": null,
                    "http_tokens": "optional"}]
stages:
  description:
    - With O(canary_percent), the stages of the instances, each a list of instance ids sorted by id; V(null)
      otherwise.
  returned: always
  type: dict
  version_added: 0.2.0
  contains:
    canary:
      description: The instances that go first - the first C(ceil(n * canary_percent / 100)) of those that change.
      type: list
      elements: str
      sample: ["i-0123456789abcdef0"]
    rest:
      description: The other instances that change, after the canaries.
      type: list
      elements: str
      sample: ["i-0fedcba9876543210"]
    skipped:
      description: The instances left as they are for their IMDSv1 use (O(skip_instances_using_imdsv1)).
      type: list
      elements: str
      sample: []
hardened_launch_templates:
  description:
    - The launch templates of O(hardened_launch_templates) the enforcement report counted as the earlier task
      leaves them (check mode, enabling O(http_tokens_enforced)); empty otherwise.
  returned: always
  type: list
  elements: dict
  version_added: 0.2.0
  contains:
    launch_template_id:
      description: The template's id.
      type: str
      sample: lt-0123456789abcdef0
    launch_template_name:
      description: The template's name.
      type: str
      sample: web
    version:
      description: The version counted, as O(hardened_launch_templates[].version) names it.
      type: str
      sample: $Latest
timing:
  description:
    - Where the run's time went - seconds per phase (V(read), V(plan), V(apply), V(wait), V(total)), the API calls
      made (retries included), the throttled answers among them, the seconds waited for the pacer, the calls per
      action and the rate each pacer bucket ended at. The same shape as RV(keyless.aws.ec2_profile_association#module:timing).
  returned: always
  type: dict
  version_added: 0.2.0
  sample: {"seconds": {"read": 0.3, "plan": 0.0, "apply": 181.0, "wait": 2.1, "total": 183.4}, "api_calls": 1003,
           "throttled": 0, "paced_seconds": 179.2, "calls_by_action": {"DescribeInstances": 2,
           "ModifyInstanceMetadataOptions": 1000}, "request_rates": {"ec2/metadata_options": 5.0}}
user_data_findings:
  description:
    - Launch template versions read by the run whose user data holds what looks like AWS keys, and where. The keys
      themselves are never returned.
  returned: always
  type: list
  elements: dict
  contains:
    launch_template_id:
      description: The template's id.
      type: str
    launch_template_name:
      description: The template's name.
      type: str
    version:
      description: The version number.
      type: int
    findings:
      description: What was found (V(access_key_id), with the key described in C(key), or V(secret_access_key)) and on
        which line of the decoded user data.
      type: list
      elements: dict
  sample: [{"launch_template_id": "lt-0123456789abcdef0", "launch_template_name": "web", "version": 2,
            "findings": [{"kind": "access_key_id", "line": 4,
                          "key": {"kind": "long-term", "suffix": "MPLE", "account": "123456789012",
                                  "fingerprint": "f66134f3b6918246"}},
                         {"kind": "secret_access_key", "line": 5}]}]
instance_user_data_findings:
  description:
    - With O(instance_user_data=true), the selected instances whose own user data holds what looks like AWS keys, and
      where (as in RV(user_data_findings)); V(null) otherwise. The keys themselves are never returned.
  returned: always
  type: list
  elements: dict
  contains:
    instance_id:
      description: The instance's id.
      type: str
    findings:
      description: What was found (V(access_key_id), with the key described in C(key), or V(secret_access_key)) and on
        which line of the decoded user data.
      type: list
      elements: dict
  sample: [{"instance_id": "i-0123456789abcdef0", "findings": [{"kind": "access_key_id", "line": 2,
            "key": {"kind": "long-term", "suffix": "MPLE", "account": null, "fingerprint": "f66134f3b6918246"}}]}]
  version_added: 0.2.0
"""

from ansible_collections.keyless.aws.plugins.module_utils.metadata_rollout import manage_rollout_step
from ansible_collections.keyless.aws.plugins.module_utils.module import KeylessModule


def _template_list():
    """The spec of a list of launch templates (launch_templates, hardened_launch_templates)."""
    return dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(
            name=dict(type="str"),
            id=dict(type="str"),
            version=dict(type="str", default="$Default"),
        ),
        mutually_exclusive=[["name", "id"]],
        required_one_of=[["name", "id"]],
    )


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str", default=[]),
        filters=dict(type="dict", default={}),
        launch_templates=_template_list(),
        set_default_version=dict(type="bool", default=True),
        version_description=dict(type="str"),
        account_defaults=dict(type="bool", default=False),
        http_tokens_enforced=dict(type="str", choices=["enabled", "disabled", "no-preference"]),
        http_tokens_enforced_force=dict(type="bool", default=False),
        http_tokens=dict(type="str", default="required", choices=["optional", "required"]),
        http_endpoint=dict(type="str", choices=["enabled", "disabled"]),
        http_put_response_hop_limit=dict(type="int"),
        instance_metadata_tags=dict(type="str", choices=["enabled", "disabled"]),
        http_protocol_ipv6=dict(type="str", choices=["enabled", "disabled"]),
        instance_user_data=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
        selection=dict(type="str", default="intersection", choices=["intersection", "union"]),
        max_concurrency=dict(type="int", default=10),
        max_request_rate=dict(type="float"),
        imdsv1_usage_window=dict(type="int"),
        skip_instances_using_imdsv1=dict(type="bool", default=False),
        canary_percent=dict(type="float"),
        hardened_launch_templates=_template_list(),
    )
    module = KeylessModule(argument_spec=argument_spec, supports_check_mode=True)

    def run():
        # manage_rollout_step checks every input before its first AWS call.
        ec2 = module.retrying_client("ec2", max_pool_connections=max(10, module.params["max_concurrency"] or 10))
        # The Auto Scaling client is made only when the enforcement report needs it.
        # Likewise CloudWatch, only when IMDSv1 metrics are read (imdsv1_usage_window).
        return manage_rollout_step(ec2, module.params, module.check_mode,
                                   autoscaling=lambda: module.retrying_client("autoscaling"),
                                   cloudwatch=lambda: module.retrying_client("cloudwatch"))

    module.run(run)


if __name__ == "__main__":
    main()
