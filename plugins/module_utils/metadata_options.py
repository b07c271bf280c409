# -*- coding: utf-8 -*-
# Copyright: keyless.aws contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The whole job of keyless.aws.ec2_metadata_options: IMDS options on instances, launch templates
and the account-level defaults of a region. Input is checked here (``validated``); each concern
lives in its own file: imds_options.py (the options, what differs, what a call sends),
metadata_instances.py, metadata_templates.py, metadata_account.py (defaults and the enforcement
report), user_data.py (keys baked into user data) and imds_usage.py (IMDSv1 evidence).

Everything is planned first (all reads, every check that can fail on input), then applied, so
bad input fails before any change. ``ensure_*`` functions return ``(changed, result)`` and
handle check mode right before the call that mutates. Functions take boto3 clients (wrapped
in ``RetryingClient`` by the module) and return plain data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.keyless.aws.plugins.module_utils.common import KeylessError
from ansible_collections.keyless.aws.plugins.module_utils.common import Stopwatch
from ansible_collections.keyless.aws.plugins.module_utils.common import Timing
from ansible_collections.keyless.aws.plugins.module_utils.common import diff_entry
from ansible_collections.keyless.aws.plugins.module_utils.common import in_parallel
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import ENFORCED_CHOICES
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import ENFORCED_OPTION
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import SKIP_OPTION
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import WINDOW_OPTION
from ansible_collections.keyless.aws.plugins.module_utils.imds_options import desired_options
from ansible_collections.keyless.aws.plugins.module_utils.imds_usage import check_window
from ansible_collections.keyless.aws.plugins.module_utils.instances import check_filters
from ansible_collections.keyless.aws.plugins.module_utils.metadata_account import _checked_report
from ansible_collections.keyless.aws.plugins.module_utils.metadata_account import ensure_account_defaults
from ansible_collections.keyless.aws.plugins.module_utils.metadata_account import plan_account_defaults
from ansible_collections.keyless.aws.plugins.module_utils.metadata_instances import ensure_instance
from ansible_collections.keyless.aws.plugins.module_utils.metadata_instances import plan_imdsv1_evidence
from ansible_collections.keyless.aws.plugins.module_utils.metadata_instances import plan_instances
from ansible_collections.keyless.aws.plugins.module_utils.metadata_instances import wait_applied
from ansible_collections.keyless.aws.plugins.module_utils.metadata_templates import _user_data_findings
from ansible_collections.keyless.aws.plugins.module_utils.metadata_templates import ensure_template
from ansible_collections.keyless.aws.plugins.module_utils.metadata_templates import plan_template
from ansible_collections.keyless.aws.plugins.module_utils.user_data import instance_user_data_findings
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_instance_ids
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_launch_templates
from ansible_collections.keyless.aws.plugins.module_utils.validation import check_request_rate


def validated(params):
    """All the module's input checked before any AWS call; returns (plan input, warnings)."""
    warnings = []
    desired = desired_options(params)
    if not desired:
        raise KeylessError("Nothing to enforce: set at least one of http_tokens, http_endpoint, "
                           "http_put_response_hop_limit, instance_metadata_tags or http_protocol_ipv6.",
                           param="http_tokens")
    instance_ids = check_instance_ids(params.get("instance_ids"), "instance_ids")
    filters = check_filters(params.get("filters")) or {}
    templates = check_launch_templates(params.get("launch_templates"))
    account = bool(params.get("account_defaults"))
    check_request_rate(params.get("max_request_rate"))
    if not (instance_ids or filters or templates or account):
        raise KeylessError("No target: name instances (instance_ids or filters), launch_templates, or set "
                           "account_defaults: true.", param="instance_ids")
    if desired.get("HttpEndpoint") == "disabled":
        warnings.append(
            "http_endpoint is disabled: the instance metadata service is switched off, so {0}instances get no "
            "credentials from their instance profile at all (nor any other metadata).".format(
                "whatever http_tokens says, " if desired.get("HttpTokens") == "required" else ""))
    enforced = params.get(ENFORCED_OPTION)
    if enforced is not None:
        if enforced not in ENFORCED_CHOICES:
            raise KeylessError("{0}: {1!r} is not one of {2}.".format(ENFORCED_OPTION, enforced,
                                                                      ", ".join(ENFORCED_CHOICES)),
                               param=ENFORCED_OPTION)
        if not account:
            raise KeylessError("http_tokens_enforced is a setting of the account defaults of the region: set "
                               "account_defaults: true with it, or leave it out. Nothing was changed.",
                               param=ENFORCED_OPTION)
        if enforced == "enabled" and desired.get("HttpTokens") == "optional":
            raise KeylessError("http_tokens: optional cannot go with http_tokens_enforced: enabled: with IMDSv2 "
                               "enforced, EC2 refuses every launch and every change that allows IMDSv1, so the "
                               "targets of this task would be refused or left unlaunchable. Use http_tokens: "
                               "required. Nothing was changed.", param="http_tokens")
    window, skip = _imdsv1_evidence(params, desired, instance_ids or filters)
    if params.get("instance_user_data") and not (instance_ids or filters):
        raise KeylessError("instance_user_data reads the user data of the instances the task selects: name them "
                           "(instance_ids or filters), or leave it out.", param="instance_user_data")
    if account and "HttpProtocolIpv6" in desired:
        warnings.append("http_protocol_ipv6 is not an account-level default setting: it applies to the instances and "
                        "launch templates named, and the account defaults are left without it.")
    return {
        "desired": desired,
        "instance_ids": instance_ids,
        "filters": filters,
        "launch_templates": templates,
        "account_defaults": account,
        "http_tokens_enforced": enforced,
        "http_tokens_enforced_force": bool(params.get("http_tokens_enforced_force")),
        "wait": params.get("wait", True),
        "wait_timeout": params.get("wait_timeout", 300),
        "selection": params.get("selection") or "intersection",
        "max_concurrency": concurrency(params.get("max_concurrency")),
        "set_default_version": params.get("set_default_version", True),
        "version_description": params.get("version_description"),
        "instance_user_data": bool(params.get("instance_user_data")),
        WINDOW_OPTION: window,
        SKIP_OPTION: skip,
    }, warnings


def _imdsv1_evidence(params, desired, instances_named):
    """(window in days or None, skip) from ``imdsv1_usage_window`` and ``skip_instances_using_imdsv1``."""
    window = params.get(WINDOW_OPTION)
    skip = params.get(SKIP_OPTION)
    if window is not None:
        check_window(window, WINDOW_OPTION, then="Nothing was changed.")
        if not instances_named:
            raise KeylessError(
                "{0}: the IMDSv1 metrics are per instance; name the instances (instance_ids or filters), or leave "
                "{0} out. Nothing was changed.".format(WINDOW_OPTION), param=WINDOW_OPTION)
    if skip is not None and not isinstance(skip, bool):
        raise KeylessError("{0}: {1!r} is not true or false.".format(SKIP_OPTION, skip), param=SKIP_OPTION)
    if skip:
        if window is None:
            raise KeylessError(
                "{0}: true needs the window to look for IMDSv1 calls in: set {1} (days), for example 14. Nothing "
                "was changed.".format(SKIP_OPTION, WINDOW_OPTION), param=SKIP_OPTION)
        if desired.get("HttpTokens") != "required":
            raise KeylessError(
                "{0}: true goes with http_tokens: required (it leaves instances that still use IMDSv1 allowing "
                "it); with http_tokens: {1} there is nothing to skip. Nothing was changed.".format(
                    SKIP_OPTION, desired.get("HttpTokens")), param=SKIP_OPTION)
    return window, bool(skip)


MAX_CONCURRENCY = 100


def concurrency(value, limit=MAX_CONCURRENCY):
    """``max_concurrency``, checked: an int from 1 to ``limit`` (10 when not given)."""
    value = 10 if value is None else value
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise KeylessError("max_concurrency: {0!r} is out of range; give 1 to {1}.".format(value, limit),
                           param="max_concurrency")
    return value


def manage_metadata_options(ec2, params, check_mode, timing=None, autoscaling=None, cloudwatch=None, now=None):
    """Converge the IMDS options of every target; returns the module's result (its ``timing``
    says where the time went: phases, calls, throttled answers).

    ``params``: the module's parameters (validated here before any AWS call).
    ``autoscaling``: a function that returns the Auto Scaling client, called only when the
    enforcement report is needed (enabling ``http_tokens_enforced``).
    ``cloudwatch``: likewise for the CloudWatch client, called only when IMDSv1 metrics are read
    (``imdsv1_usage_window``); ``now``: the end of that window (an aware datetime; default the
    current time).

    The templates are hardened before the account defaults change, so that switching on
    ``HttpTokensEnforced`` never finds a template of the same task still allowing IMDSv1.
    """
    plan_input, warnings = validated(params)
    timing = timing or Timing(max_poll_interval=15.0)
    watch = Stopwatch(timing.clock)
    with watch.phase("read"):
        plans = _plan(ec2, plan_input, warnings, autoscaling, cloudwatch, now)
        instance_findings = instance_user_data_findings(
            ec2, [plan["instance_id"] for plan in plans["instances"]], warnings, plan_input["max_concurrency"]) \
            if plan_input["instance_user_data"] else None
    with watch.phase("plan"):
        findings = _user_data_findings(plans["templates"], warnings)
    result = {"instances": [], "launch_templates": [], "account_defaults": None, "user_data_findings": findings,
              "instance_user_data_findings": instance_findings, "imdsv1_usage": plans["imdsv1"]}
    with watch.phase("apply"):
        changed, diff = _apply_templates_and_account(ec2, plans, plan_input, check_mode, result)
        outcomes = in_parallel(lambda plan: ensure_instance(ec2, plan, check_mode), plans["instances"],
                               plan_input["max_concurrency"])
    instance_results = []
    for instance_changed, instance_result in outcomes:
        changed = changed or instance_changed
        instance_results.append(instance_result)
    if plan_input["wait"] and not check_mode:
        with watch.phase("wait"):
            wait_applied(ec2, instance_results, dict((plan["instance_id"], plan["changes"]) for plan in plans["instances"]),
                         plan_input["wait_timeout"], timing)
    for instance_result in instance_results:
        if instance_result["changed"]:
            diff.append(diff_entry("instance {0} metadata options".format(instance_result["instance_id"]),
                                   instance_result["before"], instance_result["after"]))
    result["instances"] = instance_results
    result.update(changed=changed, diff=diff or {"before": {}, "after": {}}, warnings=warnings,
                  timing=watch.result(ec2))
    return result


def _plan(ec2, plan_input, warnings, autoscaling, cloudwatch, now):
    """Every read, and every check that can fail, before the first change: the plans of the account
    defaults, the templates and the instances, and the IMDSv1 evidence."""
    desired = plan_input["desired"]
    account_plan = plan_account_defaults(ec2, desired, plan_input["http_tokens_enforced"]) \
        if plan_input["account_defaults"] else None
    template_plans = [plan_template(ec2, spec, desired) for spec in plan_input["launch_templates"]]
    resolved = [plan["id"] for plan in template_plans]
    twice = sorted(set(t for t in resolved if resolved.count(t) > 1))
    if twice:
        raise KeylessError("launch_templates: launch template {0} is named twice (by name and by id); name it "
                           "once. Nothing was changed.".format(", ".join(twice)), param="launch_templates")
    instance_plans = []
    if plan_input["instance_ids"] or plan_input["filters"]:
        instance_plans = plan_instances(ec2, plan_input["instance_ids"], plan_input["filters"], desired,
                                        selection=plan_input["selection"])
    imdsv1 = None
    if plan_input[WINDOW_OPTION] is not None:
        imdsv1 = plan_imdsv1_evidence(cloudwatch, instance_plans, plan_input[WINDOW_OPTION],
                                      plan_input[SKIP_OPTION], warnings, now)
    if account_plan is not None and account_plan["tightens"]:
        account_plan["report"] = _checked_report(ec2, autoscaling, template_plans, account_plan, plan_input,
                                                 warnings)
    return {"account": account_plan, "templates": template_plans, "instances": instance_plans, "imdsv1": imdsv1}


def _apply_templates_and_account(ec2, plans, plan_input, check_mode, result):
    """The templates first, then the account defaults (enforcement switched on finds the templates
    of the same task hardened); fills ``result``; returns (changed, diff entries)."""
    changed, diff = False, []
    for plan in plans["templates"]:
        template_changed, template_result = ensure_template(
            ec2, plan, plan_input["set_default_version"], check_mode, plan_input["version_description"])
        changed = changed or template_changed
        result["launch_templates"].append(template_result)
        if template_changed:
            diff.append(diff_entry(
                "launch template {0} ({1})".format(template_result["launch_template_name"],
                                                   template_result["launch_template_id"]),
                {"version": template_result["base_version"],
                 "default_version": plan["default"]["VersionNumber"],
                 "metadata_options": template_result["before"]},
                {"version": template_result["matching_version"],
                 "default_version": template_result["default_version"],
                 "metadata_options": template_result["after"]}))
    if plans["account"] is not None:
        account_changed, account_result = ensure_account_defaults(ec2, plans["account"], check_mode)
        changed = changed or account_changed
        result["account_defaults"] = account_result
        if account_changed:
            diff.append(diff_entry("account instance metadata defaults", account_result["before"],
                                   account_result["after"]))
    return changed, diff
